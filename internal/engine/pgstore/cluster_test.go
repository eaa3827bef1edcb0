package pgstore_test

import (
	"testing"

	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/engine/storetest"
)

func TestClusterConformance(t *testing.T) {
	storetest.RunCluster(t, func(t *testing.T) engine.Store { return open(t) })
}
