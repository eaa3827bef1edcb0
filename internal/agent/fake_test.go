package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/api"
)

// fakeServer is the server side of the agent protocol as docs/agents.md
// states it, for one agent: it checks the token and the protocol version,
// holds polls until it has work, and refuses (409 lease-fenced) every write
// whose epoch is not the lease's current one. Tests hand it work and read
// what the agent sent.
type fakeServer struct {
	*httptest.Server
	token    string
	protocol int
	session  api.AgentSession

	mu         sync.Mutex
	polls      []api.AgentPoll
	heartbeats []api.AgentHeartbeat
	reports    map[string][]api.LeaseReport
	results    map[string][]api.LeaseResult
	epochs     map[string]int64 // the current epoch of each lease
	stale      int              // writes refused for their epoch
	accepted   int              // writes accepted
	hellos     int
	deletes    int

	work   chan api.AgentWork // given to the next poll
	down   atomic.Bool        // 503 to everything
	silent atomic.Bool        // no answer until the request ends
	// forget: the server forgot the agent's session (a restart): every poll and heartbeat
	// is 404, as zof serve answers an unknown session, until the agent says hello again.
	forget atomic.Bool
	// forgetBeats: only heartbeats are 404 until the next hello, as when the held poll is
	// on a replica that still takes it and the heartbeat reaches the new fleet home.
	forgetBeats atomic.Bool
	quit        chan struct{} // closed when the test ends
	seen        chan string   // "hello", "poll", "heartbeat", "events:ID", "result:ID", "delete", "fenced:ID"
}

func newFakeServer(t *testing.T) *fakeServer {
	f := &fakeServer{
		token:    "agent-token-0123456789",
		protocol: api.AgentProtocol,
		session: api.AgentSession{
			AgentID: "ag_1", Tenant: "payments", Pool: "private-eu",
			// Heartbeats come soon enough for tests to wait on them, but not
			// so often that a loaded machine times them out (a heartbeat's
			// request may take one interval); the TTL is long so a late
			// heartbeat never takes the lease for lost behind a test that
			// checks another way of ending it. TestLostServerKillsSteps,
			// which is about the TTL, sets a short one.
			HeartbeatEvery: api.Duration(200 * time.Millisecond),
			LeaseTTL:       api.Duration(10 * time.Second),
			PollWait:       api.Duration(2 * time.Second),
			Policy:         api.AgentPolicy{Targets: []string{"http://127.0.0.1:*"}, AllowCommands: true},
		},
		reports: map[string][]api.LeaseReport{},
		results: map[string][]api.LeaseResult{},
		epochs:  map[string]int64{},
		work:    make(chan api.AgentWork, 16),
		seen:    make(chan string, 4096),
	}
	f.quit = make(chan struct{})
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	t.Cleanup(func() { close(f.quit) }) // runs first: silent requests end

	return f
}

func (f *fakeServer) note(s string) {
	select {
	case f.seen <- s:
	default:
	}
}

// expect waits (with a deadline) until the agent did what; other things it
// did meanwhile are passed over.
func (f *fakeServer) expect(t *testing.T, what string) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case s := <-f.seen:
			if s == what {
				return
			}
		case <-deadline:
			t.Fatalf("the agent did not %s within 20s", what)
		}
	}
}

// grant hands a lease to the next poll at epoch 1.
func (f *fakeServer) grant(l api.Lease) {
	if l.Epoch == 0 {
		l.Epoch = 1
	}
	f.mu.Lock()
	f.epochs[l.ID] = l.Epoch
	f.mu.Unlock()
	f.work <- api.AgentWork{Leases: []api.Lease{l}}
}

// fence moves a lease to a new epoch: the agent's writes are stale from now.
func (f *fakeServer) fence(id string) {
	f.mu.Lock()
	f.epochs[id]++
	f.mu.Unlock()
}

func (f *fakeServer) problem(w http.ResponseWriter, status int, typ, detail string) {
	w.Header().Set("Content-Type", api.MediaProblem)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(api.Problem{Type: "urn:zof:problem:" + typ, Title: http.StatusText(status), Status: status, Detail: detail})
}

func (f *fakeServer) serve(w http.ResponseWriter, r *http.Request) {
	if f.silent.Load() {
		select {
		case <-r.Context().Done():
		case <-f.quit:
		}
		return
	}
	if f.down.Load() {
		f.problem(w, http.StatusServiceUnavailable, "unavailable", "restarting")
		return
	}
	f.mu.Lock()
	token := f.token
	f.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+token {
		f.problem(w, http.StatusUnauthorized, "unauthorized", "unknown agent token")
		return
	}
	if v := r.Header.Get(api.AgentProtocolHeader); v != strconv.Itoa(f.protocol) {
		w.Header().Set(api.AgentProtocolHeader, strconv.Itoa(f.protocol))
		f.problem(w, http.StatusUpgradeRequired, "agent-protocol", fmt.Sprintf("this server speaks agent protocol %d, the agent %s", f.protocol, v))
		return
	}
	var body bytes.Buffer
	_, _ = body.ReadFrom(r.Body)
	decode := func(v any) bool {
		dec := json.NewDecoder(&body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil {
			f.problem(w, http.StatusBadRequest, "malformed-json", err.Error())
			return false
		}
		return true
	}
	reply := func(v any) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
	switch p := r.URL.Path; {
	case r.Method == http.MethodPost && p == "/v1/agent/sessions":
		var h api.AgentHello
		if !decode(&h) {
			return
		}
		f.mu.Lock()
		f.hellos++
		f.mu.Unlock()
		f.forget.Store(false)
		f.forgetBeats.Store(false)
		f.note("hello")
		reply(f.session)
	case r.Method == http.MethodPost && p == "/v1/agent/poll":
		var pl api.AgentPoll
		if !decode(&pl) {
			return
		}
		if f.forget.Load() {
			f.problem(w, http.StatusNotFound, "not-found", "no agent "+pl.AgentID)
			return
		}
		f.mu.Lock()
		f.polls = append(f.polls, pl)
		f.mu.Unlock()
		f.note("poll")
		select {
		case wk := <-f.work:
			reply(wk)
		case <-r.Context().Done():
		case <-f.quit:
		case <-time.After(f.session.PollWait.D()):
			reply(api.AgentWork{})
		}
	case r.Method == http.MethodPost && p == "/v1/agent/heartbeat":
		var hb api.AgentHeartbeat
		if !decode(&hb) {
			return
		}
		if f.forget.Load() || f.forgetBeats.Load() {
			f.problem(w, http.StatusNotFound, "not-found", "no agent "+hb.AgentID)
			return
		}
		var stop []api.LeaseStop
		f.mu.Lock()
		f.heartbeats = append(f.heartbeats, hb)
		for _, ref := range hb.Held {
			if f.epochs[ref.ID] != ref.Epoch {
				stop = append(stop, api.LeaseStop{ID: ref.ID, Reason: "lease fenced"})
			}
		}
		f.mu.Unlock()
		f.note("heartbeat")
		reply(api.AgentWork{Stop: stop})
	case r.Method == http.MethodPost && strings.HasPrefix(p, "/v1/agent/leases/"):
		id, what, _ := strings.Cut(strings.TrimPrefix(p, "/v1/agent/leases/"), "/")
		var epoch int64
		var rep api.LeaseReport
		var res api.LeaseResult
		switch what {
		case "events":
			if !decode(&rep) {
				return
			}
			epoch = rep.Epoch
		case "result":
			if !decode(&res) {
				return
			}
			epoch = res.Epoch
		default:
			http.NotFound(w, r)
			return
		}
		f.mu.Lock()
		current, ok := f.epochs[id]
		if !ok || current != epoch {
			f.stale++
			f.mu.Unlock()
			f.note("fenced:" + id)
			f.problem(w, http.StatusConflict, "lease-fenced", fmt.Sprintf("lease %s is at epoch %d, not %d", id, current, epoch))
			return
		}
		f.accepted++
		if what == "events" {
			f.reports[id] = append(f.reports[id], rep)
		} else {
			f.results[id] = append(f.results[id], res)
			f.epochs[id]++ // a finished lease takes no more writes
		}
		f.mu.Unlock()
		f.note(what + ":" + id)
		w.WriteHeader(http.StatusNoContent)
	case r.Method == http.MethodDelete && strings.HasPrefix(p, "/v1/agent/sessions/"):
		f.mu.Lock()
		f.deletes++
		f.mu.Unlock()
		f.note("delete")
		w.WriteHeader(http.StatusNoContent)
	default:
		f.problem(w, http.StatusNotFound, "not-found", "no route "+r.Method+" "+p)
	}
}

// syncBuffer is an io.Writer safe for the agent's log and the test's reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startAgent runs an agent against f until the test ends; done receives Run's error.
func startAgent(t *testing.T, f *fakeServer, tweak func(*Options)) (cancel context.CancelFunc, done <-chan error, log *syncBuffer) {
	t.Helper()
	log = &syncBuffer{}
	o := Options{Server: f.URL, Token: f.token, Name: "eu-1", Concurrency: 2, Version: "test", Out: log, Dir: t.TempDir(), Env: []string{"PATH=/usr/bin:/bin"}, DrainGrace: 10 * time.Second}
	if tweak != nil {
		tweak(&o)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan error, 1)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		ch <- Run(ctx, o)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-finished:
		case <-time.After(30 * time.Second):
			t.Errorf("the agent did not stop within 30s of its context ending")
		}
	})
	return cancel, ch, log
}

func runCase(id string, cmds ...string) api.Case {
	c := api.Case{ID: id}
	for _, cmd := range cmds {
		c.Steps = append(c.Steps, api.Step{Run: &api.Command{Command: cmd}})
	}
	return c
}
