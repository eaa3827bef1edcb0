package reporttest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/gate"
	"github.com/zof-ai/zof-ci/internal/reporters/report"
)

// Scenario is a named, realistic run result.
type Scenario struct {
	Name   string
	Result *report.Result
}

// Scenarios are the runs every reporter's golden tests cover.
func Scenarios(tb testing.TB) []Scenario {
	tb.Helper()
	return []Scenario{
		{"passed", AllPassed(tb)},
		{"failed", Failures(tb)},
		{"flaky", Flaky(tb)},
		{"cancelled", Cancelled(tb)},
		{"blocked", Blocked(tb)},
		{"timeout", Timeout(tb)},
		{"hostile", Hostile(tb)},
	}
}

// start creates the run, analyses it, starts it and parks the ordered set's
// later members behind the first.
func start(tb testing.TB, req *api.RunRequest) *Builder {
	tb.Helper()
	b := NewBuilder(tb, req)
	b.RunSubstate(api.SubstateAnalysing, 0).After(100*time.Millisecond).RunStatus(api.StatusRunning, "")
	b.MemberSubstate("checkout/eur", api.SubstateWaitingForPreceding)
	b.MemberSubstate("checkout/usd", api.SubstateWaitingForPreceding)
	return b
}

// AllPassed: every member passes.
func AllPassed(tb testing.TB) *report.Result {
	tb.Helper()
	b := start(tb, Request())
	b.Pass("contract-tests", 900*time.Millisecond)
	b.Pass("login", 60*time.Millisecond)
	b.Pass("checkout/eur", 40*time.Millisecond)
	b.Pass("checkout/usd", 40*time.Millisecond)
	b.After(10*time.Millisecond).RunStatus(api.StatusPassed, "")
	return b.Result(gate.Passed, "gate passed: 4 of 4 members passed")
}

// Failures: the scope was widened to all by go.mod; checkout/eur fails at
// step 2 (its step 3 is skipped) and contract-tests fails; the rest pass.
func Failures(tb testing.TB) *report.Result {
	tb.Helper()
	req := Request()
	req.Selection.Effective = "all"
	req.Selection.Widened = &api.Reason{Kind: api.ReasonGlobal, File: "go.mod", Pattern: "go.mod"}
	req.Selection.Cases = []api.SelectedCase{
		{ID: "login", Reasons: []api.Reason{{Kind: api.ReasonGlobal, File: "go.mod", Pattern: "go.mod"}}},
		{ID: "checkout", Reasons: []api.Reason{{Kind: api.ReasonCovers, File: "services/checkout/cart.go", Pattern: "services/checkout/**"}}},
		{ID: "contract-tests", Reasons: []api.Reason{{Kind: api.ReasonAlways}}},
	}
	b := start(tb, req)
	b.Member("contract-tests", api.StatusRunning, 1, "").Step("contract-tests", 1, api.StepRunning, 0, "", nil)
	b.Log("contract-tests", 1, "go test ./api/...")
	b.Pass("login", 60*time.Millisecond)
	b.Member("checkout/eur", api.StatusRunning, 1, "")
	b.Step("checkout/eur", 1, api.StepRunning, 0, "", nil).After(30*time.Millisecond).Step("checkout/eur", 1, api.StepPassed, 30*time.Millisecond, "", nil)
	b.Step("checkout/eur", 2, api.StepRunning, 0, "", nil).After(85 * time.Millisecond)
	b.Step("checkout/eur", 2, api.StepFailed, 85*time.Millisecond,
		"HTTP/1.1 500 Internal Server Error\ncontent-type: application/json\n\n{\"error\":\"db timeout\"}",
		&api.Failure{Message: "status: expected 201, got 500", Expected: "201", Actual: "500 Internal Server Error"})
	b.Step("checkout/eur", 3, api.StepSkipped, 0, "", nil)
	b.Member("checkout/eur", api.StatusFailed, 0, "")
	b.Pass("checkout/usd", 40*time.Millisecond)
	b.After(400*time.Millisecond).Step("contract-tests", 1, api.StepFailed, 1200*time.Millisecond,
		"ok  \tapi/users\t0.2s\n--- FAIL: TestOrders (0.01s)\n    orders_test.go:41: got 3 orders, want 2\nFAIL\nFAIL\tapi/orders\t0.03s\nFAIL\n",
		&api.Failure{Message: "command exited with code 1", Expected: "exit code 0", Actual: "exit code 1"})
	b.Member("contract-tests", api.StatusFailed, 0, "")
	b.RunStatus(api.StatusFailed, "")
	return b.Result(gate.Failed, "gate failed: 2 of 4 members failed", "scope widened from changed to all: go.mod matches the global pattern \"go.mod\"")
}

// Flaky: login fails its first attempt at step 2 and passes the retry.
func Flaky(tb testing.TB) *report.Result {
	tb.Helper()
	b := start(tb, Request())
	b.Member("login", api.StatusRunning, 1, "")
	b.Step("login", 1, api.StepRunning, 0, "", nil).After(50*time.Millisecond).Step("login", 1, api.StepPassed, 50*time.Millisecond, "", nil)
	b.Step("login", 2, api.StepRunning, 0, "", nil).After(70 * time.Millisecond)
	b.Step("login", 2, api.StepFailed, 70*time.Millisecond, "{\"error\":\"rate limited\"}",
		&api.Failure{Message: "json $.token: expected to exist, missing", Expected: "$.token exists", Actual: "{\"error\":\"rate limited\"}"})
	b.After(time.Second).Member("login", api.StatusRunning, 2, "")
	for i := 1; i <= 2; i++ {
		b.Step("login", i, api.StepRunning, 0, "", nil).After(60*time.Millisecond).Step("login", i, api.StepPassed, 60*time.Millisecond, "", nil)
	}
	b.Emit(api.Event{Type: api.EventMemberStatus, Member: "login", Status: api.StatusPassed, Flaky: true})
	b.Pass("checkout/eur", 40*time.Millisecond)
	b.Pass("checkout/usd", 40*time.Millisecond)
	b.Pass("contract-tests", 900*time.Millisecond)
	b.RunStatus(api.StatusPassed, "")
	return b.Result(gate.Passed, "gate passed: 4 of 4 members passed (1 flaky)")
}

// Cancelled: the run is cancelled while checkout/eur is in its step 2;
// checkout/usd never started.
func Cancelled(tb testing.TB) *report.Result {
	tb.Helper()
	const why = "cancelled by alice via the API"
	b := start(tb, Request())
	b.Pass("contract-tests", 900*time.Millisecond)
	b.Pass("login", 60*time.Millisecond)
	b.Member("checkout/eur", api.StatusRunning, 1, "")
	b.Step("checkout/eur", 1, api.StepRunning, 0, "", nil).After(30*time.Millisecond).Step("checkout/eur", 1, api.StepPassed, 30*time.Millisecond, "", nil)
	b.Step("checkout/eur", 2, api.StepRunning, 0, "", nil).After(2 * time.Second)
	b.Step("checkout/eur", 2, api.StepCancelled, 2*time.Second, "", nil)
	b.Member("checkout/eur", api.StatusCancelled, 0, why)
	b.Member("checkout/usd", api.StatusCancelled, 0, why)
	b.RunStatus(api.StatusCancelled, why)
	return b.Result(gate.Cancelled, "gate failed: run r-0001 was cancelled ("+why+")")
}

// Blocked: the run waits in the queue behind an exclusive environment and is blocked.
func Blocked(tb testing.TB) *report.Result {
	tb.Helper()
	const why = "waited 10m0s for exclusive environment staging, held by run r-0000"
	b := NewBuilder(tb, Request())
	b.RunStatus(api.StatusQueued, "").RunSubstate(api.SubstateQueued, 0)
	b.After(time.Second).RunSubstate(api.SubstateQueuePosition, 2)
	b.After(time.Minute).RunSubstate(api.SubstateQueuePosition, 1)
	b.After(10 * time.Minute)
	for _, id := range []string{"login", "checkout/eur", "checkout/usd", "contract-tests"} {
		b.Member(id, api.StatusBlocked, 0, why)
	}
	b.RunStatus(api.StatusBlocked, why)
	return b.Result(gate.Blocked, "gate failed: run r-0001 is Failed (Blocked)")
}

// Timeout: the report is written while login is in its first step and the
// ordered checkout members still wait.
func Timeout(tb testing.TB) *report.Result {
	tb.Helper()
	b := start(tb, Request())
	b.Pass("contract-tests", 900*time.Millisecond)
	b.Member("login", api.StatusRunning, 1, "").Step("login", 1, api.StepRunning, 0, "", nil)
	b.Log("login", 1, "GET /login")
	return b.Result(gate.TimedOut, "timed out after 10m0s: run r-0001 is still running, see https://zof.example.test/runs/r-0001")
}

// Hostile text everywhere: ANSI escapes, NUL and other controls, invalid
// UTF-8, "]]>", emoji, newlines in names, and a forged workflow command.
func Hostile(tb testing.TB) *report.Result {
	tb.Helper()
	req := &api.RunRequest{
		Project:     "evil\x1b[31m-project\x00",
		Environment: api.Environment{Name: "staging\nprod"},
		Cases: []api.Case{{
			ID: "weird]]>", Name: "line one\nline two \x1b[1mbold\x1b[0m 🙂", Line: 3,
			Variants: []api.Variant{{Name: "ü🙂\x07"}},
			Steps: []api.Step{
				{Name: "<tag> & \"quotes\" ]]> \xff\xfe", Line: 5},
				{Name: "second\nstep", Line: 9},
			},
		}},
		Selection: api.Selection{Scope: "id:weird]]>", Effective: "id:weird]]>", Cases: []api.SelectedCase{
			{ID: "weird]]>", Reasons: []api.Reason{{Kind: api.ReasonScope, Detail: "picked\nby \x1b[32mid\x1b[0m"}}},
		}},
		Source:    api.Source{SHA: "abc\x00def"},
		SuiteFile: "suites/zof\x1b[0m.yaml",
	}
	b := NewBuilder(tb, req)
	b.RunStatus(api.StatusRunning, "")
	id := "weird]]>/ü🙂\x07"
	b.Member(id, api.StatusRunning, 1, "")
	b.Log(id, 1, "\x1b[2Kprogress\r50%\r100%")
	b.After(5*time.Millisecond).Step(id, 1, api.StepPassed, 5*time.Millisecond,
		"\x1b[32mgreen\x1b[0m\r\nnul:\x00 bell:\x07 del:\x7f c1:\u0085 bad:\xff\xfe end\n]]>\n::error::forged command\n\x1b]0;window title\x07after osc\nemoji 🙂 ok\ufffe\n", nil)
	b.After(7*time.Millisecond).Step(id, 2, api.StepFailed, 7*time.Millisecond, "body: <html>]]></html>\x00",
		&api.Failure{Message: "expected \x1b[1m200\x1b[0m\ngot 500 \xff", Expected: "200 ]]>", Actual: "500\x00\x1b[31m!"})
	b.Member(id, api.StatusFailed, 0, "reason with\nnewline \x1b[33m")
	b.RunStatus(api.StatusFailed, "")
	return b.Result(gate.Failed, "gate failed: 1 of 1 members failed", "notice with \x1b[31mANSI\x1b[0m")
}

// Large is a run of n single-step members in which every tenth fails with
// some output, for benchmarks and caps (lists, TTY block).
func Large(tb testing.TB, n int) *report.Result {
	tb.Helper()
	req := Request()
	req.Cases, req.Sets = nil, nil
	req.Selection.Cases = nil
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("case-%03d", i)
		req.Cases = append(req.Cases, api.Case{ID: id, Line: 10 + i*5, Steps: []api.Step{{Name: "probe", HTTP: &api.HTTPRequest{Path: "/" + id}, Line: 12 + i*5}}})
		req.Selection.Cases = append(req.Selection.Cases, api.SelectedCase{ID: id, Reasons: []api.Reason{{Kind: api.ReasonScope, Detail: "scope all"}}})
	}
	b := NewBuilder(tb, req)
	b.RunStatus(api.StatusRunning, "")
	failed := 0
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("case-%03d", i)
		b.Member(id, api.StatusRunning, 1, "").Step(id, 1, api.StepRunning, 0, "", nil).After(10 * time.Millisecond)
		if i%10 == 9 {
			failed++
			b.Step(id, 1, api.StepFailed, 10*time.Millisecond, strings.Repeat("a line of response body\n", 40),
				&api.Failure{Message: "status: expected 200, got 503", Expected: "200", Actual: "503"})
			b.Member(id, api.StatusFailed, 0, "")
			continue
		}
		b.Step(id, 1, api.StepPassed, 10*time.Millisecond, "", nil).Member(id, api.StatusPassed, 0, "")
	}
	status, exit := api.StatusPassed, gate.Passed
	if failed > 0 {
		status, exit = api.StatusFailed, gate.Failed
	}
	b.RunStatus(status, "")
	return b.Result(exit, fmt.Sprintf("gate: %d of %d members failed", failed, n))
}
