// Package coveragetest builds large git repositories for the coverage
// benchmarks (docs/benchmarks.md, "zof coverage").
package coveragetest

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// FakeRepo makes a git repository at dir whose index tracks n files (all one
// empty blob, written straight into the index: git ls-files reads only the
// index, so the working tree need not hold 100,000 files). Paths are spread
// like a monorepo's: svcK/pkg, lib/mK, docs and tools. Used by the benchmarks of
// internal/coverage and internal/cli.
func FakeRepo(tb testing.TB, dir string, n int) {
	tb.Helper()
	run := func(stdin string, args ...string) string {
		cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			tb.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	run("", "init", "-q")
	blob := run("", "hash-object", "-w", "--stdin")
	var b strings.Builder
	for _, f := range FakeFiles(n) {
		fmt.Fprintf(&b, "100644 %s\t%s\n", blob, f)
	}
	run(b.String(), "update-index", "--index-info")
}

// FakeFiles are n monorepo-like paths (see FakeRepo).
func FakeFiles(n int) []string {
	files := make([]string, n)
	for i := range files {
		switch i % 4 {
		case 0:
			files[i] = fmt.Sprintf("svc%d/pkg/f%d.go", i%700, i)
		case 1:
			files[i] = fmt.Sprintf("lib/m%d/f%d.go", i%3000, i)
		case 2:
			files[i] = fmt.Sprintf("docs/p%d.md", i)
		default:
			files[i] = fmt.Sprintf("tools/t%d/main.go", i)
		}
	}
	return files
}
