package pgstore_test

import (
	"testing"

	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/engine/pgstore/pgtest"
	"github.com/zof-ai/zof-ci/internal/engine/storetest"
)

func TestArtifactConformance(t *testing.T) {
	storetest.RunArtifacts(t, func(t *testing.T) engine.Store { return open(t) })
}

// TestArtifactsKeptOnReopen: a restart (or another replica) reads the
// artifacts a store put.
func TestArtifactsKeptOnReopen(t *testing.T) {
	url := pgtest.URL(t)
	s := openAt(t, url)
	storetest.ArtifactsKept(t, s, func() engine.Store { return openAt(t, url) })
}
