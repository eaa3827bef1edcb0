// Package exitcode is the one table of process exit codes that release gates
// act on, and the one place where the gate's decisions and typed errors become
// them. Only the CLI (internal/cli) and main import it: everything below knows
// meanings (gate.Kind, suite.Error, client.ErrorKind, gate.UsageError), never
// numbers.
package exitcode

import (
	"context"
	"errors"
	"fmt"

	"github.com/zof-ai/zof-ci/client"
	"github.com/zof-ai/zof-ci/internal/agent"
	"github.com/zof-ai/zof-ci/internal/gate"
	"github.com/zof-ai/zof-ci/internal/reporters/report"
	"github.com/zof-ai/zof-ci/internal/suite"
)

// Code is a process exit code with a documented meaning (README "Exit codes").
type Code int

// The exit-code table. Documented in README.md; change both together.
//
//	code  meaning                                         from
//	0     the gate passed                                 gate.Passed
//	1     at least one case failed                        gate.Failed
//	2     Failed (Blocked)                                gate.Blocked
//	3     the run was cancelled                           gate.Cancelled
//	4     no verdict before --timeout                     gate.TimedOut, context.DeadlineExceeded
//	5     nothing to run and on_empty: fail               gate.Empty
//	64    usage error or invalid suite; nothing submitted *suite.Error, *gate.UsageError, client.KindInvalid, CLI flag errors
//	69    the execution service is unavailable            client.KindUnavailable; gate.NoVerdict without a cause of its own
//	70    internal error: a bug in zof (a panic, an error without a meaning)
//	76    zof agent: the server speaks another agent protocol  agent.KindProtocol
//	77    the execution service refused the credentials   client.KindUnauthorized, agent.KindUnauthorized
//	130   interrupted (SIGINT/SIGTERM)                    gate.Interrupted
const (
	OK          Code = 0
	Failed      Code = 1
	Blocked     Code = 2
	Cancelled   Code = 3
	Timeout     Code = 4
	Empty       Code = 5
	Usage       Code = 64  // EX_USAGE
	Unavailable Code = 69  // EX_UNAVAILABLE
	Internal    Code = 70  // EX_SOFTWARE
	Protocol    Code = 76  // EX_PROTOCOL
	NoPerm      Code = 77  // EX_NOPERM
	Interrupted Code = 130 // 128 + SIGINT
)

// String names the code for logs, reports and step outputs.
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
	case Internal:
		return "internal"
	case Protocol:
		return "protocol"
	case NoPerm:
		return "noperm"
	case Interrupted:
		return "interrupted"
	}
	return fmt.Sprintf("code(%d)", int(c))
}

// OfKind is the code of a gate decision. NoVerdict has no code of its own:
// OfVerdict finds it from the cause; alone it is Unavailable.
func OfKind(k gate.Kind) Code {
	switch k {
	case gate.Passed:
		return OK
	case gate.Failed:
		return Failed
	case gate.Blocked:
		return Blocked
	case gate.Cancelled:
		return Cancelled
	case gate.TimedOut:
		return Timeout
	case gate.Empty:
		return Empty
	case gate.Interrupted:
		return Interrupted
	case gate.NoVerdict:
		return Unavailable
	}
	return Internal
}

// OfVerdict is the code zof exits with for the gate's verdict. A run that
// could not be followed to its end takes its cause's code (77 when the token
// was refused), else 69: it is an infrastructure failure, not the user's input.
func OfVerdict(v gate.Verdict) Code {
	if v.Kind != gate.NoVerdict || v.Err == nil {
		return OfKind(v.Kind)
	}
	if c := Of(v.Err); c != Usage && c != OK && c != Internal {
		return c
	}
	return Unavailable
}

// Report is the exit code of a verdict as reports state it.
func Report(v gate.Verdict) report.Exit {
	c := OfVerdict(v)
	return report.Exit{Code: int(c), Name: c.String()}
}

// Error attaches an exit code to an error. Only the CLI makes them (its own
// flag and argument errors); the layers below return errors typed by meaning.
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

// Of maps an error to its exit code, once, at the top (the table above). An
// error with no meaning zof knows is an internal error (70): every usage and
// suite error is typed as such, so what is left over is a bug, not the
// user's input.
func Of(err error) Code {
	if err == nil {
		return OK
	}
	var (
		coded *Error
		ce    *client.Error
		ae    *agent.Error
	)
	switch {
	case errors.As(err, &coded):
		return coded.Code
	case errors.As(err, &ae):
		if ae.Kind == agent.KindProtocol {
			return Protocol
		}
		return NoPerm
	case errors.As(err, new(*suite.Error)), gate.IsUsage(err):
		return Usage
	case errors.As(err, &ce):
		switch ce.Kind {
		case client.KindUnauthorized:
			return NoPerm
		case client.KindInvalid:
			return Usage
		}
		return Unavailable
	case errors.Is(err, context.DeadlineExceeded):
		return Timeout
	}
	return Internal
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

// reporter is an error whose explanation its maker already printed (e.g. every
// problem of an invalid suite); its code comes from what it wraps.
type reporter interface{ Reported() bool }

// IsReported reports whether err's explanation was already printed.
func IsReported(err error) bool {
	var r reporter
	return errors.Is(err, errReported) || (errors.As(err, &r) && r.Reported())
}
