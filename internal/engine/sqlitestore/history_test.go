package sqlitestore_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/engine/historysql"
	"github.com/zof-ai/zof-ci/internal/engine/historytest"
	"github.com/zof-ai/zof-ci/internal/engine/sqlitestore"
	"github.com/zof-ai/zof-ci/internal/engine/storetest"
)

func TestHistoryConformance(t *testing.T) {
	storetest.RunHistory(t, func(t *testing.T) engine.Store { return open(t) })
}

func TestHealthSummaryConformance(t *testing.T) {
	historytest.Run(t, func(t *testing.T) engine.Store { return open(t) })
}

// TestHealthSummaryBackfill: summaries rebuilt from history by the
// migration's back-fill equal those kept run by run.
func TestHealthSummaryBackfill(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "zof.db")
	s, err := sqlitestore.Open(ctx, path, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := historytest.Fill(t, s)
	fs := historytest.Filters(now)
	kept := historytest.Summaries(t, s, "t1", fs)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open(sqlitestore.DriverName, path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range append([]string{`DELETE FROM history_totals`, `DELETE FROM history_last`}, historysql.Backfill(historysql.SQLite)...) {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%v:\n%s", err, q)
		}
	}
	_ = db.Close()
	s, err = sqlitestore.Open(ctx, path, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if d := cmp.Diff(kept, historytest.Summaries(t, s, "t1", fs)); d != "" {
		t.Fatalf("back-filled summaries (-kept run by run +back-filled):\n%s", d)
	}
}

func TestShadowHistory(t *testing.T) {
	historytest.RunShadow(t, func(t *testing.T) engine.Store { return open(t) })
}
