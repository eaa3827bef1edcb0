package pgstore_test

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/internal/engine/pgstore"
	"github.com/zof-ai/zof-ci/internal/engine/pgstore/pgtest"
	"github.com/zof-ai/zof-ci/internal/fleet"
)

var _ fleet.EpochStore = (*pgstore.FleetEpochs)(nil)

// Two replicas reserving lease epochs at once, as two fleet homes would
// during a change of home: the blocks they get never overlap, and a replica
// started later (a new home) reserves above every earlier epoch.
func TestFleetEpochsSharedAcrossReplicas(t *testing.T) {
	url := pgtest.URL(t)
	a, b := openAt(t, url), openAt(t, url)
	type block struct {
		lo, hi int64 // epochs (lo, hi]
		by     string
	}
	var (
		mu     sync.Mutex
		blocks []block
		wg     sync.WaitGroup
	)
	const reserves, size = 200, 1024
	for name, s := range map[string]fleet.EpochStore{"a": a.FleetEpochs(), "b": b.FleetEpochs()} {
		wg.Go(func() {
			for range reserves {
				var hi int64
				prev, err := s.Reserve(func(prev int64) int64 { hi = prev + size; return hi })
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				blocks = append(blocks, block{prev, hi, name})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(blocks) != 2*reserves {
		t.Fatalf("%d blocks reserved, want %d", len(blocks), 2*reserves)
	}
	slices.SortFunc(blocks, func(x, y block) int { return cmp.Compare(x.lo, y.lo) })
	for i := 1; i < len(blocks); i++ {
		if p, q := blocks[i-1], blocks[i]; q.lo < p.hi {
			t.Fatalf("epochs (%d, %d] of %s overlap (%d, %d] of %s", p.lo, p.hi, p.by, q.lo, q.hi, q.by)
		}
	}
	top := blocks[len(blocks)-1].hi
	c := openAt(t, url)
	prev, err := c.FleetEpochs().Reserve(func(prev int64) int64 { return prev + size })
	if err != nil {
		t.Fatal(err)
	}
	if prev < top {
		t.Fatalf("a new home may grant from %d, below the earlier homes' highest %d", prev+1, top)
	}
}

// The cluster secret is made once and is the same for every replica.
func TestClusterSecretSharedAndStable(t *testing.T) {
	url := pgtest.URL(t)
	a, b := openAt(t, url), openAt(t, url)
	ctx := context.Background()
	sa, err := a.ClusterSecret(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := b.ClusterSecret(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sa != sb || len(sa) != 64 {
		t.Fatalf("secrets %q and %q: want one 64-hex-digit secret", sa, sb)
	}
}

// The fleet home's lease: the first replica takes it, a second sees the
// first as home, a release hands it over at the second's next try, and an
// expired lease is taken over.
func TestFleetHomeLease(t *testing.T) {
	url := pgtest.URL(t)
	a, b := openAt(t, url), openAt(t, url)
	ctx := context.Background()
	take := func(s *pgstore.Store, replica string, ttl time.Duration) string {
		t.Helper()
		home, addr, err := s.TakeFleetHome(ctx, replica, "http://"+replica, ttl)
		if err != nil {
			t.Fatal(err)
		}
		if home != "" && addr != "http://"+home {
			t.Fatalf("home %s at %s", home, addr)
		}
		return home
	}
	if h := take(a, "ra", time.Minute); h != "ra" {
		t.Fatalf("A takes the free lease: home is %q", h)
	}
	if h := take(b, "rb", time.Minute); h != "ra" {
		t.Fatalf("B while A holds it: home is %q, want ra", h)
	}
	if h := take(a, "ra", time.Minute); h != "ra" {
		t.Fatalf("A renews: home is %q", h)
	}
	if err := b.ReleaseFleetHome(ctx, "rb"); err != nil { // not B's: nothing changes
		t.Fatal(err)
	}
	if h := take(b, "rb", time.Minute); h != "ra" {
		t.Fatalf("B released a lease it did not hold: home is now %q", h)
	}
	if err := a.ReleaseFleetHome(ctx, "ra"); err != nil {
		t.Fatal(err)
	}
	if h := take(b, "rb", 50*time.Millisecond); h != "rb" {
		t.Fatalf("after A's release B takes it: home is %q", h)
	}
	// B stops renewing: once its lease expires A takes it.
	deadline := time.Now().Add(5 * time.Second)
	for take(a, "ra", time.Minute) != "ra" {
		if time.Now().After(deadline) {
			t.Fatal("B's expired lease was not taken over within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
