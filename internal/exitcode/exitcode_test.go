package exitcode

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/zof-ai/zof-ci/client"
	"github.com/zof-ai/zof-ci/internal/agent"
	"github.com/zof-ai/zof-ci/internal/gate"
	"github.com/zof-ai/zof-ci/internal/reporters/reporttest"
	"github.com/zof-ai/zof-ci/internal/suite"
)

// TestOf walks every typed error of the table to its code.
func TestOf(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want Code
	}{
		{"nil", nil, OK},
		{"uncoded is internal", errors.New("something zof did not expect"), Internal},
		{"coded", Errorf(Unavailable, "no server"), Unavailable},
		{"wrapped keeps its code", fmt.Errorf("creating run: %w", Wrap(NoPerm, errors.New("401"))), NoPerm},
		{"reported", Reported(Failed), Failed},
		{"invalid suite", fmt.Errorf("loading: %w", &suite.Error{}), Usage},
		{"gate usage", gate.Usagef("--fail-on %q: no", "x"), Usage},
		{"client unauthorized", &client.Error{Kind: client.KindUnauthorized, Msg: "401"}, NoPerm},
		{"client unavailable", fmt.Errorf("x: %w", &client.Error{Kind: client.KindUnavailable, Msg: "down"}), Unavailable},
		{"client invalid", &client.Error{Kind: client.KindInvalid, Msg: "422"}, Usage},
		{"deadline", fmt.Errorf("waiting: %w", context.DeadlineExceeded), Timeout},
		{"agent token refused", fmt.Errorf("agent: %w", &agent.Error{Kind: agent.KindUnauthorized, Msg: "401"}), NoPerm},
		{"agent protocol", &agent.Error{Kind: agent.KindProtocol, Msg: "426"}, Protocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Of(tt.err); got != tt.want {
				t.Errorf("Of(%v) = %d, want %d", tt.err, got, tt.want)
			}
		})
	}
	if Reported(OK) != nil || Wrap(Failed, nil) != nil {
		t.Error("OK / nil must stay nil")
	}
	if !IsReported(fmt.Errorf("x: %w", Reported(Empty))) || IsReported(Errorf(Empty, "x")) {
		t.Error("IsReported wrong")
	}
}

type printed struct{ error }

func (printed) Reported() bool  { return true }
func (p printed) Unwrap() error { return p.error }

// TestReportedByMeaning: an error its maker already printed is not printed
// again and keeps the code of what it wraps.
func TestReportedByMeaning(t *testing.T) {
	err := printed{&suite.Error{}}
	if !IsReported(err) || Of(err) != Usage {
		t.Errorf("IsReported %v, Of %d; want true, 64", IsReported(err), Of(err))
	}
}

// TestOfVerdict maps every gate decision, and a run lost for a reason takes
// that reason's code (77 for a refused token), else 69.
func TestOfVerdict(t *testing.T) {
	tests := []struct {
		v    gate.Verdict
		want Code
	}{
		{gate.Verdict{Kind: gate.Passed}, OK},
		{gate.Verdict{Kind: gate.Failed}, Failed},
		{gate.Verdict{Kind: gate.Blocked}, Blocked},
		{gate.Verdict{Kind: gate.Cancelled}, Cancelled},
		{gate.Verdict{Kind: gate.TimedOut}, Timeout},
		{gate.Verdict{Kind: gate.Empty}, Empty},
		{gate.Verdict{Kind: gate.Interrupted}, Interrupted},
		{gate.Verdict{Kind: gate.NoVerdict}, Unavailable},
		{gate.Verdict{Kind: gate.NoVerdict, Err: &client.Error{Kind: client.KindUnauthorized}}, NoPerm},
		{gate.Verdict{Kind: gate.NoVerdict, Err: &client.Error{Kind: client.KindUnavailable}}, Unavailable},
		{gate.Verdict{Kind: gate.NoVerdict, Err: &client.Error{Kind: client.KindInvalid}}, Unavailable},
		{gate.Verdict{Kind: gate.NoVerdict, Err: errors.New("no code of its own")}, Unavailable},
		{gate.Verdict{Kind: gate.Kind(99)}, Internal},
	}
	for _, tt := range tests {
		if got := OfVerdict(tt.v); got != tt.want {
			t.Errorf("OfVerdict(%s, %v) = %d, want %d", tt.v.Kind, tt.v.Err, got, tt.want)
		}
	}
}

// TestFixturesAgree: the exit codes the reporters' fixtures state are this table's.
func TestFixturesAgree(t *testing.T) {
	for kind, exit := range reporttest.Exits {
		got := Report(gate.Verdict{Kind: kind})
		if got != exit {
			t.Errorf("%s: reporttest says %+v, the table %+v", kind, exit, got)
		}
	}
}

// TestCodesAreDistinct: one code per meaning, as the README's table says.
func TestCodesAreDistinct(t *testing.T) {
	seen := map[string]Code{}
	for _, c := range []Code{OK, Failed, Blocked, Cancelled, Timeout, Empty, Usage, Unavailable, Internal, NoPerm, Interrupted} {
		if prev, ok := seen[c.String()]; ok {
			t.Errorf("%d and %d share the name %q", prev, c, c.String())
		}
		seen[c.String()] = c
	}
}
