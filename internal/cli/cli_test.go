package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"testing"

	"github.com/zof-ai/zof-ci/client"
	"github.com/zof-ai/zof-ci/internal/cli/iostreams"
	"github.com/zof-ai/zof-ci/internal/exitcode"
	"github.com/zof-ai/zof-ci/internal/gate"
	"github.com/zof-ai/zof-ci/internal/suite"
)

// TestDispatchMapsErrorsAtTheTop: the one place where what went wrong becomes
// an exit code. A panic and an error without a meaning are bugs (70, said as
// such), never a gate outcome (2 is Blocked) or a usage error (64).
func TestDispatchMapsErrorsAtTheTop(t *testing.T) {
	tests := []struct {
		name   string
		run    func() error
		want   exitcode.Code
		stderr []string // each must appear; nil: stderr must be empty
	}{
		{"nil", func() error { return nil }, exitcode.OK, nil},
		{"help", func() error { return flag.ErrHelp }, exitcode.OK, nil},
		{"panic", func() error { panic("index out of range") }, exitcode.Internal,
			[]string{"zof boom: internal error: index out of range", "This is a bug in zof", "goroutine "}},
		{"runtime error", func() error { var m map[string]int; m["x"] = 1; return nil }, exitcode.Internal, //lint:ignore SA5000 the test needs a runtime panic
			[]string{"zof boom: internal error: assignment to entry in nil map"}},
		{"uncoded error", func() error { return errors.New("unexpected state") }, exitcode.Internal,
			[]string{"zof boom: internal error: unexpected state (this is a bug in zof; please report it)"}},
		{"usage", func() error { return exitcode.Errorf(exitcode.Usage, "--timeout 0s: must be positive") }, exitcode.Usage,
			[]string{"zof boom: --timeout 0s: must be positive\n"}},
		{"invalid suite", func() error { return fmt.Errorf("x: %w", &suite.Error{}) }, exitcode.Usage, []string{"zof boom: x: "}},
		{"bad --fail-on", func() error { return gate.Usagef("--fail-on %q: no", "sometimes") }, exitcode.Usage, []string{`--fail-on "sometimes": no`}},
		{"token refused", func() error { return &client.Error{Kind: client.KindUnauthorized, Msg: "refused (401)"} }, exitcode.NoPerm, []string{"refused (401)"}},
		{"unavailable", func() error { return &client.Error{Kind: client.KindUnavailable, Msg: "unreachable"} }, exitcode.Unavailable, []string{"unreachable"}},
		{"reported", func() error { return exitcode.Reported(exitcode.Blocked) }, exitcode.Blocked, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ios, _, _, stderr := iostreams.Test()
			f := &Factory{IO: ios, Env: Env{}}
			c := &command{name: "boom", run: func(context.Context, *flag.FlagSet, []string) error { return tt.run() }}
			if got := dispatch(context.Background(), f, c, nil); got != int(tt.want) {
				t.Errorf("exit %d, want %d; stderr:\n%s", got, tt.want, stderr.String())
			}
			if tt.stderr == nil && stderr.Len() > 0 {
				t.Errorf("stderr %q, want nothing", stderr.String())
			}
			for _, s := range tt.stderr {
				if !strings.Contains(stderr.String(), s) {
					t.Errorf("stderr %q lacks %q", stderr.String(), s)
				}
			}
		})
	}
}
