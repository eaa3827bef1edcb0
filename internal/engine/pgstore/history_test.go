package pgstore_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/engine/pgstore"
	"github.com/zof-ai/zof-ci/internal/engine/pgstore/pgtest"
	"github.com/zof-ai/zof-ci/internal/engine/storetest"
)

func TestHistoryConformance(t *testing.T) {
	storetest.RunHistory(t, func(t *testing.T) engine.Store { return open(t) })
}

// TestHistoryAfterUpgrade: a database created before history (schema 1),
// with a run in flight, is migrated on open, and that run's end is recorded.
func TestHistoryAfterUpgrade(t *testing.T) {
	url := pgtest.URL(t)
	old, err := pgstore.OpenAtVersion(context.Background(), url, 1)
	if err != nil {
		t.Fatal(err)
	}
	storetest.Create(t, old, "t1", "r1")
	_ = old.Close()

	s := openAt(t, url)
	at := storetest.T0.Add(time.Hour)
	storetest.Finish(t, s, "t1", "r1", at, false)
	got, err := s.History(context.Background(), "t1", engine.HistoryFilter{Project: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	var cases []string
	for _, r := range got {
		cases = append(cases, r.RunID+"/"+r.Case+"/"+string(r.Status))
	}
	if want := []string{"r1/a/passed", "r1/b/failed"}; !slices.Equal(cases, want) {
		t.Fatalf("history after the upgrade = %v, want %v", cases, want)
	}
}
