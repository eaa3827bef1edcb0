package engine_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
)

// scriptedSteps answers each step by its command: "pass:K=V" passes with a
// capture, "fail" fails, "hang" waits for its context; it keeps the captures
// each step was given.
type scriptedSteps struct{ seen []map[string]string }

func (s *scriptedSteps) Run(ctx context.Context, st api.Step, in engine.StepInput) engine.StepOutput {
	s.seen = append(s.seen, in.Captures)
	cmd := st.Run.Command
	switch {
	case strings.HasPrefix(cmd, "pass:"):
		k, v, _ := strings.Cut(strings.TrimPrefix(cmd, "pass:"), "=")
		return engine.StepOutput{Status: api.StepPassed, Captures: map[string]string{k: v}}
	case cmd == "hang":
		<-ctx.Done()
		return engine.StepOutput{Status: api.StepCancelled}
	}
	return engine.StepOutput{Status: api.StepFailed, Failure: &api.Failure{Message: "boom"}}
}

// TestRunAttempt: the exported attempt (what zof agent runs) keeps the
// engine's rules: captures flow forward, the first failing step ends the
// attempt and the rest are skipped, a case timeout fails the step it stops,
// a cancelled context cancels.
func TestRunAttempt(t *testing.T) {
	steps := func(cmds ...string) []api.Step {
		var out []api.Step
		for _, c := range cmds {
			out = append(out, api.Step{Run: &api.Command{Command: c}})
		}
		return out
	}
	tests := []struct {
		name     string
		c        api.Case
		cancel   bool
		want     api.Status
		why      string
		last     []api.StepStatus
		recorded int // Record calls
	}{
		{"passes with captures", api.Case{Steps: steps("pass:a=1", "pass:b=2")}, false, api.StatusPassed, "", []api.StepStatus{api.StepPassed}, 2},
		{"fails and skips the rest", api.Case{Steps: steps("pass:a=1", "fail", "pass:c=3")}, false, api.StatusFailed, "step 2 (run: fail): boom", []api.StepStatus{api.StepFailed, api.StepSkipped}, 2},
		{"case timeout fails the step", api.Case{Timeout: api.Duration(20 * time.Millisecond), Steps: steps("hang", "pass:x=1")}, false, api.StatusFailed, "case timeout of 20ms", []api.StepStatus{api.StepFailed, api.StepSkipped}, 1},
		{"cancelled", api.Case{Steps: steps("pass:a=1", "pass:b=2")}, true, api.StatusCancelled, "cancelled", []api.StepStatus{api.StepSkipped, api.StepSkipped}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.cancel {
				cancel()
			}
			rs := &scriptedSteps{}
			calls := 0
			st, why, last := engine.RunAttempt(ctx, engine.Attempt{
				Member: "m", Case: &tt.c, Steps: rs, CancelGrace: time.Second,
				Record: func(evs ...api.Event) { calls++ },
			}, nil)
			if st != tt.want || !strings.Contains(why, tt.why) {
				t.Fatalf("status %s %q, want %s %q", st, why, tt.want, tt.why)
			}
			var got []api.StepStatus
			for _, e := range last {
				got = append(got, e.StepStatus)
			}
			if len(got) != len(tt.last) {
				t.Fatalf("last events %v, want %v", got, tt.last)
			}
			for i := range got {
				if got[i] != tt.last[i] {
					t.Fatalf("last events %v, want %v", got, tt.last)
				}
			}
			if calls != tt.recorded {
				t.Errorf("Record called %d times, want %d", calls, tt.recorded)
			}
			if tt.name == "passes with captures" && rs.seen[1]["a"] != "1" {
				t.Errorf("step 2 got captures %v, want a=1 from step 1", rs.seen[1])
			}
		})
	}
}
