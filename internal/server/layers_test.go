package server_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestServerDoesNotImportTheCLIPath: the data flow is one way. The server
// (its API, webhooks and schedules) plans and judges with internal/gate, the
// leaf the CLI's orchestration uses too; it must not pull in that
// orchestration (internal/runner), the HTTP client of its own API, the
// terminal console or the embedded engine's memory store.
func TestServerDoesNotImportTheCLIPath(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/zof-ai/zof-ci/internal/server/...").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v (the go command must be on PATH to run the tests)", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) == 0 {
		t.Fatal("go list listed no dependencies")
	}
	forbidden := map[string]bool{
		"github.com/zof-ai/zof-ci/internal/runner":            true,
		"github.com/zof-ai/zof-ci/client":                     true,
		"github.com/zof-ai/zof-ci/internal/reporters/console": true,
		"github.com/zof-ai/zof-ci/internal/engine/memstore":   true,
		"github.com/zof-ai/zof-ci/internal/cli":               true,
		"github.com/zof-ai/zof-ci/internal/exitcode":          true,
	}
	for _, d := range deps {
		if forbidden[d] {
			t.Errorf("internal/server/... depends on %s; plan and judge with internal/gate instead (go list -deps ./internal/server/... | grep zof-ci shows the path)", d)
		}
	}
}
