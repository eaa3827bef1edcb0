package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/zof-ai/zof-ci/internal/ci/github/githubtest"
	"github.com/zof-ai/zof-ci/internal/ci/gitlab/gitlabtest"
	"github.com/zof-ai/zof-ci/internal/clienttest"
	"github.com/zof-ai/zof-ci/internal/engine/pgstore/pgtest"
)

// TestMain lets testscript run the real zof entrypoint as a subprocess named "zof".
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"zof": func() { os.Exit(Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Environ())) },
	})
}

// TestScripts runs the end-to-end scripts in testdata/script against the real binary.
// $REPO is the repository root, so scripts can use the shipped examples.
func TestScripts(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	repo := filepath.Dir(filepath.Dir(filepath.Dir(file)))
	testscript.Run(t, testscript.Params{
		Dir: filepath.Join("testdata", "script"),
		Setup: func(e *testscript.Env) error {
			e.Setenv("REPO", repo)
			// Keep the host's caches: scripts that start the example service use go run.
			for _, k := range []string{"GOCACHE", "GOMODCACHE", "GOPATH", "GOFLAGS", "GOPROXY", "PATH", envNetns, envNetnsHost} {
				if v, ok := os.LookupEnv(k); ok {
					e.Setenv(k, v)
				}
			}
			if os.Getenv("GOCACHE") == "" {
				if d, err := os.UserCacheDir(); err == nil {
					e.Setenv("GOCACHE", filepath.Join(d, "go-build"))
				}
			}
			e.Setenv("HOME", e.WorkDir)
			e.Setenv("GIT_CONFIG_NOSYSTEM", "1")
			e.Values[serverKey{}] = &scriptServer{}
			e.Values[fakesKey{}] = &scriptFakes{}
			e.Values[pgclusterKey{}] = &scriptPG{}
			return nil
		},
		// [postgres]: ZOF_TEST_POSTGRES_URL names a server. Without one the script
		// fails when CI or ZOF_REQUIRE_POSTGRES is set (.ci/run starts a server) and the
		// condition is false otherwise, so `[!postgres] skip` skips it.
		Condition: func(cond string) (bool, error) {
			if cond == "netns" {
				return netnsCondition()
			}
			if cond == "pgcluster" {
				return pgclusterCondition()
			}
			if cond != "postgres" {
				return false, fmt.Errorf("unknown condition %q", cond)
			}
			if os.Getenv(pgtest.EnvURL) != "" {
				return true, nil
			}
			if pgtest.Required(os.Getenv) {
				return false, fmt.Errorf("%s is not set and CI or %s is: the PostgreSQL scripts must run here; %s", pgtest.EnvURL, pgtest.EnvRequire, pgtest.Hint)
			}
			return false, nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			// freeport VAR: set VAR to a loopback port nobody listens on, so scripts
			// that start the example service can run in parallel.
			"freeport": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 1 {
					ts.Fatalf("usage: freeport VAR")
				}
				ts.Setenv(args[0], strconv.Itoa(scriptPort(ts)))
			},
			// waitfile FILE: wait (up to 60s) until FILE exists, e.g. a step's marker.
			"waitfile": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 1 {
					ts.Fatalf("usage: waitfile FILE")
				}
				for end := time.Now().Add(60 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
					if _, err := os.Stat(ts.MkAbs(args[0])); err == nil {
						return
					}
				}
				ts.Fatalf("%s did not appear within 60s", args[0])
			},
			// portfree PORT: nothing listens on 127.0.0.1:PORT any more (a stopped service).
			"portfree": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 1 {
					ts.Fatalf("usage: portfree PORT")
				}
				c, err := net.DialTimeout("tcp", "127.0.0.1:"+args[0], time.Second)
				if err == nil {
					c.Close()
					ts.Fatalf("something still listens on 127.0.0.1:%s", args[0])
				}
			},
			// zofserve start|restart|drop|stop: a real zof serve (server.New over a real engine
			// executing steps in $WORK) in this test process; start sets ZOF_SERVER and ZOF_TOKEN.
			"zofserve": zofserve,
			// pgcluster init VAR | stop | down D | start: a PostgreSQL server of the script's own
			// (pgcluster_test.go), which it may stop and start: a database restart.
			"pgcluster": pgcluster,
			// lb VAR ADDR...: a round-robin load balancer in front of replicas (lb_script_test.go).
			"lb": lbCmd,
			// runid VAR: set VAR to the first run id (run_...) in the last command's stdout.
			"runid": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 1 {
					ts.Fatalf("usage: runid VAR")
				}
				m := runIDPattern.FindString(ts.ReadFile("stdout"))
				if m == "" {
					ts.Fatalf("no run id in stdout")
				}
				ts.Setenv(args[0], m)
			},
			// pgdatabase VAR: set VAR to the URL of a fresh schema on the PostgreSQL of
			// ZOF_TEST_POSTGRES_URL, dropped when the script ends (scripts check the
			// [postgres] condition first).
			"pgdatabase": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 1 {
					ts.Fatalf("usage: pgdatabase VAR")
				}
				base := os.Getenv(pgtest.EnvURL)
				if base == "" {
					ts.Fatalf("%s is not set; guard the script with [!postgres] skip; %s", pgtest.EnvURL, pgtest.Hint)
				}
				u, drop, err := pgtest.NewSchema(context.Background(), base)
				ts.Check(err)
				ts.Defer(func() { ts.Check(drop()) })
				ts.Setenv(args[0], u)
			},
			// waithttp URL: wait (up to 30s) until URL answers 200, e.g. a zof serve's /readyz.
			"waithttp": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 1 {
					ts.Fatalf("usage: waithttp URL")
				}
				c := &http.Client{Timeout: time.Second}
				start := time.Now()
				for end := start.Add(30 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
					if resp, err := c.Get(args[0]); err == nil {
						resp.Body.Close()
						if resp.StatusCode == http.StatusOK {
							ts.Logf("%s answered 200 after %s", args[0], time.Since(start).Round(time.Millisecond))
							return
						}
					}
				}
				ts.Fatalf("%s did not answer 200 within 30s", args[0])
			},
			// httpget URL: GET URL (with ZOF_TOKEN as the bearer token when set) and
			// print the status code, the headers (Name: value, sorted) and the body.
			"httpget": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 1 {
					ts.Fatalf("usage: httpget URL")
				}
				req, err := http.NewRequest(http.MethodGet, args[0], nil)
				ts.Check(err)
				if tok := ts.Getenv("ZOF_TOKEN"); tok != "" {
					req.Header.Set("Authorization", "Bearer "+tok)
				}
				resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
				ts.Check(err)
				defer resp.Body.Close()
				body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
				ts.Check(err)
				fmt.Fprintf(ts.Stdout(), "%d\n", resp.StatusCode)
				for _, k := range slices.Sorted(maps.Keys(resp.Header)) {
					fmt.Fprintf(ts.Stdout(), "%s: %s\n", k, strings.Join(resp.Header[k], ", "))
				}
				fmt.Fprintf(ts.Stdout(), "\n%s\n", body)
			},
			// sseids FILE N: the event ids (`id: ` lines) of the SSE stream in FILE are
			// exactly 1, 2, …, N: nothing lost, nothing twice, in order.
			"sseids": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 2 {
					ts.Fatalf("usage: sseids FILE N")
				}
				var ids []int
				for _, line := range strings.Split(ts.ReadFile(args[0]), "\n") {
					if v, ok := strings.CutPrefix(line, "id: "); ok {
						id, err := strconv.Atoi(strings.TrimSpace(v))
						ts.Check(err)
						ids = append(ids, id)
					}
				}
				n, err := strconv.Atoi(args[1])
				ts.Check(err)
				for i, id := range ids {
					if id != i+1 {
						ts.Fatalf("%s: event %d has id %d, want %d (ids %v)", args[0], i+1, id, i+1, ids)
					}
				}
				if len(ids) != n {
					ts.Fatalf("%s: %d events, want %d (ids %v)", args[0], len(ids), n, ids)
				}
			},
			// ghfake start|files|file|fail|calls|bodies|checkruns|content|compare|waitcheckruns ...: a fake of GitHub's REST
			// API (ci/github/githubtest) in this test process; start sets GITHUB_API_URL.
			"ghfake": ghfake,
			// ghdeliver, waitget, waitmatch: see triggers_script_test.go.
			"ghdeliver": ghdeliver,
			"waitget":   waitget,
			"waitmatch": waitmatch,
			// glfake start|diffs|fail|calls|notes|statuses ...: a fake of GitLab's REST API
			// (ci/gitlab/gitlabtest); start sets CI_API_V4_URL.
			"glfake": glfake,
			// manycases FILE N: write a suite of N cases that all fail (an http step against a
			// closed port), with emoji and a line break in their names and their steps' names:
			// the report limits' worst case.
			"manycases": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 2 {
					ts.Fatalf("usage: manycases FILE N")
				}
				n, err := strconv.Atoi(args[1])
				ts.Check(err)
				var b strings.Builder
				b.WriteString("version: 1\nproject: many\nenvironments:\n  local: {url: \"http://127.0.0.1:1\"}\ncases:\n")
				for i := 1; i <= n; i++ {
					fmt.Fprintf(&b, "  - id: case-%03d\n    name: \"Case %03d 🧪\\nsecond line\"\n    steps:\n      - name: \"get 🧪 %03d\\nsecond line\"\n        http: {method: GET, path: /x}\n        expect: {status: 200}\n", i, i, i)
				}
				ts.Check(os.WriteFile(ts.MkAbs(args[0]), []byte(b.String()), 0o644))
			},
			// expand SRC DST: copy SRC to DST with $VAR and ${VAR} expanded from the script's
			// environment (event payloads that name the commits a script made).
			"expand": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 2 {
					ts.Fatalf("usage: expand SRC DST")
				}
				out := os.Expand(ts.ReadFile(args[0]), ts.Getenv)
				ts.Check(os.WriteFile(ts.MkAbs(args[1]), []byte(out), 0o644))
			},
			// stdoutvar VAR: set VAR to the last command's stdout, trimmed (e.g. a commit sha).
			"stdoutvar": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 1 {
					ts.Fatalf("usage: stdoutvar VAR")
				}
				ts.Setenv(args[0], strings.TrimSpace(ts.ReadFile("stdout")))
			},
			// jsonat FILE PATH WANT: FILE parses as JSON and the value at PATH (keys
			// and list indexes joined by dots; "." is the whole document) encodes as
			// WANT, e.g. jsonat out.json shadow.missed.0.case '"search"'.
			"jsonat": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) != 3 {
					ts.Fatalf("usage: jsonat FILE PATH WANT")
				}
				var v any
				if err := json.Unmarshal([]byte(ts.ReadFile(args[0])), &v); err != nil {
					ts.Fatalf("%s is not JSON: %v", args[0], err)
				}
				if args[1] != "." {
					for _, k := range strings.Split(args[1], ".") {
						switch c := v.(type) {
						case map[string]any:
							v = c[k]
						case []any:
							i, err := strconv.Atoi(k)
							if err != nil || i < 0 || i >= len(c) {
								ts.Fatalf("%s: %s: no element %q in a list of %d", args[0], args[1], k, len(c))
							}
							v = c[i]
						default:
							ts.Fatalf("%s: %s: %q is not in a %T", args[0], args[1], k, v)
						}
					}
				}
				got, err := json.Marshal(v)
				ts.Check(err)
				if (string(got) == args[2]) == neg {
					ts.Fatalf("%s: %s is %s, want %s%s", args[0], args[1], got, map[bool]string{true: "not "}[neg], args[2])
				}
			},
			// exits N CMD ARGS...: run CMD and require exit code N (testscript's exec
			// only knows success or failure, and the gate's codes are the product).
			"exits": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) < 2 {
					ts.Fatalf("usage: exits CODE COMMAND [ARGS...]")
				}
				want, err := strconv.Atoi(args[0])
				if err != nil {
					ts.Fatalf("exits: bad code %q", args[0])
				}
				got := 0
				if err := ts.Exec(args[1], args[2:]...); err != nil {
					var ee *exec.ExitError
					if !errors.As(err, &ee) {
						ts.Fatalf("exits: %v", err)
					}
					got = ee.ExitCode()
				}
				if got != want {
					ts.Fatalf("%s exited %d, want %d", args[1], got, want)
				}
			},
		},
	})
}

var runIDPattern = regexp.MustCompile(`run_[a-z0-9]+`)

// The private-network test's namespace (.ci/netns.sh makes it and sets these).
const (
	envNetns        = "ZOF_TEST_NETNS"      // the network namespace
	envNetnsHost    = "ZOF_TEST_NETNS_HOST" // the host side address of its veth pair
	envRequireNetns = "ZOF_REQUIRE_NETNS"   // .ci/run: the test must run, not skip
)

// netnsCondition is [netns]: .ci/netns.sh made a network namespace. Without
// one it is false (the script skips, saying why) unless ZOF_REQUIRE_NETNS is
// set, as .ci/run does: then the script fails, loudly.
func netnsCondition() (bool, error) {
	if os.Getenv(envNetns) != "" && os.Getenv(envNetnsHost) != "" {
		return true, nil
	}
	if os.Getenv(envRequireNetns) != "" {
		return false, fmt.Errorf("%s is set but %s/%s name no network namespace: .ci/netns.sh could not make one (it needs root and iproute2's ip netns; its error is above in the CI log); the private-network test must run here", envRequireNetns, envNetns, envNetnsHost)
	}
	return false, nil
}

type serverKey struct{}

// scriptServer holds a script's zofserve.
type scriptServer struct{ srv *clienttest.Server }

// scriptTB lets clienttest report through the script.
type scriptTB struct{ ts *testscript.TestScript }

func (s scriptTB) Helper()                           {}
func (s scriptTB) Fatalf(format string, args ...any) { s.ts.Fatalf(format, args...) }
func (s scriptTB) Errorf(format string, args ...any) {
	s.ts.Fatalf("%s", fmt.Sprintf(format, args...))
}
func (s scriptTB) Cleanup(f func()) { s.ts.Defer(f) }

func zofserve(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: zofserve start|restart|drop|stop")
	}
	h := ts.Value(serverKey{}).(*scriptServer)
	if args[0] != "start" && h.srv == nil {
		ts.Fatalf("zofserve %s: no server; zofserve start first", args[0])
	}
	switch args[0] {
	case "start":
		h.srv = clienttest.Start(scriptTB{ts}, clienttest.Options{RealSteps: true, Dir: ts.Getenv("WORK")})
		ts.Setenv("ZOF_SERVER", h.srv.URL)
		ts.Setenv("ZOF_TOKEN", clienttest.Token)
	case "restart":
		h.srv.Restart()
	case "drop":
		h.srv.DropConnections()
	case "stop":
		h.srv.Stop()
	default:
		ts.Fatalf("zofserve: unknown %q", args[0])
	}
}

type fakesKey struct{}

// scriptFakes holds a script's GitHub and GitLab fakes.
type scriptFakes struct {
	gh *githubtest.Fake
	gl *gitlabtest.Fake
	// prFiles accumulate ghfake file.
	prFiles map[int][]githubtest.File
}

// scriptCleaner lets a fake close with the script.
type scriptCleaner struct{ ts *testscript.TestScript }

func (c scriptCleaner) Cleanup(f func()) { c.ts.Defer(f) }

// fakeFault is a canned answer from a script's arguments: STATUS [sticky] [Header=Value...].
func fakeFault(ts *testscript.TestScript, args []string) (status int, sticky bool, header map[string]string, body string) {
	status, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("bad status %q", args[0])
	}
	header = map[string]string{}
	for _, a := range args[1:] {
		if a == "sticky" {
			sticky = true
			continue
		}
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			ts.Fatalf("bad header %q: use Name=Value", a)
		}
		header[k] = v
	}
	body = fmt.Sprintf(`{"message":"fake %d"}`, status)
	return status, sticky, header, body
}

// writeScriptJSON writes v as indented JSON to the script's file name.
func writeScriptJSON(ts *testscript.TestScript, name string, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	ts.Check(err)
	ts.Check(os.WriteFile(ts.MkAbs(name), append(b, '\n'), 0o644))
}

// ghfake drives the script's GitHub fake:
//
//	ghfake start                               start it; GITHUB_API_URL points at it
//	ghfake files PR N                          pull request PR has N files dir/file-0001.go …
//	ghfake file PR PATH [STATUS [PREVIOUS]]    add one file to PR (status modified)
//	ghfake fail METHOD PATHRE STATUS [sticky] [Header=Value...]
//	ghfake calls METHOD PATHRE N               exactly N requests matched
//	ghfake bodies METHOD PATHRE FILE           the matching requests' bodies, one per line
//	ghfake checkruns FILE                      every check run (with its annotations) as JSON
//	ghfake content REPO REF PATH FILE          the contents API serves FILE as REPO's PATH at REF
//	ghfake compare BASE HEAD N|PATH...         BASE...HEAD lists N files dir/file-0001.go … or these (modified)
//	ghfake waitcheckruns N STATUS [SECS]       wait until N check runs have STATUS
func ghfake(ts *testscript.TestScript, neg bool, args []string) {
	h := ts.Value(fakesKey{}).(*scriptFakes)
	if neg || len(args) == 0 {
		ts.Fatalf("usage: ghfake start|files|file|fail|calls|bodies|checkruns|content|compare|waitcheckruns ...")
	}
	if args[0] != "start" && h.gh == nil {
		ts.Fatalf("ghfake %s: no fake; ghfake start first", args[0])
	}
	f := h.gh
	switch a := args[1:]; args[0] {
	case "start":
		h.gh = githubtest.New(scriptCleaner{ts})
		ts.Setenv("GITHUB_API_URL", h.gh.URL)
	case "files":
		if len(a) != 2 {
			ts.Fatalf("usage: ghfake files PR N")
		}
		pr, _ := strconv.Atoi(a[0])
		n, _ := strconv.Atoi(a[1])
		f.SetFiles(pr, githubtest.Files(n))
	case "file":
		if len(a) < 2 || len(a) > 4 {
			ts.Fatalf("usage: ghfake file PR PATH [STATUS [PREVIOUS]]")
		}
		pr, _ := strconv.Atoi(a[0])
		file := githubtest.File{Filename: a[1], Status: "modified"}
		if len(a) > 2 {
			file.Status = a[2]
		}
		if len(a) > 3 {
			file.PreviousFilename = a[3]
		}
		if h.prFiles == nil {
			h.prFiles = map[int][]githubtest.File{}
		}
		h.prFiles[pr] = append(h.prFiles[pr], file)
		f.SetFiles(pr, slices.Clone(h.prFiles[pr]))
	case "fail":
		if len(a) < 3 {
			ts.Fatalf("usage: ghfake fail METHOD PATHRE STATUS [sticky] [Header=Value...]")
		}
		status, sticky, header, body := fakeFault(ts, a[2:])
		if status == 403 && len(header) == 0 {
			body = githubtest.Forbidden.Body
		}
		f.Fail(a[0], a[1], githubtest.Fault{Status: status, Header: header, Body: body}, sticky)
	case "calls":
		if len(a) != 3 {
			ts.Fatalf("usage: ghfake calls METHOD PATHRE N")
		}
		if got := f.Calls(a[0], a[1]); strconv.Itoa(got) != a[2] {
			ts.Fatalf("%d %s %s requests, want %s", got, a[0], a[1], a[2])
		}
	case "bodies":
		if len(a) != 3 {
			ts.Fatalf("usage: ghfake bodies METHOD PATHRE FILE")
		}
		var b strings.Builder
		for _, body := range f.Bodies(a[0], a[1]) {
			b.Write(body)
			b.WriteByte('\n')
		}
		ts.Check(os.WriteFile(ts.MkAbs(a[2]), []byte(b.String()), 0o644))
	case "checkruns":
		if len(a) != 1 {
			ts.Fatalf("usage: ghfake checkruns FILE")
		}
		writeScriptJSON(ts, a[0], f.Runs())
	case "content":
		if len(a) != 4 {
			ts.Fatalf("usage: ghfake content REPO REF PATH FILE")
		}
		f.SetContent(a[0], a[1], a[2], []byte(ts.ReadFile(a[3])))
	case "compare":
		if len(a) < 3 {
			ts.Fatalf("usage: ghfake compare BASE HEAD N|PATH...")
		}
		var files []githubtest.File
		if n, err := strconv.Atoi(a[2]); err == nil && len(a) == 3 {
			files = githubtest.Files(n)
		} else {
			for _, p := range a[2:] {
				files = append(files, githubtest.File{Filename: p, Status: "modified"})
			}
		}
		f.SetCompare(a[0], a[1], githubtest.Comparison{Files: files})
	case "waitcheckruns":
		ghfakeWaitCheckRuns(ts, f, a)
	default:
		ts.Fatalf("ghfake: unknown %q", args[0])
	}
}

// glfake drives the script's GitLab fake (its token with api scope is glpat-api):
//
//	glfake start                               start it; CI_API_V4_URL points at it
//	glfake diffs IID PATH...                   merge request IID changes these files
//	glfake fail METHOD PATHRE STATUS [sticky] [Header=Value...]
//	glfake calls METHOD PATHRE N               exactly N requests matched
//	glfake notes IID FILE                      the merge request's notes as JSON
//	glfake statuses FILE                       the commit statuses posted, as JSON
func glfake(ts *testscript.TestScript, neg bool, args []string) {
	h := ts.Value(fakesKey{}).(*scriptFakes)
	if neg || len(args) == 0 {
		ts.Fatalf("usage: glfake start|diffs|fail|calls|notes|statuses ...")
	}
	if args[0] != "start" && h.gl == nil {
		ts.Fatalf("glfake %s: no fake; glfake start first", args[0])
	}
	f := h.gl
	switch a := args[1:]; args[0] {
	case "start":
		h.gl = gitlabtest.New(scriptCleaner{ts})
		ts.Setenv("CI_API_V4_URL", h.gl.APIURL())
	case "diffs":
		if len(a) < 1 {
			ts.Fatalf("usage: glfake diffs IID PATH...")
		}
		iid, _ := strconv.ParseInt(a[0], 10, 64)
		var diffs []gitlabtest.Diff
		for _, p := range a[1:] {
			diffs = append(diffs, gitlabtest.Diff{OldPath: p, NewPath: p, Diff: "@@ -1 +1 @@\n-a\n+b\n"})
		}
		f.SetDiffs(iid, diffs)
	case "fail":
		if len(a) < 3 {
			ts.Fatalf("usage: glfake fail METHOD PATHRE STATUS [sticky] [Header=Value...]")
		}
		status, sticky, header, body := fakeFault(ts, a[2:])
		f.Fail(a[0], a[1], gitlabtest.Fault{Status: status, Header: header, Body: body}, sticky)
	case "calls":
		if len(a) != 3 {
			ts.Fatalf("usage: glfake calls METHOD PATHRE N")
		}
		if got := f.Calls(a[0], a[1]); strconv.Itoa(got) != a[2] {
			ts.Fatalf("%d %s %s requests, want %s", got, a[0], a[1], a[2])
		}
	case "notes":
		if len(a) != 2 {
			ts.Fatalf("usage: glfake notes IID FILE")
		}
		iid, _ := strconv.ParseInt(a[0], 10, 64)
		writeScriptJSON(ts, a[1], f.NotesOf(iid))
	case "statuses":
		if len(a) != 1 {
			ts.Fatalf("usage: glfake statuses FILE")
		}
		writeScriptJSON(ts, a[0], f.StatusList())
	default:
		ts.Fatalf("glfake: unknown %q", args[0])
	}
}

// Script ports come from below Linux's default ephemeral range (32768–60999,
// net.ipv4.ip_local_port_range): a port the kernel picked for ":0" was
// closed before the script's process bound it, and meanwhile any outgoing
// connection of the parallel scripts could take it (CI saw "bind: address
// already in use" for a metrics port). Ports handed out are never handed out
// again in this process.
const (
	scriptPortLow  = 20000
	scriptPortHigh = 32000
)

var (
	scriptPortsMu sync.Mutex
	scriptPorts   = map[int]bool{}
	scriptPortSeq = scriptPortLow + rand.IntN(scriptPortHigh-scriptPortLow)
)

// scriptPort is a port on 127.0.0.1 nothing listens on, outside the
// ephemeral range, not given to another script of this run.
func scriptPort(ts *testscript.TestScript) int {
	scriptPortsMu.Lock()
	defer scriptPortsMu.Unlock()
	for range scriptPortHigh - scriptPortLow {
		scriptPortSeq++
		if scriptPortSeq >= scriptPortHigh {
			scriptPortSeq = scriptPortLow
		}
		port := scriptPortSeq
		if scriptPorts[port] {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		ts.Check(l.Close())
		scriptPorts[port] = true
		return port
	}
	ts.Fatalf("no free port on 127.0.0.1 between %d and %d", scriptPortLow, scriptPortHigh)
	return 0
}
