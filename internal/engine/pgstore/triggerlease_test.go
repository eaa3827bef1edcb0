package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine/pgstore"
	"github.com/zof-ai/zof-ci/internal/engine/pgstore/pgtest"
	"github.com/zof-ai/zof-ci/internal/trigger"
)

var webhookSources = []string{trigger.SourceGitHub, trigger.SourceGitLab}

func ids(recs []*trigger.Record) []string {
	out := make([]string, 0, len(recs))
	for _, r := range recs {
		out = append(out, r.ID)
	}
	return out
}

// claimWithin claims as owner until it gets something or the deadline
// passes: a lease's expiry is on the database's clock.
func claimWithin(t *testing.T, s trigger.Leaser, owner string, sources []string, d time.Duration) []*trigger.Record {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		got, err := s.ClaimTriggers(context.Background(), time.Now(), owner, sources, trigger.LeaseTTL)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) > 0 || time.Now().After(deadline) {
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Two replicas on one database: a delivery replica A stored and works on
// is not taken up by replica B while A's lease is live (however often B
// claims, e.g. at its start), is taken up by B once the lease expired, and
// then A learns it lost it (its renewal no longer returns it).
func TestTriggerLeaseHeldByOneReplica(t *testing.T) {
	url := pgtest.URL(t)
	a, b := openAt(t, url), openAt(t, url)
	ctx := context.Background()
	now := time.Now()

	rec := trigger.New("t1", api.TriggerWebhook, trigger.SourceGitHub, "delivery-1", now)
	rec.Detail, rec.Owner = []byte(`{}`), "replica-a"
	if h, err := a.CreateTrigger(ctx, rec); err != nil || h != nil {
		t.Fatalf("CreateTrigger on A: holder %v, err %v", h, err)
	}

	// A's lease is live: B claims nothing, whatever the sources.
	for range 3 {
		got, err := b.ClaimTriggers(ctx, time.Now(), "replica-b", []string{trigger.SourceGitHub, trigger.SourceGitLab, trigger.SourceSchedule}, trigger.LeaseTTL)
		if err != nil || len(got) != 0 {
			t.Fatalf("B claimed %v (err %v) while A's lease is live; want nothing", ids(got), err)
		}
	}
	// It is still unfinished for anyone listing.
	pend, err := b.PendingTriggers(ctx, time.Now())
	if err != nil || !slices.Equal(ids(pend), []string{rec.ID}) || pend[0].Owner != "replica-a" {
		t.Fatalf("PendingTriggers = %v (err %v); want %s owned by replica-a", pend, err, rec.ID)
	}
	// A renews while it works.
	kept, err := a.RenewTriggers(ctx, "replica-a", []string{rec.ID}, trigger.LeaseTTL)
	if err != nil || !slices.Equal(kept, []string{rec.ID}) {
		t.Fatalf("A's renewal kept %v (err %v); want [%s]", kept, err, rec.ID)
	}
	// A stops renewing (it died): its lease runs out.
	if _, err := a.RenewTriggers(ctx, "replica-a", []string{rec.ID}, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	got := claimWithin(t, b, "replica-b", []string{trigger.SourceSchedule}, 200*time.Millisecond)
	if len(got) != 0 {
		t.Fatalf("B claimed %v for source schedule; the trigger is github's", ids(got))
	}
	got = claimWithin(t, b, "replica-b", webhookSources, 10*time.Second)
	if !slices.Equal(ids(got), []string{rec.ID}) || got[0].Owner != "replica-b" || string(got[0].Detail) != `{}` {
		t.Fatalf("B claimed %v after A's lease expired; want [%s] owned by replica-b", got, rec.ID)
	}
	// A (back from a pause) learns it lost the lease, and cannot renew it.
	kept, err = a.RenewTriggers(ctx, "replica-a", []string{rec.ID}, trigger.LeaseTTL)
	if err != nil || len(kept) != 0 {
		t.Fatalf("A's renewal after the takeover kept %v (err %v); want nothing", kept, err)
	}
	// B holds it now: A cannot take it back while B's lease is live.
	if got, err := a.ClaimTriggers(ctx, time.Now(), "replica-a", webhookSources, trigger.LeaseTTL); err != nil || len(got) != 0 {
		t.Fatalf("A claimed %v (err %v) while B's lease is live", ids(got), err)
	}
	// B stops: it releases, and A takes it up at once.
	if err := b.ReleaseTriggers(ctx, "replica-b"); err != nil {
		t.Fatal(err)
	}
	got, err = a.ClaimTriggers(ctx, time.Now(), "replica-a", webhookSources, trigger.LeaseTTL)
	if err != nil || !slices.Equal(ids(got), []string{rec.ID}) {
		t.Fatalf("A claimed %v (err %v) after B released; want [%s]", ids(got), err, rec.ID)
	}
	// Finished, it is claimed by no one, lease or not.
	rec.State, rec.Reason = api.TriggerIgnored, "done"
	if err := a.UpdateTrigger(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if err := a.ReleaseTriggers(ctx, "replica-a"); err != nil {
		t.Fatal(err)
	}
	if got, err := b.ClaimTriggers(ctx, time.Now(), "replica-b", webhookSources, trigger.LeaseTTL); err != nil || len(got) != 0 {
		t.Fatalf("B claimed the finished trigger: %v (err %v)", ids(got), err)
	}
}

// Triggers stored without a lease (by a zof before leases, or left by a
// replica that released them) are claimed once: replicas claiming at once
// take disjoint sets that together are all of them, oldest first.
func TestTriggerClaimsAreDisjoint(t *testing.T) {
	url := pgtest.URL(t)
	const n, replicas = 40, 3
	stores := make([]*pgstore.Store, 0, replicas)
	for range replicas {
		stores = append(stores, openAt(t, url))
	}
	ctx := context.Background()
	now := time.Now()
	for i := range n {
		rec := trigger.New("t1", api.TriggerSchedule, trigger.SourceSchedule, fmt.Sprintf("nightly@%d", i), now)
		if h, err := stores[0].CreateTrigger(ctx, rec); err != nil || h != nil {
			t.Fatalf("CreateTrigger: holder %v, err %v", h, err)
		}
	}
	var mu sync.Mutex
	seen := map[string]string{}
	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner := fmt.Sprintf("replica-%d", i)
			got, err := s.ClaimTriggers(ctx, time.Now(), owner, []string{trigger.SourceSchedule}, trigger.LeaseTTL)
			if err != nil {
				t.Error(err)
				return
			}
			if !slices.IsSortedFunc(got, func(x, y *trigger.Record) int { return int(x.Order - y.Order) }) {
				t.Errorf("%s claimed out of order", owner)
			}
			mu.Lock()
			defer mu.Unlock()
			for _, r := range got {
				if prev, dup := seen[r.ID]; dup {
					t.Errorf("trigger %s claimed by %s and %s", r.ID, prev, owner)
				}
				seen[r.ID] = owner
			}
		}()
	}
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("claimed %d triggers in all; want %d", len(seen), n)
	}
}

// Writes are fenced by the lease (issue 12): replica A holds a delivery,
// pauses past its lease, B takes it over; A's write on resuming is refused
// with trigger.ErrFenced and the row stays B's, with what B wrote. A write
// under an expired lease is refused even before anyone took it over, and a
// write under no lease only while no live lease holds the row.
func TestTriggerUpdateIsFencedByTheLease(t *testing.T) {
	url := pgtest.URL(t)
	a, b := openAt(t, url), openAt(t, url)
	ctx := context.Background()

	rec := trigger.New("t1", api.TriggerWebhook, trigger.SourceGitHub, "delivery-fence", time.Now())
	rec.Detail, rec.Owner = []byte(`{}`), "replica-a"
	if h, err := a.CreateTrigger(ctx, rec); err != nil || h != nil {
		t.Fatalf("CreateTrigger on A: holder %v, err %v", h, err)
	}
	// A holds it: its writes go through; a write under another lease or
	// under none does not.
	rec.State = api.TriggerProcessing
	if err := a.UpdateTrigger(ctx, rec); err != nil {
		t.Fatalf("A's write under its live lease: %v", err)
	}
	for _, owner := range []string{"replica-b", ""} {
		other := rec.Clone()
		other.Owner, other.State, other.Reason = owner, api.TriggerFailed, "not the holder"
		if err := b.UpdateTrigger(ctx, other); !errors.Is(err, trigger.ErrFenced) {
			t.Fatalf("a write under lease %q while A holds it: %v, want ErrFenced", owner, err)
		}
	}

	// A pauses past its lease: expired, its write is refused though no one took it yet.
	if _, err := a.RenewTriggers(ctx, "replica-a", []string{rec.ID}, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		rec.Reason = "A after its lease expired"
		err := a.UpdateTrigger(ctx, rec)
		if errors.Is(err, trigger.ErrFenced) {
			break
		}
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("A's write after its lease expired: %v, want ErrFenced within 10s", err)
		}
		time.Sleep(5 * time.Millisecond)
	}

	// B takes it over and records its progress.
	got := claimWithin(t, b, "replica-b", webhookSources, 10*time.Second)
	if !slices.Equal(ids(got), []string{rec.ID}) {
		t.Fatalf("B claimed %v; want [%s]", ids(got), rec.ID)
	}
	bRec := got[0]
	bRec.State, bRec.RunID, bRec.Attempts, bRec.Reason = api.TriggerRunCreated, "run_b", 1, "B took it over"
	if err := b.UpdateTrigger(ctx, bRec); err != nil {
		t.Fatalf("B's write under the lease it took: %v", err)
	}

	// A resumes and writes what it was doing: refused, nothing changes.
	rec.State, rec.Reason, rec.RunID, rec.Reported = api.TriggerFailed, "A resumed", "run_a", true
	err := a.UpdateTrigger(ctx, rec)
	if !errors.Is(err, trigger.ErrFenced) {
		t.Fatalf("A's write after B took the trigger over: %v, want ErrFenced", err)
	}
	if !strings.Contains(err.Error(), `"replica-b" took it over`) {
		t.Errorf("the refusal does not say who holds it: %v", err)
	}
	row, err := b.GetTrigger(ctx, "t1", rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if row.Owner != "replica-b" || row.State != api.TriggerRunCreated || row.RunID != "run_b" || row.Reported || row.Reason != "B took it over" {
		t.Fatalf("after A's refused write the row is %+v (owner %q); want B's: run_created, run_b, unreported", row.Trigger, row.Owner)
	}
	// B finishes it.
	bRec.Reported = true
	if err := b.UpdateTrigger(ctx, bRec); err != nil {
		t.Fatalf("B's last write: %v", err)
	}
	// A missing trigger is still ErrNotFound, not fenced.
	missing := trigger.New("t1", api.TriggerWebhook, trigger.SourceGitHub, "nope", time.Now())
	missing.Owner = "replica-a"
	if err := a.UpdateTrigger(ctx, missing); !errors.Is(err, trigger.ErrNotFound) {
		t.Errorf("UpdateTrigger of a missing trigger: %v, want ErrNotFound", err)
	}
}

// BenchmarkTriggerUpdate: UpdateTrigger of triggers held under a live lease
// (every write of the webhook receiver and the scheduler), one at a time
// and from 16 clients on distinct triggers, with 100 and 10,000 triggers
// stored: a write locks its row by primary key, so its cost should not grow
// with the table.
func BenchmarkTriggerUpdate(b *testing.B) {
	ctx := context.Background()
	for _, stored := range []int{100, 10000} {
		s := open(b)
		recs := make([]*trigger.Record, stored)
		for i := range recs {
			r := trigger.New("t1", api.TriggerWebhook, trigger.SourceGitHub, fmt.Sprintf("d-%d", i), time.Now())
			r.Detail, r.Owner = []byte(`{"provider":"github"}`), "replica-a"
			if h, err := s.CreateTrigger(ctx, r); err != nil || h != nil {
				b.Fatalf("CreateTrigger: holder %v, err %v", h, err)
			}
			recs[i] = r
		}
		// Held for the whole benchmark: a write under an expired lease is refused.
		if _, err := s.RenewTriggers(ctx, "replica-a", ids(recs), time.Hour); err != nil {
			b.Fatal(err)
		}
		update := func(b *testing.B, r *trigger.Record, n int) {
			r.State, r.Attempts = api.TriggerProcessing, n
			if err := s.UpdateTrigger(ctx, r); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(fmt.Sprintf("stored=%d/sequential", stored), func(b *testing.B) {
			n := 0
			for b.Loop() {
				n++
				update(b, recs[n%len(recs)], n)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
		})
		b.Run(fmt.Sprintf("stored=%d/parallel", stored), func(b *testing.B) {
			var next atomic.Int64
			b.SetParallelism(8) // 16 clients on 2 cores, as the other store benchmarks
			b.RunParallel(func(pb *testing.PB) {
				r := recs[int(next.Add(1))%len(recs)].Clone() // one trigger per client
				n := 0
				for pb.Next() {
					n++
					update(b, r, n)
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
		})
	}
}
