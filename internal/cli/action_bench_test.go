package cli

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/internal/ci/github/githubtest"
	"github.com/zof-ai/zof-ci/internal/clienttest"
)

const benchSuite = `version: 1
project: shop
environments:
  local: {url: "http://127.0.0.1:1"}
cases:
  - id: cart
    covers: ["services/cart/**"]
    steps:
      - run: "true"
  - id: orders
    covers: ["services/orders/**"]
    steps:
      - run: "true"
`

const benchEvent = `{"number": 7, "pull_request": {"number": 7, "changed_files": 40,
  "head": {"ref": "cart", "sha": "1111111111111111111111111111111111111111", "repo": {"full_name": "acme/shop"}},
  "base": {"ref": "main", "sha": "2222222222222222222222222222222222222222", "repo": {"full_name": "acme/shop"}}},
 "repository": {"full_name": "acme/shop"}}`

// BenchmarkActionToSubmitted measures `zof action` as the container starts it: from starting
// the process to the run being submitted to a real zof serve (the "submitted run" line), with
// the pull request's files from the GitHub API (the githubtest fake, on loopback). The
// sub-metric ms-to-submit is that figure; ns/op is the whole step (the run followed to its
// verdict, the check run completed, summary and outputs written).
func BenchmarkActionToSubmitted(b *testing.B) {
	zof, err := exec.LookPath("zof") // installed on PATH by testscript.Main in TestMain
	if err != nil {
		b.Skip("no zof command on PATH:", err)
	}
	srv := clienttest.Start(b, clienttest.Options{RealSteps: true, Dir: b.TempDir()})
	gh := githubtest.New(b)
	files := githubtest.Files(39)
	files = append(files, githubtest.File{Filename: "services/cart/total.go", Status: "modified"})
	gh.SetFiles(7, files)

	work := b.TempDir()
	repo := filepath.Join(work, "repo")
	must(b, os.MkdirAll(repo, 0o755))
	must(b, os.WriteFile(filepath.Join(repo, "zof.yaml"), []byte(benchSuite), 0o644))
	event := filepath.Join(work, "event.json")
	must(b, os.WriteFile(event, []byte(benchEvent), 0o644))
	base := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + work, "GIT_CONFIG_NOSYSTEM=1",
		"GITHUB_ACTIONS=true", "GITHUB_WORKSPACE=" + repo, "GITHUB_EVENT_NAME=pull_request", "GITHUB_EVENT_PATH=" + event,
		"GITHUB_REPOSITORY=acme/shop", "GITHUB_SHA=9999999999999999999999999999999999999999", "GITHUB_REF=refs/pull/7/merge",
		"GITHUB_RUN_ATTEMPT=1", "GITHUB_JOB=gate", "GITHUB_API_URL=" + gh.URL,
		"GITHUB_OUTPUT=" + filepath.Join(work, "output"), "GITHUB_STEP_SUMMARY=" + filepath.Join(work, "summary.md"),
		"INPUT_SERVER=" + srv.URL, "INPUT_TOKEN=" + clienttest.Token, "INPUT_GITHUB-TOKEN=ghs_bench_token_0123456789",
	}

	var toSubmit time.Duration
	b.ResetTimer()
	for i := range b.N {
		// A new workflow run each time, so every iteration submits a new run.
		env := append(append([]string(nil), base...), fmt.Sprintf("GITHUB_RUN_ID=%d%d", time.Now().UnixNano(), i))
		cmd := exec.Command(zof, "action")
		cmd.Env = env
		stdout, err := cmd.StdoutPipe()
		must(b, err)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		start := time.Now()
		must(b, cmd.Start())
		submitted := time.Duration(0)
		sc := bufio.NewScanner(stdout)
		var log strings.Builder
		for sc.Scan() {
			line := sc.Text()
			log.WriteString(line + "\n")
			if submitted == 0 && strings.HasPrefix(line, "submitted run ") {
				submitted = time.Since(start)
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		if err := cmd.Wait(); err != nil {
			b.Fatalf("zof action: %v\n%s%s", err, log.String(), stderr.String())
		}
		if submitted == 0 {
			b.Fatalf("no submitted run line:\n%s", log.String())
		}
		toSubmit += submitted
	}
	b.ReportMetric(float64(toSubmit.Microseconds())/1000/float64(b.N), "ms-to-submit")
}

func must(b *testing.B, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
}
