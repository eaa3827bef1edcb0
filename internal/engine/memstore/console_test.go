package memstore_test

import (
	"testing"

	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/engine/memstore"
	"github.com/zof-ai/zof-ci/internal/engine/storetest"
)

func TestConsoleConformance(t *testing.T) {
	storetest.RunConsole(t, func(*testing.T) engine.Store { return memstore.New(memstore.WithHistory()) })
}
