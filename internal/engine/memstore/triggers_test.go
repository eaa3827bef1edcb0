package memstore_test

import (
	"testing"

	"github.com/zof-ai/zof-ci/internal/engine/memstore"
	"github.com/zof-ai/zof-ci/internal/engine/storetest"
	"github.com/zof-ai/zof-ci/internal/trigger"
)

func TestTriggerConformance(t *testing.T) {
	storetest.RunTriggers(t, func(*testing.T) trigger.Store { return memstore.New() })
}
