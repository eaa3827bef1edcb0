package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/zof-ai/zof-ci/internal/exitcode"
)

// command is one zof command. Its constructor (newCmdX(f, runF)) binds the
// flags to an options struct; exec parses the arguments, then run fills in the
// environment, validates and either hands the options to runF (a test capturing
// what was parsed) or runs the command.
type command struct {
	name    string
	args    string // the synopsis after the name
	short   string
	long    string
	example string
	// flags declares the command's flags on fs.
	flags func(fs *flag.FlagSet)
	// run gets the positional arguments and fs (which flags were given).
	run func(ctx context.Context, fs *flag.FlagSet, pos []string) error
}

// exec parses args (flags before or after the positional arguments) and runs the
// command; --help writes the command's help to help and returns flag.ErrHelp.
func (c *command) exec(ctx context.Context, help io.Writer, args []string) error {
	fs := c.flagSet()
	pos, err := parseArgs(c, fs, args)
	if errors.Is(err, flag.ErrHelp) {
		writeHelp(help, c, fs)
		return err
	}
	if err != nil {
		return err
	}
	return c.run(ctx, fs, pos)
}

// flagSet is the command's flags; the flag package prints nothing (errors
// are one line, see flagError, and help is writeHelp).
func (c *command) flagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("zof "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if c.flags != nil {
		c.flags(fs)
	}
	return fs
}

// parseArgs parses flags that may come before or after the positional arguments
// ("zof watch RUN --server X" as well as "zof watch --server X RUN"); "--" ends
// the flags.
func parseArgs(c *command, fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, flagError(c, fs, err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if rest[0] == "--" {
			return append(pos, rest[1:]...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// The flag package's parse errors (flag.go's failf calls), which name flags
// with one dash.
var (
	errUndefined = regexp.MustCompile(`^flag provided but not defined: -(.*)$`)
	errNoValue   = regexp.MustCompile(`^flag needs an argument: -(.*)$`)
	errBadBool   = regexp.MustCompile(`^invalid boolean value (".*") for -([^:]*): `)
	errBadValue  = regexp.MustCompile(`^invalid value (".*") for flag -([^:]*): (.*)$`)
)

// flagError turns a parse error into one usage line that names flags as the
// docs do (--flag), suggests the flag meant, and points at the command's help.
func flagError(c *command, fs *flag.FlagSet, err error) error {
	msg := err.Error()
	switch m := (matcher{s: msg}); {
	case m.match(errUndefined):
		var names []string
		fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
		msg = fmt.Sprintf("unknown flag --%s%s", m.sub[1], didYouMean(m.sub[1], names, "--"))
	case m.match(errNoValue):
		msg = fmt.Sprintf("--%s needs a value: --%s VALUE", m.sub[1], m.sub[1])
	case m.match(errBadBool):
		msg = fmt.Sprintf("invalid value %s for --%s: use true or false (--%s=false)", m.sub[1], m.sub[2], m.sub[2])
		if f := fs.Lookup(m.sub[2]); f != nil {
			if _, plain := f.Value.(flag.Getter); !plain {
				// A flag that takes more than a boolean (--shadow=sample:N) says what it takes.
				msg = fmt.Sprintf("invalid value %s for --%s: %s", m.sub[1], m.sub[2], strings.TrimPrefix(err.Error(), m.sub[0]))
			}
		}
	case m.match(errBadValue):
		why := m.sub[3]
		if f := fs.Lookup(m.sub[2]); f != nil && why == "parse error" {
			switch f.Value.(flag.Getter).Get().(type) {
			case time.Duration:
				why = "use a duration such as 90s, 30m or 1h"
			case int:
				why = "use a whole number"
			}
		}
		msg = fmt.Sprintf("invalid value %s for --%s: %s", m.sub[1], m.sub[2], why)
	}
	return exitcode.Errorf(exitcode.Usage, "%s. Run 'zof %s --help' for its flags", msg, c.name)
}

type matcher struct {
	s   string
	sub []string
}

func (m *matcher) match(re *regexp.Regexp) bool {
	m.sub = re.FindStringSubmatch(m.s)
	return m.sub != nil
}

// didYouMean is ` (did you mean PREFIXname?)` for the closest of names to typed,
// or "" when none is close: at most two edits away (and fewer than typed has
// letters), or typed is the start of it.
func didYouMean(typed string, names []string, prefix string) string {
	best, bestDist := "", 0
	for _, n := range names {
		d := editDistance(strings.ToLower(typed), strings.ToLower(n))
		close := d <= 2 && d < len(typed)
		if !close && !(len(typed) > 1 && strings.HasPrefix(n, typed)) {
			continue
		}
		if best == "" || d < bestDist {
			best, bestDist = n, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %s%s?)", prefix, best)
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// writeHelp writes the command's synopsis, description, example and flags, each
// flag as the docs write it: --name.
func writeHelp(w io.Writer, c *command, fs *flag.FlagSet) {
	var b strings.Builder
	synopsis := "zof " + c.name + " [flags]"
	if c.args != "" {
		synopsis += " " + c.args
	}
	fmt.Fprintf(&b, "Usage: %s\n\n%s\n", synopsis, c.short)
	if c.long != "" {
		fmt.Fprintf(&b, "\n%s\n", c.long)
	}
	fmt.Fprintf(&b, "\nExample:\n  %s\n", c.example)
	first := true
	fs.VisitAll(func(f *flag.Flag) {
		if first {
			b.WriteString("\nFlags:\n")
			first = false
		}
		typ, usage := flag.UnquoteUsage(f)
		fmt.Fprintf(&b, "  --%s", f.Name)
		if typ != "" {
			fmt.Fprintf(&b, " %s", typ)
		}
		fmt.Fprintf(&b, "\n      %s", strings.ReplaceAll(usage, "\n", "\n      "))
		if d := f.DefValue; d != "" && d != "false" && d != "0" {
			if typ == "string" {
				d = fmt.Sprintf("%q", d)
			}
			fmt.Fprintf(&b, " (default %s)", d)
		}
		b.WriteString("\n")
	})
	io.WriteString(w, b.String())
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

// noArgs refuses positional arguments for a command that takes only flags.
func noArgs(c *command, pos []string, hint string) error {
	if len(pos) > 0 {
		return exitcode.Errorf(exitcode.Usage, "unexpected argument %q: zof %s takes only flags%s", pos[0], c.name, hint)
	}
	return nil
}

// checkOutput validates --output.
func checkOutput(output string) error {
	if output != "text" && output != "json" {
		return exitcode.Errorf(exitcode.Usage, "--output %q: use text or json", output)
	}
	return nil
}
