package runner

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zof-ai/zof-ci/internal/coverage/coveragetest"
	"github.com/zof-ai/zof-ci/internal/gate"
	"github.com/zof-ai/zof-ci/internal/secret"
	"github.com/zof-ai/zof-ci/internal/suite"
)

// coveragePlan loads the suite at dir/zof.yaml and plans all of it.
func coveragePlan(tb testing.TB, dir, yaml string) (RunOptions, *gate.Plan) {
	tb.Helper()
	path := filepath.Join(dir, "zof.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		tb.Fatal(err)
	}
	s, err := suite.Load(path, suite.Options{Lookup: func(string) (string, bool) { return "", false }})
	if err != nil {
		tb.Fatal(err)
	}
	plan, err := gate.PlanSuite(s, "all", "", nil, "zof.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	env := append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1", "GIT_CEILING_DIRECTORIES="+filepath.Dir(dir))
	return RunOptions{Select: SelectOptions{SuitePath: path, Environ: env}}, plan
}

const coverageSuite = `version: 1
environments:
  local: {url: "http://127.0.0.1:1"}
cases:
  - id: cart
    covers: ["svc0/**"]
    steps: [{run: "true"}]
`

// TestCoverageSummary: in a checkout the run request gets the summary (a
// path holding a secret is not listed); outside one it gets none and one
// line says why.
func TestCoverageSummary(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	dir := t.TempDir()
	coveragetest.FakeRepo(t, dir, 8) // svc0/pkg/f0.go, lib/m1/f1.go, docs/p2.md, tools/t3/main.go, svc4/...
	o, plan := coveragePlan(t, dir, coverageSuite)
	var info bytes.Buffer
	got := coverageSummary(context.Background(), o, plan, secret.NewMasker([]string{"t3/main"}), &info)
	if info.Len() != 0 || got == nil {
		t.Fatalf("summary %+v, said %q", got, info.String())
	}
	if got.Files != 8 || got.Covered != 1 || got.Uncovered != 7 || len(got.Modules) != 5 || got.ModulesOmitted != 0 {
		t.Fatalf("summary %+v", got)
	}
	for _, m := range got.Modules {
		if m.Module == "tools" && (len(m.UncoveredFiles) != 1 || m.Uncovered != 2) {
			t.Errorf("tools lists %v of %d: the path holding the secret must be left out, and still counted", m.UncoveredFiles, m.Uncovered)
		}
		if strings.Contains(fmt.Sprint(m.UncoveredFiles), "t3/main") {
			t.Errorf("a path holding a secret is listed: %v", m.UncoveredFiles)
		}
	}
	if err := got.Validate(); err != nil {
		t.Fatal(err)
	}

	plain := t.TempDir()
	o, plan = coveragePlan(t, plain, coverageSuite)
	info.Reset()
	if got := coverageSummary(context.Background(), o, plan, secret.NewMasker(nil), &info); got != nil {
		t.Fatalf("outside a checkout: %+v", got)
	}
	if want := "coverage: not sent: the suite is not inside a git checkout (--coverage=false skips this)\n"; info.String() != want {
		t.Fatalf("said %q, want %q", info.String(), want)
	}
}

// BenchmarkCoverageSummary is what sending the coverage summary adds to
// `zof run --server` (docs/benchmarks.md): over a real git repository of N
// tracked files and a 2,000-case suite already loaded and planned, the
// selector compiled again, git ls-files, classification and the summary.
func BenchmarkCoverageSummary(b *testing.B) {
	var y strings.Builder
	y.WriteString("version: 1\nenvironments:\n  local: {url: \"http://127.0.0.1:1\"}\nselection:\n  global: [go.mod, \"build/**\"]\n  ignore: [\"docs/**\", \"**/*.md\"]\n  modules:\n    services: [\"svc*/**\"]\ncases:\n")
	for i := range 2000 {
		fmt.Fprintf(&y, "  - id: c%d\n    covers: [\"svc%d/**\", \"lib/m%d/*.go\"]\n    steps: [{run: \"true\"}]\n", i, i%500, i)
	}
	for _, n := range []int{10_000, 100_000} {
		dir := b.TempDir()
		coveragetest.FakeRepo(b, dir, n)
		o, plan := coveragePlan(b, dir, y.String())
		mask := secret.NewMasker([]string{"hunter2-secret"})
		b.Run(fmt.Sprintf("files=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if s := coverageSummary(context.Background(), o, plan, mask, io.Discard); s == nil || s.Files != n {
					b.Fatalf("summary %+v", s)
				}
			}
		})
	}
}
