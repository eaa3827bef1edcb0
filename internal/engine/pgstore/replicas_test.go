package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/engine/pgstore"
	"github.com/zof-ai/zof-ci/internal/engine/pgstore/pgtest"
)

// steps is a StepRunner for replica tests: a command "block" waits until
// its context ends or gate is closed, "hold" until its context ends;
// anything else passes after work.
type steps struct {
	work time.Duration
	gate chan struct{}
	// started is signalled (without blocking) when a "block" step starts.
	started chan string
}

func (s *steps) Run(ctx context.Context, st api.Step, in engine.StepInput) engine.StepOutput {
	if st.Run != nil && (st.Run.Command == "block" || st.Run.Command == "hold") {
		select {
		case s.started <- st.Name:
		default:
		}
		gate := s.gate
		if st.Run.Command == "hold" {
			gate = nil // only the context ends it
		}
		select {
		case <-gate:
			return engine.StepOutput{Status: api.StepPassed}
		case <-ctx.Done():
			return engine.StepOutput{Status: api.StepCancelled, Failure: &api.Failure{Message: "cancelled"}}
		}
	}
	if s.work > 0 {
		t := time.NewTimer(s.work)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return engine.StepOutput{Status: api.StepCancelled, Failure: &api.Failure{Message: "cancelled"}}
		}
	}
	return engine.StepOutput{Status: api.StepPassed}
}

func newSteps(work time.Duration) *steps {
	return &steps{work: work, gate: make(chan struct{}), started: make(chan string, 16)}
}

// replica starts an engine on store and stops it when t ends (or when the
// returned stop is called).
func replica(t *testing.T, store engine.Store, name string, st engine.StepRunner, limit int, lease time.Duration) (*engine.Engine, func()) {
	t.Helper()
	eng, err := engine.New(engine.Config{Store: store, Steps: st, Replica: name, LeaseTTL: lease,
		TenantLimit: func(string) int { return limit }, LeaveQueuedOnStop: true,
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := eng.Run(ctx); err != nil {
			t.Errorf("replica %s: %v", name, err)
		}
	}()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return eng, stop
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func oneCase(command string) *api.RunRequest {
	return &api.RunRequest{
		Project:     "shop",
		Environment: api.Environment{Name: "staging", URL: "http://127.0.0.1:1"},
		Cases:       []api.Case{{ID: "a", Steps: []api.Step{{Name: "s1", Run: &api.Command{Command: command}}}}},
		Selection:   api.Selection{Scope: "all", Effective: "all"},
	}
}

func wait(t *testing.T, eng *engine.Engine, id string, within time.Duration) *api.Run {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	run, err := eng.Wait(ctx, "t", id)
	if err != nil {
		t.Fatalf("waiting for %s: %v", id, err)
	}
	return run
}

// TestReplicasKeepTheTenantLimit: 60 runs submitted at once through three
// engines on one database, tenant limit 2: sampled over the whole drain,
// the database never shows more than 2 of the tenant's runs running, and
// it does show 2 (the engines do run in parallel).
func TestReplicasKeepTheTenantLimit(t *testing.T) {
	url := pgtest.URL(t)
	const limit, runs = 2, 60
	var engs []*engine.Engine
	for i := range 3 {
		eng, _ := replica(t, openAt(t, url), fmt.Sprintf("r%d", i), newSteps(5*time.Millisecond), limit, engine.LeaseTTL)
		engs = append(engs, eng)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)

	var most atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan int)
	go func() {
		n := 0
		defer func() { sampled <- n }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			var running int64
			if err := conn.QueryRow(ctx, `SELECT count(*) FROM runs WHERE tenant = 't' AND status = 'running'`).Scan(&running); err != nil {
				t.Error(err)
				return
			}
			n++
			if running > most.Load() {
				most.Store(running)
			}
		}
	}()

	ids := make([]string, runs)
	var wg sync.WaitGroup
	for i := range runs {
		wg.Go(func() {
			run, _, err := engs[i%3].Create(ctx, "t", oneCase("true"), engine.CreateOptions{})
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = run.ID
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for i, id := range ids {
		if run := wait(t, engs[(i+1)%3], id, time.Minute); run.Status != api.StatusPassed {
			t.Fatalf("run %s ended %s: %s", id, run.Status, run.Reason)
		}
	}
	close(stop)
	n := <-sampled
	t.Logf("%d samples, most running at once: %d", n, most.Load())
	if got := most.Load(); got != limit {
		t.Fatalf("most runs running at once = %d, want exactly the limit %d", got, limit)
	}
	owners := map[string]bool{}
	rows, err := conn.Query(ctx, `SELECT DISTINCT split_part(owner, '#', 1) FROM runs`)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		owners[n] = true
	}
	if len(owners) < 2 {
		t.Fatalf("runs were executed by %v only; want the replicas to share them", names)
	}
}

// TestFollowAndCancelThroughAnotherReplica: a run executed by replica A is
// followed through replica B from its first event: B delivers every stored
// event exactly once, in order, and ends with the terminal one. A cancel
// sent to B stops a run executing on A within CancelWithin.
func TestFollowAndCancelThroughAnotherReplica(t *testing.T) {
	url := pgtest.URL(t)
	stA := newSteps(0)
	a, _ := replica(t, openAt(t, url), "A", stA, 0, engine.LeaseTTL)
	ctx := context.Background()
	run, _, err := a.Create(ctx, "t", oneCase("block"), engine.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	run2, _, err := a.Create(ctx, "t", oneCase("hold"), engine.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		select {
		case <-stA.started:
		case <-time.After(10 * time.Second):
			t.Fatal("replica A did not start both runs")
		}
	}
	// B starts after A holds both runs, so A executes them.
	b, _ := replica(t, openAt(t, url), "B", newSteps(0), 0, engine.LeaseTTL)
	sub, err := b.Subscribe(ctx, "t", run.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	deadline := time.After(30 * time.Second)
	for done := false; !done; {
		select {
		case ev, ok := <-sub.C:
			if !ok {
				done = true
				break
			}
			if len(got) == 0 {
				// B has delivered what was stored; the rest happens now, on A.
				close(stA.gate)
			}
			got = append(got, ev.Seq)
		case <-deadline:
			t.Fatalf("B delivered %v and then nothing", got)
		}
	}
	if err := sub.Err(); err != nil {
		t.Fatalf("subscription through B: %v", err)
	}
	stored, err := b.Events(ctx, "t", run.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	var want []int64
	for _, ev := range stored {
		want = append(want, ev.Seq)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("B delivered seqs %v; the log is %v", got, want)
	}
	if last := stored[len(stored)-1]; last.Type != api.EventRunStatus || last.Status != api.StatusPassed {
		t.Fatalf("last event %+v, want run.status passed", last)
	}

	// A cancel through B reaches run 2 on A (its step waits for its context).
	began := time.Now()
	if _, err := b.Cancel(ctx, "t", run2.ID, "stop from B"); err != nil {
		t.Fatal(err)
	}
	end := wait(t, b, run2.ID, 10*time.Second)
	took := time.Since(began)
	if end.Status != api.StatusCancelled || end.Reason != "stop from B" {
		t.Fatalf("run 2 ended %s (%s), want cancelled with B's reason", end.Status, end.Reason)
	}
	t.Logf("cancel through B: %s to the terminal event", took)
	if took > engine.CancelWithin {
		t.Fatalf("cancel through another replica took %s, more than CancelWithin %s", took, engine.CancelWithin)
	}
}

// deadStore is a replica's store that can be cut off, as a killed process
// is: every call fails from then on.
type deadStore struct {
	*pgstoreStore
	dead atomic.Bool
}

var errDead = errors.New("replica killed")

func (d *deadStore) check() error {
	if d.dead.Load() {
		return errDead
	}
	return nil
}

func (d *deadStore) Append(ctx context.Context, a engine.Append) error {
	if err := d.check(); err != nil {
		return err
	}
	return d.pgstoreStore.Append(ctx, a)
}

func (d *deadStore) AppendBatch(ctx context.Context, b []engine.Append) error {
	if err := d.check(); err != nil {
		return err
	}
	return d.pgstoreStore.AppendBatch(ctx, b)
}

func (d *deadStore) Claim(ctx context.Context, lease string, ttl time.Duration, limit func(string) int) (*engine.Claimed, error) {
	if err := d.check(); err != nil {
		return nil, err
	}
	return d.pgstoreStore.Claim(ctx, lease, ttl, limit)
}

func (d *deadStore) TakeOver(ctx context.Context, lease string, ttl time.Duration) (*engine.Claimed, error) {
	if err := d.check(); err != nil {
		return nil, err
	}
	return d.pgstoreStore.TakeOver(ctx, lease, ttl)
}

func (d *deadStore) Renew(ctx context.Context, leases []string, ttl time.Duration) (map[string]string, error) {
	if err := d.check(); err != nil {
		return nil, err
	}
	return d.pgstoreStore.Renew(ctx, leases, ttl)
}

func (d *deadStore) Release(ctx context.Context, leases []string) error {
	if err := d.check(); err != nil {
		return err
	}
	return d.pgstoreStore.Release(ctx, leases)
}

func (d *deadStore) Lead(ctx context.Context, owner string, ttl time.Duration) (bool, error) {
	if err := d.check(); err != nil {
		return false, err
	}
	return d.pgstoreStore.Lead(ctx, owner, ttl)
}

// TestTakeOverAfterAReplicaDies: replica A executes a two-member run; one
// member has passed when A is cut off from the database mid-step. B takes
// the run over once A's lease expires, keeps the finished member and runs
// the other again as attempt 2, and the run passes. A's later writes are
// refused (its lease is B's now).
func TestTakeOverAfterAReplicaDies(t *testing.T) {
	url := pgtest.URL(t)
	const lease = 2 * time.Second
	stA := newSteps(0)
	dsA := &deadStore{pgstoreStore: openAt(t, url)}
	a, stopA := replica(t, dsA, "A", stA, 0, lease)
	ctx := context.Background()
	req := oneCase("block")
	req.Cases = append([]api.Case{{ID: "first", Steps: []api.Step{{Name: "quick", Run: &api.Command{Command: "true"}}}}}, req.Cases...)
	req.MaxParallel = 1
	run, _, err := a.Create(ctx, "t", req, engine.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-stA.started:
	case <-time.After(10 * time.Second):
		t.Fatal("replica A did not start the blocking step")
	}
	dsA.dead.Store(true)
	killed := time.Now()

	stB := newSteps(0)
	close(stB.gate) // B's steps pass at once
	b, _ := replica(t, openAt(t, url), "B", stB, 0, lease)
	end := wait(t, b, run.ID, 30*time.Second)
	took := time.Since(killed)
	if end.Status != api.StatusPassed {
		t.Fatalf("run ended %s: %s", end.Status, end.Reason)
	}
	first, second := end.Members[0], end.Members[1]
	if first.Attempt != 1 || second.Attempt != 2 {
		t.Fatalf("attempts: first %d (kept), a %d (run again); want 1 and 2", first.Attempt, second.Attempt)
	}
	evs, err := b.Events(ctx, "t", run.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	resumed := false
	for _, ev := range evs {
		resumed = resumed || strings.Contains(ev.Message, "stopped (its lease expired or was released); replica B resumes it")
	}
	if !resumed {
		t.Fatal("the run's log does not say replica B resumed it")
	}
	t.Logf("takeover: run finished on B %s after A was cut off (lease %s)", took, lease)
	if took > lease+engine.ClusterPoll+5*time.Second {
		t.Fatalf("takeover took %s", took)
	}

	// A comes back: its step ends, its write is refused (the run is B's)
	// and it stops; the log is what B left.
	dsA.dead.Store(false)
	close(stA.gate)
	stopA()
	after, err := b.Events(ctx, "t", run.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(evs) {
		t.Fatalf("the log grew from %d to %d events after A came back", len(evs), len(after))
	}
}

// pgstoreStore names the concrete store for embedding.
type pgstoreStore = pgstore.Store

// TestStoppedReplicaHandsOverAtOnce: a replica stopped cleanly (SIGTERM in
// zof serve) releases its leases, so another replica resumes its run at
// once instead of after the lease (here a minute).
func TestStoppedReplicaHandsOverAtOnce(t *testing.T) {
	url := pgtest.URL(t)
	stA := newSteps(0)
	a, stopA := replica(t, openAt(t, url), "A", stA, 0, time.Minute)
	ctx := context.Background()
	run, _, err := a.Create(ctx, "t", oneCase("block"), engine.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-stA.started:
	case <-time.After(10 * time.Second):
		t.Fatal("replica A did not start the run")
	}
	stopA()
	stopped := time.Now()
	stB := newSteps(0)
	close(stB.gate)
	b, _ := replica(t, openAt(t, url), "B", stB, 0, time.Minute)
	end := wait(t, b, run.ID, 30*time.Second)
	if end.Status != api.StatusPassed || end.Members[0].Attempt != 2 {
		t.Fatalf("run ended %s, attempt %d; want passed on its second attempt", end.Status, end.Members[0].Attempt)
	}
	if took := time.Since(stopped); took > 10*time.Second {
		t.Fatalf("B resumed the run %s after A stopped: the lease was not released", took)
	}
}

// TestLeaderFailover: the leader (A, started first) is cut off from the
// database; within LeaderTTL and a pass another replica leads and writes a
// new queued run's position (the queue positions are the leader's duty).
func TestLeaderFailover(t *testing.T) {
	url := pgtest.URL(t)
	dsA := &deadStore{pgstoreStore: openAt(t, url)}
	stA := newSteps(0)
	replica(t, dsA, "A", stA, 1, time.Minute)
	ctx := context.Background()
	// A leads once it has made a pass; wait for the leases row.
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	deadline := time.Now().Add(10 * time.Second)
	for {
		var owner string
		if conn.QueryRow(ctx, `SELECT owner FROM leases WHERE name = 'leader'`).Scan(&owner) == nil && owner == "A" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("A did not take the leader lease")
		}
		select {
		case <-stA.started:
		case <-time.After(50 * time.Millisecond): // polling the table for a state the engine does not announce
		}
	}
	stB := newSteps(0)
	b, _ := replica(t, openAt(t, url), "B", stB, 1, time.Minute)
	hold, _, err := b.Create(ctx, "t", oneCase("hold"), engine.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The tenant's one slot is held (by A or B): the next run waits.
	for {
		r, err := b.Get(ctx, "t", hold.ID)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status == api.StatusRunning {
			break
		}
		select {
		case <-stA.started:
		case <-stB.started:
		case <-time.After(10 * time.Second):
			t.Fatalf("the holding run is %s", r.Status)
		}
	}
	dsA.dead.Store(true)
	cut := time.Now()
	next, _, err := b.Create(ctx, "t", oneCase("true"), engine.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := b.Subscribe(ctx, "t", next.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	timeout := time.After(engine.LeaderTTL + engine.ClusterPoll + 5*time.Second)
	for {
		select {
		case ev, ok := <-sub.C:
			if !ok {
				t.Fatalf("the subscription ended: %v", sub.Err())
			}
			if ev.Type == api.EventRunSubstate && ev.Substate == api.SubstateQueuePosition && ev.Position == 1 {
				t.Logf("B led and queued the run %s after A was cut off", time.Since(cut))
				return
			}
		case <-timeout:
			t.Fatal("no replica wrote the new run's queue position after the leader was cut off")
		}
	}
}
