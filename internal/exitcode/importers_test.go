package exitcode

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestOnlyTheTopImportsExitCodes: exit codes are the process's, so only the
// CLI and main may know them; every package below returns meanings (a gate
// decision, a typed error). Test files are not counted: they may check what
// their code means at the top.
func TestOnlyTheTopImportsExitCodes(t *testing.T) {
	const self = "github.com/zof-ai/zof-ci/internal/exitcode"
	allowed := map[string]bool{
		"github.com/zof-ai/zof-ci/internal/cli": true,
		"github.com/zof-ai/zof-ci/cmd/zof":      true,
	}
	for pkg, imports := range goList(t, "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "github.com/zof-ai/zof-ci/...") {
		if !allowed[pkg] && pkg != self && slices.Contains(imports, self) {
			t.Errorf("%s imports internal/exitcode; return a typed error or a gate.Kind and let internal/cli map it", pkg)
		}
	}
}

// goList runs `go list args...` and returns, per line, the first field and the rest.
func goList(t *testing.T, args ...string) map[string][]string {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list"}, args...)...).Output()
	if err != nil {
		t.Fatalf("go list %s: %v (the go command must be on PATH to run the tests)", strings.Join(args, " "), err)
	}
	m := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 {
			m[f[0]] = f[1:]
		}
	}
	if len(m) == 0 {
		t.Fatal("go list listed no packages")
	}
	return m
}
