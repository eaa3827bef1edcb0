package memstore_test

import (
	"testing"

	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/engine/memstore"
	"github.com/zof-ai/zof-ci/internal/engine/storetest"
)

func TestArtifactConformance(t *testing.T) {
	storetest.RunArtifacts(t, func(*testing.T) engine.Store { return memstore.New() })
}
