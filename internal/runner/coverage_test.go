package runner

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/ci"
	"github.com/zof-ai/zof-ci/internal/clienttest"
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
	got := coverageSummary(context.Background(), o, plan, secret.NewMasker([]string{"t3/main"}), &info, "--coverage=false")
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
	if got := coverageSummary(context.Background(), o, plan, secret.NewMasker(nil), &info, "--coverage=false"); got != nil {
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
				if s := coverageSummary(context.Background(), o, plan, mask, io.Discard, "--coverage=false"); s == nil || s.Files != n {
					b.Fatalf("summary %+v", s)
				}
			}
		})
	}
}

// TestRemoteCoverageOlderServer: against a server that does not know the
// coverage field (an older zof serve, here a proxy refusing it as one
// would, 400 unknown field), the run is submitted again without it and goes
// on; one line says so. Against the current server the summary is stored.
func TestRemoteCoverageOlderServer(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	srv := clienttest.Start(t, clienttest.Options{})
	srv.Gates.Open("login")
	target, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	var refused atomic.Int32
	old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/v1/runs" {
			body, _ := io.ReadAll(r.Body)
			if bytes.Contains(body, []byte(`"coverage":`)) {
				refused.Add(1)
				w.Header().Set("Content-Type", api.MediaProblem)
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprint(w, `{"type":"urn:zof:problem:unknown-field","title":"Unknown field","status":400,"detail":"unknown field \"coverage\" in the body; remove it or check its spelling (an older server? see openapi.yaml)"}`)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(old.Close)

	dir := t.TempDir()
	coveragetest.FakeRepo(t, dir, 8)
	path := filepath.Join(dir, "zof.yaml")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(gatedSuite, "%s", "total")), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, url string
		refused   int32
		line      bool
	}{{"current server", srv.URL, 0, false}, {"older server", old.URL, 1, true}} {
		t.Run(tc.name, func(t *testing.T) {
			refused.Store(0)
			o, out := remoteOptions(t, path)
			o.Select.Environ = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
			v, err := RunRemote(context.Background(), o, RemoteOptions{Client: testClient(t, tc.url), CI: ci.Context{Provider: ci.Local}, Coverage: true})
			if err != nil || v.Kind != gate.Passed {
				t.Fatalf("verdict %v, %v\n%s", v.Kind, err, out)
			}
			said := strings.Contains(out.String(), "coverage: not sent: the server does not accept it (an older zof serve?); submitting the run without it\n")
			if refused.Load() != tc.refused || said != tc.line {
				t.Fatalf("refused %d times, said it: %v\n%s", refused.Load(), said, out)
			}
			if !tc.line {
				if c, err := testClient(t, srv.URL).Coverage(context.Background(), "shop"); err != nil || c.RunID != runIDOf(t, out.String()) || c.Summary.Files != 8 {
					t.Fatalf("stored coverage %+v, %v", c, err)
				}
			}
		})
	}
}
