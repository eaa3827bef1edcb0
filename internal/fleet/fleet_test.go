package fleet_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/eventually"
	"github.com/zof-ai/zof-ci/internal/fleet"
	"github.com/zof-ai/zof-ci/internal/server/config"
)

// waitLimit bounds every wait; a correct fleet needs a fraction of it.
const waitLimit = 5 * time.Second

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const yamlConfig = `
tenants:
  pay:
    tokens: [{name: ci, role: runner, sha256: 0000000000000000000000000000000000000000000000000000000000000001}]
    pools:
      eu:
        targets: ["https://*.eu.internal"]
%s        stuck_after: 1m
        tokens: [{name: eu-1, sha256: 0000000000000000000000000000000000000000000000000000000000000002}]
`

var eu = config.Principal{Tenant: "pay", Name: "eu-1", Pool: "eu"}

type harness struct {
	t     *testing.T
	f     *fleet.Fleet
	clock *clock
}

func newHarness(t *testing.T, maxMembers int, mod func(*fleet.Options)) *harness {
	t.Helper()
	limit := ""
	if maxMembers > 0 {
		limit = fmt.Sprintf("        max_concurrent_members: %d\n", maxMembers)
	}
	cfg, err := config.Parse(fmt.Appendf(nil, yamlConfig, limit), "server.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, clock: &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}}
	o := fleet.Options{Config: cfg, Now: h.clock.Now, PollWait: waitLimit * 2, StopGrace: waitLimit}
	if mod != nil {
		mod(&o)
	}
	h.f, err = fleet.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) connect(name string, concurrency int) string {
	h.t.Helper()
	s, err := h.f.Connect(eu, api.AgentHello{Name: name, Version: "test", Protocol: api.AgentProtocol, Concurrency: concurrency})
	if err != nil {
		h.t.Fatal(err)
	}
	if s.Pool != "eu" || s.Tenant != "pay" || s.LeaseTTL != api.Duration(fleet.DefaultLeaseTTL) || len(s.Policy.Targets) != 1 {
		h.t.Fatalf("session %+v", s)
	}
	return s.AgentID
}

// attempt is one RunAttempt in flight: its recorded events and its outcome.
type attempt struct {
	mu     sync.Mutex
	events []api.Event
	out    chan engine.RemoteOutcome
	cancel context.CancelFunc
}

func (a *attempt) recorded() []api.Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]api.Event(nil), a.events...)
}

func (h *harness) start(run, member string) *attempt {
	h.t.Helper()
	before := h.f.Queued("pay", "eu")
	a := h.launch(run, member)
	h.until("the attempt is queued", func() bool { return h.f.Queued("pay", "eu") > before })
	return a
}

// launch starts an attempt without waiting for it to be queued.
func (h *harness) launch(run, member string) *attempt {
	ctx, cancel := context.WithCancel(context.Background())
	a := &attempt{out: make(chan engine.RemoteOutcome, 1), cancel: cancel}
	ra := engine.RemoteAttempt{Tenant: "pay", Pool: "eu", RunID: run, Member: member, Attempt: 1,
		Case: &api.Case{ID: member, Steps: []api.Step{{Name: "a"}, {Name: "b"}}}}
	go func() {
		a.out <- h.f.RunAttempt(ctx, ra, func(evs []api.Event) {
			a.mu.Lock()
			a.events = append(a.events, evs...)
			a.mu.Unlock()
		})
	}()
	return a
}

func (a *attempt) outcome(t *testing.T) engine.RemoteOutcome {
	t.Helper()
	select {
	case out := <-a.out:
		return out
	case <-time.After(waitLimit):
		t.Fatal("the attempt did not end")
	}
	return engine.RemoteOutcome{}
}

// until waits for cond: fleet state is seen only from outside (eventually).
func (h *harness) until(what string, cond func() bool) {
	h.t.Helper()
	eventually.Must(h.t, waitLimit, cond, what)
}

func (h *harness) poll(agentID string, free int, held ...api.LeaseRef) api.AgentWork {
	h.t.Helper()
	w, err := h.f.Poll(context.Background(), eu, api.AgentPoll{AgentID: agentID, Free: free, Held: held})
	if err != nil {
		h.t.Fatal(err)
	}
	return w
}

func TestLeaseAndResult(t *testing.T) {
	h := newHarness(t, 0, nil)
	id := h.connect("eu-1", 2)
	a := h.start("run_1", "c1")
	w := h.poll(id, 2)
	if len(w.Leases) != 1 {
		t.Fatalf("leases %+v, want one", w.Leases)
	}
	l := w.Leases[0]
	if l.RunID != "run_1" || l.Member != "c1" || l.Attempt != 1 || l.Epoch < 1 || len(l.Case.Steps) != 2 {
		t.Fatalf("lease %+v", l)
	}
	if err := h.f.Report(eu, l.ID, api.LeaseReport{Epoch: l.Epoch, Events: []api.Event{{Type: api.EventStepStatus, Step: 1, StepStatus: api.StepRunning}}}); err != nil {
		t.Fatal(err)
	}
	if err := h.f.Result(eu, l.ID, api.LeaseResult{Epoch: l.Epoch, Status: api.StatusPassed, Events: []api.Event{
		{Type: api.EventStepStatus, Step: 1, StepStatus: api.StepPassed}, {Type: api.EventStepStatus, Step: 2, StepStatus: api.StepPassed}}}); err != nil {
		t.Fatal(err)
	}
	out := a.outcome(t)
	if out.Status != api.StatusPassed || len(out.Events) != 2 || out.Lost != "" {
		t.Fatalf("outcome %+v", out)
	}
	if evs := a.recorded(); len(evs) != 1 || evs[0].Member != "c1" {
		t.Errorf("recorded %+v", evs)
	}
	// A finished member's lease is gone: a second result is fenced.
	if err := h.f.Result(eu, l.ID, api.LeaseResult{Epoch: l.Epoch, Status: api.StatusFailed}); !errors.Is(err, fleet.ErrFenced) {
		t.Errorf("second result: %v, want ErrFenced", err)
	}
}

func TestExpiryRequeuesAndFences(t *testing.T) {
	h := newHarness(t, 0, nil)
	dead := h.connect("dead", 1)
	a := h.start("run_1", "c1")
	l := h.poll(dead, 1).Leases[0]
	h.start("run_2", "c2") // behind it in the queue

	// Heartbeats keep the lease; silence past the TTL loses it.
	h.clock.Advance(fleet.DefaultLeaseTTL - time.Second)
	if w, err := h.f.Heartbeat(eu, api.AgentHeartbeat{AgentID: dead, Held: []api.LeaseRef{{ID: l.ID, Epoch: l.Epoch}}}); err != nil || len(w.Stop) > 0 {
		t.Fatalf("heartbeat: %+v %v", w, err)
	}
	h.clock.Advance(fleet.DefaultLeaseTTL - time.Second)
	h.f.Sweep()
	select {
	case out := <-a.out:
		t.Fatalf("a renewed lease ended: %+v", out)
	default:
	}
	h.clock.Advance(2 * time.Second)
	h.f.Sweep()
	out := a.outcome(t)
	if !strings.Contains(out.Lost, "agent dead lost (no heartbeat for 16s)") {
		t.Fatalf("outcome %+v, want lost", out)
	}
	// The stale agent comes back: every write under the old epoch is refused.
	if err := h.f.Report(eu, l.ID, api.LeaseReport{Epoch: l.Epoch, Events: []api.Event{{Type: api.EventLog, Message: "late"}}}); !errors.Is(err, fleet.ErrFenced) {
		t.Errorf("late report: %v, want ErrFenced", err)
	}
	if err := h.f.Result(eu, l.ID, api.LeaseResult{Epoch: l.Epoch, Status: api.StatusPassed}); !errors.Is(err, fleet.ErrFenced) {
		t.Errorf("late result: %v, want ErrFenced", err)
	}
	if len(a.recorded()) != 0 {
		t.Errorf("a fenced write was recorded: %+v", a.recorded())
	}
	w, err := h.f.Heartbeat(eu, api.AgentHeartbeat{AgentID: dead, Held: []api.LeaseRef{{ID: l.ID, Epoch: l.Epoch}}})
	if err != nil || len(w.Stop) != 1 || w.Stop[0].ID != l.ID || !strings.Contains(w.Stop[0].Reason, "lease-fenced") {
		t.Fatalf("heartbeat of the stale agent: %+v %v, want a stop of its lease", w, err)
	}
	// The engine runs the member again as a new attempt: it goes before run_2.
	h.start("run_1", "c1")
	other := h.connect("other", 1)
	l2 := h.poll(other, 1).Leases[0]
	if l2.RunID != "run_1" || l2.Epoch <= l.Epoch {
		t.Errorf("re-dispatch %s epoch %d; want run_1 first, at an epoch above %d", l2.RunID, l2.Epoch, l.Epoch)
	}
	if st := h.f.Stats()[0]; st.Expired != 1 {
		t.Errorf("expired %d, want 1", st.Expired)
	}
}

func TestEpochsMonotonicAcrossRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lease-epoch")
	var last int64
	for restart := range 3 {
		h := newHarness(t, 0, func(o *fleet.Options) { o.Epochs = fleet.NewFileEpochs(path) })
		id := h.connect("eu-1", 1)
		for i := range 3 {
			a := h.start(fmt.Sprintf("run_%d_%d", restart, i), "c1")
			l := h.poll(id, 1).Leases[0]
			if l.Epoch <= last {
				t.Fatalf("restart %d: epoch %d not above %d", restart, l.Epoch, last)
			}
			last = l.Epoch
			if err := h.f.Result(eu, l.ID, api.LeaseResult{Epoch: l.Epoch, Status: api.StatusPassed}); err != nil {
				t.Fatal(err)
			}
			a.outcome(t)
		}
	}
}

func TestDrainTakesNoWork(t *testing.T) {
	h := newHarness(t, 0, func(o *fleet.Options) { o.PollWait = 20 * time.Millisecond })
	id := h.connect("eu-1", 2)
	h.start("run_1", "c1")
	w, err := h.f.Poll(context.Background(), eu, api.AgentPoll{AgentID: id, Free: 2, Draining: true})
	if err != nil || len(w.Leases) != 0 {
		t.Fatalf("draining poll: %+v %v", w, err)
	}
	if got := h.f.List("pay", "eu")[0].State; got != api.AgentDraining {
		t.Errorf("state %s, want draining", got)
	}
}

func TestCancelStopsTheHolder(t *testing.T) {
	h := newHarness(t, 0, nil)
	id := h.connect("eu-1", 1)
	a := h.start("run_1", "c1")
	l := h.poll(id, 1).Leases[0]
	// The agent keeps a poll open with Free 0: the stop arrives on it.
	got := make(chan api.AgentWork, 1)
	go func() { got <- h.poll(id, 0, api.LeaseRef{ID: l.ID, Epoch: l.Epoch}) }()
	h.until("the held poll", func() bool { return h.f.Waiting("pay", "eu") == 1 })
	a.cancel()
	var w api.AgentWork
	select {
	case w = <-got:
	case <-time.After(engine.CancelWithin):
		t.Fatalf("the held poll was not released within %s of the cancel", engine.CancelWithin)
	}
	if len(w.Stop) != 1 || w.Stop[0].ID != l.ID {
		t.Fatalf("poll answer %+v, want a stop of %s", w, l.ID)
	}
	if err := h.f.Result(eu, l.ID, api.LeaseResult{Epoch: l.Epoch, Status: api.StatusCancelled, Reason: "stopped"}); err != nil {
		t.Fatal(err)
	}
	if out := a.outcome(t); out.Status != api.StatusCancelled {
		t.Errorf("outcome %+v", out)
	}
}

func TestCancelQueued(t *testing.T) {
	h := newHarness(t, 0, nil)
	a := h.start("run_1", "c1")
	a.cancel()
	if out := a.outcome(t); out.Status != api.StatusCancelled {
		t.Fatalf("outcome %+v", out)
	}
	if n := h.f.Queued("pay", "eu"); n != 0 {
		t.Errorf("%d queued after the cancel", n)
	}
}

func TestMaxConcurrentMembers(t *testing.T) {
	h := newHarness(t, 1, nil)
	id := h.connect("eu-1", 4)
	h.start("run_1", "c1")
	h.start("run_1", "c2")
	w := h.poll(id, 4)
	if len(w.Leases) != 1 {
		t.Fatalf("%d leases, want 1 (max_concurrent_members: 1)", len(w.Leases))
	}
	waits := h.f.MemberWaits("pay", "run_1")
	if got := waits["c2"].Message; got != "pool eu at 1 of 1 members" || waits["c2"].Kind != "pool_limit" {
		t.Errorf("wait of c2 = %+v", waits["c2"])
	}
	if err := h.f.Result(eu, w.Leases[0].ID, api.LeaseResult{Epoch: w.Leases[0].Epoch, Status: api.StatusPassed}); err != nil {
		t.Fatal(err)
	}
	if w := h.poll(id, 4); len(w.Leases) != 1 || w.Leases[0].Member != "c2" {
		t.Fatalf("after the first ended: %+v", w.Leases)
	}
}

func TestWaitReasonNoAgent(t *testing.T) {
	h := newHarness(t, 0, nil)
	h.start("run_1", "c1")
	if got := h.f.MemberWaits("pay", "run_1")["c1"].Message; got != "waiting for an agent of pool eu: 0 online (never seen)" {
		t.Errorf("wait %q", got)
	}
	id := h.connect("eu-1", 1)
	_ = id
	h.clock.Advance(4 * time.Minute)
	h.f.Sweep() // silent past the TTL: lost
	if got := h.f.MemberWaits("pay", "run_1")["c1"].Message; got != "waiting for an agent of pool eu: 0 online (last seen 4m ago)" {
		t.Errorf("wait %q", got)
	}
	if st := h.f.Stats()[0]; st.Stuck != 1 || st.Agents[api.AgentLost] != 1 {
		t.Errorf("stats %+v: want one stuck run (stuck_after 1m) and one lost agent", st)
	}
}

func TestBadEventsStoreNothing(t *testing.T) {
	h := newHarness(t, 0, nil)
	id := h.connect("eu-1", 1)
	a := h.start("run_1", "c1")
	l := h.poll(id, 1).Leases[0]
	for _, evs := range [][]api.Event{
		{{Type: api.EventLog, Message: "ok"}, {Type: api.EventStepStatus, Step: 3, StepStatus: api.StepPassed}},
		{{Type: api.EventMemberStatus, Status: api.StatusPassed}},
		{{Type: api.EventStepStatus, Step: 1, StepStatus: "bogus"}},
		{{Type: api.EventLog, Member: "someone-else", Message: "x"}},
		{{Type: api.EventLog, Message: strings.Repeat("x", fleet.MaxMessage+1)}},
	} {
		var bad *fleet.BadInputError
		if err := h.f.Report(eu, l.ID, api.LeaseReport{Epoch: l.Epoch, Events: evs}); !errors.As(err, &bad) {
			t.Errorf("report %+v: %v, want *BadInputError", evs, err)
		}
	}
	if len(a.recorded()) != 0 {
		t.Fatalf("malformed reports recorded %+v", a.recorded())
	}
	big := strings.Repeat("y", fleet.MaxOutput+10)
	if err := h.f.Report(eu, l.ID, api.LeaseReport{Epoch: l.Epoch, Events: []api.Event{{Type: api.EventStepStatus, Step: 1, StepStatus: api.StepPassed, Output: big}}}); err != nil {
		t.Fatal(err)
	}
	got := a.recorded()[0].Output
	if !strings.HasPrefix(got, "… (10 bytes truncated)\n") || len(got) > fleet.MaxOutput+64 {
		t.Errorf("output of %d bytes starts %.40q; want the tail, marked", len(got), got)
	}
}

func TestAnotherPoolsAgentIsUnknown(t *testing.T) {
	h := newHarness(t, 0, nil)
	id := h.connect("eu-1", 1)
	other := config.Principal{Tenant: "pay", Name: "x", Pool: "us"}
	if _, err := h.f.Poll(context.Background(), other, api.AgentPoll{AgentID: id, Free: 1}); !errors.Is(err, fleet.ErrUnknownAgent) {
		t.Errorf("poll with another pool's principal: %v", err)
	}
}

// TestOneWakeUpPerAttempt: with ten held polls, one new attempt releases one.
func TestOneWakeUpPerAttempt(t *testing.T) {
	h := newHarness(t, 0, nil)
	var wg sync.WaitGroup
	got := make(chan api.AgentWork, 10)
	ctx, cancel := context.WithCancel(context.Background())
	for i := range 10 {
		id := h.connect(fmt.Sprintf("a%d", i), 1)
		wg.Go(func() {
			w, _ := h.f.Poll(ctx, eu, api.AgentPoll{AgentID: id, Free: 1})
			got <- w
		})
	}
	h.until("ten held polls", func() bool { return h.f.Waiting("pay", "eu") == 10 })
	h.launch("run_1", "c1")
	w := <-got
	if len(w.Leases) != 1 {
		t.Fatalf("the released poll got %+v", w)
	}
	if n := h.f.Waiting("pay", "eu"); n != 9 {
		t.Errorf("%d polls still held, want 9: only one agent is woken for one attempt", n)
	}
	cancel()
	wg.Wait()
	close(got)
	for w := range got {
		if len(w.Leases) > 0 {
			t.Errorf("a second poll got a lease: %+v", w)
		}
	}
}

// TestNoDoubleGrant: many agents polling at once never share an attempt (run with -race).
func TestNoDoubleGrant(t *testing.T) {
	h := newHarness(t, 0, func(o *fleet.Options) { o.PollWait = 50 * time.Millisecond })
	const agents, attempts = 20, 200
	var outs []*attempt
	for i := range attempts {
		outs = append(outs, h.start("run_1", fmt.Sprintf("c%d", i)))
	}
	var mu sync.Mutex
	seen := map[string]string{}
	var wg sync.WaitGroup
	for i := range agents {
		id := h.connect(fmt.Sprintf("a%d", i), 3)
		wg.Go(func() {
			for {
				w, err := h.f.Poll(context.Background(), eu, api.AgentPoll{AgentID: id, Free: 3})
				if err != nil {
					t.Error(err)
					return
				}
				if len(w.Leases) == 0 {
					return
				}
				for _, l := range w.Leases {
					mu.Lock()
					if prev, dup := seen[l.Member]; dup {
						t.Errorf("member %s granted to %s and %s", l.Member, prev, id)
					}
					seen[l.Member] = id
					mu.Unlock()
					if err := h.f.Result(eu, l.ID, api.LeaseResult{Epoch: l.Epoch, Status: api.StatusPassed}); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	if len(seen) != attempts {
		t.Errorf("%d members granted, want %d", len(seen), attempts)
	}
	for _, a := range outs {
		if out := a.outcome(t); out.Status != api.StatusPassed {
			t.Errorf("outcome %+v", out)
		}
	}
}

// A held poll with free 0 answers as soon as one of the agent's leases ends,
// so the agent polls again with its new free (docs/agents.md).
func TestResultReleasesTheHeldPoll(t *testing.T) {
	h := newHarness(t, 0, nil)
	id := h.connect("eu-1", 1)
	h.start("run_1", "c1")
	l := h.poll(id, 1).Leases[0]
	got := make(chan api.AgentWork, 1)
	go func() { got <- h.poll(id, 0, api.LeaseRef{ID: l.ID, Epoch: l.Epoch}) }()
	h.until("the held poll", func() bool { return h.f.Waiting("pay", "eu") == 1 })
	if err := h.f.Result(eu, l.ID, api.LeaseResult{Epoch: l.Epoch, Status: api.StatusPassed}); err != nil {
		t.Fatal(err)
	}
	select {
	case w := <-got:
		if len(w.Leases)+len(w.Stop) != 0 {
			t.Errorf("answer %+v, want empty", w)
		}
	case <-time.After(waitLimit):
		t.Fatal("the held poll was not answered after the result")
	}
	if n := h.f.Waiting("pay", "eu"); n != 0 {
		t.Errorf("%d held polls left registered", n)
	}
}

// A lease missing from the agent's next poll was dropped by it: it is given
// up at once, not after the TTL.
func TestDroppedLeaseIsLostAtOnce(t *testing.T) {
	h := newHarness(t, 0, func(o *fleet.Options) { o.PollWait = 10 * time.Millisecond })
	id := h.connect("eu-1", 1)
	a := h.start("run_1", "c1")
	l := h.poll(id, 1).Leases[0]
	h.poll(id, 0) // held lists nothing
	out := a.outcome(t)
	if !strings.Contains(out.Lost, "agent eu-1 dropped it") {
		t.Fatalf("outcome %+v, want lost", out)
	}
	if err := h.f.Result(eu, l.ID, api.LeaseResult{Epoch: l.Epoch, Status: api.StatusPassed}); !errors.Is(err, fleet.ErrFenced) {
		t.Errorf("result of the dropped lease: %v, want ErrFenced", err)
	}
}

// A full agent's held poll (free 0) is not woken for work, so the wake-up
// goes to an agent that can take it: a full agent polling first must not
// leave an idle one asleep until its poll_wait ends.
func TestFullAgentDoesNotSwallowTheWakeUp(t *testing.T) {
	h := newHarness(t, 0, nil) // poll_wait 10 s: a missed wake-up times the test out
	full := h.connect("full", 1)
	h.start("run_1", "c1")
	l := h.poll(full, 1).Leases[0]
	fullDone := make(chan api.AgentWork, 1)
	go func() { fullDone <- h.poll(full, 0, api.LeaseRef{ID: l.ID, Epoch: l.Epoch}) }()
	h.until("the full agent's held poll", func() bool { return h.f.Waiting("pay", "eu") == 1 })
	idle := h.connect("idle", 1)
	idleDone := make(chan api.AgentWork, 1)
	go func() { idleDone <- h.poll(idle, 1) }()
	h.until("both held", func() bool { return h.f.Waiting("pay", "eu") == 2 })
	h.launch("run_1", "c2")
	select {
	case w := <-idleDone:
		if len(w.Leases) != 1 || w.Leases[0].Member != "c2" {
			t.Fatalf("idle agent got %+v", w)
		}
	case <-time.After(waitLimit):
		t.Fatal("the idle agent was not woken: the full one swallowed the wake-up")
	}
	select {
	case w := <-fullDone:
		t.Fatalf("the full agent's poll returned %+v; it had nothing to take", w)
	default:
	}
	if err := h.f.Result(eu, l.ID, api.LeaseResult{Epoch: l.Epoch, Status: api.StatusPassed}); err != nil {
		t.Fatal(err)
	}
	<-fullDone
}

// A failed step's evidence goes from the agent's result to the engine by
// step; evidence out of bounds is refused whole and the lease stays live.
func TestResultCarriesEvidence(t *testing.T) {
	h := newHarness(t, 0, nil)
	id := h.connect("eu-1", 1)
	a := h.start("run_1", "c1")
	l := h.poll(id, 1).Leases[0]
	failed := []api.Event{{Type: api.EventStepStatus, Step: 1, StepStatus: api.StepFailed}, {Type: api.EventStepStatus, Step: 2, StepStatus: api.StepSkipped}}
	for _, bad := range [][]api.LeaseEvidence{
		{{Step: 3, Kind: api.ArtifactResponse, Content: []byte("x")}},
		{{Step: 1, Kind: "screenshot", Content: []byte("x")}},
		{{Step: 1, Kind: api.ArtifactOutput, Content: make([]byte, fleet.MaxEvidence+1)}},
		slices.Repeat([]api.LeaseEvidence{{Step: 1, Kind: api.ArtifactOutput}}, fleet.MaxEvidencePieces+1),
	} {
		var bi *fleet.BadInputError
		if err := h.f.Result(eu, l.ID, api.LeaseResult{Epoch: l.Epoch, Status: api.StatusFailed, Events: failed, Evidence: bad}); !errors.As(err, &bi) {
			t.Errorf("evidence %.80v: %v, want *BadInputError", bad, err)
		}
	}
	ev := []api.LeaseEvidence{
		{Step: 1, Kind: api.ArtifactRequest, ContentType: "text/plain; charset=utf-8", Content: []byte("GET /x HTTP/1.1")},
		{Step: 1, Kind: api.ArtifactResponse, Content: []byte("HTTP/1.1 500"), Truncated: true},
	}
	if err := h.f.Result(eu, l.ID, api.LeaseResult{Epoch: l.Epoch, Status: api.StatusFailed, Reason: "step 1 (a): 500", Events: failed, Evidence: ev}); err != nil {
		t.Fatal(err)
	}
	out := a.outcome(t)
	got := out.Evidence[1]
	if out.Status != api.StatusFailed || len(out.Evidence) != 1 || len(got) != 2 ||
		got[0].Kind != api.ArtifactRequest || string(got[0].Content) != "GET /x HTTP/1.1" || !got[1].Truncated {
		t.Fatalf("outcome evidence %+v", out.Evidence)
	}
}
