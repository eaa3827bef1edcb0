package console_test

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/reporters/console"
	"github.com/zof-ai/zof-ci/internal/reporters/report"
	"github.com/zof-ai/zof-ci/internal/reporters/reporttest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// follow feeds the result's events to the reporter as a follower would, each
// with the snapshot after it, then asks for the final report.
func follow(t *testing.T, o report.Options, res *report.Result) string {
	t.Helper()
	var buf bytes.Buffer
	o.Out = &buf
	if o.Now == nil {
		o.Now = reporttest.Now
	}
	r, err := console.NewConsole(o)
	if err != nil {
		t.Fatal(err)
	}
	run := &api.Run{}
	for _, e := range res.Events {
		if err := run.Apply(e); err != nil {
			t.Fatal(err)
		}
		r.Event(run.Clone(), e)
	}
	if err := r.Report(context.Background(), res); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s differs (-want +got; -update rewrites):\n%s", path, diff)
	}
}

func TestPlainGolden(t *testing.T) {
	for _, sc := range reporttest.Scenarios(t) {
		t.Run(sc.Name, func(t *testing.T) {
			got := follow(t, report.Options{}, sc.Result)
			golden(t, filepath.Join("plain", sc.Name+".txt"), got)
			if strings.Contains(got, "\x1b") {
				t.Error("plain output contains an ANSI escape")
			}
			for _, c := range got {
				if c < 0x20 && c != '\n' && c != '\t' {
					t.Fatalf("plain output contains control character %U", c)
				}
			}
			lines := strings.Split(strings.TrimRight(got, "\n"), "\n")
			if last := lines[len(lines)-1]; last != report.Line(nil, sc.Result.Verdict) {
				t.Errorf("last line = %q, want the verdict %q", last, sc.Result.Verdict)
			}
		})
	}
}

func TestGitHubActionsGolden(t *testing.T) {
	got := follow(t, report.Options{GitHubActions: true}, reporttest.Failures(t))
	golden(t, "github/failed.txt", got)
	if o, c := strings.Count(got, "\n::group::"), strings.Count(got, "\n::endgroup::"); o != 2 || c != 2 {
		t.Errorf("got %d ::group:: and %d ::endgroup::, want 2 of each (one per failed member)", o, c)
	}
	got = follow(t, report.Options{GitHubActions: true}, reporttest.Hostile(t))
	golden(t, "github/hostile.txt", got)
	for _, l := range strings.Split(got, "\n") {
		trimmed := strings.TrimLeft(l, " \t")
		if strings.HasPrefix(trimmed, "::") && !strings.HasPrefix(l, "::group::") && l != "::endgroup::" {
			t.Errorf("line would run as a workflow command: %q", l)
		}
	}
}

// visible shows escape sequences in goldens, so their diffs can be read.
func visible(s string) string { return strings.ReplaceAll(s, "\x1b", "<ESC>") }

func TestTTYGolden(t *testing.T) {
	for _, color := range []bool{false, true} {
		name := "tty/failed.txt"
		if color {
			name = "tty/failed-color.txt"
		}
		got := follow(t, report.Options{TTY: true, Color: color, Width: 60}, reporttest.Failures(t))
		golden(t, name, visible(got))
		if sgr := regexp.MustCompile("\x1b\\[[0-9;]*m"); sgr.MatchString(got) != color {
			t.Errorf("colour sequences present = %v, want %v (Options.Color)", !color, color)
		}
		if !strings.Contains(got, "\x1b[J") {
			t.Error("TTY mode never redrew its block")
		}
	}
}

// TestLiveLines pins the formats the package doc promises.
func TestLiveLines(t *testing.T) {
	tests := []struct {
		name string
		res  *report.Result
		want []string
	}{
		{"failed", reporttest.Failures(t), []string{
			"03:04:05 run r-0001 created: checkout-service on staging, 4 members",
			"03:04:05 run r-0001 Initial · Analysing test steps",
			"03:04:05 run r-0001 Running",
			"03:04:05 … checkout/eur Waiting for preceding tests",
			"03:04:05 ▸ contract-tests running",
			"03:04:05   contract-tests | go test ./api/...",
			"03:04:05   login step 1 \"login page renders\" passed (60ms)",
			"03:04:05 ✓ login passed (120ms)",
			"03:04:05   checkout/eur step 2 \"create cart\" failed (85ms): status: expected 201, got 500",
			"03:04:05   checkout/eur step 3 \"pay\" skipped",
			"03:04:05 ✗ checkout/eur failed at step 2 \"create cart\"",
			"03:04:05 ✗ contract-tests failed at step 1 \"run: go test ./api/...\"",
			"03:04:05 run r-0001 Failed",
		}},
		{"flaky", reporttest.Flaky(t), []string{
			"03:04:06 ↻ login retrying (attempt 2): token issued: json $.token: expected to exist, missing",
			"03:04:06 ✓ login passed (1.2s), flaky: passed on attempt 2",
		}},
		{"cancelled", reporttest.Cancelled(t), []string{
			"03:04:08 ■ checkout/eur cancelled during step 2 \"create cart\": cancelled by alice via the API",
			"03:04:08 ■ checkout/usd cancelled before it started: cancelled by alice via the API",
			"03:04:08 run r-0001 Cancelled: cancelled by alice via the API",
		}},
		{"blocked", reporttest.Blocked(t), []string{
			"03:04:05 run r-0001 Queued",
			"03:04:05 run r-0001 Queued · Execution queued",
			"03:04:06 run r-0001 Queued · In queue (position 2)",
			"03:05:06 run r-0001 Queued · In queue (position 1)",
			"03:15:06 ✗ login Failed (Blocked): waited 10m0s for exclusive environment staging, held by run r-0000",
			"03:15:06 run r-0001 Failed (Blocked): waited 10m0s for exclusive environment staging, held by run r-0000",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := follow(t, report.Options{}, tt.res)
			lines := map[string]bool{}
			for _, l := range strings.Split(got, "\n") {
				lines[l] = true
			}
			for _, w := range tt.want {
				if !lines[w] {
					t.Errorf("no line %q in:\n%s", w, got)
				}
			}
		})
	}
}

func TestSummary(t *testing.T) {
	got := follow(t, report.Options{}, reporttest.Failures(t))
	_, sum, ok := strings.Cut(got, "\nRun r-0001 Failed")
	if !ok {
		t.Fatalf("no summary header in:\n%s", got)
	}
	for _, want := range []string{
		"✗ checkout/eur failed at step 2 \"create cart\" (zof.yaml:62)",
		"    case:     checkout, variant eur · Checkout in every currency (zof.yaml:52)",
		"    failure:  status: expected 201, got 500",
		"    expected: 201",
		"    got:      500 Internal Server Error",
		"      | {\"error\":\"db timeout\"}",
		"Members: 4 total, 2 passed, 2 failed, 0 cancelled, 0 skipped, 0 flaky",
		"Duration: 755ms",
		"Selection: scope changed, effective all (widened: global file go.mod matches \"go.mod\": all cases)",
		"  checkout: services/checkout/cart.go matches \"services/checkout/**\"",
		"! scope widened from changed to all: go.mod matches the global pattern \"go.mod\"",
	} {
		if !strings.Contains(sum, want+"\n") {
			t.Errorf("summary lacks line %q:\n%s", want, sum)
		}
	}
	if strings.Contains(sum, "::group::") {
		t.Error("groups outside GitHub Actions")
	}
}

func TestNotice(t *testing.T) {
	var buf bytes.Buffer
	r, err := console.NewConsole(report.Options{Out: &buf})
	if err != nil {
		t.Fatal(err)
	}
	r.Notice(reporttest.T0.Add(2*time.Minute), "run r-0001 still Initial after 2m0s: is the server's scheduler running?")
	if want := "03:06:05 ! run r-0001 still Initial after 2m0s: is the server's scheduler running?\n"; buf.String() != want {
		t.Errorf("notice = %q, want %q", buf.String(), want)
	}
}

type failWriter struct{ n int }

func (f *failWriter) Write(p []byte) (int, error) {
	f.n++
	return 0, os.ErrClosed
}

func TestWriteErrorIsReportedOnce(t *testing.T) {
	w := &failWriter{}
	r, _ := console.NewConsole(report.Options{Out: w, Now: reporttest.Now})
	res := reporttest.Failures(t)
	run := &api.Run{}
	for _, e := range res.Events {
		_ = run.Apply(e)
		r.Event(run, e)
	}
	if err := r.Report(context.Background(), res); err == nil {
		t.Error("Report hid the write error")
	}
	if w.n != 1 {
		t.Errorf("%d writes after the first failed, want none", w.n-1)
	}
}

func TestNeedsOut(t *testing.T) {
	if _, err := console.New(report.Options{}); err == nil {
		t.Error("New without Out succeeded")
	}
}

// TestEachFactOnce: in a GitHub Actions log each fact is printed once per place. A failed
// step's message: once live (the step line; the member's line does not repeat it), once in
// the summary block (the failure line; expected, got and output are in the folded step log
// only). A blocked run's shared reason: once live per member as it happens and once in the
// summary (the section title, not the run line nor every member's line).
func TestEachFactOnce(t *testing.T) {
	sc := map[string]*report.Result{}
	for _, s := range reporttest.Scenarios(t) {
		sc[s.Name] = s.Result
	}
	split := func(out string) (live, summary, fold string) {
		i := strings.Index(out, "\nRun ")
		if i < 0 {
			t.Fatalf("no summary in:\n%s", out)
		}
		live, rest := out[:i], out[i:]
		for {
			a := strings.Index(rest, "::group::")
			if a < 0 {
				break
			}
			b := strings.Index(rest[a:], "::endgroup::")
			fold += rest[a : a+b]
			rest = rest[:a] + rest[a+b+len("::endgroup::"):]
		}
		return live, rest, fold
	}
	live, summary, fold := split(follow(t, report.Options{GitHubActions: true}, sc["failed"]))
	msg := "status: expected 201, got 500"
	if n := strings.Count(live, msg); n != 1 {
		t.Errorf("live: %q %d times, want 1:\n%s", msg, n, live)
	}
	if n := strings.Count(summary, msg); n != 1 {
		t.Errorf("summary: %q %d times, want 1:\n%s", msg, n, summary)
	}
	if n := strings.Count(summary, "500 Internal Server Error"); n != 0 {
		t.Errorf("summary repeats the folded step log's values %d times:\n%s", n, summary)
	}
	if !strings.Contains(fold, "500 Internal Server Error") {
		t.Errorf("the fold lost the actual value:\n%s", fold)
	}
	_, summary, _ = split(follow(t, report.Options{GitHubActions: true}, sc["blocked"]))
	reason := "waited 10m0s for exclusive environment staging"
	if n := strings.Count(summary, reason); n != 1 {
		t.Errorf("summary: the blocked reason %d times, want 1:\n%s", n, summary)
	}
}
