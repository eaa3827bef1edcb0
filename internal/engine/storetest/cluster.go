package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
)

// RunCluster runs the conformance suite of engine.Cluster (claims, leases,
// fencing, takeover, the leader lease). A store without the capability
// (SQLite, memstore: one process per store) skips it, saying so.
func RunCluster(t *testing.T, open func(t *testing.T) engine.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s engine.Store, c engine.Cluster)
	}{
		{"ClaimKeepsTenantLimitAndFIFO", testClaimLimitFIFO},
		{"ClaimKeepsExclusiveEnvironments", testClaimExclusive},
		{"ConcurrentClaimsKeepTheLimit", testConcurrentClaims},
		{"AppendIsFencedByTheLease", testFencing},
		{"TakeOverAfterExpiry", testTakeOver},
		{"ReleaseAndRenew", testReleaseRenew},
		{"RequestCancel", testRequestCancel},
		{"LeaderLease", testLeader},
		{"QueueAndGroup", testQueueGroup},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			c, ok := s.(engine.Cluster)
			if !ok {
				t.Skipf("%T is not an engine.Cluster: one process per store, nothing to claim", s)
			}
			tt.fn(t, s, c)
		})
	}
}

// Limit is a TenantLimit of n for every tenant.
func Limit(n int) func(string) int { return func(string) int { return n } }

// CreateReq stores a new run of tenant with req.
func CreateReq(t testing.TB, s engine.Store, tenant, id string, req *api.RunRequest) {
	t.Helper()
	rec, first := NewRun(tenant, id, req)
	if holder, err := s.CreateRun(context.Background(), rec, first, nil); err != nil || holder != nil {
		t.Fatalf("CreateRun %s: holder %v, err %v", id, holder, err)
	}
}

// AppendUnder is AppendEvents under a lease.
func AppendUnder(s engine.Store, tenant, id, lease string, evs ...api.Event) error {
	rec, err := s.GetRun(context.Background(), tenant, id)
	if err != nil {
		return err
	}
	snap := rec.Run
	for i := range evs {
		evs[i].Seq = snap.LastSeq + 1
		evs[i].RunID = id
		evs[i].At = T0.Add(time.Duration(evs[i].Seq) * time.Second)
		if err := snap.Apply(evs[i]); err != nil {
			return err
		}
	}
	a := AppendOf(id, snap, evs)
	a.Lease = lease
	return s.Append(context.Background(), a)
}

// Start makes a claimed run running, under its lease.
func Start(t testing.TB, s engine.Store, tenant, id, lease string) {
	t.Helper()
	if err := AppendUnder(s, tenant, id, lease, api.Event{Type: api.EventRunStatus, Status: api.StatusRunning}); err != nil {
		t.Fatalf("starting %s under %s: %v", id, lease, err)
	}
}

// End ends a run of Request (cancelled), under lease.
func End(t testing.TB, s engine.Store, tenant, id, lease string) {
	t.Helper()
	if err := AppendUnder(s, tenant, id, lease, ended()...); err != nil {
		t.Fatalf("ending %s under %s: %v", id, lease, err)
	}
}

func claim(t *testing.T, c engine.Cluster, lease string, ttl time.Duration, limit int) string {
	t.Helper()
	got, err := c.Claim(context.Background(), lease, ttl, Limit(limit))
	if err != nil {
		t.Fatalf("Claim %s: %v", lease, err)
	}
	if got == nil {
		return ""
	}
	if got.Lease != lease || got.Record == nil || got.Record.Request == nil || len(got.Record.Run.Members) == 0 {
		t.Fatalf("Claim %s: incomplete claim %+v", lease, got)
	}
	return got.Record.Run.ID
}

func testClaimLimitFIFO(t *testing.T, s engine.Store, c engine.Cluster) {
	for _, id := range []string{"r1", "r2", "r3"} {
		Create(t, s, "t", id)
	}
	Create(t, s, "u", "u1")
	var got []string
	for i := range 4 {
		got = append(got, claim(t, c, fmt.Sprintf("A#%d", i), time.Minute, 2))
	}
	// t's limit is 2: r1, r2 (FIFO), then u's run; then nothing.
	if want := []string{"r1", "r2", "u1", ""}; !slices.Equal(got, want) {
		t.Fatalf("claims = %q, want %q", got, want)
	}
	Start(t, s, "t", "r1", "A#0")
	End(t, s, "t", "r1", "A#0")
	if id := claim(t, c, "A#9", time.Minute, 2); id != "r3" {
		t.Fatalf("after r1 ended: claimed %q, want r3", id)
	}
	if id := claim(t, c, "A#10", time.Minute, 0); id != "" {
		t.Fatalf("nothing waits, unlimited: claimed %q", id)
	}
}

func testClaimExclusive(t *testing.T, s engine.Store, c engine.Cluster) {
	ex := Request("shop", "prod")
	ex.Environment.Exclusive = true
	CreateReq(t, s, "t", "x1", ex)
	CreateReq(t, s, "t", "x2", ex)
	Create(t, s, "t", "p1")
	other := Request("blog", "prod") // another project: another environment
	other.Environment.Exclusive = true
	CreateReq(t, s, "t", "y1", other)
	var got []string
	for i := range 4 {
		got = append(got, claim(t, c, fmt.Sprintf("A#%d", i), time.Minute, 0))
	}
	if want := []string{"x1", "p1", "y1", ""}; !slices.Equal(got, want) {
		t.Fatalf("claims = %q, want %q (x2 waits for x1's environment)", got, want)
	}
	Start(t, s, "t", "x1", "A#0")
	End(t, s, "t", "x1", "A#0")
	if id := claim(t, c, "A#5", time.Minute, 0); id != "x2" {
		t.Fatalf("after x1 ended: claimed %q, want x2", id)
	}
}

func testConcurrentClaims(t *testing.T, s engine.Store, c engine.Cluster) {
	// Each round is a new tenant with a full queue and claimers racing for
	// its last free slots.
	const rounds, runs, claimers, limit = 10, 12, 12, 3
	for r := range rounds {
		tenant := fmt.Sprintf("t%d", r)
		for i := range runs {
			Create(t, s, tenant, fmt.Sprintf("%s-r%02d", tenant, i))
		}
		var mu sync.Mutex
		var got []string
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range claimers {
			wg.Go(func() {
				<-start
				for j := range 2 {
					id := claim(t, c, fmt.Sprintf("%s-C%d#%d", tenant, i, j), time.Minute, limit)
					if id != "" {
						mu.Lock()
						got = append(got, id)
						mu.Unlock()
					}
				}
			})
		}
		close(start)
		wg.Wait()
		// A claim may give up on a tenant another claim is busy with: top up
		// one at a time. The limit must hold whatever the interleaving.
		for j := 0; ; j++ {
			id := claim(t, c, fmt.Sprintf("%s-S#%d", tenant, j), time.Minute, limit)
			if id == "" {
				break
			}
			got = append(got, id)
		}
		slices.Sort(got)
		want := []string{tenant + "-r00", tenant + "-r01", tenant + "-r02"}
		if !slices.Equal(got, want) {
			t.Fatalf("%d concurrent claimers took %q, want exactly the %d oldest %q", claimers, got, limit, want)
		}
	}
}

func testFencing(t *testing.T, s engine.Store, c engine.Cluster) {
	Create(t, s, "t", "r1")
	if id := claim(t, c, "A#1", time.Minute, 0); id != "r1" {
		t.Fatalf("claimed %q", id)
	}
	for _, lease := range []string{"", "B#1"} {
		err := AppendUnder(s, "t", "r1", lease, api.Event{Type: api.EventRunStatus, Status: api.StatusRunning})
		if !errors.Is(err, engine.ErrLeaseLost) {
			t.Fatalf("append under %q to a run held by A#1: %v, want ErrLeaseLost", lease, err)
		}
	}
	Start(t, s, "t", "r1", "A#1")
	if got := get(t, s, "t", "r1").Run; got.Status != api.StatusRunning || got.LastSeq != 2 {
		t.Fatalf("after the refused appends and the holder's: %s at seq %d", got.Status, got.LastSeq)
	}
	// An unheld run refuses a lease it is not under.
	Create(t, s, "t", "r2")
	err := AppendUnder(s, "t", "r2", "A#1", api.Event{Type: api.EventLog, Message: "x"})
	if !errors.Is(err, engine.ErrLeaseLost) {
		t.Fatalf("append under a lease to an unheld run: %v, want ErrLeaseLost", err)
	}
}

func testTakeOver(t *testing.T, s engine.Store, c engine.Cluster) {
	ctx := context.Background()
	Create(t, s, "t", "r1")
	Create(t, s, "t", "r2")
	if id := claim(t, c, "A#1", -time.Second, 0); id != "r1" { // expired at once
		t.Fatalf("claimed %q", id)
	}
	Start(t, s, "t", "r1", "A#1")
	if id := claim(t, c, "A#2", time.Minute, 0); id != "r2" {
		t.Fatalf("claimed %q", id)
	}
	got, err := c.TakeOver(ctx, "B#1", time.Minute)
	if err != nil || got == nil || got.Record.Run.ID != "r1" || got.Record.Run.Status != api.StatusRunning {
		t.Fatalf("TakeOver = %+v, %v; want r1, running (r2's lease is live)", got, err)
	}
	if again, err := c.TakeOver(ctx, "B#2", time.Minute); err != nil || again != nil {
		t.Fatalf("second TakeOver = %+v, %v; want nothing", again, err)
	}
	err = AppendUnder(s, "t", "r1", "A#1", api.Event{Type: api.EventLog, Message: "late write of the dead holder"})
	if !errors.Is(err, engine.ErrLeaseLost) {
		t.Fatalf("append by the replica that lost the lease: %v, want ErrLeaseLost", err)
	}
	End(t, s, "t", "r1", "B#1")
	held, err := c.Renew(ctx, []string{"A#1", "B#1", "A#2"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := held["A#1"]; ok || len(held) != 2 {
		t.Fatalf("Renew = %v; want B#1 and A#2 only", held)
	}
}

func testReleaseRenew(t *testing.T, s engine.Store, c engine.Cluster) {
	ctx := context.Background()
	Create(t, s, "t", "r1")
	Create(t, s, "t", "r2")
	claim(t, c, "A#1", time.Minute, 0)
	claim(t, c, "A#2", time.Minute, 0)
	Start(t, s, "t", "r2", "A#2")
	if err := c.Release(ctx, []string{"A#1", "A#2"}); err != nil {
		t.Fatal(err)
	}
	// r1 never started: waiting again, claimable at once.
	if id := claim(t, c, "B#1", time.Minute, 0); id != "r1" {
		t.Fatalf("after release: claimed %q, want r1", id)
	}
	// r2 was running: taken over at once, not claimed.
	got, err := c.TakeOver(ctx, "B#2", time.Minute)
	if err != nil || got == nil || got.Record.Run.ID != "r2" {
		t.Fatalf("TakeOver after release = %+v, %v; want r2", got, err)
	}
	held, err := c.Renew(ctx, []string{"A#1", "A#2", "B#1", "B#2"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(held) != 2 || held["B#1"] != "" || held["B#2"] != "" {
		t.Fatalf("Renew = %v; want B#1 and B#2, no cancels", held)
	}
}

func testRequestCancel(t *testing.T, s engine.Store, c engine.Cluster) {
	ctx := context.Background()
	Create(t, s, "t", "r1")
	ok, err := c.RequestCancel(ctx, "t", "r1", "stop it")
	if err != nil || ok {
		t.Fatalf("RequestCancel of a waiting run = %v, %v; want false (the caller cancels it)", ok, err)
	}
	claim(t, c, "A#1", time.Minute, 0)
	if ok, err := c.RequestCancel(ctx, "other", "r1", "x"); err != nil || ok {
		t.Fatalf("RequestCancel by another tenant = %v, %v; want false", ok, err)
	}
	for _, reason := range []string{"stop it", "second reason"} {
		if ok, err := c.RequestCancel(ctx, "t", "r1", reason); err != nil || !ok {
			t.Fatalf("RequestCancel of a held run = %v, %v", ok, err)
		}
	}
	held, err := c.Renew(ctx, []string{"A#1"}, time.Minute)
	if err != nil || held["A#1"] != "stop it" {
		t.Fatalf("Renew = %v, %v; want the first reason", held, err)
	}
	Start(t, s, "t", "r1", "A#1")
	End(t, s, "t", "r1", "A#1")
	if ok, err := c.RequestCancel(ctx, "t", "r1", "late"); err != nil || ok {
		t.Fatalf("RequestCancel of a finished run = %v, %v; want false", ok, err)
	}
}

func testLeader(t *testing.T, s engine.Store, c engine.Cluster) {
	ctx := context.Background()
	lead := func(owner string, ttl time.Duration) bool {
		t.Helper()
		ok, err := c.Lead(ctx, owner, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !lead("A", time.Minute) || lead("B", time.Minute) || !lead("A", -time.Second) {
		t.Fatal("A should lead, B not while A's lease lasts, A renew")
	}
	// A's lease is expired now (renewed with a negative ttl).
	if !lead("B", time.Minute) || lead("A", time.Minute) {
		t.Fatal("B should lead once A's lease expired, and A not")
	}
}

func testQueueGroup(t *testing.T, s engine.Store, c engine.Cluster) {
	ctx := context.Background()
	g := Request("shop", "staging")
	g.ConcurrencyGroup = "main"
	CreateReq(t, s, "t", "g1", g)
	ex := Request("shop", "prod")
	ex.Environment.Exclusive = true
	CreateReq(t, s, "t", "x1", ex)
	CreateReq(t, s, "t", "g2", g)
	Create(t, s, "u", "u1")
	if id := claim(t, c, "A#1", time.Minute, 1); id != "g1" {
		t.Fatalf("claimed %q", id)
	}
	if id := claim(t, c, "A#2", time.Minute, 1); id != "u1" {
		t.Fatalf("claimed %q", id)
	}
	qs, err := c.Queue(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var waiting []string
	for _, w := range qs.Waiting {
		waiting = append(waiting, w.ID)
	}
	if !slices.Equal(waiting, []string{"x1", "g2"}) || qs.Held["t"] != 1 || qs.Held["u"] != 1 || len(qs.Exclusive) != 0 {
		t.Fatalf("Queue = %+v", qs)
	}
	rec := get(t, s, "t", "g2")
	ids, err := c.Group(ctx, "t", "main", rec.Order)
	if err != nil || !slices.Equal(ids, []string{"g1"}) {
		t.Fatalf("Group = %q, %v; want g1", ids, err)
	}
	Start(t, s, "t", "g1", "A#1")
	End(t, s, "t", "g1", "A#1")
	if id := claim(t, c, "A#3", time.Minute, 1); id != "x1" {
		t.Fatalf("claimed %q", id)
	}
	if qs, err = c.Queue(ctx); err != nil || len(qs.Exclusive) != 1 || qs.Exclusive[0].RunID != "x1" || qs.Exclusive[0].Environment != "prod" {
		t.Fatalf("Queue after x1 = %+v, %v", qs, err)
	}
}
