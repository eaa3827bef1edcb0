package engine_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
)

// fakeRemote plays a scripted outcome per attempt: pool runs are those whose
// environment URL starts with "pool:".
type fakeRemote struct {
	mu       sync.Mutex
	outcomes []engine.RemoteOutcome // one per attempt, in order
	attempts []engine.RemoteAttempt
	block    bool // wait for ctx to end, then cancelled
}

var _ engine.RemoteRunner = (*fakeRemote)(nil)

func (f *fakeRemote) Pool(_ string, req *api.RunRequest) string {
	if p, ok := strings.CutPrefix(req.Environment.URL, "pool:"); ok {
		return p
	}
	return ""
}

func (f *fakeRemote) RunAttempt(ctx context.Context, a engine.RemoteAttempt, record func([]api.Event)) engine.RemoteOutcome {
	f.mu.Lock()
	f.attempts = append(f.attempts, a)
	n := len(f.attempts)
	block := f.block
	f.mu.Unlock()
	changes.notify()
	// What an agent reports while it runs: the step starts; a member status
	// it has no business sending is dropped by the engine.
	record([]api.Event{
		{Type: api.EventStepStatus, Step: 1, StepStatus: api.StepRunning},
		{Type: api.EventMemberStatus, Status: api.StatusPassed},
		{Type: api.EventStepStatus, Step: 99, StepStatus: api.StepPassed},
	})
	if block {
		<-ctx.Done()
		return engine.RemoteOutcome{Status: api.StatusCancelled, Why: "stopped"}
	}
	return f.outcomes[n-1]
}

func passedStep() []api.Event {
	return []api.Event{{Type: api.EventStepStatus, Step: 1, StepStatus: api.StepPassed}}
}

func TestRemoteAttempts(t *testing.T) {
	failed := engine.RemoteOutcome{Status: api.StatusFailed, Why: "step 1 (a): boom",
		Events: []api.Event{{Type: api.EventStepStatus, Step: 1, StepStatus: api.StepFailed, Failure: &api.Failure{Message: "boom"}}}}
	passed := engine.RemoteOutcome{Status: api.StatusPassed, Events: passedStep()}
	lost := engine.RemoteOutcome{Lost: "agent eu-1 lost (no heartbeat for 15s)"}
	tests := []struct {
		name        string
		retries     int
		outcomes    []engine.RemoteOutcome
		want        api.Status
		wantAttempt int
		wantFlaky   bool
		wantLog     string
	}{
		{"passes", 0, []engine.RemoteOutcome{passed}, api.StatusPassed, 1, false, ""},
		{"fails without retries", 0, []engine.RemoteOutcome{failed}, api.StatusFailed, 1, false, ""},
		// A lost attempt is not a retry (retries: 0 still runs it again) and not flaky.
		{"lost then passes", 0, []engine.RemoteOutcome{lost, passed}, api.StatusPassed, 2, false,
			"lease lost: agent eu-1 lost (no heartbeat for 15s); the attempt runs again on another agent as attempt 2"},
		{"lost twice then fails", 0, []engine.RemoteOutcome{lost, lost, failed}, api.StatusFailed, 3, false, "as attempt 3"},
		{"fails then passes on retry is flaky", 1, []engine.RemoteOutcome{failed, passed}, api.StatusPassed, 2, true, "attempt 1 failed: step 1 (a): boom; retrying"},
		{"lost, fails, passes on retry is flaky", 1, []engine.RemoteOutcome{lost, failed, passed}, api.StatusPassed, 3, true, "retry 1 of 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fr := &fakeRemote{outcomes: tt.outcomes}
			h := newHarness(t, nil, func(c *engine.Config) { c.Remote = fr })
			c := tcase("c1", "a")
			c.Retries = tt.retries
			r := h.create("t", runReq("pool:eu", c))
			r = h.wait("t", r.ID)
			m := r.Members[0]
			if r.Status != tt.want || m.Status != tt.want || m.Attempt != tt.wantAttempt || m.Flaky != tt.wantFlaky {
				t.Fatalf("run %s member %s attempt %d flaky %v; want %s attempt %d flaky %v (%s)", r.Status, m.Status, m.Attempt, m.Flaky, tt.want, tt.wantAttempt, tt.wantFlaky, m.Reason)
			}
			if len(fr.attempts) != len(tt.outcomes) {
				t.Fatalf("%d remote attempts, want %d", len(fr.attempts), len(tt.outcomes))
			}
			for i, a := range fr.attempts {
				if a.Pool != "eu" || a.Tenant != "t" || a.RunID != r.ID || a.Member != "c1" || a.Attempt != i+1 || a.BaseURL != "pool:eu" {
					t.Errorf("attempt %d = %+v", i+1, a)
				}
			}
			var log []string
			for _, ev := range h.events("t", r.ID) {
				if ev.Type == api.EventLog {
					log = append(log, ev.Message)
				}
			}
			if tt.wantLog != "" && !strings.Contains(strings.Join(log, "\n"), tt.wantLog) {
				t.Errorf("log %q lacks %q", log, tt.wantLog)
			}
		})
	}
}

func TestRemoteLocalRunsStayLocal(t *testing.T) {
	fr := &fakeRemote{}
	h := newHarness(t, nil, func(c *engine.Config) { c.Remote = fr })
	r := h.create("t", runReq("local", tcase("c1", "a")))
	if r = h.wait("t", r.ID); r.Status != api.StatusPassed || len(fr.attempts) != 0 {
		t.Fatalf("run %s, %d remote attempts; want passed locally", r.Status, len(fr.attempts))
	}
}

func TestRemoteCancel(t *testing.T) {
	fr := &fakeRemote{block: true}
	h := newHarness(t, nil, func(c *engine.Config) { c.Remote = fr })
	r := h.create("t", runReq("pool:eu", tcase("c1", "a", "b")))
	h.until("the attempt on the agent", func() bool {
		fr.mu.Lock()
		defer fr.mu.Unlock()
		return len(fr.attempts) == 1
	})
	if _, err := h.e.Cancel(context.Background(), "t", r.ID, "stop it"); err != nil {
		t.Fatal(err)
	}
	r = h.wait("t", r.ID)
	if r.Status != api.StatusCancelled || r.Members[0].Status != api.StatusCancelled {
		t.Fatalf("run %s member %s, want cancelled", r.Status, r.Members[0].Status)
	}
	if got := stepStatuses(&r.Members[0]); got[0] != api.StepCancelled || got[1] != api.StepSkipped {
		t.Errorf("steps %v, want the running one cancelled and the next skipped", got)
	}
}

// scriptedRemote plays outcomes per attempt; past the script it holds the
// attempt until ctx ends (an agent still busy when the engine stops).
type scriptedRemote struct {
	mu       sync.Mutex
	outcomes []engine.RemoteOutcome
	n        int
}

func (f *scriptedRemote) Pool(_ string, req *api.RunRequest) string { return "eu" }

func (f *scriptedRemote) attempts() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

func (f *scriptedRemote) RunAttempt(ctx context.Context, a engine.RemoteAttempt, record func([]api.Event)) engine.RemoteOutcome {
	f.mu.Lock()
	f.n++
	i := f.n - 1
	f.mu.Unlock()
	changes.notify()
	record([]api.Event{{Type: api.EventStepStatus, Step: 1, StepStatus: api.StepRunning}})
	if i < len(f.outcomes) {
		return f.outcomes[i]
	}
	<-ctx.Done()
	return engine.RemoteOutcome{Status: api.StatusCancelled}
}

// An attempt lost with its agent is still not a failure after a restart:
// resume counts its "lease lost" line like a restart's interruption, so
// the member passing afterwards is not flaky and its retries are intact.
func TestRemoteLostAttemptSurvivesARestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "zof.db")
	store := openSQLite(t, path)
	r1 := &scriptedRemote{outcomes: []engine.RemoteOutcome{{Lost: "agent eu-1 lost (no heartbeat for 15s)"}}}
	p1 := newProcess(t, engine.Config{Store: store, Steps: noopSteps{}, Remote: r1, LeaveQueuedOnStop: true})
	p1.start()
	run, _, err := p1.e.Create(context.Background(), tenant, runReq("pool", tcase("c1", "a")), engine.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Recorded, not only begun: the lost line and the second attempt are
	// committed with its first step's start, after the remote counted it.
	waitFor(t, "the second attempt on an agent, recorded", func() bool {
		got, err := p1.e.Get(context.Background(), tenant, run.ID)
		return err == nil && r1.attempts() == 2 && got.Members[0].Attempt == 2 && got.Members[0].Steps[0].Status == api.StepRunning
	})
	p1.stop()

	r2 := &scriptedRemote{outcomes: []engine.RemoteOutcome{{Status: api.StatusPassed,
		Events: []api.Event{{Type: api.EventStepStatus, Step: 1, StepStatus: api.StepPassed}}}}}
	p2 := newProcess(t, engine.Config{Store: store, Steps: noopSteps{}, Remote: r2, LeaveQueuedOnStop: true})
	p2.start()
	got := p2.wait(run.ID)
	m := got.Members[0]
	if got.Status != api.StatusPassed || m.Flaky || m.Attempt != 3 {
		t.Fatalf("run %s, member attempt %d flaky %v; want passed on attempt 3, not flaky", got.Status, m.Attempt, m.Flaky)
	}
}

// The evidence an agent sends with a failed attempt is kept as the run's
// artifacts like a local step's, masked again by the server; a lost
// attempt's is not kept.
func TestRemoteEvidenceIsKept(t *testing.T) {
	failed := engine.RemoteOutcome{Status: api.StatusFailed, Why: "step 1 (a): boom",
		Events:   []api.Event{{Type: api.EventStepStatus, Step: 1, StepStatus: api.StepFailed, Failure: &api.Failure{Message: "boom"}}},
		Evidence: map[int][]engine.Evidence{1: {{Kind: api.ArtifactResponse, Content: []byte("HTTP/1.1 500\n\ns3cr3t-value")}}}}
	lost := engine.RemoteOutcome{Lost: "agent eu-1 lost", Evidence: map[int][]engine.Evidence{1: {{Kind: api.ArtifactOutput, Content: []byte("lost")}}}}
	fr := &fakeRemote{outcomes: []engine.RemoteOutcome{lost, failed}}
	h := newHarness(t, nil, func(c *engine.Config) { c.Remote = fr })
	req := runReq("pool:eu", tcase("c1", "a"))
	req.Secrets = []string{"s3cr3t-value"}
	r := h.wait("t", h.create("t", req).ID)
	if r.Status != api.StatusFailed {
		t.Fatalf("run %s, want failed", r.Status)
	}
	arts, err := h.e.Artifacts(t.Context(), "t", r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(arts) != 1 || arts[0].Kind != api.ArtifactResponse || arts[0].Step != 1 || arts[0].Attempt != 2 {
		t.Fatalf("artifacts %+v, want the failed attempt's response only", arts)
	}
	a, err := h.e.Artifact(t.Context(), "t", r.ID, arts[0].Name)
	if err != nil || strings.Contains(string(a.Content), "s3cr3t-value") || !strings.Contains(string(a.Content), "HTTP/1.1 500") {
		t.Errorf("artifact %q, %v: want it kept with the secret masked", a.Content, err)
	}
}

// queuedRemote holds each attempt as a pool queue would until take is
// closed: then it is taken (Started) and passes.
type queuedRemote struct {
	take    chan struct{}
	started chan struct{}
}

func (q *queuedRemote) Pool(string, *api.RunRequest) string { return "eu" }

func (q *queuedRemote) RunAttempt(ctx context.Context, a engine.RemoteAttempt, record func([]api.Event)) engine.RemoteOutcome {
	select {
	case <-q.take:
	case <-ctx.Done():
		return engine.RemoteOutcome{Status: api.StatusCancelled, Why: "cancelled before an agent took it"}
	}
	a.Started()
	a.Started() // a second call does nothing
	close(q.started)
	record([]api.Event{{Type: api.EventStepStatus, Step: 1, StepStatus: api.StepRunning}})
	return engine.RemoteOutcome{Status: api.StatusPassed, Events: passedStep()}
}

// A member waiting for an agent is not running: its running status is
// recorded when an agent takes the attempt (RemoteAttempt.Started), and a
// member cancelled before that never ran.
func TestRemoteMemberRunsWhenTaken(t *testing.T) {
	q := &queuedRemote{take: make(chan struct{}), started: make(chan struct{})}
	h := newHarness(t, nil, func(c *engine.Config) { c.Remote = q })
	r := h.create("t", runReq("pool:eu", tcase("c1", "a")))
	h.until("the run is running", func() bool { return h.get("t", r.ID).Status == api.StatusRunning })
	if m := h.get("t", r.ID).Members[0]; m.Status != api.StatusInitial || m.Attempt != 0 {
		t.Fatalf("member waiting for an agent is %s (attempt %d), want initial", m.Status, m.Attempt)
	}
	close(q.take)
	<-q.started
	if r = h.wait("t", r.ID); r.Status != api.StatusPassed || r.Members[0].Attempt != 1 {
		t.Fatalf("run %s, member attempt %d; want passed at attempt 1", r.Status, r.Members[0].Attempt)
	}
	var running int
	for _, ev := range h.events("t", r.ID) {
		if ev.Type == api.EventMemberStatus && ev.Status == api.StatusRunning {
			running++
		}
	}
	if running != 1 {
		t.Errorf("%d member running events, want 1", running)
	}

	// Cancelled while waiting: the member never ran.
	q2 := &queuedRemote{take: make(chan struct{}), started: make(chan struct{})}
	h2 := newHarness(t, nil, func(c *engine.Config) { c.Remote = q2 })
	r2 := h2.create("t", runReq("pool:eu", tcase("c1", "a")))
	h2.until("the run is running", func() bool { return h2.get("t", r2.ID).Status == api.StatusRunning })
	if _, err := h2.e.Cancel(t.Context(), "t", r2.ID, "test"); err != nil {
		t.Fatal(err)
	}
	r2 = h2.wait("t", r2.ID)
	for _, ev := range h2.events("t", r2.ID) {
		if ev.Type == api.EventMemberStatus && ev.Status == api.StatusRunning {
			t.Errorf("a member cancelled before an agent took it was recorded running")
		}
	}
	if r2.Status != api.StatusCancelled || r2.Members[0].Status != api.StatusCancelled {
		t.Errorf("run %s member %s, want cancelled", r2.Status, r2.Members[0].Status)
	}
}
