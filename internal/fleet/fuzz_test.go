package fleet_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/fleet"
)

// FuzzLeaseResult decodes a result body as the server does (strict JSON)
// and hands it to the fleet under a live lease. Whatever the bytes: no
// panic; a refused result records nothing and leaves the lease live (a
// valid result still ends it); an accepted one ends the attempt with a
// valid status and only the member's step and log events, steps in range,
// outputs bounded.
func FuzzLeaseResult(f *testing.F) {
	for _, seed := range []string{
		`{"epoch":1,"status":"passed","events":[{"type":"step.status","step":1,"step_status":"passed"}]}`,
		`{"epoch":1,"status":"failed","reason":"step 1","events":[{"type":"log","message":"x"},{"type":"step.status","step":2,"step_status":"failed","failure":{"message":"boom"}}]}`,
		`{"epoch":1,"status":"running"}`,
		`{"epoch":1,"status":"passed","events":[{"type":"member.status","status":"passed"}]}`,
		`{"epoch":1,"status":"passed","events":[{"type":"step.status","step":0,"step_status":"passed"}]}`,
		`{"epoch":2,"status":"passed"}`,
		`{"epoch":1,"status":"cancelled","events":[{"type":"step.status","step":1,"step_status":"passed","duration":-5}]}`,
		`{"epoch":1,"status":"passed","events":[{"type":"log","member":"other","message":"x"}]}`,
		`[]`, `{}`, `null`, `{"epoch":"1"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var res api.LeaseResult
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if dec.Decode(&res) != nil {
			return // the server answers 400 before the fleet sees it
		}
		h := newHarness(t, 0, nil)
		id := h.connect("eu-1", 1)
		a := h.start("run_1", "c1")
		l := h.poll(id, 1).Leases[0]
		if res.Epoch == 1 {
			res.Epoch = l.Epoch // the seeds' "1" is the live epoch
		}
		err := h.f.Result(eu, l.ID, res)
		if err != nil {
			if len(a.recorded()) != 0 {
				t.Fatalf("a refused result recorded %+v", a.recorded())
			}
			if err := h.f.Result(eu, l.ID, api.LeaseResult{Epoch: l.Epoch, Status: api.StatusPassed}); err != nil {
				t.Fatalf("after a refused result the lease is not live: %v", err)
			}
			if out := a.outcome(t); out.Status != api.StatusPassed {
				t.Fatalf("outcome %+v", out)
			}
			return
		}
		out := a.outcome(t)
		switch out.Status {
		case api.StatusPassed, api.StatusFailed, api.StatusCancelled:
		default:
			t.Fatalf("accepted status %q", out.Status)
		}
		for _, ev := range out.Events {
			if ev.Member != "c1" || (ev.Type != api.EventLog && ev.Type != api.EventStepStatus) ||
				(ev.Type == api.EventStepStatus && (ev.Step < 1 || ev.Step > 2)) || len(ev.Output) > fleet.MaxOutput+64 ||
				(ev.Type == api.EventLog && strings.Count(ev.Message, "") > fleet.MaxMessage+1) {
				t.Fatalf("accepted event %+v", ev)
			}
		}
	})
}
