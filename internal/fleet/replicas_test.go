package fleet_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/fleet"
)

// A replica that stops being the fleet's home ends what its fleet held as
// lost: the queued attempt and the leased one both come back Lost with the
// reason, the holder is told to stop its lease, and a late write under it
// is fenced.
func TestAbandonEndsEverythingAsLost(t *testing.T) {
	h := newHarness(t, 0, nil)
	id := h.connect("eu-1", 1)
	leased := h.start("run_1", "c1")
	l := h.poll(id, 1).Leases[0]
	queued := h.start("run_2", "c2")

	h.f.Abandon("the fleet's home moved to replica b")
	for name, a := range map[string]*attempt{"leased": leased, "queued": queued} {
		out := a.outcome(t)
		if out.Lost != "the fleet's home moved to replica b" {
			t.Errorf("%s attempt: outcome %+v, want lost with the reason", name, out)
		}
	}
	if n := h.f.Queued("pay", "eu"); n != 0 {
		t.Errorf("%d attempts still queued", n)
	}
	w, err := h.f.Heartbeat(eu, api.AgentHeartbeat{AgentID: id, Held: []api.LeaseRef{{ID: l.ID, Epoch: l.Epoch}}})
	if err != nil || len(w.Stop) != 1 || w.Stop[0].ID != l.ID || !strings.Contains(w.Stop[0].Reason, "home moved") {
		t.Fatalf("heartbeat after abandon: %+v, %v; want a stop of the lease", w, err)
	}
	if err := h.f.Result(eu, l.ID, api.LeaseResult{Epoch: l.Epoch, Status: api.StatusPassed}); !errors.Is(err, fleet.ErrFenced) {
		t.Fatalf("result after abandon: %v, want fenced", err)
	}
}

// The snapshot a replica that is not the home shows: every tenant's
// agents, the members waiting and why, the pools' figures; its List and
// MemberWaits answer what the fleet's own do.
func TestSnapshotAnswersLikeTheFleet(t *testing.T) {
	h := newHarness(t, 0, nil)
	id := h.connect("eu-1", 1)
	h.start("run_1", "c1")
	h.poll(id, 1)
	h.start("run_1", "c2") // waits: the only agent is busy
	s := h.f.Snapshot()
	if got, want := s.List("pay", ""), h.f.List("pay", ""); len(got) != 1 || got[0].ID != want[0].ID || got[0].State != api.AgentBusy || len(got[0].Held) != 1 {
		t.Fatalf("snapshot lists %+v, the fleet %+v", got, want)
	}
	if got := s.List("other", ""); len(got) != 0 {
		t.Fatalf("another tenant sees %+v", got)
	}
	got, want := s.MemberWaits("pay", "run_1"), h.f.MemberWaits("pay", "run_1")
	if len(got) != 1 || got["c2"].Message != want["c2"].Message || !strings.Contains(got["c2"].Message, "1 online, 1 members running") {
		t.Fatalf("snapshot waits %+v, the fleet's %+v", got, want)
	}
	if len(s.Stats) != 1 || s.Stats[0].Queued != 1 || s.Stats[0].Live != 1 {
		t.Fatalf("stats %+v", s.Stats)
	}
}

// A fleet that is away (its replica is not the fleet's home) takes no
// attempt: one handed to it is lost at once with the reason, so it runs
// again through the home; once back, it takes attempts again.
func TestAwayFleetLosesNewAttemptsAtOnce(t *testing.T) {
	h := newHarness(t, 0, nil)
	queued := h.start("run_1", "c1")
	h.f.SetAway("replica a is not the fleet's home")
	if out := queued.outcome(t); out.Lost != "replica a is not the fleet's home" {
		t.Fatalf("queued attempt: %+v", out)
	}
	if out := h.launch("run_2", "c2").outcome(t); out.Lost != "replica a is not the fleet's home" {
		t.Fatalf("attempt handed to an away fleet: %+v", out)
	}
	h.f.SetAway("")
	id := h.connect("eu-1", 1)
	again := h.start("run_2", "c2")
	l := h.poll(id, 1).Leases[0]
	if err := h.f.Result(eu, l.ID, api.LeaseResult{Epoch: l.Epoch, Status: api.StatusPassed}); err != nil {
		t.Fatal(err)
	}
	if out := again.outcome(t); out.Status != api.StatusPassed {
		t.Fatalf("back home: %+v", out)
	}
}
