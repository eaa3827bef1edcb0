// Package iostreams is the command's standard streams and what is known about
// them: whether stdout is a terminal is decided once, when the process starts,
// and a test can set it (the pattern of gh's IOStreams).
package iostreams

import (
	"bytes"
	"io"

	"golang.org/x/term"
)

// IOStreams are a command's stdin, stdout and stderr.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer

	stdoutTTY bool
}

// System wraps the process's streams and decides whether stdout is a terminal:
// a file whose descriptor the terminal driver accepts (term.IsTerminal, an
// ioctl), not merely a character device — /dev/null is one of those too, and
// CI logs redirected there must stay plain.
func System(in io.Reader, out, errOut io.Writer) *IOStreams {
	return &IOStreams{In: in, Out: out, ErrOut: errOut, stdoutTTY: isTerminal(out)}
}

// Test returns streams over buffers, stdout not a terminal, and the buffers.
func Test() (s *IOStreams, in, out, errOut *bytes.Buffer) {
	in, out, errOut = &bytes.Buffer{}, &bytes.Buffer{}, &bytes.Buffer{}
	return &IOStreams{In: in, Out: out, ErrOut: errOut}, in, out, errOut
}

// IsStdoutTTY reports whether stdout is a terminal (a person watching), so a
// redrawing live view and colour are fine.
func (s *IOStreams) IsStdoutTTY() bool { return s.stdoutTTY }

// SetStdoutTTY overrides the decision, for tests.
func (s *IOStreams) SetStdoutTTY(tty bool) { s.stdoutTTY = tty }

// fder is an *os.File, or anything else with a descriptor.
type fder interface{ Fd() uintptr }

func isTerminal(v any) bool {
	f, ok := v.(fder)
	return ok && term.IsTerminal(int(f.Fd()))
}
