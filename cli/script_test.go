package cli

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/zof-ai/zof-ci/client/clienttest"
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
	repo := filepath.Dir(filepath.Dir(file))
	testscript.Run(t, testscript.Params{
		Dir: filepath.Join("testdata", "script"),
		Setup: func(e *testscript.Env) error {
			e.Setenv("REPO", repo)
			// Keep the host's caches: scripts that start the example service use go run.
			for _, k := range []string{"GOCACHE", "GOMODCACHE", "GOPATH", "GOFLAGS", "GOPROXY", "PATH"} {
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
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			// freeport VAR: set VAR to a loopback port nobody listens on, so scripts
			// that start the example service can run in parallel.
			"freeport": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 1 {
					ts.Fatalf("usage: freeport VAR")
				}
				l, err := net.Listen("tcp", "127.0.0.1:0")
				ts.Check(err)
				port := l.Addr().(*net.TCPAddr).Port
				ts.Check(l.Close())
				ts.Setenv(args[0], strconv.Itoa(port))
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
			// waithttp URL: wait (up to 30s) until URL answers 200, e.g. a zof serve's /readyz.
			"waithttp": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 1 {
					ts.Fatalf("usage: waithttp URL")
				}
				c := &http.Client{Timeout: time.Second}
				for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
					if resp, err := c.Get(args[0]); err == nil {
						resp.Body.Close()
						if resp.StatusCode == http.StatusOK {
							return
						}
					}
				}
				ts.Fatalf("%s did not answer 200 within 30s", args[0])
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
