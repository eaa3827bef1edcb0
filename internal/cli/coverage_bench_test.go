package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zof-ai/zof-ci/internal/cli/iostreams"
	"github.com/zof-ai/zof-ci/internal/coverage/coveragetest"
)

// BenchmarkCoverageCommand is the whole of `zof coverage --output json` over
// a real git repository of N tracked files and a 2,000-case suite: suite load,
// git ls-files, classification, grouping and the JSON (docs/benchmarks.md).
// The git and classification halves are internal/coverage's
// BenchmarkTrackedFiles and BenchmarkBuild.
func BenchmarkCoverageCommand(b *testing.B) {
	var y strings.Builder
	y.WriteString("version: 1\nselection:\n  global: [go.mod, \"build/**\"]\n  ignore: [\"docs/**\", \"**/*.md\"]\n  modules:\n    services: [\"svc*/**\"]\ncases:\n")
	for i := range 2000 {
		fmt.Fprintf(&y, "  - id: c%d\n    covers: [\"svc%d/**\", \"lib/m%d/*.go\"]\n    steps: [{run: \"true\"}]\n", i, i%500, i)
	}
	for _, n := range []int{10_000, 100_000} {
		dir := b.TempDir()
		coveragetest.FakeRepo(b, dir, n)
		suitePath := filepath.Join(dir, "zof.yaml")
		if err := os.WriteFile(suitePath, []byte(y.String()), 0o644); err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("files=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				io, _, out, errOut := iostreams.Test()
				f := &Factory{IO: io, Env: ParseEnv(os.Environ())}
				if code := run(context.Background(), []string{"coverage", "--suite", suitePath, "--output", "json"}, f); code != 0 {
					b.Fatalf("exit %d: %s", code, errOut)
				}
				if out.Len() == 0 {
					b.Fatal("no report")
				}
			}
		})
	}
}
