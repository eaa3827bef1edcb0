package sqlitestore_test

import (
	"context"
	"testing"

	"github.com/zof-ai/zof-ci/internal/engine/storetest"
)

func TestCoverageConformance(t *testing.T) {
	storetest.RunCoverage(t, func(t *testing.T) storetest.CoverageStore { return open(t) })
}

// TestCoverageSurvivesReopen: the latest summary is still there after a
// restart.
func TestCoverageSurvivesReopen(t *testing.T) {
	s := open(t)
	path := s.Path()
	want := storetest.Coverage("shop", "run_1", storetest.T0, 2)
	if err := s.PutCoverage(context.Background(), "acme", want); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := openAt(t, path).Coverage(context.Background(), "acme", "shop")
	if err != nil || got == nil || got.RunID != "run_1" {
		t.Fatalf("after reopening: %+v, %v", got, err)
	}
}
