package pgstore_test

import (
	"testing"

	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/engine/storetest"
)

func TestHistoryConformance(t *testing.T) {
	storetest.RunHistory(t, func(t *testing.T) engine.Store { return open(t) })
}
