// Package cli is the zof command line: commands, flags, environment and the one
// place where errors become exit codes.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"sort"
	"strings"
	"syscall"

	"github.com/zof-ai/zof-ci/internal/cli/iostreams"
	"github.com/zof-ai/zof-ci/internal/exitcode"
)

// Env is the process environment, passed in so that nothing below main reads it directly.
type Env map[string]string

// ParseEnv turns os.Environ-style entries into an Env; later entries win.
func ParseEnv(environ []string) Env {
	e := make(Env, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			e[k] = v
		}
	}
	return e
}

// Lookup is os.LookupEnv over the passed-in environment.
func (e Env) Lookup(k string) (string, bool) {
	v, ok := e[k]
	return v, ok
}

// Get returns the value of k, or "" when unset.
func (e Env) Get(k string) string { return e[k] }

// List returns the environment as os.Environ-style entries, sorted for determinism.
func (e Env) List() []string {
	out := make([]string, 0, len(e))
	for k, v := range e {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// Factory is what every command gets: its streams and the environment. Nothing
// below main reads the process's environment or inspects its streams: both come
// from here, so a test can give a command any of them.
type Factory struct {
	IO  *iostreams.IOStreams
	Env Env
}

// commands builds every command over f; each would run for real (no runF).
func commands(f *Factory) []*command {
	return []*command{
		newCmdRun(f, nil),
		newCmdPlan(f, nil),
		newCmdValidate(f, nil),
		newCmdCoverage(f, nil),
		newCmdWatch(f, nil),
		newCmdStatus(f, nil),
		newCmdCancel(f, nil),
		newCmdRerun(f, nil),
		newCmdRuns(f, nil),
		newCmdHealth(f, nil),
		newCmdAgents(f, nil),
		newCmdServe(f, nil),
		newCmdAgent(f, nil),
		newCmdAction(f, nil),
		newCmdVersion(f, nil),
	}
}

// Main runs zof with the given arguments and environment and returns the exit code.
// It installs SIGINT/SIGTERM handling: the first signal cancels the command's context
// (runs are cancelled and reports written), the exit code is then 130.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer, environ []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, args, &Factory{IO: iostreams.System(stdin, stdout, stderr), Env: ParseEnv(environ)})
}

func run(ctx context.Context, args []string, f *Factory) int {
	cmds := commands(f)
	if len(args) == 0 {
		usage(f.IO.ErrOut, cmds)
		return int(exitcode.Usage)
	}
	name := args[0]
	switch name {
	case "-h", "--help", "help":
		if len(args) > 1 {
			for _, c := range cmds {
				if c.name == args[1] {
					return dispatch(ctx, f, c, []string{"--help"})
				}
			}
		}
		usage(f.IO.Out, cmds)
		return 0
	case "-v", "--version":
		name = "version"
	}
	for _, c := range cmds {
		if c.name == name {
			return dispatch(ctx, f, c, args[1:])
		}
	}
	names := make([]string, len(cmds))
	for i, c := range cmds {
		names[i] = c.name
	}
	fmt.Fprintf(f.IO.ErrOut, "zof: unknown command %q%s. Run 'zof --help' for the list of commands.\n", name, didYouMean(name, names, ""))
	return int(exitcode.Usage)
}

// dispatch runs a command and maps its error to the exit code, once: the
// table is internal/exitcode's. A panic is a bug in zof, not the user's
// input: it is reported as one and exits 70, never as a gate outcome.
func dispatch(ctx context.Context, f *Factory, c *command, args []string) (code int) {
	defer func() {
		if v := recover(); v != nil {
			fmt.Fprintf(f.IO.ErrOut, "zof %s: internal error: %v\nThis is a bug in zof; please report it with the lines below.\n%s", c.name, v, debug.Stack())
			code = int(exitcode.Internal)
		}
	}()
	err := c.exec(ctx, f.IO.Out, args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	ec := exitcode.Of(err)
	if err != nil && !exitcode.IsReported(err) {
		if ec == exitcode.Internal {
			fmt.Fprintf(f.IO.ErrOut, "zof %s: internal error: %v (this is a bug in zof; please report it)\n", c.name, err)
		} else {
			fmt.Fprintf(f.IO.ErrOut, "zof %s: %v\n", c.name, err)
		}
	}
	return int(ec)
}

func usage(w io.Writer, cmds []*command) {
	fmt.Fprintln(w, "zof: select, run, follow and gate test suites in CI.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: zof COMMAND [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range cmds {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.short)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'zof COMMAND --help' for a command's flags and an example.")
	fmt.Fprintln(w, "Exit codes: 0 passed, 1 failed, 2 blocked, 3 cancelled, 4 timed out, 5 nothing to run,")
	fmt.Fprintln(w, "64 usage or invalid suite, 69 service unavailable, 70 internal error, 76 agent protocol mismatch,")
	fmt.Fprintln(w, "77 credentials refused, 130 interrupted.")
}
