package trigger

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/zof-ai/zof-ci/internal/wait"
)

// releaseTimeout bounds releasing the leases when a process stops.
const releaseTimeout = 5 * time.Second

// Keeper holds the leases of the triggers one part of a server process (the
// webhook receiver, the scheduler) works on, when its store is a Leaser;
// with any other store it only lists the pending triggers of its sources.
type Keeper struct {
	store   Store
	leaser  Leaser // nil: a store of one process, no leases
	owner   string
	sources []string
	ttl     time.Duration

	mu        sync.Mutex
	held      map[string]context.CancelFunc // the triggers worked on here
	renewedAt time.Time                     // the last renewal that reached the store
}

// NewKeeper returns the Keeper of the triggers of sources in store.
func NewKeeper(store Store, sources ...string) *Keeper {
	k := &Keeper{store: store, sources: sources, ttl: LeaseTTL, held: map[string]context.CancelFunc{}, renewedAt: time.Now()}
	if l, ok := store.(Leaser); ok {
		k.leaser = l
		k.owner = "own_" + NewID()[len("trg_"):]
	}
	return k
}

// Owner is the lease records created here are held under ("" without leases).
func (k *Keeper) Owner() string { return k.owner }

// Pending returns the unfinished triggers of k's sources this process
// should take up: with leases, those it just claimed (no live lease of
// another process holds them) and is not working on already; without,
// every one (a store of one process: nothing else works on them).
func (k *Keeper) Pending(ctx context.Context, now time.Time) ([]*Record, error) {
	if k.leaser == nil {
		all, err := k.store.PendingTriggers(ctx, now)
		if err != nil {
			return nil, err
		}
		return slices.DeleteFunc(all, func(r *Record) bool { return !slices.Contains(k.sources, r.Source) }), nil
	}
	got, err := k.leaser.ClaimTriggers(ctx, now, k.owner, k.sources, k.ttl)
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.DeleteFunc(got, func(r *Record) bool { _, busy := k.held[r.ID]; return busy }), nil
}

// Hold registers trigger id as worked on here until done is called: its
// lease is renewed meanwhile, and the returned context ends when ctx does
// or when the lease was lost (another process took the trigger over), so
// the work stops before it reports twice.
func (k *Keeper) Hold(ctx context.Context, id string) (hctx context.Context, done func()) {
	hctx, cancel := context.WithCancel(ctx)
	k.mu.Lock()
	k.held[id] = cancel
	k.mu.Unlock()
	return hctx, func() {
		k.mu.Lock()
		delete(k.held, id)
		k.mu.Unlock()
		cancel()
	}
}

// Renew renews the leases of the triggers worked on here and stops the
// work on those whose lease was lost (returning an error that wraps
// ErrFenced and names them), and on all of them when no renewal reached
// the store for LeaseTTL (another process may have taken them over
// meanwhile). Without leases it does nothing.
func (k *Keeper) Renew(ctx context.Context) error {
	if k.leaser == nil {
		return nil
	}
	k.mu.Lock()
	ids := make([]string, 0, len(k.held))
	for id := range k.held {
		ids = append(ids, id)
	}
	k.mu.Unlock()
	if len(ids) == 0 {
		k.mu.Lock()
		k.renewedAt = time.Now()
		k.mu.Unlock()
		return nil
	}
	kept, err := k.leaser.RenewTriggers(ctx, k.owner, ids, k.ttl)
	k.mu.Lock()
	defer k.mu.Unlock()
	if err != nil {
		if time.Since(k.renewedAt) >= k.ttl {
			for _, id := range ids {
				if cancel, ok := k.held[id]; ok {
					cancel()
				}
			}
		}
		return fmt.Errorf("renewing the leases of %d triggers: %w", len(ids), err)
	}
	k.renewedAt = time.Now()
	var lost []string
	for _, id := range ids {
		if cancel, ok := k.held[id]; ok && !slices.Contains(kept, id) {
			cancel()
			lost = append(lost, id)
		}
	}
	if len(lost) > 0 {
		return fmt.Errorf("triggers %s were taken over by another replica (this process's lease on them expired): their work here stops without reporting: %w",
			strings.Join(lost, ", "), ErrFenced)
	}
	return nil
}

// Release ends this process's leases at once (it stops), so another process
// takes up what it left unfinished without waiting for expiry.
func (k *Keeper) Release() error {
	if k.leaser == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
	defer cancel()
	return k.leaser.ReleaseTriggers(ctx, k.owner)
}

// Run renews the leases and takes up (take) the triggers whose lease
// expired, every LeaseTTL/3, until ctx ends; now is the clock of expiry of
// the records (not of leases: the store's). Without leases it returns at
// once: a store of one process has nothing to take over.
func (k *Keeper) Run(ctx context.Context, now func() time.Time, take func(*Record), logErr func(error)) {
	if k.leaser == nil {
		return
	}
	for wait.Sleep(ctx, k.ttl/3) == nil {
		if err := k.Renew(ctx); err != nil && ctx.Err() == nil {
			logErr(err)
		}
		recs, err := k.Pending(ctx, now())
		if err != nil {
			if ctx.Err() == nil {
				logErr(fmt.Errorf("taking over triggers whose lease expired: %w", err))
			}
			continue
		}
		for _, r := range recs {
			take(r)
		}
	}
}
