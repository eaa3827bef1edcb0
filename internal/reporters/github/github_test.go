package github

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/zof-ai/zof-ci/api"
	cigithub "github.com/zof-ai/zof-ci/internal/ci/github"
	"github.com/zof-ai/zof-ci/internal/ci/github/githubtest"
	"github.com/zof-ai/zof-ci/internal/gate"
	"github.com/zof-ai/zof-ci/internal/reporters/report"
	"github.com/zof-ai/zof-ci/internal/reporters/reporttest"
	"github.com/zof-ai/zof-ci/internal/secret"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func golden(t *testing.T, path, got string) {
	t.Helper()
	path = filepath.Join("testdata", path)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if d := cmp.Diff(string(want), got); d != "" {
		t.Errorf("%s differs (-want +got; -update rewrites):\n%s", path, d)
	}
}

const blob = "https://github.com/zof-ai/checkout-service/blob/0123456789abcdef0123456789abcdef01234567"

func TestSummaryGolden(t *testing.T) {
	for _, sc := range reporttest.Scenarios(t) {
		t.Run(sc.Name, func(t *testing.T) {
			md := Markdown(sc.Result, MarkdownOptions{Now: reporttest.Now, BlobBase: blob})
			golden(t, "summary/"+sc.Name+".md", md)
		})
	}
}

func TestCommandsGolden(t *testing.T) {
	for _, sc := range reporttest.Scenarios(t) {
		t.Run(sc.Name, func(t *testing.T) {
			var b strings.Builder
			c := &Commands{Out: &b}
			if sc.Name == "failed" {
				c.Notice = ForkNotice
			}
			if err := c.Report(context.Background(), sc.Result); err != nil {
				t.Fatal(err)
			}
			golden(t, "commands/"+sc.Name+".txt", b.String())
			assertCommandLines(t, b.String())
		})
	}
}

// assertCommandLines checks every line is one whole workflow command: no text
// can have started a line of its own.
func assertCommandLines(t *testing.T, out string) {
	t.Helper()
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if l == "" {
			continue
		}
		if !strings.HasPrefix(l, "::error ") && !strings.HasPrefix(l, "::notice ") {
			t.Errorf("line is not a command: %q", l)
		}
		if strings.ContainsAny(l, "\r") {
			t.Errorf("raw carriage return in %q", l)
		}
	}
}

// bigRun is a run of n members of which every member fails with a long message.
func bigRun(n int, msgLen int) *report.Result {
	run := &api.Run{ID: "r-big", Project: "checkout-service", Environment: "staging", Status: api.StatusFailed,
		CreatedAt: reporttest.T0, StartedAt: reporttest.T0.Add(time.Second), FinishedAt: reporttest.T0.Add(time.Minute),
		SuiteFile: "zof.yaml", URL: "https://zof.example.test/runs/r-big"}
	for i := 0; i < n; i++ {
		run.Members = append(run.Members, api.Member{
			ID: fmt.Sprintf("case-%04d", i), Case: fmt.Sprintf("case-%04d", i), Status: api.StatusFailed, Line: 10 + i,
			StartedAt: reporttest.T0.Add(time.Second), FinishedAt: reporttest.T0.Add(2 * time.Second),
			Steps: []api.StepResult{{Name: "probe", Status: api.StepFailed, Line: 11 + i,
				Failure: &api.Failure{Message: "status: expected 200, got 503 " + strings.Repeat("x", msgLen), Expected: "200", Actual: "503"},
				Output:  "HTTP/1.1 503\n\nbusy"}},
		})
	}
	return &report.Result{Run: run, Gate: gate.Failed, Exit: reporttest.Exits[gate.Failed], Verdict: fmt.Sprintf("gate failed: %d of %d members failed", n, n)}
}

func TestCommandsCapsAtTenPerStep(t *testing.T) {
	res := bigRun(500, 10)
	// Make the order matter: one blocked and one cancelled member first in the run.
	res.Run.Members[0].Status, res.Run.Members[0].Reason = api.StatusBlocked, "waited too long"
	res.Run.Members[1].Status = api.StatusCancelled
	var b strings.Builder
	if err := (&Commands{Out: &b}).Report(context.Background(), res); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	errs := 0
	for _, l := range lines {
		if strings.HasPrefix(l, "::error ") {
			errs++
			if strings.Contains(l, "(blocked)") || strings.Contains(l, "(cancelled)") {
				t.Errorf("a failed member comes before blocked and cancelled ones: %q", l)
			}
		}
	}
	if errs != MaxErrorAnnotationsPerStep {
		t.Errorf("%d ::error lines, want %d", errs, MaxErrorAnnotationsPerStep)
	}
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "::notice ") || !strings.Contains(last, "490 more not annotated") || !strings.Contains(last, "and 470 more") {
		t.Errorf("summary line %q", last)
	}
	if len(lines) != MaxErrorAnnotationsPerStep+1 {
		t.Errorf("%d lines, want %d", len(lines), MaxErrorAnnotationsPerStep+1)
	}
	assertCommandLines(t, b.String())
	// At the limit: exactly 10 failures give 10 errors and no summary.
	var c strings.Builder
	if err := (&Commands{Out: &c}).Report(context.Background(), bigRun(MaxErrorAnnotationsPerStep, 1)); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(c.String(), "\n"); n != MaxErrorAnnotationsPerStep || strings.Contains(c.String(), "::notice") {
		t.Errorf("10 failures: %d lines\n%s", n, c.String())
	}
}

func TestCommandEscaping(t *testing.T) {
	w := &workflowCommand{name: "error", props: [][2]string{{"file", "a,b:c.yaml"}, {"line", "3"}, {"title", "100% x\ny"}}, msg: "50%\r\nnext::error::forged"}
	want := "::error file=a%2Cb%3Ac.yaml,line=3,title=100%25 x%0Ay::50%25%0D%0Anext::error::forged"
	if got := w.String(); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func newCheckRun(t *testing.T, fake *githubtest.Fake, log *strings.Builder) *CheckRun {
	t.Helper()
	c, err := cigithub.NewClient("ghs_x", fake.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &CheckRun{
		Client: c, Owner: "zof-ai", Repo: "checkout-service", HeadSHA: "1111111111111111111111111111111111111111",
		Now: reporttest.Now, Log: log, BlobBase: blob,
		Retry: cigithub.Retry{Sleep: func(context.Context, time.Duration) error { return nil }},
	}
}

type sentRun struct {
	Name        string  `json:"name"`
	HeadSHA     string  `json:"head_sha,omitempty"`
	Status      string  `json:"status,omitempty"`
	Conclusion  string  `json:"conclusion,omitempty"`
	DetailsURL  string  `json:"details_url,omitempty"`
	ExternalID  string  `json:"external_id,omitempty"`
	StartedAt   string  `json:"started_at,omitempty"`
	CompletedAt string  `json:"completed_at,omitempty"`
	Output      *sentOP `json:"output,omitempty"`
}

type sentOP struct {
	Title       string                  `json:"title"`
	Summary     string                  `json:"summary"`
	Text        string                  `json:"text,omitempty"`
	Annotations []githubtest.Annotation `json:"annotations,omitempty"`
}

func decodeBodies(t *testing.T, bodies [][]byte) []sentRun {
	t.Helper()
	out := make([]sentRun, len(bodies))
	for i, b := range bodies {
		if err := json.Unmarshal(b, &out[i]); err != nil {
			t.Fatalf("body %d: %v\n%s", i, err, b)
		}
	}
	return out
}

func TestCheckRunLifecycle(t *testing.T) {
	fake := githubtest.New(t)
	var log strings.Builder
	cr := newCheckRun(t, fake, &log)
	res := reporttest.Failures(t)
	ctx := context.Background()
	if err := cr.Start(ctx, res.Run); err != nil {
		t.Fatal(err)
	}
	if err := cr.Report(ctx, res); err != nil {
		t.Fatal(err)
	}
	if log.Len() != 0 {
		t.Errorf("nothing should go to the log:\n%s", log.String())
	}
	creates := decodeBodies(t, fake.Bodies("POST", `/repos/zof-ai/checkout-service/check-runs`))
	if len(creates) != 1 {
		t.Fatalf("%d creates", len(creates))
	}
	wantCreate := sentRun{
		Name: "Zof · checkout-service · staging", HeadSHA: "1111111111111111111111111111111111111111", Status: "in_progress",
		DetailsURL: "https://zof.example.test/runs/r-0001", ExternalID: "r-0001", StartedAt: "2026-01-02T03:14:05Z",
		Output: &sentOP{Title: "Running", Summary: "Run r-0001: 4 cases on staging, scope changed, effective all (widened: global file go.mod matches \"go.mod\": all cases). Follow it live: https://zof.example.test/runs/r-0001"},
	}
	if d := cmp.Diff(wantCreate, creates[0]); d != "" {
		t.Errorf("create (-want +got):\n%s", d)
	}
	stored := fake.Only(t)
	updates := decodeBodies(t, fake.Bodies("PATCH", fmt.Sprintf(`/repos/zof-ai/checkout-service/check-runs/%d`, stored.ID)))
	if len(updates) != 1 {
		t.Fatalf("%d updates, want 1 (2 annotations fit one request)", len(updates))
	}
	u := updates[0]
	if u.Status != "completed" || u.Conclusion != "failure" || u.CompletedAt != "2026-01-02T03:14:05Z" || u.Output.Title != "gate failed: 2 of 4 members failed" {
		t.Errorf("completion %+v", u)
	}
	wantAnns := []githubtest.Annotation{
		{Path: "zof.yaml", StartLine: 62, EndLine: 62, AnnotationLevel: "failure", Title: "checkout [eur]",
			Message:    "step 2 \"create cart\" failed: status: expected 201, got 500\nexpected: 201\ngot:      500 Internal Server Error",
			RawDetails: "HTTP/1.1 500 Internal Server Error\ncontent-type: application/json\n\n{\"error\":\"db timeout\"}"},
		{Path: "zof.yaml", StartLine: 77, EndLine: 77, AnnotationLevel: "failure", Title: "contract-tests",
			Message:    "step 1 \"run: go test ./api/...\" failed: command exited with code 1\nexpected: exit code 0\ngot:      exit code 1",
			RawDetails: "ok  \tapi/users\t0.2s\n--- FAIL: TestOrders (0.01s)\n    orders_test.go:41: got 3 orders, want 2\nFAIL\nFAIL\tapi/orders\t0.03s\nFAIL\n"},
	}
	if d := cmp.Diff(wantAnns, u.Output.Annotations); d != "" {
		t.Errorf("annotations (-want +got):\n%s", d)
	}
	golden(t, "checkrun/failed-summary.md", u.Output.Summary)
	golden(t, "checkrun/failed-text.md", u.Output.Text)
	if stored.Status != "completed" || stored.Conclusion != "failure" || len(stored.Annotations) != 2 {
		t.Errorf("stored %+v", stored)
	}
}

func TestCheckRunRetriedStepReusesCheckRun(t *testing.T) {
	fake := githubtest.New(t)
	res := reporttest.AllPassed(t)
	id := fake.AddRun(githubtest.CheckRun{Name: "Zof · checkout-service · staging", HeadSHA: "1111111111111111111111111111111111111111", Status: "in_progress", ExternalID: "r-0001"})
	fake.AddRun(githubtest.CheckRun{Name: "Zof · checkout-service · staging", HeadSHA: "1111111111111111111111111111111111111111", Status: "completed", Conclusion: "failure", ExternalID: "r-0000"})
	var log strings.Builder
	cr := newCheckRun(t, fake, &log)
	if err := cr.Start(context.Background(), res.Run); err != nil {
		t.Fatal(err)
	}
	if err := cr.Report(context.Background(), res); err != nil {
		t.Fatal(err)
	}
	if n := fake.Calls("POST", `/repos/.*/check-runs`); n != 0 {
		t.Errorf("%d creates, want 0: the step's earlier check run is reused", n)
	}
	if got := fake.Run(id); got.Conclusion != "success" {
		t.Errorf("reused check run %+v", got)
	}
	if q := fake.Requests[0].Query; !strings.Contains(q, "check_name=Zof") {
		t.Errorf("list query %q", q)
	}
}

func TestCheckRunAnnotationBatches(t *testing.T) {
	for _, n := range []int{MaxAnnotationsPerRequest, MaxAnnotationsPerRequest + 1, 500} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			fake := githubtest.New(t)
			var log strings.Builder
			cr := newCheckRun(t, fake, &log)
			res := bigRun(n, 10)
			if err := cr.Start(context.Background(), res.Run); err != nil {
				t.Fatal(err)
			}
			if err := cr.Report(context.Background(), res); err != nil {
				t.Fatal(err)
			}
			if log.Len() != 0 {
				t.Fatalf("fell back:\n%s", log.String())
			}
			stored := fake.Only(t)
			bodies := decodeBodies(t, fake.Bodies("PATCH", `/repos/.*/check-runs/\d+`))
			wantReqs := (n + MaxAnnotationsPerRequest - 1) / MaxAnnotationsPerRequest
			if len(bodies) != wantReqs {
				t.Errorf("%d updates, want %d", len(bodies), wantReqs)
			}
			total := 0
			for i, b := range bodies {
				if len(b.Output.Annotations) > MaxAnnotationsPerRequest {
					t.Errorf("update %d has %d annotations", i, len(b.Output.Annotations))
				}
				if b.Output.Title == "" || b.Output.Summary == "" {
					t.Errorf("update %d lacks the required title and summary", i)
				}
				if i > 0 && (b.Status != "" || b.Conclusion != "") {
					t.Errorf("later updates only add annotations: %+v", b)
				}
				total += len(b.Output.Annotations)
			}
			if total != n || len(stored.Annotations) != n || stored.Conclusion != "failure" {
				t.Errorf("sent %d, stored %d annotations (conclusion %s), want %d", total, len(stored.Annotations), stored.Conclusion, n)
			}
			if stored.Annotations[n-1].StartLine != 11+n-1 {
				t.Errorf("last annotation line %d", stored.Annotations[n-1].StartLine)
			}
		})
	}
}

func TestCheckRunEmojiAndNewlines(t *testing.T) {
	fake := githubtest.New(t)
	var log strings.Builder
	cr := newCheckRun(t, fake, &log)
	res := bigRun(2, 0)
	m := &res.Run.Members[0]
	m.Case, m.Variant = "pay 💳\nwith card", "eur 🇪🇺"
	m.Steps[0].Name = "charge 🙂\r\nit"
	m.Steps[0].Failure.Message = "expected 💰\nline two"
	res.Run.Project = "shop 🛒"
	if err := cr.Report(context.Background(), res); err != nil {
		t.Fatal(err)
	}
	if log.Len() != 0 {
		t.Fatalf("fell back:\n%s", log.String())
	}
	// Emoji are sent as they are (no GitHub source says the Checks API refuses them);
	// newlines in names become spaces.
	stored := fake.Only(t)
	a := stored.Annotations[0]
	if a.Title != "pay 💳 with card [eur 🇪🇺]" {
		t.Errorf("title %q", a.Title)
	}
	if !strings.HasPrefix(a.Message, "step 1 \"charge 🙂 it\" failed: expected 💰\nline two") {
		t.Errorf("message %q", a.Message)
	}
	if stored.Name != "Zof · shop 🛒 · staging" {
		t.Errorf("name %q", stored.Name)
	}
	// The same names as workflow commands stay on one line each.
	var b strings.Builder
	if err := (&Commands{Out: &b}).Report(context.Background(), res); err != nil {
		t.Fatal(err)
	}
	assertCommandLines(t, b.String())
	if !strings.Contains(b.String(), "title=pay 💳 with card [eur 🇪🇺] (failed)::step 1 \"charge 🙂 it\" failed: expected 💰%0Aline two") {
		t.Errorf("commands:\n%s", b.String())
	}
}

func TestCheckRunForkFallback(t *testing.T) {
	fake := githubtest.New(t)
	fake.Fail("POST", `/repos/.*/check-runs`, githubtest.Forbidden, true)
	fake.Fail("PATCH", `/repos/.*/check-runs/\d+`, githubtest.Forbidden, true)
	var log strings.Builder
	cr := newCheckRun(t, fake, &log)
	res := reporttest.Failures(t)
	if err := cr.Start(context.Background(), res.Run); err != nil {
		t.Fatalf("a refused check run is not an error: %v", err)
	}
	if err := cr.Report(context.Background(), res); err != nil {
		t.Fatalf("the fallback writes to the log: %v", err)
	}
	if n := fake.Calls("POST", `/repos/.*/check-runs`); n != 1 {
		t.Errorf("%d creates, want 1 (no retry of a 403, no second try at the end)", n)
	}
	if n := fake.Calls("PATCH", `/repos/.*/check-runs/\d+`); n != 0 {
		t.Errorf("%d updates after a 403", n)
	}
	golden(t, "checkrun/fork-fallback.txt", log.String())
	if strings.Count(log.String(), NoPermissionNotice) != 1 {
		t.Errorf("the notice is said once:\n%s", log.String())
	}
}

func TestCheckRunDegradesOnServerErrorsAndRateLimits(t *testing.T) {
	tests := []struct {
		name    string
		fault   githubtest.Fault
		calls   int
		inLog   string
		refusal bool
	}{
		{"5xx retried until the budget", githubtest.ServerError, -1, "could not post the check run", false},
		{"rate limit resetting in an hour", githubtest.Fault{Status: 403, Header: map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": fmt.Sprint(time.Now().Add(time.Hour).Unix())}, Body: `{"message":"API rate limit exceeded"}`}, 1, "could not post the check run", false},
		// A 422 is not retried; the check run is then created completed with a one-line output.
		{"422", githubtest.Fault{Status: 422, Body: `{"message":"Validation Failed"}`}, 2, "could not post the check run", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := githubtest.New(t)
			fake.Fail("POST", `/repos/.*/check-runs`, tt.fault, true)
			var log strings.Builder
			cr := newCheckRun(t, fake, &log)
			if err := cr.Report(context.Background(), reporttest.Failures(t)); err != nil {
				t.Fatal(err)
			}
			if n := fake.Calls("POST", `/repos/.*/check-runs`); n != tt.calls && (tt.calls != -1 || n <= 2) {
				t.Errorf("%d calls, want %d (-1: more than 2)", n, tt.calls)
			}
			if !strings.Contains(log.String(), tt.inLog) || strings.Count(log.String(), "::error ") != 2 {
				t.Errorf("log:\n%s", log.String())
			}
		})
	}
}

func TestCheckRunOutputLimits(t *testing.T) {
	fake := githubtest.New(t)
	var log strings.Builder
	cr := newCheckRun(t, fake, &log)
	res := bigRun(300, 400) // summary and text far over 65,535 characters
	if err := cr.Report(context.Background(), res); err != nil {
		t.Fatal(err)
	}
	if log.Len() != 0 {
		t.Fatalf("fell back (the fake refuses over-long output):\n%s", log.String())
	}
	stored := fake.Only(t)
	for name, s := range map[string]string{"summary": stored.Output.Summary, "text": stored.Output.Text} {
		n := len(s)
		if n > MaxOutputBytes || n < MaxOutputBytes-2000 {
			t.Errorf("%s has %d bytes, want just under %d", name, n, MaxOutputBytes)
		}
		if !strings.Contains(s, "Truncated at GitHub's 65,535-byte limit. The whole result: https://zof.example.test/runs/r-big") {
			t.Errorf("%s has no truncation note", name)
		}
	}
}

// TestCheckRunMultiByteOutputFits: output of multi-byte characters (é is 2 bytes, 🧪 4) that
// is under 65,535 characters but over 65,535 bytes. GitHub refuses it with 422 ("text exceeds
// a maximum bytesize of 65535"); cut by characters it was, and the check run stayed
// in_progress. Cut by bytes on a character boundary, the completion is accepted.
func TestCheckRunMultiByteOutputFits(t *testing.T) {
	fake := githubtest.New(t)
	var log strings.Builder
	cr := newCheckRun(t, fake, &log)
	res := bigRun(40, 10)
	for i := range res.Run.Members {
		res.Run.Members[i].Steps[0].Failure.Message = "status 🧪 " + strings.Repeat("é", 700)
	}
	if err := cr.Start(context.Background(), res.Run); err != nil {
		t.Fatal(err)
	}
	if err := cr.Report(context.Background(), res); err != nil {
		t.Fatal(err)
	}
	if log.Len() != 0 {
		t.Fatalf("fell back (the fake refused the output):\n%s", log.String())
	}
	stored := fake.Only(t)
	if stored.Status != "completed" {
		t.Errorf("check run %s, want completed", stored.Status)
	}
	for name, s := range map[string]string{"summary": stored.Output.Summary, "text": stored.Output.Text} {
		if len(s) > MaxOutputBytes || !utf8.ValidString(s) {
			t.Errorf("%s: %d bytes, valid UTF-8 %v", name, len(s), utf8.ValidString(s))
		}
	}
	if !strings.Contains(stored.Output.Text, "🧪") {
		t.Error("characters outside the BMP are sent as they are")
	}
}

// TestCheckRunAlwaysCompletes: whatever makes the completion fail (a 422, a 5xx after the
// retries), the check run is completed with the conclusion, a one-line summary and the link,
// and the annotations go to the log.
func TestCheckRunAlwaysCompletes(t *testing.T) {
	for _, tt := range []struct {
		name  string
		fault githubtest.Fault
	}{
		{"422", githubtest.Fault{Status: 422, Body: `{"message":"Invalid request.\n\ntext exceeds a maximum bytesize of 65535"}`}},
		{"5xx until the budget", githubtest.ServerError},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fake := githubtest.New(t)
			var log strings.Builder
			cr := newCheckRun(t, fake, &log)
			res := reporttest.Failures(t)
			if err := cr.Start(context.Background(), res.Run); err != nil {
				t.Fatal(err)
			}
			// The full completion fails for as long as the retry policy tries (a
			// 5xx is retried, a 422 is not); the minimal one then gets through.
			fake.FailWhen("PATCH", `/repos/.*/check-runs/\d+`, tt.fault, func(b []byte) bool { return bytes.Contains(b, []byte(`"annotations"`)) })
			if err := cr.Report(context.Background(), res); err != nil {
				t.Fatal(err)
			}
			stored := fake.Only(t)
			if stored.Status != "completed" || stored.Conclusion != "failure" {
				t.Fatalf("check run %s/%s, want completed/failure", stored.Status, stored.Conclusion)
			}
			if !strings.Contains(stored.Output.Summary, res.Run.URL) || strings.Count(stored.Output.Summary, "\n") != 0 {
				t.Errorf("minimal summary %q, want one line with the run's link", stored.Output.Summary)
			}
			if !strings.Contains(log.String(), "could not post the check run") || !strings.Contains(log.String(), "::error ") {
				t.Errorf("log:\n%s", log.String())
			}
		})
	}
}

func TestTruncateBytes(t *testing.T) {
	at := strings.Repeat("é", MaxOutputBytes/2)
	if got := FitOutput(at); got != at {
		t.Error("text at the limit is kept whole")
	}
	over := at + "éé"
	if got := FitOutput(over); len(got) > MaxOutputBytes || !utf8.ValidString(got) || !strings.HasSuffix(got, "…") {
		t.Errorf("over the limit: %d bytes, valid %v", len(got), utf8.ValidString(got))
	}
	b := strings.Repeat("é", 10) // 20 bytes
	if truncateBytes(b, 20, "!") != b {
		t.Error("bytes at the limit are kept")
	}
	if got := truncateBytes(b, 19, "!"); got != strings.Repeat("é", 9)+"!" || len(got) > 19 {
		t.Errorf("bytes over the limit: %q", got)
	}
}

func TestConclusion(t *testing.T) {
	run := func(s api.Status) *api.Run { return &api.Run{Status: s} }
	tests := []struct {
		res  report.Result
		want string
	}{
		{report.Result{Run: run(api.StatusPassed), Gate: gate.Passed, Exit: reporttest.Exits[gate.Passed]}, "success"},
		{report.Result{Run: run(api.StatusFailed), Gate: gate.Failed, Exit: reporttest.Exits[gate.Failed]}, "failure"},
		{report.Result{Run: run(api.StatusBlocked), Gate: gate.Blocked, Exit: reporttest.Exits[gate.Blocked]}, "failure"},
		{report.Result{Run: run(api.StatusCancelled), Gate: gate.Cancelled, Exit: reporttest.Exits[gate.Cancelled]}, "cancelled"},
		{report.Result{Run: run(api.StatusRunning), Gate: gate.TimedOut, Exit: reporttest.Exits[gate.TimedOut]}, "timed_out"},
		{report.Result{Run: run(api.StatusCancelled), Gate: gate.Interrupted, Exit: reporttest.Exits[gate.Interrupted]}, "cancelled"},
		{report.Result{Run: run(api.StatusFailed), Gate: gate.Passed, Exit: reporttest.Exits[gate.Passed]}, "neutral"}, // failed is outside fail_on
		{report.Result{Gate: gate.Empty, Exit: reporttest.Exits[gate.Empty]}, "failure"},
		{report.Result{Gate: gate.Passed, Exit: reporttest.Exits[gate.Passed]}, "success"},
		{report.Result{Run: run(api.StatusPassed), Gate: gate.NoVerdict, Exit: report.Exit{Code: 69, Name: "unavailable"}}, "failure"},
	}
	for _, tt := range tests {
		if got := Conclusion(&tt.res); got != tt.want {
			t.Errorf("gate %s status %v: %s, want %s", tt.res.Gate, tt.res.Run, got, tt.want)
		}
	}
}

func TestSummaryFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "step_summary")
	if err := os.WriteFile(path, []byte("earlier step content\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := &Summary{Path: path, Markdown: MarkdownOptions{Now: reporttest.Now}}
	res := reporttest.Failures(t)
	if err := s.Report(context.Background(), res); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(got), "earlier step content\n### ❌ Zof · checkout-service · staging: Failed") {
		t.Errorf("appended summary:\n%s", got)
	}
}

func TestSummaryOverOneMiB(t *testing.T) {
	res := bigRun(3000, 400)
	full := Markdown(res, MarkdownOptions{Now: reporttest.Now})
	if len(full) <= MaxStepSummaryBytes {
		t.Fatalf("the test run's summary is only %d bytes", len(full))
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "summary.md")
	if err := os.WriteFile(path, []byte(strings.Repeat("p", 1000)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := (&Summary{Path: path, Markdown: MarkdownOptions{Now: reporttest.Now}}).Report(context.Background(), res); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if len(got) > MaxStepSummaryBytes || len(got) < MaxStepSummaryBytes-4096 {
		t.Errorf("summary file is %d bytes, want just under %d", len(got), MaxStepSummaryBytes)
	}
	if !strings.HasSuffix(string(got), "> **Summary truncated** at GitHub's 1 MiB step summary limit. The whole result: https://zof.example.test/runs/r-big\n") {
		t.Errorf("no truncation note at the end: %q", got[len(got)-200:])
	}
	// A nearly full file leaves no room: an error for the log, nothing written.
	full100 := filepath.Join(dir, "full.md")
	if err := os.WriteFile(full100, []byte(strings.Repeat("p", MaxStepSummaryBytes-100)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := (&Summary{Path: full100, Markdown: MarkdownOptions{Now: reporttest.Now}}).Report(context.Background(), res); err == nil {
		t.Error("want an error when the step's summary is full")
	}
	if fi, _ := os.Stat(full100); fi.Size() != MaxStepSummaryBytes-100 {
		t.Error("nothing may be appended to a full summary")
	}
}

func TestSummaryAtTheLimit(t *testing.T) {
	res := reporttest.AllPassed(t)
	md := Markdown(res, MarkdownOptions{Now: reporttest.Now})
	for _, tt := range []struct {
		max       int
		truncated bool
	}{{len(md), false}, {len(md) - 1, true}} {
		path := filepath.Join(t.TempDir(), "s.md")
		if err := (&Summary{Path: path, Max: tt.max, Markdown: MarkdownOptions{Now: reporttest.Now}}).Report(context.Background(), res); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(path)
		if len(got) > tt.max || strings.Contains(string(got), "Summary truncated") != tt.truncated {
			t.Errorf("max %d: %d bytes, truncated=%v", tt.max, len(got), !tt.truncated)
		}
	}
}

func TestCellEscaping(t *testing.T) {
	got := cell("a|b\\c <script>&`x`*y*_z_ [l](u) #h\nnext\r\tend\n")
	want := `a\|b\\c &lt;script&gt;&amp;\` + "`x\\`" + `\*y\*\_z\_ \[l\](u) \#h<br>next  end`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if fence("a ```` b") != "`````" || fence("none") != "```" {
		t.Error("fence must outgrow the text's backticks")
	}
}

// parseOutputs reads a GITHUB_OUTPUT file as the runner does: name=value
// lines and name<<DELIMITER heredocs.
func parseOutputs(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if name, delim, ok := strings.Cut(line, "<<"); ok {
			var val []string
			closed := false
			for sc.Scan() {
				if sc.Text() == delim {
					closed = true
					break
				}
				val = append(val, sc.Text())
			}
			if !closed {
				t.Fatalf("heredoc for %s not closed", name)
			}
			if _, dup := out[name]; dup {
				t.Errorf("output %s set twice", name)
			}
			out[name] = strings.Join(val, "\n")
			continue
		}
		if name, val, ok := strings.Cut(line, "="); ok {
			out[name] = val
		}
	}
	return out
}

func TestOutputs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "output")
	res := reporttest.Flaky(t)
	res.Run.IdempotencyKey = "zk_abc"
	if err := (&Outputs{Path: path, JUnit: "reports/zof.xml"}).Report(context.Background(), res); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"run-id": "r-0001", "run-url": "https://zof.example.test/runs/r-0001", "status": "passed", "exit-code": "0",
		"selected": "3", "total": "4", "passed": "4", "failed": "0", "skipped": "0", "flaky": "1",
		"junit": "reports/zof.xml", "idempotency-key": "zk_abc",
	}
	if d := cmp.Diff(want, parseOutputs(t, path)); d != "" {
		t.Errorf("outputs (-want +got):\n%s", d)
	}
	// Without a run (nothing to run) every output is still defined.
	path2 := filepath.Join(t.TempDir(), "output")
	if err := (&Outputs{Path: path2}).Report(context.Background(), &report.Result{Gate: gate.Empty, Exit: reporttest.Exits[gate.Empty]}); err != nil {
		t.Fatal(err)
	}
	got := parseOutputs(t, path2)
	if len(got) != len(OutputNames) || got["exit-code"] != "5" || got["run-id"] != "" {
		t.Errorf("outputs without a run: %v", got)
	}
}

func TestOutputsInjection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "output")
	evil := "x\n_GitHubActionsFileCommandDelimeter_\nstatus=passed\nexit-code<<EOF\n0\nEOF"
	outs := []Output{{"run-url", evil}, {"status", "failed"}, {"exit-code", "1"}}
	if err := WriteOutputs(path, outs); err != nil {
		t.Fatal(err)
	}
	got := parseOutputs(t, path)
	want := map[string]string{"run-url": evil, "status": "failed", "exit-code": "1"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("an output value forged others (-want +got):\n%s", d)
	}
	if err := WriteOutputs("", outs); err == nil {
		t.Error("no GITHUB_OUTPUT: want an error, not a panic")
	}
	if err := WriteOutputs(filepath.Join(t.TempDir(), "missing-dir", "x"), outs[1:]); err == nil {
		t.Error("an unwritable file: want an error, not a panic")
	}
	if err := WriteOutputs(path, []Output{{"a\nb", "v"}}); err == nil {
		t.Error("a name with a newline: want an error")
	}
}

func TestFactories(t *testing.T) {
	if _, err := NewSummary(report.Options{}); err == nil {
		t.Error("summary without a path")
	}
	if _, err := NewOutputs(report.Options{}); err == nil {
		t.Error("outputs without a path")
	}
	r, err := NewCommands(report.Options{Mask: secret.NewMasker([]string{"hunter2"})})
	if err != nil || r == nil {
		t.Error("commands factory")
	}
}

func TestSecretsMasked(t *testing.T) {
	mask := secret.NewMasker([]string{"hunter2"})
	res := bigRun(1, 0)
	res.Run.Members[0].Steps[0].Failure.Message = "token hunter2 rejected"
	res.Run.Members[0].Steps[0].Output = "Authorization: Bearer hunter2"
	var b strings.Builder
	if err := (&Commands{Out: &b, Mask: mask}).Report(context.Background(), res); err != nil {
		t.Fatal(err)
	}
	md := Markdown(res, MarkdownOptions{Mask: mask, Now: reporttest.Now})
	fake := githubtest.New(t)
	var log strings.Builder
	cr := newCheckRun(t, fake, &log)
	cr.Mask = mask
	if err := cr.Report(context.Background(), res); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]string{"commands": b.String(), "summary": md, "api": string(fake.Bodies("POST", `.*`)[0])} {
		if strings.Contains(s, "hunter2") {
			t.Errorf("%s shows the secret", name)
		}
	}
}

func TestCheckRunEveryScenario(t *testing.T) {
	want := map[string]string{"passed": "success", "failed": "failure", "flaky": "success", "cancelled": "cancelled", "blocked": "failure", "timeout": "timed_out", "hostile": "failure"}
	for _, sc := range reporttest.Scenarios(t) {
		t.Run(sc.Name, func(t *testing.T) {
			fake := githubtest.New(t)
			var log strings.Builder
			cr := newCheckRun(t, fake, &log)
			if err := cr.Start(context.Background(), sc.Result.Run); err != nil {
				t.Fatal(err)
			}
			if err := cr.Report(context.Background(), sc.Result); err != nil {
				t.Fatal(err)
			}
			if log.Len() != 0 {
				t.Fatalf("the fake refused something:\n%s", log.String())
			}
			if got := fake.Only(t); got.Status != "completed" || got.Conclusion != want[sc.Name] {
				t.Errorf("status %s conclusion %s, want completed %s", got.Status, got.Conclusion, want[sc.Name])
			}
		})
	}
}
