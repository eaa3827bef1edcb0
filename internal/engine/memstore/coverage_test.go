package memstore_test

import (
	"testing"

	"github.com/zof-ai/zof-ci/internal/engine/memstore"
	"github.com/zof-ai/zof-ci/internal/engine/storetest"
)

func TestCoverageConformance(t *testing.T) {
	storetest.RunCoverage(t, func(*testing.T) storetest.CoverageStore { return memstore.New() })
}
