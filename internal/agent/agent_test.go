package agent

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
)

// waitGone fails unless the file never appears for d: the step that would
// write it was killed.
func neverAppears(t *testing.T, path string, d time.Duration, log ...*syncBuffer) {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-timer.C:
			return
		case <-tick.C:
			if _, err := os.Stat(path); err == nil {
				if len(log) > 0 {
					t.Logf("agent log:\n%s", log[0])
				}
				t.Fatalf("%s appeared: the step was not killed", path)
			}
		}
	}
}

// longStep is a step that records its process group, says it started and
// would then run for a minute: a test shows it was killed by its group being
// gone (stepKilled), however slowly the machine runs, where a short step
// would finish by itself on a loaded machine before the kill was due.
const longStep = "echo $$ > pgid; touch started; sleep 60; touch finished"

// stepKilled waits (with a deadline) until no process of longStep's group
// in dir runs any more, and fails if the step got to its end.
func stepKilled(t *testing.T, dir string, log ...*syncBuffer) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "pgid"))
	if errors.Is(err, os.ErrNotExist) {
		// Stopped before its shell got to its first command: it must not
		// get there later.
		neverAppears(t, filepath.Join(dir, "started"), 2*time.Second, log...)
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	pgid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("process group %q: %v", b, err)
	}
	for end := time.Now().Add(20 * time.Second); groupRunning(pgid); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			if len(log) > 0 {
				t.Logf("agent log:\n%s", log[0])
			}
			t.Fatalf("the step's process group %d still runs 20s later: it was not killed", pgid)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "finished")); err == nil {
		t.Fatal("the step finished: it was not killed")
	}
}

// waitLog waits (with a deadline) until the agent's log holds want.
func waitLog(t *testing.T, log *syncBuffer, want string) {
	t.Helper()
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if strings.Contains(log.String(), want) {
			return
		}
	}
	t.Fatalf("the agent's log lacks %q:\n%s", want, log)
}

// waitFile waits (with a deadline) until a step wrote path.
func waitFile(t *testing.T, path string) {
	t.Helper()
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return
		}
	}
	t.Fatalf("%s did not appear within 20s", path)
}

// TestLeaseRunsAndReports: a leased member runs with the engine's attempt:
// each step's start is reported as it goes, the outcome with the last events;
// polls say how many slots are free and which leases are held.
func TestLeaseRunsAndReports(t *testing.T) {
	f := newFakeServer(t)
	_, _, log := startAgent(t, f, nil)
	f.expect(t, "poll")
	c := runCase("greet", "echo hello-$NAME", "exit 3", "echo never")
	f.grant(api.Lease{ID: "L1", RunID: "run_a", Member: "greet", Attempt: 1, Case: c, Variant: api.Variant{Vars: map[string]string{}}})
	f.expect(t, "result:L1")

	f.mu.Lock()
	defer f.mu.Unlock()
	res := f.results["L1"][0]
	if res.Status != api.StatusFailed || !strings.Contains(res.Reason, "step 2 (run: exit 3): exit code: expected 0, got 3") {
		t.Fatalf("result %s %q, want failed naming step 2", res.Status, res.Reason)
	}
	var got []string
	for _, rep := range f.reports["L1"] {
		if rep.Epoch != 1 {
			t.Errorf("report at epoch %d, want the lease's 1", rep.Epoch)
		}
		for _, e := range rep.Events {
			got = append(got, e.Member+"/"+string(rune('0'+e.Step))+"/"+string(e.StepStatus))
		}
	}
	for _, e := range res.Events {
		got = append(got, e.Member+"/"+string(rune('0'+e.Step))+"/"+string(e.StepStatus))
	}
	want := "greet/1/running greet/1/passed greet/2/running greet/2/failed greet/3/skipped"
	if strings.Join(got, " ") != want {
		t.Errorf("events\n got %s\nwant %s", strings.Join(got, " "), want)
	}
	// The failed step's evidence goes with the result, for the run's artifacts.
	if len(res.Evidence) != 1 || res.Evidence[0].Step != 2 || res.Evidence[0].Kind != api.ArtifactOutput {
		t.Errorf("result evidence %+v, want step 2's output", res.Evidence)
	}
	if !strings.Contains(f.reports["L1"][1].Events[0].Output, "hello-") {
		t.Errorf("step 1's output not reported: %+v", f.reports["L1"][1].Events[0])
	}
	// The first poll had both slots free; the one sent while L1 ran, one.
	if f.polls[0].Free != 2 || len(f.polls[0].Held) != 0 {
		t.Errorf("first poll %+v, want free 2 and nothing held", f.polls[0])
	}
	if len(f.polls) > 1 && (f.polls[1].Free != 1 || len(f.polls[1].Held) != 1 || f.polls[1].Held[0] != (api.LeaseRef{ID: "L1", Epoch: 1})) {
		t.Errorf("poll while L1 ran %+v, want free 1 holding L1 at epoch 1", f.polls[1])
	}
	waitLog(t, log, "lease L1 (run run_a, member greet, attempt 1): failed")
}

// TestRefused: a refused token exits with KindUnauthorized (77 at the top),
// the token never printed; another protocol version with KindProtocol naming
// both versions.
func TestRefused(t *testing.T) {
	tests := []struct {
		name  string
		tweak func(f *fakeServer, o *Options)
		kind  ErrorKind
		msg   string
	}{
		{"bad token", func(f *fakeServer, o *Options) { o.Token = "wrong-token-9876543210" }, KindUnauthorized, "the server refused the agent token (401 Unauthorized"},
		{"other protocol", func(f *fakeServer, o *Options) { f.protocol = api.AgentProtocol + 1 }, KindProtocol, "the server speaks agent protocol 2 and this zof agent speaks 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeServer(t)
			var token string
			_, done, log := startAgent(t, f, func(o *Options) { tt.tweak(f, o); token = o.Token })
			var err error
			select {
			case err = <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("the agent did not stop within 20s")
			}
			var ae *Error
			if !errors.As(err, &ae) || ae.Kind != tt.kind || !strings.Contains(ae.Msg, tt.msg) {
				t.Fatalf("Run = %v, want kind %d with %q", err, tt.kind, tt.msg)
			}
			if strings.Contains(err.Error()+log.String(), token) {
				t.Errorf("the token was printed")
			}
		})
	}
}

// TestRevokedToken: a token revoked while the agent holds a member (the
// next heartbeat is 401) stops the agent with KindUnauthorized, its steps killed.
func TestRevokedToken(t *testing.T) {
	f := newFakeServer(t)
	dir := t.TempDir()
	_, done, _ := startAgent(t, f, func(o *Options) { o.Dir = dir })
	f.expect(t, "poll")
	f.grant(api.Lease{ID: "L1", RunID: "run_a", Member: "slow", Attempt: 1, Case: runCase("slow", longStep)})
	waitFile(t, filepath.Join(dir, "started"))
	f.mu.Lock()
	f.token = "revoked"
	f.mu.Unlock()
	select {
	case err := <-done:
		var ae *Error
		if !errors.As(err, &ae) || ae.Kind != KindUnauthorized {
			t.Fatalf("Run = %v, want KindUnauthorized", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the agent did not stop within 20s of its token being revoked")
	}
	stepKilled(t, dir)
}

// TestStopKillsSteps: a stop in the held poll's answer (a cancelled run, a
// lost lease) kills the member's step process group and drops its results.
func TestStopKillsSteps(t *testing.T) {
	f := newFakeServer(t)
	dir := t.TempDir()
	_, _, log := startAgent(t, f, func(o *Options) { o.Dir = dir })
	f.expect(t, "poll")
	f.grant(api.Lease{ID: "L1", RunID: "run_a", Member: "slow", Attempt: 1, Case: runCase("slow", longStep)})
	waitFile(t, filepath.Join(dir, "started"))
	f.fence("L1")
	f.work <- api.AgentWork{Stop: []api.LeaseStop{{ID: "L1", Reason: "run cancelled"}}}
	stepKilled(t, dir)
	f.mu.Lock()
	n := len(f.results["L1"])
	f.mu.Unlock()
	if n != 0 {
		t.Errorf("a stopped lease sent %d results", n)
	}
	if !strings.Contains(log.String(), "lease L1 (run run_a, member slow): stopped: the server said stop: run cancelled") {
		t.Errorf("log:\n%s", log)
	}
}

// TestCancelKillsSteps: a stop for a cancelled run kills the member's steps
// at once and still says how the attempt ended (cancelled, the running step
// cancelled and the rest skipped), so the run's log is whole.
func TestCancelKillsSteps(t *testing.T) {
	f := newFakeServer(t)
	dir := t.TempDir()
	startAgent(t, f, func(o *Options) { o.Dir = dir })
	f.expect(t, "poll")
	f.grant(api.Lease{ID: "L1", RunID: "run_a", Member: "slow", Attempt: 1, Case: runCase("slow", longStep, "true")})
	waitFile(t, filepath.Join(dir, "started"))
	f.work <- api.AgentWork{Stop: []api.LeaseStop{{ID: "L1", Reason: "cancelled: the run was cancelled"}}}
	f.expect(t, "result:L1")
	f.mu.Lock()
	res := f.results["L1"][0]
	f.mu.Unlock()
	if res.Status != api.StatusCancelled || len(res.Events) != 2 || res.Events[0].StepStatus != api.StepCancelled || res.Events[1].StepStatus != api.StepSkipped {
		t.Errorf("result %+v, want cancelled with step 1 cancelled and step 2 skipped", res)
	}
	stepKilled(t, dir)
}

// TestFencedWriteKillsSteps: a write refused with 409 lease-fenced stops the
// lease at once: its steps are killed and nothing more is sent under it.
func TestFencedWriteKillsSteps(t *testing.T) {
	f := newFakeServer(t)
	dir := t.TempDir()
	_, _, log := startAgent(t, f, func(o *Options) { o.Dir = dir })
	f.expect(t, "poll")
	f.grant(api.Lease{ID: "L1", RunID: "run_a", Member: "m", Attempt: 1, Case: runCase("m", "touch one", longStep)})
	waitFile(t, filepath.Join(dir, "one"))
	f.fence("L1") // step 2's start is now stale; the heartbeat also says stop
	waitLog(t, log, "lease L1 (run run_a, member m): stopped:")
	stepKilled(t, dir, log)
	f.mu.Lock()
	n := len(f.results["L1"])
	f.mu.Unlock()
	if n != 0 {
		t.Errorf("a fenced lease sent %d results", n)
	}
	if !strings.Contains(log.String(), "lease L1 (run run_a, member m): stopped:") {
		t.Errorf("log:\n%s", log)
	}
}

// TestLostServerKillsSteps: with no answer from the server for longer than
// the lease TTL the agent kills the member (the server has given it to
// another agent), sends nothing more under it, and reconnects when the
// server is back.
func TestLostServerKillsSteps(t *testing.T) {
	f := newFakeServer(t)
	f.session.LeaseTTL = api.Duration(400 * time.Millisecond)
	dir := t.TempDir()
	_, _, log := startAgent(t, f, func(o *Options) { o.Dir = dir })
	f.expect(t, "poll")
	f.grant(api.Lease{ID: "L1", RunID: "run_a", Member: "m", Attempt: 1, Case: runCase("m", longStep)})
	waitFile(t, filepath.Join(dir, "started"))
	f.silent.Store(true)
	stepKilled(t, dir, log)
	if !strings.Contains(log.String(), "longer than the lease ttl") {
		t.Errorf("log:\n%s", log)
	}
	f.silent.Store(false)
	f.expect(t, "poll")
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.results["L1"]) != 0 || f.stale != 0 {
		t.Errorf("after the lease was lost the agent sent %d results and %d stale writes", len(f.results["L1"]), f.stale)
	}
}

// TestDrain: when its context ends the agent takes no new member, finishes
// the one it holds, says it is draining, disconnects and returns nil.
func TestDrain(t *testing.T) {
	f := newFakeServer(t)
	dir := t.TempDir()
	cancel, done, log := startAgent(t, f, func(o *Options) { o.Dir = dir })
	f.expect(t, "poll")
	f.grant(api.Lease{ID: "L1", RunID: "run_a", Member: "m", Attempt: 1, Case: runCase("m", "touch started; sleep 0.5; touch finished")})
	waitFile(t, filepath.Join(dir, "started"))
	cancel()
	f.expect(t, "heartbeat")
	f.grant(api.Lease{ID: "L2", RunID: "run_a", Member: "n", Attempt: 1, Case: runCase("n", "touch n-ran")})
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil after a drain", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the drain did not end within 20s")
	}
	if _, err := os.Stat(filepath.Join(dir, "finished")); err != nil {
		t.Errorf("the held member did not finish: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "n-ran")); err == nil {
		t.Errorf("a draining agent took a new member")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.results["L1"]) != 1 || f.results["L1"][0].Status != api.StatusPassed {
		t.Errorf("results %+v, want L1 passed", f.results["L1"])
	}
	if f.deletes != 1 {
		t.Errorf("%d disconnects, want 1", f.deletes)
	}
	drained := false
	for _, hb := range f.heartbeats {
		drained = drained || hb.Draining
	}
	last := f.polls[len(f.polls)-1]
	if !drained || !last.Draining || last.Free != 0 {
		t.Errorf("draining not announced: heartbeat %v, last poll %+v", drained, last)
	}
	if !strings.Contains(log.String(), "drained: no member left; exiting") {
		t.Errorf("log:\n%s", log)
	}
}

// TestDrainGraceKills: a member still running when the drain grace runs out
// is killed; the agent still exits cleanly.
func TestDrainGraceKills(t *testing.T) {
	f := newFakeServer(t)
	dir := t.TempDir()
	cancel, done, log := startAgent(t, f, func(o *Options) { o.Dir = dir; o.DrainGrace = 200 * time.Millisecond })
	f.expect(t, "poll")
	f.grant(api.Lease{ID: "L1", RunID: "run_a", Member: "m", Attempt: 1, Case: runCase("m", longStep)})
	waitFile(t, filepath.Join(dir, "started"))
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the agent did not exit within 20s")
	}
	stepKilled(t, dir)
	if !strings.Contains(log.String(), "the drain grace of 200ms ran out") {
		t.Errorf("log:\n%s", log)
	}
}

// TestReconnect: a server that is down is waited for (backoff), and one
// that forgot the agent is connected to again; the agent then works.
func TestReconnect(t *testing.T) {
	f := newFakeServer(t)
	f.down.Store(true)
	_, _, log := startAgent(t, f, nil)
	for end := time.Now().Add(20 * time.Second); !strings.Contains(log.String(), "trying again in"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("no retry logged:\n%s", log)
		}
	}
	f.down.Store(false)
	f.expect(t, "hello")
	f.expect(t, "poll")
	f.forget.Store(true)
	f.work <- api.AgentWork{} // end the held poll; the next one is refused 404
	f.expect(t, "hello")
	f.grant(api.Lease{ID: "L1", RunID: "run_a", Member: "m", Attempt: 1, Case: runCase("m", "true")})
	f.expect(t, "result:L1")
	if !strings.Contains(log.String(), "the server no longer knows this agent") {
		t.Errorf("log:\n%s", log)
	}
}

// TestReconnectAtOnceAfterAnOutage: a 404 for the session after an outage
// long enough to back off (the fleet's home replica died and another took
// its place, docs/agents.md "Several replicas") comes from a server that
// answers: the agent connects again at once, not after the outage's backoff.
func TestReconnectAtOnceAfterAnOutage(t *testing.T) {
	f := newFakeServer(t)
	_, _, log := startAgent(t, f, nil)
	f.expect(t, "hello")
	f.expect(t, "poll")
	f.down.Store(true)
	f.work <- api.AgentWork{} // end the held poll; the next ones are 503
	for end := time.Now().Add(30 * time.Second); strings.Count(log.String(), "trying again in") < 5; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("fewer than 5 retries logged:\n%s", log)
		}
	}
	f.forget.Store(true)
	f.down.Store(false)
	for end := time.Now().Add(30 * time.Second); !strings.Contains(log.String(), "the server no longer knows this agent"); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("no 404 seen:\n%s", log)
		}
	}
	forgotten := time.Now()
	f.expect(t, "hello")
	if d := time.Since(forgotten); d > time.Second {
		t.Fatalf("connected again %s after the 404; want at once:\n%s", d, log)
	}
}

// TestReconnectAtOnceWhenAHeartbeatFindsTheSessionGone: the same when the
// 404 answers a heartbeat (the agent holds a member, so it beats every
// interval while its poll waits out the outage's backoff).
func TestReconnectAtOnceWhenAHeartbeatFindsTheSessionGone(t *testing.T) {
	f := newFakeServer(t)
	f.session.LeaseTTL = api.Duration(time.Minute) // the lease outlives the outage
	_, _, log := startAgent(t, f, func(o *Options) { o.DrainGrace = 100 * time.Millisecond })
	f.expect(t, "hello")
	f.grant(api.Lease{ID: "L1", RunID: "run_a", Member: "m", Attempt: 1, Case: runCase("m", "sleep 30")})
	f.expect(t, "heartbeat")
	f.down.Store(true)
	f.work <- api.AgentWork{} // end the held poll; the next ones are 503
	for end := time.Now().Add(30 * time.Second); strings.Count(log.String(), "trying again in") < 6; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("fewer than 6 retries logged:\n%s", log)
		}
	}
	f.forget.Store(true)
	back := time.Now()
	f.down.Store(false)
	f.expect(t, "hello")
	if d := time.Since(back); d > time.Second {
		t.Fatalf("connected again %s after the server came back forgetting the session; want at once:\n%s", d, log)
	}
}

// TestForgottenSessionEndsTheHeldPoll: a heartbeat that finds the session
// gone while a poll is held under it ends that poll and connects again at
// once, instead of leaving the agent without a session until poll_wait.
func TestForgottenSessionEndsTheHeldPoll(t *testing.T) {
	f := newFakeServer(t)
	f.session.PollWait = api.Duration(20 * time.Second) // far beyond the check below
	f.session.LeaseTTL = api.Duration(time.Minute)
	_, _, log := startAgent(t, f, func(o *Options) { o.DrainGrace = 100 * time.Millisecond })
	f.expect(t, "hello")
	f.grant(api.Lease{ID: "L1", RunID: "run_a", Member: "m", Attempt: 1, Case: runCase("m", "sleep 30")})
	f.expect(t, "poll") // held, with the member running
	f.expect(t, "heartbeat")
	forgot := time.Now()
	f.forgetBeats.Store(true)
	f.expect(t, "hello")
	if d := time.Since(forgot); d > 2*time.Second {
		t.Fatalf("connected again %s after a heartbeat found the session gone; want at once:\n%s", d, log)
	}
}

// TestFullPollRenewedWhenAMemberEnds: an agent with every slot busy keeps a
// poll held with free 0 (so a stop reaches it at once); when a member ends,
// it polls again with the free slot at once rather than wait for that poll
// to come back (a server that did not grant the ended lease, e.g. a new
// fleet home, has nothing to answer it for).
func TestFullPollRenewedWhenAMemberEnds(t *testing.T) {
	f := newFakeServer(t)
	f.session.PollWait = api.Duration(20 * time.Second) // far beyond the check below
	_, _, _ = startAgent(t, f, func(o *Options) { o.Concurrency = 1 })
	f.expect(t, "hello")
	f.grant(api.Lease{ID: "L1", RunID: "run_a", Member: "m", Attempt: 1, Case: runCase("m", "sleep 0.3")})
	f.expect(t, "result:L1")
	ended := time.Now()
	for end := ended.Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		f.mu.Lock()
		last := f.polls[len(f.polls)-1]
		f.mu.Unlock()
		if last.Free == 1 && len(last.Held) == 0 {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("no poll with the free slot within 5s of the member's end (last poll %+v)", last)
		}
	}
	if d := time.Since(ended); d > time.Second {
		t.Fatalf("polled with the free slot %s after the member ended; want at once", d)
	}
}

// TestPolicy: the agent enforces its pool's policy whatever a lease says:
// an http step outside the pool's targets and a run step on a pool without
// allow_commands fail before anything is reached or started.
func TestPolicy(t *testing.T) {
	outside := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the step reached %s, outside the pool's targets", r.URL)
	}))
	defer outside.Close()
	f := newFakeServer(t)
	f.session.Policy = api.AgentPolicy{Targets: []string{"https://*.internal.example.com"}, AllowCommands: false}
	dir := t.TempDir()
	startAgent(t, f, func(o *Options) { o.Dir = dir })
	f.expect(t, "poll")
	get := api.Case{ID: "get", Steps: []api.Step{{HTTP: &api.HTTPRequest{Method: "GET", Path: "/x"}, Expect: &api.Expect{Status: []string{"200"}}}}}
	f.grant(api.Lease{ID: "L1", RunID: "run_a", Member: "get", Attempt: 1, BaseURL: outside.URL, Case: get})
	f.expect(t, "result:L1")
	f.grant(api.Lease{ID: "L2", RunID: "run_a", Member: "cmd", Attempt: 1, Case: runCase("cmd", "touch ran")})
	f.expect(t, "result:L2")
	f.mu.Lock()
	defer f.mu.Unlock()
	if r := f.results["L1"][0]; r.Status != api.StatusFailed || !strings.Contains(r.Reason, "the agents of pool private-eu may not reach") {
		t.Errorf("http outside the targets: %s %q", r.Status, r.Reason)
	}
	if r := f.results["L2"][0]; r.Status != api.StatusFailed || !strings.Contains(r.Reason, "allow_commands is false") {
		t.Errorf("run step without allow_commands: %s %q", r.Status, r.Reason)
	}
	if _, err := os.Stat(filepath.Join(dir, "ran")); err == nil {
		t.Error("the command ran")
	}
}

// TestOversizedOutputClipped: a step's output beyond MaxEventOutput is cut
// to its end, with a marker, before it is sent.
func TestOversizedOutputClipped(t *testing.T) {
	f := newFakeServer(t)
	startAgent(t, f, func(o *Options) {
		o.Steps = bigOutput{}
	})
	f.expect(t, "poll")
	f.grant(api.Lease{ID: "L1", RunID: "run_a", Member: "m", Attempt: 1, Case: runCase("m", "x")})
	f.expect(t, "result:L1")
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.results["L1"][0].Events[0].Output
	if len(out) > MaxEventOutput+100 || !strings.HasPrefix(out, "… (") || !strings.Contains(out, "bytes truncated by the agent") || !strings.HasSuffix(out, "THE-END") {
		t.Errorf("output of %d bytes starting %q", len(out), out[:min(len(out), 60)])
	}
}

func TestClip(t *testing.T) {
	tests := []struct {
		in, tail, head string
		n              int
	}{
		{"short", "short", "short", 10},
		{"abcdefghij", "… (6 bytes truncated by the agent)\nghij", "abcd… (6 bytes truncated by the agent)", 4},
		{"ééé", "… (4 bytes truncated by the agent)\né", "é… (4 bytes truncated by the agent)", 3},
	}
	for _, tt := range tests {
		if got := clipTail(tt.in, tt.n); got != tt.tail {
			t.Errorf("clipTail(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.tail)
		}
		if got := clipHead(tt.in, tt.n); got != tt.head {
			t.Errorf("clipHead(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.head)
		}
	}
}

// bigOutput is a step runner whose step writes far more than MaxEventOutput.
type bigOutput struct{}

func (bigOutput) Run(ctx context.Context, s api.Step, in StepInputAlias) StepOutputAlias {
	return StepOutputAlias{Status: api.StepPassed, Output: strings.Repeat("x", 4*MaxEventOutput) + "THE-END"}
}

type (
	StepInputAlias  = engine.StepInput
	StepOutputAlias = engine.StepOutput
)
