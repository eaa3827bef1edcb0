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

// app is what every command gets: its streams and environment.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	env            Env
}

type command struct {
	name    string
	args    string // the synopsis after the name
	short   string
	long    string
	example string
	run     func(ctx context.Context, a *app, args []string) error
}

func commands() []*command {
	return []*command{
		runCommand(),
		planCommand(),
		validateCommand(),
		watchCommand(),
		statusCommand(),
		cancelCommand(),
		rerunCommand(),
		runsCommand(),
		serveCommand(),
		actionCommand(),
		versionCommand(),
	}
}

// Main runs zof with the given arguments and environment and returns the exit code.
// It installs SIGINT/SIGTERM handling: the first signal cancels the command's context
// (runs are cancelled and reports written), the exit code is then 130.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer, environ []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, args, &app{stdin: stdin, stdout: stdout, stderr: stderr, env: ParseEnv(environ)})
}

func run(ctx context.Context, args []string, a *app) int {
	cmds := commands()
	if len(args) == 0 {
		usage(a.stderr, cmds)
		return int(exitcode.Usage)
	}
	name := args[0]
	switch name {
	case "-h", "--help", "help":
		if len(args) > 1 {
			for _, c := range cmds {
				if c.name == args[1] {
					return dispatch(ctx, a, c, []string{"--help"})
				}
			}
		}
		usage(a.stdout, cmds)
		return 0
	case "-v", "--version":
		name = "version"
	}
	for _, c := range cmds {
		if c.name == name {
			return dispatch(ctx, a, c, args[1:])
		}
	}
	fmt.Fprintf(a.stderr, "zof: unknown command %q. Run 'zof --help' for the list of commands.\n", name)
	return int(exitcode.Usage)
}

// dispatch runs a command and maps its error to the exit code, once: the
// table is internal/exitcode's. A panic is a bug in zof, not the user's
// input: it is reported as one and exits 70, never as a gate outcome.
func dispatch(ctx context.Context, a *app, c *command, args []string) (code int) {
	defer func() {
		if v := recover(); v != nil {
			fmt.Fprintf(a.stderr, "zof %s: internal error: %v\nThis is a bug in zof; please report it with the lines below.\n%s", c.name, v, debug.Stack())
			code = int(exitcode.Internal)
		}
	}()
	err := c.run(ctx, a, args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	ec := exitcode.Of(err)
	if err != nil && !exitcode.IsReported(err) {
		if ec == exitcode.Internal {
			fmt.Fprintf(a.stderr, "zof %s: internal error: %v (this is a bug in zof; please report it)\n", c.name, err)
		} else {
			fmt.Fprintf(a.stderr, "zof %s: %v\n", c.name, err)
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
	fmt.Fprintln(w, "64 usage or invalid suite, 69 service unavailable, 70 internal error, 77 credentials refused, 130 interrupted.")
}

// newFlags makes a command's flag set whose --help prints the synopsis and example.
func newFlags(a *app, c *command) *flag.FlagSet {
	fs := flag.NewFlagSet("zof "+c.name, flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	fs.Usage = func() {
		w := a.stdout
		fmt.Fprintf(w, "Usage: zof %s [flags] %s\n\n%s\n", c.name, c.args, c.short)
		if c.long != "" {
			fmt.Fprintf(w, "\n%s\n", c.long)
		}
		fmt.Fprintf(w, "\nExample:\n  %s\n\nFlags:\n", c.example)
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(a.stderr)
	}
	return fs
}

// parse parses flags; a parse error is a usage error (the flag package has printed it).
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return exitcode.Reported(exitcode.Usage)
	}
	return nil
}

// setFlags returns the names of the flags given on the command line.
func setFlags(fs *flag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}

// fromEnv fills *dst from the environment variable when the flag was not given:
// flags win over environment variables, which win over the suite file.
func fromEnv(set map[string]bool, flagName string, env Env, key string, dst *string) {
	if set[flagName] {
		return
	}
	if v, ok := env.Lookup(key); ok && v != "" {
		*dst = v
	}
}
