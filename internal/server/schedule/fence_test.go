package schedule_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/server/schedule"
	"github.com/zof-ai/zof-ci/internal/trigger"
)

// fencedStore is a store of several replicas as seen by one that lost its
// leases: once fenced, every UpdateTrigger is refused with
// trigger.ErrFenced and writes nothing, as pgstore does
// (TestTriggerUpdateIsFencedByTheLease).
type fencedStore struct {
	trigger.Store
	mu      sync.Mutex
	fenced  bool
	refused int
	// afterCreate fences once the tick is stored.
	afterCreate bool
}

func (f *fencedStore) CreateTrigger(ctx context.Context, rec *trigger.Record) (*trigger.Record, error) {
	h, err := f.Store.CreateTrigger(ctx, rec)
	if err == nil && h == nil && f.afterCreate {
		f.fence()
	}
	return h, err
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

// TestLostLeaseStopsTheTick (issue 12): a scheduler whose write is refused
// because it lost the tick's lease stops there: it records and logs
// nothing more of the tick (no failure, no "created a run"); the replica
// that took the tick over finishes it, finding any run made meanwhile by
// the tick's idempotency key.
func TestLostLeaseStopsTheTick(t *testing.T) {
	tests := []struct {
		name string
		// lost: "stored" (right after the tick is stored), "read" (while
		// the suite is read), "read-fails" (while a suite that cannot be
		// read is read).
		lost      string
		wantState api.TriggerState
		wantRuns  int
	}{
		{"before processing", "stored", api.TriggerAccepted, 0},
		{"while the suite is read", "read", api.TriggerProcessing, 1},
		{"before a failure is recorded", "read-fails", api.TriggerProcessing, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nightly)
			fs := &fencedStore{Store: h.store, afterCreate: tt.lost == "stored"}
			s, err := schedule.New(schedule.Options{Config: h.cfg, Store: fs, Submitter: h.srv,
				Logger:  slog.New(slog.NewTextHandler(h.logs, nil)),
				Backoff: trigger.Backoff{Sleep: func(context.Context, time.Duration) error { return nil }},
				ReadFile: func(path string) ([]byte, error) {
					if tt.lost != "stored" {
						fs.fence() // another replica took the tick over meanwhile
					}
					if tt.lost == "read-fails" {
						return nil, os.ErrNotExist
					}
					return []byte(suiteText), nil
				}})
			if err != nil {
				t.Fatal(err)
			}
			f := s.Check(context.Background(), at("2025-03-01T02:00:20Z"))
			s.Wait()
			if len(f) != 1 || f[0].Duplicate {
				t.Fatalf("fired %+v, want one new tick", f)
			}
			trs := h.triggers(t)
			if len(trs) != 1 || trs[0].State != tt.wantState || trs[0].RunID != "" {
				t.Fatalf("triggers %+v, want one left %s by the lease lost", trs, tt.wantState)
			}
			if n := len(h.runs(t)); n != tt.wantRuns {
				t.Errorf("%d runs, want %d", n, tt.wantRuns)
			}
			if fs.refused != 1 {
				t.Errorf("%d writes refused, want 1: the first refusal stops the work", fs.refused)
			}
			logs := h.logs.String()
			if !strings.Contains(logs, "schedule tick taken over by another replica") {
				t.Errorf("no log line says the tick was taken over:\n%s", logs)
			}
			for _, done := range []string{"schedule tick failed", "schedule tick created a run", "schedule tick ignored"} {
				if strings.Contains(logs, done) {
					t.Errorf("logged %q after the lease was lost:\n%s", done, logs)
				}
			}
		})
	}
}
