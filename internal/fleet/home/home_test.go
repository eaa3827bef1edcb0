package home

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/eventually"
	"github.com/zof-ai/zof-ci/internal/fleet"
	"github.com/zof-ai/zof-ci/internal/server/config"
)

// waitLimit bounds every wait; a correct home needs a fraction of it.
const waitLimit = 5 * time.Second

// memStore is the database's row in memory (pgstore's is tested against
// PostgreSQL in pgstore/fleet_test.go).
type memStore struct {
	mu          sync.Mutex
	home, addr  string
	until       time.Time
	secret      string
	unreachable bool
}

func (m *memStore) TakeFleetHome(_ context.Context, replica, address string, ttl time.Duration) (string, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.unreachable {
		return "", "", errors.New("database unreachable")
	}
	now := time.Now()
	if m.home == replica || m.home == "" || now.After(m.until) {
		m.home, m.addr, m.until = replica, address, now.Add(ttl)
	}
	return m.home, m.addr, nil
}

func (m *memStore) ReleaseFleetHome(_ context.Context, replica string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.home == replica {
		m.until = time.Time{}
	}
	return nil
}

func (m *memStore) ClusterSecret(context.Context) (string, error) { return m.secret, nil }

// hand the lease to replica at once (the old home's lease expired).
func (m *memStore) hand(replica, address string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.home, m.addr, m.until = replica, address, time.Now().Add(time.Hour)
}

const yamlConfig = `
tenants:
  pay:
    tokens: [{name: ci, role: runner, sha256: 0000000000000000000000000000000000000000000000000000000000000001}]
    pools:
      eu:
        targets: ["https://*.eu.internal"]
        tokens: [{name: eu-1, sha256: 0000000000000000000000000000000000000000000000000000000000000002}]
`

var eu = config.Principal{Tenant: "pay", Name: "eu-1", Pool: "eu"}

// replica is one zof serve's part: its fleet, its Home, its listener.
type replica struct {
	name  string
	fleet *fleet.Fleet
	home  *Home
	srv   *httptest.Server
}

type cluster struct {
	t     testing.TB
	store *memStore
}

func newCluster(t *testing.T) *cluster {
	return &cluster{t: t, store: &memStore{secret: "s3cret-0123456789abcdef"}}
}

// replica starts a replica; the first one started takes the home's lease.
func (c *cluster) replica(name string, mod func(*Options)) *replica {
	c.t.Helper()
	return replicaOn(c.t, name, c.store, mod)
}

// replicaOn starts a replica on store.
func replicaOn(tb testing.TB, name string, store Store, mod func(*Options)) *replica {
	tb.Helper()
	cfg, err := config.Parse([]byte(yamlConfig), "server.yaml", nil)
	if err != nil {
		tb.Fatal(err)
	}
	f, err := fleet.New(fleet.Options{Config: cfg, PollWait: waitLimit * 2, StopGrace: 200 * time.Millisecond})
	if err != nil {
		tb.Fatal(err)
	}
	r := &replica{name: name, fleet: f}
	var h atomic.Pointer[Home]
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if strings.HasPrefix(req.URL.Path, PathPrefix) {
			h.Load().Handler().ServeHTTP(w, req)
			return
		}
		// The agent API: forwarded, or answered here as the server would.
		if h.Load().ForwardAgent(w, req) {
			return
		}
		w.Header().Set("X-Served-By", name)
		b, _ := io.ReadAll(req.Body)
		w.WriteHeader(http.StatusTeapot)
		_, _ = w.Write(b)
	}))
	tb.Cleanup(r.srv.Close)
	o := Options{Fleet: f, Store: store, Replica: name, Advertise: r.srv.URL, AliveEvery: 50 * time.Millisecond, AliveTimeout: time.Second}
	if mod != nil {
		mod(&o)
	}
	home, err := New(context.Background(), o)
	if err != nil {
		tb.Fatal(err)
	}
	h.Store(home)
	r.home = home
	return r
}

// attempt is one RunAttempt in flight.
type attempt struct {
	mu      sync.Mutex
	events  []api.Event
	started atomic.Int32
	out     chan engine.RemoteOutcome
	cancel  context.CancelFunc
}

func (a *attempt) recorded() []api.Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]api.Event(nil), a.events...)
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

// launch starts an attempt on r; it is cancelled when the test ends.
func launch(t *testing.T, r engine.RemoteRunner, run, member string) *attempt {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	a := &attempt{out: make(chan engine.RemoteOutcome, 1), cancel: cancel}
	ra := engine.RemoteAttempt{Tenant: "pay", Pool: "eu", RunID: run, Member: member, Attempt: 1,
		Case: &api.Case{ID: member, Steps: []api.Step{{Name: "a"}, {Name: "b"}}}, Secrets: []string{"s"},
		Started: func() { a.started.Add(1) }}
	go func() {
		a.out <- r.RunAttempt(ctx, ra, func(evs []api.Event) {
			a.mu.Lock()
			a.events = append(a.events, evs...)
			a.mu.Unlock()
		})
	}()
	return a
}

// lease connects an agent to f and polls until it gets one lease.
func lease(t *testing.T, f *fleet.Fleet) (agentID string, l api.Lease) {
	t.Helper()
	s, err := f.Connect(eu, api.AgentHello{Name: "ag", Version: "test", Protocol: api.AgentProtocol, Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	w, err := f.Poll(ctx, eu, api.AgentPoll{AgentID: s.AgentID, Free: 1})
	if err != nil || len(w.Leases) != 1 {
		t.Fatalf("poll: %+v, %v; want one lease", w, err)
	}
	return s.AgentID, w.Leases[0]
}

// A member of a run executed by B (not the home) runs on an agent of the
// home A: the agent's lease carries the attempt, B records the step events
// as the agent reports them and gets the outcome with its evidence.
func TestDelegatedAttemptRunsOnTheHomesAgent(t *testing.T) {
	c := newCluster(t)
	a := c.replica("a", nil)
	b := c.replica("b", nil)
	if !a.home.IsHome() || b.home.IsHome() {
		t.Fatalf("a home %v, b home %v; want a", a.home.IsHome(), b.home.IsHome())
	}
	att := launch(t, b.home, "run_1", "m1")
	_, l := lease(t, a.fleet)
	if l.RunID != "run_1" || l.Member != "m1" || len(l.Case.Steps) != 2 || len(l.Secrets) != 1 {
		t.Fatalf("lease %+v", l)
	}
	eventually.Must(t, waitLimit, func() bool { return att.started.Load() == 1 }, "B hears the attempt started")
	if err := a.fleet.Report(eu, l.ID, api.LeaseReport{Epoch: l.Epoch, Events: []api.Event{{Type: api.EventStepStatus, Step: 1, StepStatus: api.StepRunning}}}); err != nil {
		t.Fatal(err)
	}
	eventually.Must(t, waitLimit, func() bool { return len(att.recorded()) == 1 }, "B records the reported event")
	err := a.fleet.Result(eu, l.ID, api.LeaseResult{Epoch: l.Epoch, Status: api.StatusFailed, Reason: "step a failed",
		Events:   []api.Event{{Type: api.EventStepStatus, Step: 1, StepStatus: api.StepFailed, Output: "boom\x00"}},
		Evidence: []api.LeaseEvidence{{Step: 1, Kind: api.ArtifactOutput, ContentType: "text/plain", Content: []byte("out\x00\xff")}}})
	if err != nil {
		t.Fatal(err)
	}
	out := att.outcome(t)
	if out.Status != api.StatusFailed || out.Why != "step a failed" || out.Lost != "" || len(out.Events) != 1 || out.Events[0].Output != "boom\x00" {
		t.Fatalf("outcome %+v", out)
	}
	if ev := out.Evidence[1]; len(ev) != 1 || !bytes.Equal(ev[0].Content, []byte("out\x00\xff")) || ev[0].Kind != api.ArtifactOutput {
		t.Fatalf("evidence %+v", out.Evidence)
	}
	if n := att.started.Load(); n != 1 {
		t.Fatalf("started %d times", n)
	}
}

// Cancelling the attempt on B closes its stream; the home stops the lease
// at the agent (in the agent's next answer) and B's outcome is cancelled.
func TestCancelStopsTheLeaseAtTheAgent(t *testing.T) {
	c := newCluster(t)
	a := c.replica("a", nil)
	b := c.replica("b", nil)
	att := launch(t, b.home, "run_1", "m1")
	agent, l := lease(t, a.fleet)
	eventually.Must(t, waitLimit, func() bool { return att.started.Load() == 1 }, "B hears the attempt started")
	att.cancel()
	if out := att.outcome(t); out.Status != api.StatusCancelled {
		t.Fatalf("outcome %+v, want cancelled", out)
	}
	var stop []api.LeaseStop
	eventually.Must(t, waitLimit, func() bool {
		w, err := a.fleet.Heartbeat(eu, api.AgentHeartbeat{AgentID: agent, Held: []api.LeaseRef{{ID: l.ID, Epoch: l.Epoch}}})
		if err != nil {
			t.Fatal(err)
		}
		stop = append(stop, w.Stop...)
		return len(stop) > 0
	}, "the agent is told to stop the lease")
	if stop[0].ID != l.ID || !strings.Contains(stop[0].Reason, "cancel") {
		t.Fatalf("stop %+v", stop)
	}
}

// The home dies mid-attempt (its stream breaks): the attempt is lost, with
// the home named, so the engine runs it again as a new attempt.
func TestBrokenStreamIsLost(t *testing.T) {
	for _, tc := range []struct {
		name string
		home http.HandlerFunc
		why  string
	}{
		{"connection cut after started", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(appendFrame(nil, frame{Type: frameStarted}))
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}, "was lost"},
		{"stream ends without an outcome", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(appendFrame(nil, frame{Type: frameStarted}))
		}, "its stream ended before the outcome"},
		{"silent past the alive timeout", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}, "no word from it for 300ms"},
		{"a malformed frame", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte(`{"type":"outcome"}` + "\n"))
		}, "outcome frame must carry the outcome"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := httptest.NewServer(tc.home)
			defer fake.Close()
			c := newCluster(t)
			c.store.hand("dead-home", fake.URL)
			b := c.replica("b", func(o *Options) { o.AliveTimeout = 300 * time.Millisecond })
			out := launch(t, b.home, "run_1", "m1").outcome(t)
			if !strings.Contains(out.Lost, "the fleet's home replica dead-home was lost") || !strings.Contains(out.Lost, tc.why) {
				t.Fatalf("outcome %+v; want lost naming the home and %q", out, tc.why)
			}
		})
	}
}

// A home that does not take the attempt (unreachable, not the home any
// more, or the wrong secret) is not a lost attempt: the attempt waits for
// a home that does, saying why, and then runs there.
func TestAttemptWaitsForAHomeThatAnswers(t *testing.T) {
	c := newCluster(t)
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	c.store.hand("gone", gone.URL)
	b := c.replica("b", nil)
	att := launch(t, b.home, "run_1", "m1")
	eventually.Must(t, waitLimit, func() bool {
		w := b.home.MemberWaits("pay", "run_1")["m1"]
		return strings.Contains(w.Message, "waiting for the fleet's home replica (gone)")
	}, "the member says it waits for the home")
	a := c.replica("a", nil)
	c.store.hand("a", a.srv.URL)
	a.home.renew(context.Background())
	b.home.renew(context.Background())
	_, l := lease(t, a.fleet)
	if err := a.fleet.Result(eu, l.ID, api.LeaseResult{Epoch: l.Epoch, Status: api.StatusPassed}); err != nil {
		t.Fatal(err)
	}
	if out := att.outcome(t); out.Status != api.StatusPassed {
		t.Fatalf("outcome %+v", out)
	}
}

// The home moves from A to B while B's attempt is queued on A and another
// is leased there: A abandons both (lost), and B runs them again itself.
func TestHomeMovesAbandonsWhatTheOldHomeHeld(t *testing.T) {
	c := newCluster(t)
	a := c.replica("a", nil)
	b := c.replica("b", nil)
	leased := launch(t, b.home, "run_1", "m1")
	lease(t, a.fleet)
	queued := launch(t, b.home, "run_1", "m2")
	eventually.Must(t, waitLimit, func() bool { return len(a.fleet.Snapshot().Waits) == 1 }, "m2 queued on A")
	c.store.hand("b", b.srv.URL)
	a.home.renew(context.Background())
	for name, att := range map[string]*attempt{"leased": leased, "queued": queued} {
		if out := att.outcome(t); !strings.Contains(out.Lost, "the fleet's home moved from replica a to b") {
			t.Fatalf("%s: outcome %+v", name, out)
		}
	}
	b.home.renew(context.Background())
	if !b.home.IsHome() {
		t.Fatal("b is not the home")
	}
	again := launch(t, b.home, "run_1", "m1")
	_, l := lease(t, b.fleet)
	if err := b.fleet.Result(eu, l.ID, api.LeaseResult{Epoch: l.Epoch, Status: api.StatusPassed}); err != nil {
		t.Fatal(err)
	}
	if out := again.outcome(t); out.Status != api.StatusPassed {
		t.Fatalf("outcome on the new home %+v", out)
	}
}

// A home that cannot renew its lease (the database unreachable) for its
// TTL stops being the home: what its fleet held is lost, so it runs again
// wherever the home is next, and new attempts wait for a home.
func TestHomeThatCannotRenewLetsGo(t *testing.T) {
	c := newCluster(t)
	a := c.replica("a", func(o *Options) { o.TTL = 200 * time.Millisecond })
	held := launch(t, a.home, "run_1", "m1")
	eventually.Must(t, waitLimit, func() bool { return len(a.fleet.Snapshot().Waits) == 1 }, "m1 queued on A")
	c.store.mu.Lock()
	c.store.unreachable = true
	c.store.mu.Unlock()
	a.home.renew(context.Background()) // inside the lease: still the home
	if !a.home.IsHome() {
		t.Fatal("a let go inside its lease")
	}
	eventually.Must(t, waitLimit, func() bool {
		a.home.renew(context.Background()) // as Run does every second
		return !a.home.IsHome()
	}, "a lets go once its lease ran out")
	if out := held.outcome(t); !strings.Contains(out.Lost, "the fleet's home replica a could not renew its lease (database unreachable)") {
		t.Fatalf("outcome %+v", out)
	}
}

// The agent API on a replica that is not the home reaches the home
// unchanged (token, body); with no home, or a request forwarded once
// already, it is 503 with Retry-After.
func TestForwardAgent(t *testing.T) {
	c := newCluster(t)
	a := c.replica("a", nil)
	b := c.replica("b", nil)
	req, _ := http.NewRequest(http.MethodPost, b.srv.URL+"/v1/agent/poll", strings.NewReader(`{"agent_id":"x"}`))
	req.Header.Set("Authorization", "Bearer agent-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTeapot || resp.Header.Get("X-Served-By") != "a" || string(body) != `{"agent_id":"x"}` {
		t.Fatalf("through B: %d served by %q, body %q; want A's answer", resp.StatusCode, resp.Header.Get("X-Served-By"), body)
	}

	// Forwarded once already, to a replica that is not the home: no loop.
	req, _ = http.NewRequest(http.MethodPost, b.srv.URL+"/v1/agent/poll", nil)
	req.Header.Set(ForwardedHeader, "c")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("forwarded twice: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}

	// The home is gone (its address refuses connections): 503, Retry-After.
	a.srv.Close()
	resp, err = http.Post(b.srv.URL+"/v1/agent/poll", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("home down: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}

	// While the home is known to be down, a request waits for a new home
	// (instead of failing, which would grow the agent's backoff) and goes
	// to it as soon as there is one.
	answered := make(chan *http.Response, 1)
	go func() {
		resp, err := http.Post(b.srv.URL+"/v1/agent/poll", "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Error(err)
			answered <- nil
			return
		}
		resp.Body.Close()
		answered <- resp
	}()
	select {
	case resp := <-answered:
		t.Fatalf("answered %v while no home answers; want it held", resp)
	case <-time.After(100 * time.Millisecond): // held: what is checked is that nothing came yet
	}
	c2 := c.replica("c", nil)
	c.store.hand("c", c2.srv.URL)
	c2.home.renew(context.Background()) // C learns it is the home, then B
	b.home.renew(context.Background())
	select {
	case resp := <-answered:
		if resp == nil || resp.StatusCode != http.StatusTeapot || resp.Header.Get("X-Served-By") != "c" {
			t.Fatalf("after the new home: %+v; want C's answer", resp)
		}
	case <-time.After(waitLimit):
		t.Fatal("the held request did not reach the new home")
	}
}

// The internal endpoints answer only the cluster secret, and only on the home.
func TestInternalEndpointsNeedTheSecretAndTheHome(t *testing.T) {
	c := newCluster(t)
	a := c.replica("a", nil)
	b := c.replica("b", nil)
	for _, tc := range []struct {
		url, secret string
		want        int
	}{
		{a.srv.URL + FleetPath, "", http.StatusUnauthorized},
		{a.srv.URL + FleetPath, "wrong", http.StatusUnauthorized},
		{a.srv.URL + FleetPath, c.store.secret, http.StatusOK},
		{b.srv.URL + FleetPath, c.store.secret, http.StatusServiceUnavailable},
		{a.srv.URL + AttemptsPath, "wrong", http.StatusMethodNotAllowed},
	} {
		req, _ := http.NewRequest(http.MethodGet, tc.url, nil)
		if tc.secret != "" {
			req.Header.Set("Authorization", "Bearer "+tc.secret)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("GET %s with %q: %d, want %d", tc.url, tc.secret, resp.StatusCode, tc.want)
		}
		if strings.Contains(string(body), c.store.secret) {
			t.Errorf("the answer shows the secret: %s", body)
		}
	}
	// A malformed attempt is refused whole.
	req, _ := http.NewRequest(http.MethodPost, a.srv.URL+AttemptsPath, strings.NewReader(`{"tenant":"pay"}`))
	req.Header.Set("Authorization", "Bearer "+c.store.secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("malformed attempt: %d", resp.StatusCode)
	}
}

// A replica that is not the home shows the home's fleet view: its agents,
// why members wait, its pool figures.
func TestViewIsTheHomes(t *testing.T) {
	c := newCluster(t)
	a := c.replica("a", nil)
	b := c.replica("b", nil)
	launch(t, b.home, "run_1", "m1")
	lease(t, a.fleet)
	launch(t, b.home, "run_1", "m2")
	eventually.Must(t, waitLimit, func() bool { return len(a.fleet.Snapshot().Waits) == 1 }, "m2 queued on A")
	// The view below is read now, not cached from before.
	b.home.viewMu.Lock()
	b.home.view = nil
	b.home.viewMu.Unlock()
	agents, err := b.home.Agents("pay", "")
	if err != nil || len(agents) != 1 || agents[0].Name != "ag" || agents[0].State != api.AgentBusy {
		t.Fatalf("B lists %+v, %v", agents, err)
	}
	if w := b.home.MemberWaits("pay", "run_1"); !strings.Contains(w["m2"].Message, "waiting for a free agent of pool eu: 1 online") {
		t.Fatalf("B's waits %+v", w)
	}
	if s := b.home.Stats(); len(s) != 1 || s[0].Live != 1 || s[0].Queued != 1 || s[0].Agents[api.AgentBusy] != 1 {
		t.Fatalf("B's stats %+v", s)
	}
	if got, err := b.home.Agents("other", ""); err != nil || len(got) != 0 {
		t.Fatalf("another tenant sees %+v, %v", got, err)
	}

	// The home stops answering and B's view is older than viewStale: B's list of
	// agents is unknown, not empty; its waits and figures make do without. (A's
	// listener closes, not A: Close would wait for the attempt's stream to end.)
	a.srv.Listener.Close()
	a.srv.CloseClientConnections()
	b.home.viewMu.Lock()
	b.home.viewAt = time.Now().Add(-viewStale)
	b.home.viewMu.Unlock()
	if got, err := b.home.Agents("pay", ""); !errors.Is(err, ErrViewUnknown) || got != nil ||
		!strings.Contains(err.Error(), "the fleet's home replica (a) does not answer") || !strings.Contains(err.Error(), "try again") {
		t.Fatalf("B lists %+v, %v; want ErrViewUnknown saying the home does not answer", got, err)
	}
	if s := b.home.Stats(); len(s) != 0 {
		t.Fatalf("B's stats without the home %+v", s)
	}
}

func TestCheckAdvertise(t *testing.T) {
	for s, ok := range map[string]bool{
		"http://10.0.0.5:8080":      true,
		"https://zof-1.internal/":   true,
		"":                          false,
		"10.0.0.5:8080":             false,
		"http://0.0.0.0:8080":       false,
		"http://[::]:8080":          false,
		"http://u:p@10.0.0.5:8080":  false,
		"http://10.0.0.5:8080/zof":  false,
		"ftp://10.0.0.5":            false,
		"http://10.0.0.5:8080/?a=b": false,
	} {
		if err := CheckAdvertise(s); (err == nil) != ok {
			t.Errorf("CheckAdvertise(%q) = %v, want ok %v", s, err, ok)
		}
	}
	for listen, want := range map[string]string{
		"127.0.0.1:8080": "http://127.0.0.1:8080",
		"[::1]:8080":     "http://[::1]:8080",
		":8080":          "",
		"0.0.0.0:8080":   "",
		"[::]:8080":      "",
		"127.0.0.1:0":    "",
	} {
		if got := AdvertiseFromListen(listen); got != want {
			t.Errorf("AdvertiseFromListen(%q) = %q, want %q", listen, got, want)
		}
	}
}
