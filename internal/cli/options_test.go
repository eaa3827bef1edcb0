package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/client"
	"github.com/zof-ai/zof-ci/internal/cli/iostreams"
	"github.com/zof-ai/zof-ci/internal/exitcode"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// errCaptured stops a command after its parse step: the tests below look at
// the options it would have run with.
var errCaptured = errors.New("captured")

// capture builds a command with a runF that stores its options, and runs it.
func capture[O any](t *testing.T, newCmd func(*Factory, func(context.Context, *O) error) *command, env Env, args ...string) (*O, error) {
	t.Helper()
	io, _, _, _ := iostreams.Test()
	var got *O
	c := newCmd(&Factory{IO: io, Env: env}, func(_ context.Context, o *O) error {
		got = o
		return errCaptured
	})
	err := c.exec(context.Background(), io.Out, args)
	if err == nil {
		t.Fatalf("%s %v: ran without reaching runF", c.name, args)
	}
	if errors.Is(err, errCaptured) {
		return got, nil
	}
	return nil, err
}

var ignoreStreams = cmpopts.IgnoreTypes(&iostreams.IOStreams{}, Env{})

// Precedence, for every option that has more than a default: the flag wins over
// the environment variable, which wins over the suite file (an empty option: the
// suite file decides, e.g. defaults.environment), which wins over the default.
func TestPlanOptions(t *testing.T) {
	for _, tt := range []struct {
		name string
		env  Env
		args []string
		want selectOptions
	}{
		{"defaults", nil, nil, selectOptions{Suite: "zof.yaml", Scope: "all"}},
		{"env over defaults", Env{"ZOF_SUITE": "e.yaml", "ZOF_SCOPE": "smoke", "ZOF_ENV": "staging", "ZOF_BASE": "origin/dev"}, nil,
			selectOptions{Suite: "e.yaml", Scope: "smoke", Env: "staging", Base: "origin/dev"}},
		{"flags over env", Env{"ZOF_SUITE": "e.yaml", "ZOF_SCOPE": "smoke", "ZOF_ENV": "staging", "ZOF_BASE": "origin/dev"},
			[]string{"--suite", "f.yaml", "--scope", "changed", "--env", "local", "--base", "main", "--changed-files", "-"},
			selectOptions{Suite: "f.yaml", Scope: "changed", Env: "local", Base: "main", ChangedFiles: "-"}},
		{"an empty variable is unset", Env{"ZOF_SCOPE": "", "ZOF_ENV": ""}, nil, selectOptions{Suite: "zof.yaml", Scope: "all"}},
		{"a flag set to the default still wins", Env{"ZOF_SCOPE": "smoke"}, []string{"--scope=all"}, selectOptions{Suite: "zof.yaml", Scope: "all"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o, err := capture(t, newCmdPlan, tt.env, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			want := &planOptions{Select: tt.want, Output: "text"}
			if d := cmp.Diff(want, o, ignoreStreams); d != "" {
				t.Errorf("options (-want +got):\n%s", d)
			}
		})
	}
}

func TestRunOptions(t *testing.T) {
	defaults := followOptions{Timeout: 30 * time.Minute, PollInterval: 2 * time.Second, CancelOnInterrupt: true}
	for _, tt := range []struct {
		name string
		env  Env
		args []string
		want runOptions
	}{
		{"embedded defaults", nil, nil, runOptions{Select: selectOptions{Suite: "zof.yaml", Scope: "all"}, Follow: defaults, Coverage: true}},
		{"env over defaults", Env{"ZOF_SERVER": "http://env", "ZOF_TOKEN": "t-env", "ZOF_ENV": "staging"}, nil,
			runOptions{Select: selectOptions{Suite: "zof.yaml", Scope: "all", Env: "staging"}, Server: serverOptions{URL: "http://env", Token: "t-env"}, Follow: defaults, Coverage: true}},
		{"flags over env", Env{"ZOF_SERVER": "http://env", "ZOF_TOKEN": "t-env", "ZOF_SUITE": "e.yaml"},
			[]string{"--server", "http://flag", "--token", "t-flag", "--suite", "f.yaml", "--timeout", "5m", "--poll-interval", "1s",
				"--junit", "j.xml", "--json", "r.json", "--fail-on", "failed,timeout", "--no-stream", "--cancel-on-interrupt=false",
				"--cancel-on-timeout", "--supersede", "--detach", "--idempotency-key", "k", "--coverage=false"},
			runOptions{Select: selectOptions{Suite: "f.yaml", Scope: "all"}, Server: serverOptions{URL: "http://flag", Token: "t-flag"},
				Follow: followOptions{Timeout: 5 * time.Minute, PollInterval: time.Second, JUnit: "j.xml", JSON: "r.json", FailOn: "failed,timeout",
					NoStream: true, CancelOnTimeout: true}, Supersede: true, Detach: true, IdempotencyKey: "k", Coverage: false}},
		{"server-only flags with the server from the env", Env{"ZOF_SERVER": "http://env"}, []string{"--detach"},
			runOptions{Select: selectOptions{Suite: "zof.yaml", Scope: "all"}, Server: serverOptions{URL: "http://env"}, Follow: defaults, Detach: true, Coverage: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o, err := capture(t, newCmdRun, tt.env, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(&tt.want, o, ignoreStreams); d != "" {
				t.Errorf("options (-want +got):\n%s", d)
			}
		})
	}
}

func TestValidateAndServeOptions(t *testing.T) {
	for _, tt := range []struct {
		name string
		env  Env
		args []string
		want validateOptions
	}{
		{"defaults", nil, nil, validateOptions{Suite: "zof.yaml"}},
		{"env", Env{"ZOF_SUITE": "e.yaml", "ZOF_ENV": "staging"}, nil, validateOptions{Suite: "e.yaml", Environment: "staging"}},
		{"flags", Env{"ZOF_SUITE": "e.yaml", "ZOF_ENV": "staging"}, []string{"--suite", "f.yaml", "--env", "local"}, validateOptions{Suite: "f.yaml", Environment: "local"}},
	} {
		t.Run("validate "+tt.name, func(t *testing.T) {
			o, err := capture(t, newCmdValidate, tt.env, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(&tt.want, o, ignoreStreams); d != "" {
				t.Errorf("options (-want +got):\n%s", d)
			}
		})
	}
	for _, tt := range []struct {
		name string
		env  Env
		args []string
		want serveOptions
	}{
		{"defaults", nil, nil, serveOptions{Data: "zof-data", Config: "server.yaml", LogFormat: "text"}},
		{"env", Env{"ZOF_DATA": "/d", "ZOF_SERVER_CONFIG": "/c.yaml"}, nil, serveOptions{Data: "/d", Config: "/c.yaml", LogFormat: "text"}},
		{"flags", Env{"ZOF_DATA": "/d", "ZOF_SERVER_CONFIG": "/c.yaml"}, []string{"--data", "d2", "--config", "c2.yaml", "--listen", ":0", "--log-format", "json"},
			serveOptions{Data: "d2", Config: "c2.yaml", Listen: ":0", LogFormat: "json"}},
		{"database env", Env{"ZOF_DATABASE_URL": "postgres://env/db"}, nil,
			serveOptions{Data: "zof-data", Config: "server.yaml", LogFormat: "text", Database: "postgres://env/db"}},
		{"database flag", Env{"ZOF_DATABASE_URL": "postgres://env/db"}, []string{"--database", "postgres://flag/db"},
			serveOptions{Data: "zof-data", Config: "server.yaml", LogFormat: "text", Database: "postgres://flag/db"}},
	} {
		t.Run("serve "+tt.name, func(t *testing.T) {
			o, err := capture(t, newCmdServe, tt.env, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(&tt.want, o, ignoreStreams); d != "" {
				t.Errorf("options (-want +got):\n%s", d)
			}
		})
	}
}

// The commands that name a run take flags before or after it, and the server
// from the flag over ZOF_SERVER.
func TestRunCommandsOptions(t *testing.T) {
	env := Env{"ZOF_SERVER": "http://env", "ZOF_TOKEN": "t-env"}
	fromEnv := serverOptions{URL: "http://env", Token: "t-env"}
	fromFlags := serverOptions{URL: "http://flag", Token: "t-flag"}
	watchDefaults := followOptions{Timeout: 30 * time.Minute, PollInterval: 2 * time.Second}

	t.Run("watch", func(t *testing.T) {
		o, err := capture(t, newCmdWatch, env, "run_1", "--junit", "j.xml")
		check(t, err, &watchOptions{Server: fromEnv, RunID: "run_1", Follow: followOptions{Timeout: 30 * time.Minute, PollInterval: 2 * time.Second, JUnit: "j.xml"}}, o)
		o, err = capture(t, newCmdWatch, env, "--server", "http://flag", "--token", "t-flag", "run_2")
		check(t, err, &watchOptions{Server: fromFlags, RunID: "run_2", Follow: watchDefaults}, o)
	})
	t.Run("status", func(t *testing.T) {
		o, err := capture(t, newCmdStatus, env, "run_1", "--output", "json", "--exit-status")
		check(t, err, &statusOptions{Server: fromEnv, RunID: "run_1", Output: "json", ExitStatus: true}, o)
	})
	t.Run("cancel", func(t *testing.T) {
		o, err := capture(t, newCmdCancel, env, "--server", "http://flag", "--token", "t-flag", "run_1", "--reason", "wrong env")
		check(t, err, &cancelOptions{Server: fromFlags, RunID: "run_1", Reason: "wrong env"}, o)
	})
	t.Run("rerun", func(t *testing.T) {
		o, err := capture(t, newCmdRerun, env, "run_1", "--follow")
		rerunDefaults := watchDefaults
		rerunDefaults.CancelOnInterrupt = true // the new run is ours: Ctrl-C cancels it
		check(t, err, &rerunOptions{Server: fromEnv, RunID: "run_1", FollowRun: true, Follow: rerunDefaults}, o)
	})
	t.Run("runs", func(t *testing.T) {
		o, err := capture(t, newCmdRuns, env, "--status", "queued,running", "--status", "failed", "--project", "p", "--environment", "e", "--limit", "5", "--cursor", "c")
		check(t, err, &runsOptions{Server: fromEnv, Output: "text", List: client.ListOptions{
			Statuses: []api.Status{api.StatusQueued, api.StatusRunning, api.StatusFailed}, Project: "p", Environment: "e", Limit: 5, Cursor: "c"}}, o)
	})
	t.Run("health", func(t *testing.T) {
		o, err := capture(t, newCmdHealth, env, "--project", "p", "--environment", "e", "--since", "7d", "--output", "json")
		check(t, err, &healthOptions{Server: fromEnv, Output: "json", Health: client.HealthOptions{Project: "p", Environment: "e", Since: "7d"}}, o)
		o, err = capture(t, newCmdHealth, env, "--project", "p")
		check(t, err, &healthOptions{Server: fromEnv, Output: "text", Health: client.HealthOptions{Project: "p", Since: "30d"}}, o)
	})
}

func check[O any](t *testing.T, err error, want, got *O) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, got, ignoreStreams); d != "" {
		t.Errorf("options (-want +got):\n%s", d)
	}
}

// Parse errors are usage errors (64) found before anything runs.
func TestParseErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  func() error
		want string
	}{
		{"run: --detach without a server", func() error { _, err := capture(t, newCmdRun, nil, "--detach"); return err },
			"--detach needs an execution service: set --server or ZOF_SERVER"},
		{"run: --timeout 0", func() error { _, err := capture(t, newCmdRun, nil, "--timeout", "0s"); return err },
			"--timeout 0s: must be positive"},
		{"run: an argument", func() error { _, err := capture(t, newCmdRun, nil, "zof.yaml"); return err },
			`unexpected argument "zof.yaml": zof run takes only flags`},
		{"plan: --output yaml", func() error { _, err := capture(t, newCmdPlan, nil, "--output", "yaml"); return err },
			`--output "yaml": use text or json`},
		{"validate: an argument", func() error { _, err := capture(t, newCmdValidate, nil, "s.yaml"); return err },
			`unexpected argument "s.yaml": zof validate takes only flags (the file is --suite FILE)`},
		{"watch: no run", func() error { _, err := capture(t, newCmdWatch, Env{"ZOF_SERVER": "http://x"}); return err },
			"name the run: zof watch [flags] RUN"},
		{"status: no server", func() error { _, err := capture(t, newCmdStatus, nil, "run_1"); return err },
			"no execution service: set --server or ZOF_SERVER"},
		{"runs: --limit 0", func() error {
			_, err := capture(t, newCmdRuns, Env{"ZOF_SERVER": "http://x"}, "--limit", "0")
			return err
		},
			"--limit 0: must be positive"},
		{"serve: --log-format xml", func() error { _, err := capture(t, newCmdServe, nil, "--log-format", "xml"); return err },
			`--log-format "xml": use text or json`},
		{"an unknown flag", func() error { _, err := capture(t, newCmdCancel, nil, "--reasn", "x", "run_1"); return err },
			"unknown flag --reasn (did you mean --reason?). Run 'zof cancel --help' for its flags"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.err()
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if code := exitcode.Of(err); code != exitcode.Usage {
				t.Errorf("exit code %d, want %d", code, exitcode.Usage)
			}
		})
	}
}

func TestDidYouMean(t *testing.T) {
	names := []string{"suite", "scope", "env", "base", "changed-files", "server", "timeout", "json", "junit"}
	for _, tt := range []struct{ typed, want string }{
		{"scop", " (did you mean --scope?)"},
		{"sever", " (did you mean --server?)"},
		{"SUITE", " (did you mean --suite?)"},
		{"changed", " (did you mean --changed-files?)"},
		{"jsonn", " (did you mean --json?)"},
		{"frob", ""},
		{"x", ""},
		{"", ""},
	} {
		if got := didYouMean(tt.typed, names, "--"); got != tt.want {
			t.Errorf("didYouMean(%q) = %q, want %q", tt.typed, got, tt.want)
		}
	}
}

// Every command's --help, golden in testdata/help (go test -update rewrites them):
// flags are written --flag as in the docs, with their defaults.
func TestHelp(t *testing.T) {
	io, _, out, _ := iostreams.Test()
	for _, c := range commands(&Factory{IO: io, Env: Env{}}) {
		t.Run(c.name, func(t *testing.T) {
			out.Reset()
			if err := c.exec(context.Background(), out, []string{"--help"}); !errors.Is(err, flag.ErrHelp) {
				t.Fatalf("err = %v, want flag.ErrHelp", err)
			}
			golden := filepath.Join("testdata", "help", c.name+".txt")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (go test -update writes it)", err)
			}
			if d := cmp.Diff(string(want), out.String()); d != "" {
				t.Errorf("zof %s --help (-want +got):\n%s", c.name, d)
			}
		})
	}
}

// The suite file is the tier between the environment and the built-in default:
// with neither --env nor ZOF_ENV the plan's environment is the suite's
// defaults.environment; ZOF_ENV wins over it, --env over both.
func TestPlanEnvironmentPrecedence(t *testing.T) {
	suite := filepath.Join(t.TempDir(), "zof.yaml")
	if err := os.WriteFile(suite, []byte(`version: 1
project: shop
environments:
  local: {url: "http://127.0.0.1:1"}
  staging: {url: "http://127.0.0.1:2"}
  prod: {url: "http://127.0.0.1:3"}
defaults:
  environment: staging
cases:
  - id: a
    steps:
      - http: {path: /}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		env  Env
		args []string
		want string
	}{
		{"suite file", Env{"ZOF_SUITE": suite}, nil, "staging"},
		{"env over suite file", Env{"ZOF_SUITE": suite, "ZOF_ENV": "local"}, nil, "local"},
		{"flag over env", Env{"ZOF_SUITE": suite, "ZOF_ENV": "local"}, []string{"--env", "prod"}, "prod"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			io, _, out, _ := iostreams.Test()
			c := newCmdPlan(&Factory{IO: io, Env: tt.env}, nil)
			err := c.exec(context.Background(), out, append([]string{"--output", "json"}, tt.args...))
			if code := exitcode.Of(err); code != exitcode.OK {
				t.Fatalf("exit %d: %v", code, err)
			}
			var plan struct{ Environment string }
			if err := json.Unmarshal(out.Bytes(), &plan); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if plan.Environment != tt.want {
				t.Errorf("environment %q, want %q", plan.Environment, tt.want)
			}
		})
	}
}

// Following draws the live view only when Main found a terminal on stdout (and
// the environment does not say CI or NO_COLOR).
func TestFollowUsesTheTTYDecision(t *testing.T) {
	io, _, _, _ := iostreams.Test()
	var f followOptions
	if o := f.runner(io, Env{}); o.TTY || o.Color {
		t.Errorf("not a terminal: TTY %v, Color %v", o.TTY, o.Color)
	}
	io.SetStdoutTTY(true)
	if o := f.runner(io, Env{}); !o.TTY || !o.Color {
		t.Errorf("a terminal: TTY %v, Color %v", o.TTY, o.Color)
	}
	if o := f.runner(io, Env{"CI": "true"}); o.TTY {
		t.Error("a terminal in CI: the live view is drawn")
	}
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	if o := f.runner(iostreams.System(nil, devNull, devNull), Env{}); o.TTY {
		t.Errorf("stdout %s: the live view is drawn", os.DevNull)
	}
}
