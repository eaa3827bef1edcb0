package web

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/api"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// hostile is what a suite author or a system under test controls: case ids,
// step names, outputs, failure texts. None of it may become markup.
const hostile = `<script>alert("x")</script><img src=x onerror=alert(1)>"'&`

func fixtureRun() *api.Run {
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	return &api.Run{
		ID: "run_01", Project: "checkout", Environment: "staging", Status: api.StatusFailed,
		CreatedAt: t0, StartedAt: t0.Add(1500 * time.Millisecond), FinishedAt: t0.Add(14 * time.Second),
		SuiteFile: "zof.yaml",
		Source:    api.Source{Provider: "github", Repo: "acme/shop", SHA: "0123456789abcdef0123", PR: 42, Trigger: "ci", Ref: "refs/pull/42/merge"},
		Selection: api.Selection{Scope: "changed", Effective: "changed", Cases: []api.SelectedCase{
			{ID: "login", Reasons: []api.Reason{{Kind: api.ReasonCovers, File: "services/auth/login.go", Pattern: "services/auth/**"}}},
			{ID: hostile, Reasons: []api.Reason{{Kind: api.ReasonAlways}}},
		}},
		Members: []api.Member{
			{ID: "login", Case: "login", Status: api.StatusPassed, Attempt: 2, Flaky: true, StartedAt: t0.Add(2 * time.Second), FinishedAt: t0.Add(3 * time.Second),
				Steps: []api.StepResult{{Name: "POST /api/login", Kind: "http", Line: 12, Status: api.StepPassed, Duration: api.Duration(120 * time.Millisecond)}}},
			{ID: hostile, Case: hostile, Status: api.StatusFailed, Attempt: 1, Line: 20, StartedAt: t0.Add(2 * time.Second), FinishedAt: t0.Add(9 * time.Second),
				Steps: []api.StepResult{
					{Name: hostile, Kind: "run", Line: 22, Status: api.StepFailed, Duration: api.Duration(6 * time.Second),
						Failure: &api.Failure{Message: "exit status 1 " + hostile, Expected: "0", Actual: hostile},
						Output:  "line one\n</pre><script>steal()</script>\nline three\n"},
					{Name: "after", Kind: "http", Status: api.StepSkipped},
				}},
		},
	}
}

func TestWriteReport(t *testing.T) {
	var b bytes.Buffer
	if err := WriteReport(&b, fixtureRun(), time.Date(2026, 12, 6, 10, 1, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	out := b.String()

	// Self-contained: nothing is fetched, nothing is executed.
	for _, bad := range []string{"<script", "<img", "<link", "@import", "url("} {
		if strings.Contains(strings.ToLower(out), bad) {
			t.Errorf("the report contains %q: hostile text became markup or something is fetched", bad)
		}
	}
	for _, want := range []string{
		"&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;", // the hostile id, escaped
		"&lt;/pre&gt;&lt;script&gt;steal()&lt;/script&gt;",
		`id="m1-s0-L2"`,    // a log line permalink
		`href="#m1-s0-L2"`, // and its link
		"zof.yaml:22",      // the failure's place in the suite file
		`<span class="icon" aria-hidden="true">✖</span>Failed`, // status as icon and text
		"https://github.com/acme/shop/pull/42",
		"services/auth/login.go matches",
		"1 flaky",
		"default-src 'none'", // the CSP forbids every fetch and script
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the report lacks %q", want)
		}
	}

	golden := filepath.Join("testdata", "report.golden.html")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/web -update to write it)", err)
	}
	if !bytes.Equal(want, b.Bytes()) {
		t.Errorf("the report differs from %s; if the change is intended, run go test ./internal/web -update and review the diff", golden)
	}
}
