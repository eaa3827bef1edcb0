package pgstore_test

import (
	"testing"

	"github.com/zof-ai/zof-ci/internal/engine/storetest"
)

func TestCoverageConformance(t *testing.T) {
	storetest.RunCoverage(t, func(t *testing.T) storetest.CoverageStore { return open(t) })
}
