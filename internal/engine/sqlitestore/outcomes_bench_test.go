package sqlitestore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/engine/storetest"
)

// BenchmarkStripHistory compares what the run page's outcome strips read
// for its cases: the project's whole 14 days (History) against the newest 30
// of each case from the per-case index (RecentOutcomes), over 5,000
// finished runs of storetest's two-case suite in 14 days (10,000 history
// records). Figures: docs/benchmarks.md.
func BenchmarkStripHistory(b *testing.B) {
	const runs = 5000
	s := open(b)
	for i := range runs {
		id := fmt.Sprintf("r%05d", i)
		storetest.Create(b, s, "t", id)
		storetest.Finish(b, s, "t", id, storetest.T0.Add(time.Duration(i)*4*time.Minute), i%7 == 0)
	}
	ctx := context.Background()
	now := storetest.T0.Add(runs * 4 * time.Minute)
	since := now.AddDate(0, 0, -14)
	b.Run("History", func(b *testing.B) {
		for b.Loop() {
			recs, err := s.History(ctx, "t", engine.HistoryFilter{Project: "shop", Since: since})
			if err != nil || len(recs) != 2*runs {
				b.Fatalf("%d records, %v", len(recs), err)
			}
		}
	})
	b.Run("RecentOutcomes", func(b *testing.B) {
		for b.Loop() {
			recs, err := s.RecentOutcomes(ctx, "t", engine.OutcomeFilter{Project: "shop", Cases: []string{"a", "b"}, Since: since, PerCase: 30})
			if err != nil || len(recs) != 60 {
				b.Fatalf("%d records, %v", len(recs), err)
			}
		}
	})
}
