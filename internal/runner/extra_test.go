package runner

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/ci"
	"github.com/zof-ai/zof-ci/internal/clienttest"
	"github.com/zof-ai/zof-ci/internal/gate"
	"github.com/zof-ai/zof-ci/internal/reporters/report"
	"github.com/zof-ai/zof-ci/internal/secret"
)

// recorder is an extra reporter that records what it heard, in order.
type recorder struct {
	mu      sync.Mutex
	calls   []string
	started *api.Run
	result  *report.Result
	plan    *gate.Plan
}

var _ report.Starter = (*recorder)(nil)

func (r *recorder) Start(_ context.Context, run *api.Run) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, "start")
	r.started = run.Clone()
	return nil
}

func (r *recorder) Report(_ context.Context, res *report.Result) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, "report")
	r.result = res
	return nil
}

func (r *recorder) factory() func(*gate.Plan, *secret.Masker) []report.Reporter {
	return func(p *gate.Plan, m *secret.Masker) []report.Reporter {
		r.plan = p
		return []report.Reporter{r}
	}
}

const extraSuite = `version: 1
project: shop
environments:
  local: {url: "http://127.0.0.1:1"}
cases:
  - id: ok
    steps:
      - run: "true"
  - id: broken
    covers: ["src/**"]
    steps:
      - name: exit 3
        run: exit 3
`

func writeExtraSuite(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "sub", "zof.yaml")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(extraSuite), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// githubCI is a GitHub Actions job execution.
var githubCI = ci.Context{Provider: ci.GitHub, Repo: "acme/shop", SHA: "0123456789abcdef0123456789abcdef01234567", Ref: "refs/pull/7/merge", PR: 7, RunID: "4242", Attempt: 1, Job: "gate"}

// TestExtraReportersEmbedded: a Starter hears Start with the created run before it is fed
// the final result; the run carries the CI source, the derived key and the suite file
// relative to the repository root.
func TestExtraReportersEmbedded(t *testing.T) {
	root := t.TempDir()
	o, out := remoteOptions(t, writeExtraSuite(t, root))
	o.Select.RepoRoot = root
	o.CI = githubCI
	rec := &recorder{}
	o.Reporters = rec.factory()
	code, err := RunEmbedded(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if code.Kind != gate.Failed {
		t.Fatalf("verdict %s, want failed\n%s", code.Kind, out)
	}
	if diff := cmp.Diff([]string{"start", "report"}, rec.calls); diff != "" {
		t.Fatalf("calls (-want +got):\n%s", diff)
	}
	res := rec.result
	if res.Run.ID != rec.started.ID || rec.started.ID == "" {
		t.Errorf("started run %q, reported run %q", rec.started.ID, res.Run.ID)
	}
	if len(rec.started.Members) != 2 {
		t.Errorf("the started snapshot has %d members, want 2", len(rec.started.Members))
	}
	wantKey := gate.IdempotencyKey(gate.KeyInput{Project: "shop", Environment: "local", Cases: []string{"ok", "broken"}, SuiteDigest: rec.plan.Suite.Digest, SHA: githubCI.SHA, CI: githubCI})
	got := struct{ Key, SuiteFile, SHA, Provider, Verdict string }{res.Run.IdempotencyKey, res.Run.SuiteFile, res.Run.Source.SHA, res.Run.Source.Provider, res.Verdict}
	want := struct{ Key, SuiteFile, SHA, Provider, Verdict string }{wantKey, "sub/zof.yaml", githubCI.SHA, "github", "gate failed: 1 of 2 members failed: broken"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	if res.Gate != gate.Failed {
		t.Errorf("result gate %s, want failed", res.Gate)
	}
}

// TestExtraReportersLaptop: without a CI context an embedded run has no key and no source,
// as before.
func TestExtraReportersLaptop(t *testing.T) {
	o, _ := remoteOptions(t, writeExtraSuite(t, t.TempDir()))
	rec := &recorder{}
	o.Reporters = rec.factory()
	if _, err := RunEmbedded(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if k, p := rec.result.Run.IdempotencyKey, rec.result.Run.Source.Provider; k != "" || p != "" {
		t.Errorf("laptop run has key %q, provider %q; want none", k, p)
	}
}

// TestExtraReportersEmpty: an empty selection feeds the extra reporters a result without a
// run, with the gate's code and why.
func TestExtraReportersEmpty(t *testing.T) {
	for _, remote := range []bool{false, true} {
		o, _ := remoteOptions(t, writeExtraSuite(t, t.TempDir()))
		o.Select.Scope = "changed"
		o.Select.ChangedFiles = filepath.Join(t.TempDir(), "changed.txt")
		if err := os.WriteFile(o.Select.ChangedFiles, []byte("docs/readme.md\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		// unmapped: all would select everything; an ignored-only change selects nothing.
		suite := filepath.Join(t.TempDir(), "zof.yaml")
		if err := os.WriteFile(suite, []byte(extraSuite+"selection:\n  ignore: [\"docs/**\"]\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		o.Select.SuitePath = suite
		rec := &recorder{}
		o.Reporters = rec.factory()
		var code gate.Verdict
		var err error
		if remote {
			srv := clienttest.Start(t, clienttest.Options{})
			code, err = RunRemote(context.Background(), o, RemoteOptions{Client: testClient(t, srv.URL), CI: ci.Context{Provider: ci.Local}})
		} else {
			code, err = RunEmbedded(context.Background(), o)
		}
		if err != nil {
			t.Fatal(err)
		}
		if code.Kind != gate.Empty {
			t.Errorf("remote %v: verdict %s, want empty", remote, code.Kind)
		}
		if diff := cmp.Diff([]string{"report"}, rec.calls); diff != "" {
			t.Fatalf("remote %v: calls (-want +got):\n%s", remote, diff)
		}
		if rec.result.Run != nil || rec.result.Gate != gate.Empty || rec.result.Verdict == "" {
			t.Errorf("remote %v: result run %v gate %s verdict %q", remote, rec.result.Run, rec.result.Gate, rec.result.Verdict)
		}
	}
}

// TestExtraReportersRemote: against the real server, Start comes with the submitted run
// (its URL and key), and a retried submission (same key) starts the reporter with the same
// run; a detached run builds no extra reporters at all.
func TestExtraReportersRemote(t *testing.T) {
	srv := clienttest.Start(t, clienttest.Options{RealSteps: true, Dir: t.TempDir()})
	root := t.TempDir()
	suite := writeExtraSuite(t, root)
	var ids []string
	for range 2 {
		o, out := remoteOptions(t, suite)
		o.Select.RepoRoot = root
		rec := &recorder{}
		o.Reporters = rec.factory()
		code, err := RunRemote(context.Background(), o, RemoteOptions{Client: testClient(t, srv.URL), CI: githubCI})
		if err != nil {
			t.Fatal(err)
		}
		if code.Kind != gate.Failed {
			t.Fatalf("verdict %s, want failed\n%s", code.Kind, out)
		}
		if diff := cmp.Diff([]string{"start", "report"}, rec.calls); diff != "" {
			t.Fatalf("calls (-want +got):\n%s", diff)
		}
		if rec.started.URL == "" || rec.started.IdempotencyKey == "" || rec.started.ID != rec.result.Run.ID {
			t.Errorf("started %+v, reported run %q", rec.started, rec.result.Run.ID)
		}
		if rec.result.Run.IdempotencyKey != rec.started.IdempotencyKey || rec.result.Run.SuiteFile != "sub/zof.yaml" {
			t.Errorf("reported key %q suite %q", rec.result.Run.IdempotencyKey, rec.result.Run.SuiteFile)
		}
		ids = append(ids, rec.started.ID)
	}
	if ids[0] != ids[1] {
		t.Errorf("a retried submission started run %s, then %s: want the same run", ids[0], ids[1])
	}

	o, _ := remoteOptions(t, suite)
	called := false
	o.Reporters = func(*gate.Plan, *secret.Masker) []report.Reporter { called = true; return nil }
	if _, err := RunRemote(context.Background(), o, RemoteOptions{Client: testClient(t, srv.URL), CI: ci.Context{Provider: ci.Local}, Detach: true}); err != nil {
		t.Fatal(err)
	}
	if called {
		t.Error("a detached run built extra reporters")
	}
}
