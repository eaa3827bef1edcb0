package fleet_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/fleet"
)

// TestFencingUnderFaults drives the fleet through 1,000+ random trials of
// agent faults (silence past the TTL, lost poll answers, late and replayed
// writes at old epochs, disconnects, cancels) and checks, after every step:
// no write is accepted for an attempt whose outcome was already given to the
// engine (0 stale writes), and a member is never leased to two agents at once.
func TestFencingUnderFaults(t *testing.T) {
	h := newHarness(t, 0, func(o *fleet.Options) { o.PollWait = time.Millisecond; o.StopGrace = time.Millisecond })
	rng := rand.New(rand.NewPCG(11, 12))
	type held struct {
		lease api.Lease
		agent string
	}
	type live struct {
		out    chan engine.RemoteOutcome
		cancel context.CancelFunc
		done   bool
		member string
	}
	var agents []string
	for i := range 3 {
		agents = append(agents, h.connect(fmt.Sprint("a", i), 2))
	}
	attempts := map[string]*live{} // run id → its one attempt
	var leases []held              // every lease ever granted (stale ones stay: agents replay them)
	stale, writes, trials := 0, 0, 0
	settle := func() {
		for _, a := range attempts {
			if a.done {
				continue
			}
			select {
			case <-a.out:
				a.done = true
			default:
			}
		}
	}
	start := func(i int) {
		ctx, cancel := context.WithCancel(context.Background())
		run := fmt.Sprint("run_", i)
		a := &live{out: make(chan engine.RemoteOutcome, 1), cancel: cancel, member: "c"}
		attempts[run] = a
		ra := engine.RemoteAttempt{Tenant: "pay", Pool: "eu", RunID: run, Member: "c", Attempt: 1,
			Case: &api.Case{ID: "c", Steps: []api.Step{{Name: "s"}}}}
		go func() { a.out <- h.f.RunAttempt(ctx, ra, func([]api.Event) {}) }()
		h.until("queued", func() bool { return len(h.f.MemberWaits("pay", run)) == 1 })
	}
	write := func(l held) {
		a := attempts[l.lease.RunID]
		settle()
		wasDone := a.done
		var err error
		if rng.IntN(2) == 0 {
			err = h.f.Report(eu, l.lease.ID, api.LeaseReport{Epoch: l.lease.Epoch, Events: []api.Event{{Type: api.EventLog, Message: "x"}}})
		} else {
			err = h.f.Result(eu, l.lease.ID, api.LeaseResult{Epoch: l.lease.Epoch, Status: api.StatusPassed})
		}
		writes++
		if err == nil && wasDone {
			stale++
			t.Errorf("a write under lease %s (epoch %d) of an ended attempt was accepted", l.lease.ID, l.lease.Epoch)
		}
		if err != nil && !errors.Is(err, fleet.ErrFenced) {
			t.Errorf("write: %v", err)
		}
	}
	n := 0
	for trials < 3000 {
		trials++
		if len(attempts) == 0 || rng.IntN(3) == 0 {
			start(n)
			n++
		}
		switch op := rng.IntN(7); op {
		case 0, 1: // an agent polls, listing what it believes it holds (or, lost answer, dropping the grant)
			ag := agents[rng.IntN(len(agents))]
			var refs []api.LeaseRef
			for _, l := range leases {
				if l.agent == ag && rng.IntN(4) != 0 {
					refs = append(refs, api.LeaseRef{ID: l.lease.ID, Epoch: l.lease.Epoch})
				}
			}
			w, err := h.f.Poll(context.Background(), eu, api.AgentPoll{AgentID: ag, Free: 1, Held: refs})
			if err != nil {
				if errors.Is(err, fleet.ErrUnknownAgent) {
					continue
				}
				t.Fatal(err)
			}
			settle()
			for _, l := range w.Leases {
				// Never leased while another lease of the same attempt is live.
				for _, o := range leases {
					if o.lease.RunID == l.RunID && !attempts[l.RunID].done && o.lease.Epoch != l.Epoch {
						if err := h.f.Report(eu, o.lease.ID, api.LeaseReport{Epoch: o.lease.Epoch}); err == nil {
							t.Fatalf("run %s leased at epochs %d and %d at once", l.RunID, o.lease.Epoch, l.Epoch)
						}
					}
				}
				leases = append(leases, held{l, ag})
			}
		case 2, 3: // a write under a random lease ever granted: live, or stale and replayed
			if len(leases) > 0 {
				write(leases[rng.IntN(len(leases))])
			}
		case 4: // silence past the TTL: every lease expires
			h.clock.Advance(fleet.DefaultLeaseTTL + time.Second)
			h.f.Sweep()
		case 5: // a heartbeat renews (or names stale leases and is told to stop)
			ag := agents[rng.IntN(len(agents))]
			var refs []api.LeaseRef
			for _, l := range leases {
				if l.agent == ag {
					refs = append(refs, api.LeaseRef{ID: l.lease.ID, Epoch: l.lease.Epoch})
				}
			}
			if len(refs) > fleet.MaxConcurrency {
				refs = refs[len(refs)-fleet.MaxConcurrency:]
			}
			_, _ = h.f.Heartbeat(eu, api.AgentHeartbeat{AgentID: ag, Held: refs})
		case 6: // a cancel, or an agent disconnecting and coming back as a new session
			if rng.IntN(2) == 0 {
				for _, a := range attempts {
					if !a.done {
						a.cancel()
						break
					}
				}
			} else {
				i := rng.IntN(len(agents))
				_ = h.f.Disconnect(eu, agents[i])
				agents[i] = h.connect(fmt.Sprint("a", i), 2)
			}
		}
		// Settle attempts that ended; a lost one is not re-run here (the
		// engine would start a new attempt: a new RunAttempt).
		settle()
	}
	if stale != 0 {
		t.Fatalf("%d stale writes accepted of %d", stale, writes)
	}
	t.Logf("%d trials, %d writes, %d leases granted, 0 stale writes accepted", trials, writes, len(leases))
	for _, a := range attempts {
		a.cancel()
	}
}
