package memstore_test

import (
	"testing"

	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/engine/historytest"
	"github.com/zof-ai/zof-ci/internal/engine/memstore"
	"github.com/zof-ai/zof-ci/internal/engine/storetest"
)

func TestHistoryConformance(t *testing.T) {
	storetest.RunHistory(t, func(*testing.T) engine.Store { return memstore.New() })
}

func TestHealthSummaryConformance(t *testing.T) {
	historytest.Run(t, func(*testing.T) engine.Store { return memstore.New() })
}

func TestShadowHistory(t *testing.T) {
	historytest.RunShadow(t, func(*testing.T) engine.Store { return memstore.New() })
}
