package webhook_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/ci/github/githubtest"
	"github.com/zof-ai/zof-ci/internal/trigger"
)

// fencedStore is a store of several replicas as seen by one that lost its
// leases: once fence is called, every UpdateTrigger is refused with
// trigger.ErrFenced (another replica took the triggers over) and writes
// nothing, as pgstore does (TestTriggerUpdateIsFencedByTheLease).
type fencedStore struct {
	trigger.Store
	mu      sync.Mutex
	fenced  bool
	refused int
}

func (f *fencedStore) UpdateTrigger(ctx context.Context, rec *trigger.Record) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fenced {
		f.refused++
		return fmt.Errorf("updating trigger %s: %w", rec.ID, trigger.ErrFenced)
	}
	return f.Store.UpdateTrigger(ctx, rec)
}

func (f *fencedStore) fence() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fenced = true
}

func (f *fencedStore) refusals() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.refused
}

// TestLostLeaseStopsBeforeReporting (issue 12): a replica whose write is
// refused because it lost the delivery's lease stops there and posts
// nothing more: no check run for a run it created, no completed check run
// for a run it followed, no failed check run for a delivery that failed.
// The replica that took the delivery over reports it.
func TestLostLeaseStopsBeforeReporting(t *testing.T) {
	tests := []struct {
		name  string
		suite string
		// lostAt is the state the delivery is in when the lease is lost:
		// processing (the suite is being read), or run_created (the run runs).
		lostAt api.TriggerState
		// checkRuns is how many check runs were posted before it was lost.
		checkRuns int
	}{
		{"while the run runs", suiteWith("/block"), api.TriggerRunCreated, 1},
		{"while the suite is read", suiteWith("/ok"), api.TriggerProcessing, 0},
		{"before a failure is reported", "version: 1\nnot a suite: [", api.TriggerProcessing, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var fs *fencedStore
			h := newHarness(t, harnessOpts{app: true, store: func(s trigger.Store) trigger.Store {
				fs = &fencedStore{Store: s}
				return fs
			}})
			h.api.setSuite(sha1, tt.suite)
			h.api.gh.Files[7] = []githubtest.File{{Filename: "cart/checkout.go", Status: "modified"}}
			block := make(chan struct{})
			if tt.lostAt == api.TriggerProcessing {
				h.api.mu.Lock()
				h.api.block = block
				h.api.mu.Unlock()
			}
			res := h.github("pull_request", "lost-1", prPayload("synchronize", 7, sha1))
			if res.status != http.StatusAccepted {
				t.Fatalf("delivery: %d %s", res.status, res.body)
			}
			before := h.waitState(res.trigger.ID, tt.lostAt)
			if tt.lostAt == api.TriggerRunCreated {
				waitFor(t, "the check run in progress", func() bool { return h.api.gh.Calls("POST", `/repos/acme/shop/check-runs`) == 1 })
			} else {
				waitFor(t, "the suite read", func() bool { return h.api.fileReads() == 1 })
			}

			fs.fence() // another replica took the delivery over
			close(block)
			h.sut.open()
			if before.RunID != "" {
				if r := h.run(before.RunID); !r.Status.Terminal() {
					t.Fatalf("run %s is %s", r.ID, r.Status)
				}
			}
			h.recv.Wait()

			if got := h.api.gh.Calls("POST", `/repos/acme/shop/check-runs`); got != tt.checkRuns {
				t.Errorf("%d check runs posted, want %d (none after the lease was lost)", got, tt.checkRuns)
			}
			if got := h.api.gh.Calls("PATCH", `/repos/acme/shop/check-runs/\d+`); got != 0 {
				t.Errorf("%d check run updates after the lease was lost, want none", got)
			}
			for id := range h.api.gh.CheckRuns {
				if cr := h.api.gh.Run(id); cr.Status != "in_progress" {
					t.Errorf("check run %s is %s, want in_progress: the holder completes it", cr.Name, cr.Status)
				}
			}
			if fs.refusals() != 1 {
				t.Errorf("%d writes refused, want 1: the first refusal stops the work", fs.refusals())
			}
			after, err := h.store.GetTrigger(context.Background(), "acme", res.trigger.ID)
			if err != nil {
				t.Fatal(err)
			}
			if after.State != before.State || after.Reported || after.RunID != before.RunID {
				t.Errorf("the trigger became %+v (reported %v); want it as the lease left it, %s", after.Trigger, after.Reported, before.State)
			}
			if !strings.Contains(h.logs.String(), "taken over by another replica") {
				t.Errorf("no log line says the delivery was taken over:\n%s", h.logs.String())
			}
		})
	}
}
