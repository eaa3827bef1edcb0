package agent

import (
	"context"
	"fmt"
	"net/url"
	"unicode/utf8"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/server/config"
)

// policy is the pool's policy as the agent enforces it, whatever the server
// sent in a lease: an agent never reaches what its pool's targets do not
// allow, nor runs a command when the pool does not allow commands.
type policy struct {
	pool          string
	targets       []config.Pattern
	allowCommands bool
}

// newPolicy reads the session's policy; bad lists the patterns it could not
// read (they allow nothing).
func newPolicy(pool string, p api.AgentPolicy) (pol *policy, bad []string) {
	pol = &policy{pool: pool, allowCommands: p.AllowCommands}
	for _, raw := range p.Targets {
		pat, err := config.ParsePattern(raw)
		if err != nil {
			bad = append(bad, err.Error())
			continue
		}
		pol.targets = append(pol.targets, pat)
	}
	return pol, bad
}

// allowURL is every http step's check, the first request and each redirect
// (engine.StepInput.AllowURL).
func (p *policy) allowURL(u *url.URL) error {
	if !config.Allowed(p.targets, u) {
		return fmt.Errorf("the agents of pool %s may not reach %s (the pool's targets in server.yaml)", p.pool, u.Redacted())
	}
	return nil
}

// policySteps refuses run steps on a pool without allow_commands before
// anything starts.
type policySteps struct {
	inner engine.StepRunner
	pol   *policy
}

var _ engine.StepRunner = policySteps{}

func (p policySteps) Run(ctx context.Context, s api.Step, in engine.StepInput) engine.StepOutput {
	if s.Run != nil && !p.pol.allowCommands {
		return engine.StepOutput{Status: api.StepFailed, Failure: &api.Failure{Message: fmt.Sprintf(
			"run: steps may not run on the agents of pool %s (allow_commands is false in server.yaml); allow them there or use an http step", p.pol.pool)}}
	}
	return p.inner.Run(ctx, s, in)
}

// clipEvents bounds every event's free text before it is sent: an output
// keeps its last MaxEventOutput bytes after a marker, other text its first
// maxEventText bytes.
func clipEvents(evs []api.Event) []api.Event {
	out := make([]api.Event, len(evs))
	for i, e := range evs {
		e.Output = clipTail(e.Output, MaxEventOutput)
		e.Message = clipHead(e.Message, maxEventText)
		e.Reason = clipHead(e.Reason, maxEventText)
		if f := e.Failure; f != nil {
			e.Failure = &api.Failure{Message: clipHead(f.Message, maxEventText), Expected: clipHead(f.Expected, maxEventText), Actual: clipHead(f.Actual, maxEventText)}
		}
		out[i] = e
	}
	return out
}

// clipTail keeps the end of s, at most n bytes on a rune boundary, after a
// line saying how much was cut.
func clipTail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := len(s) - n
	for cut < len(s) && !utf8.RuneStart(s[cut]) {
		cut++
	}
	return fmt.Sprintf("… (%d bytes truncated by the agent)\n%s", cut, s[cut:])
}

// clipHead keeps the start of s, at most n bytes on a rune boundary.
func clipHead(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s… (%d bytes truncated by the agent)", s[:cut], len(s)-cut)
}
