package sqlitestore_test

import (
	"path/filepath"
	"testing"

	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/engine/storetest"
)

func TestArtifactConformance(t *testing.T) {
	storetest.RunArtifacts(t, func(t *testing.T) engine.Store { return open(t) })
}

// TestArtifactsKeptOnReopen: a restart of zof serve keeps the artifacts.
func TestArtifactsKeptOnReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "zof.db")
	s := openAt(t, path)
	storetest.ArtifactsKept(t, s, func() engine.Store {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		return openAt(t, path)
	})
}
