package memstore_test

import (
	"testing"

	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/engine/historytest"
	"github.com/zof-ai/zof-ci/internal/engine/memstore"
	"github.com/zof-ai/zof-ci/internal/engine/storetest"
)

func TestHistoryConformance(t *testing.T) {
	storetest.RunHistory(t, func(*testing.T) engine.Store { return memstore.New(memstore.WithHistory()) })
}

// A store made without WithHistory records nothing and says so, rather than
// answering "no runs" for runs it saw.
func TestNoHistoryUnlessAsked(t *testing.T) {
	s := memstore.New()
	if _, err := s.History(t.Context(), "t", engine.HistoryFilter{Project: "p"}); err == nil {
		t.Fatal("History on a store without WithHistory: no error")
	}
}

func TestHealthSummaryConformance(t *testing.T) {
	historytest.Run(t, func(*testing.T) engine.Store { return memstore.New(memstore.WithHistory()) })
}

func TestShadowHistory(t *testing.T) {
	historytest.RunShadow(t, func(*testing.T) engine.Store { return memstore.New(memstore.WithHistory()) })
}
