// Package exitcode is the one table of process exit codes that release gates act on.
package exitcode

import (
	"errors"
	"fmt"
)

// Code is a process exit code with a documented meaning (shared/spec/cli.md, README).
type Code int

// The exit-code table. Documented in README.md; change both together.
const (
	OK          Code = 0   // the gate passed
	Failed      Code = 1   // at least one case failed
	Blocked     Code = 2   // Failed (Blocked)
	Cancelled   Code = 3   // the run was cancelled
	Timeout     Code = 4   // no terminal status before --timeout
	Empty       Code = 5   // nothing to run and on_empty: fail
	Usage       Code = 64  // usage error or invalid suite file; nothing was submitted
	Unavailable Code = 69  // the execution service could not be reached or answered wrongly
	NoPerm      Code = 77  // the execution service refused the credentials
	Interrupted Code = 130 // SIGINT/SIGTERM
)

// String names the code for logs and step outputs.
func (c Code) String() string {
	switch c {
	case OK:
		return "ok"
	case Failed:
		return "failed"
	case Blocked:
		return "blocked"
	case Cancelled:
		return "cancelled"
	case Timeout:
		return "timeout"
	case Empty:
		return "empty"
	case Usage:
		return "usage"
	case Unavailable:
		return "unavailable"
	case NoPerm:
		return "noperm"
	case Interrupted:
		return "interrupted"
	}
	return fmt.Sprintf("code(%d)", int(c))
}

// Coder is implemented by errors that know which exit code they mean.
type Coder interface {
	ExitCode() int
}

// Error attaches an exit code to an error.
type Error struct {
	Code Code
	Err  error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return e.Code.String()
	}
	return e.Err.Error()
}
func (e *Error) Unwrap() error { return e.Err }
func (e *Error) ExitCode() int { return int(e.Code) }

var _ Coder = (*Error)(nil)

// Wrap gives err the exit code c. A nil err stays nil.
func Wrap(c Code, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Code: c, Err: err}
}

// Errorf formats an error carrying the exit code c.
func Errorf(c Code, format string, args ...any) error {
	return &Error{Code: c, Err: fmt.Errorf(format, args...)}
}

// Of maps an error to its exit code, once, at the top. An error that carries no
// code is a usage error (64): every path that reaches a service or runs a case
// attaches its own code, so what is left over came from the user's input.
func Of(err error) Code {
	if err == nil {
		return OK
	}
	var c Coder
	if errors.As(err, &c) {
		return Code(c.ExitCode())
	}
	return Usage
}

// errReported marks an outcome whose explanation was already printed in full.
var errReported = errors.New("already reported")

// Reported is the error for an outcome the command has already explained to the
// person: it carries the code, and the top prints nothing more. OK gives nil.
func Reported(c Code) error {
	if c == OK {
		return nil
	}
	return &Error{Code: c, Err: errReported}
}

// IsReported reports whether err's explanation was already printed.
func IsReported(err error) bool { return errors.Is(err, errReported) }
