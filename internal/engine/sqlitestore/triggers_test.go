package sqlitestore_test

import (
	"context"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/internal/engine/storetest"
	"github.com/zof-ai/zof-ci/internal/trigger"
)

func TestTriggerConformance(t *testing.T) {
	storetest.RunTriggers(t, func(t *testing.T) trigger.Store { return open(t) })
}

// TestTriggersSurviveReopen: a delivery stored before a restart still
// deduplicates after it, and expired ones are pruned.
func TestTriggersSurviveReopen(t *testing.T) {
	s := open(t)
	path := s.Path()
	rec := storetest.NewTrigger("t", "trg_1", "delivery-1", storetest.T0)
	if h, err := s.CreateTrigger(context.Background(), rec); err != nil || h != nil {
		t.Fatalf("create: %v %v", h, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openAt(t, path)
	dup := storetest.NewTrigger("t", "trg_2", "delivery-1", storetest.T0.Add(6*24*time.Hour))
	h, err := s2.CreateTrigger(context.Background(), dup)
	if err != nil || h == nil || h.ID != "trg_1" {
		t.Fatalf("after reopen: holder %+v err %v, want trg_1", h, err)
	}
	n, err := s2.PruneTriggers(context.Background(), storetest.T0.Add(trigger.DedupeTTL))
	if err != nil || n != 1 {
		t.Fatalf("prune: %d %v", n, err)
	}
}
