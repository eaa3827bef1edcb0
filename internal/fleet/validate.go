package fleet

import (
	"fmt"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/step"
)

// Bounds of what an agent may report under a lease. A step's output is
// kept to the engine's own cap (step.DefaultMaxOutput: its tail, marked
// where it was cut), so an agent's step costs the store what a local one does.
const (
	// MaxOutput is the most of a step's output kept.
	MaxOutput = step.DefaultMaxOutput
	// MaxMessage bounds a log line and a failure's text.
	MaxMessage = 16 << 10
	// MaxReason bounds a result's reason.
	MaxReason = 4 << 10
	// MaxEvents bounds the events of one report or result.
	MaxEvents = 1024
	// MaxEvidence bounds one piece of a failed step's evidence: the
	// executor's body limit (step.MaxEvidenceBody) plus room for the status
	// line, headers and the cut marker. MaxEvidencePieces bounds the pieces
	// of one result (a failed http step leaves two, a run step one).
	MaxEvidence       = step.MaxEvidenceBody + 64<<10
	MaxEvidencePieces = 8
)

// checkEvidence validates the evidence of attempt a's result: steps within
// the case, a known kind, bounded sizes. Anything out of bounds is refused
// whole, like events.
func checkEvidence(a engine.RemoteAttempt, ev []api.LeaseEvidence) (map[int][]engine.Evidence, error) {
	if len(ev) == 0 {
		return nil, nil
	}
	if len(ev) > MaxEvidencePieces {
		return nil, &BadInputError{[]string{fmt.Sprintf("%d pieces of evidence in one result; at most %d", len(ev), MaxEvidencePieces)}}
	}
	var probs []string
	out := map[int][]engine.Evidence{}
	for i, x := range ev {
		switch {
		case x.Step < 1 || x.Step > len(a.Case.Steps):
			probs = append(probs, fmt.Sprintf("evidence[%d]: step %d is not a step of case %s (1 to %d)", i, x.Step, a.Case.ID, len(a.Case.Steps)))
			continue
		case x.Kind != api.ArtifactRequest && x.Kind != api.ArtifactResponse && x.Kind != api.ArtifactOutput:
			probs = append(probs, fmt.Sprintf("evidence[%d]: kind %q is not request, response or output", i, x.Kind))
			continue
		case len(x.Content) > MaxEvidence:
			probs = append(probs, fmt.Sprintf("evidence[%d]: %d bytes; at most %d", i, len(x.Content), MaxEvidence))
			continue
		case len(x.ContentType) > 100:
			probs = append(probs, fmt.Sprintf("evidence[%d]: content_type is %d bytes; at most 100", i, len(x.ContentType)))
			continue
		}
		out[x.Step] = append(out[x.Step], engine.Evidence{Kind: x.Kind, ContentType: x.ContentType, Content: x.Content, Truncated: x.Truncated})
	}
	if len(probs) > 0 {
		return nil, &BadInputError{probs}
	}
	return out, nil
}

// checkEvents validates an agent's events for attempt a: step_status and log
// only, of a's member, step numbers within the case. Outputs are truncated
// at MaxOutput with a marker; anything else out of bounds is refused whole.
func checkEvents(a engine.RemoteAttempt, evs []api.Event) ([]api.Event, error) {
	if len(evs) > MaxEvents {
		return nil, &BadInputError{[]string{fmt.Sprintf("%d events in one request; send at most %d at a time", len(evs), MaxEvents)}}
	}
	var probs []string
	out := make([]api.Event, 0, len(evs))
	for i, ev := range evs {
		where := fmt.Sprintf("events[%d]", i)
		if ev.Member != "" && ev.Member != a.Member {
			probs = append(probs, fmt.Sprintf("%s: member %q is not the lease's member %q", where, ev.Member, a.Member))
			continue
		}
		switch ev.Type {
		case api.EventLog:
			if len(ev.Message) > MaxMessage {
				probs = append(probs, fmt.Sprintf("%s: a log message of %d bytes; at most %d", where, len(ev.Message), MaxMessage))
				continue
			}
			out = append(out, api.Event{Type: api.EventLog, Member: a.Member, Message: ev.Message})
		case api.EventStepStatus:
			if ev.Step < 1 || ev.Step > len(a.Case.Steps) {
				probs = append(probs, fmt.Sprintf("%s: step %d is not a step of case %s (1 to %d)", where, ev.Step, a.Case.ID, len(a.Case.Steps)))
				continue
			}
			switch ev.StepStatus {
			case api.StepRunning, api.StepPassed, api.StepFailed, api.StepCancelled, api.StepSkipped:
			default:
				probs = append(probs, fmt.Sprintf("%s: step status %q is not running, passed, failed, cancelled or skipped", where, ev.StepStatus))
				continue
			}
			if ev.Duration < 0 {
				probs = append(probs, fmt.Sprintf("%s: negative duration", where))
				continue
			}
			if f := ev.Failure; f != nil && len(f.Message)+len(f.Expected)+len(f.Actual) > MaxMessage {
				probs = append(probs, fmt.Sprintf("%s: the failure is over %d bytes", where, MaxMessage))
				continue
			}
			out = append(out, api.Event{Type: api.EventStepStatus, Member: a.Member, Step: ev.Step, StepStatus: ev.StepStatus,
				Failure: ev.Failure, Output: truncate(ev.Output), Duration: ev.Duration})
		default:
			probs = append(probs, fmt.Sprintf("%s: type %q; an agent reports step_status and log events only", where, ev.Type))
		}
	}
	if len(probs) > 0 {
		return nil, &BadInputError{probs}
	}
	return out, nil
}

// truncate keeps the tail of an output over MaxOutput, marked like the step
// executor marks its own ("… (N bytes truncated)").
func truncate(s string) string {
	if len(s) <= MaxOutput {
		return s
	}
	cut := len(s) - MaxOutput
	return fmt.Sprintf("… (%d bytes truncated)\n", cut) + s[cut:]
}
