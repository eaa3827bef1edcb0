package sqlitestore

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/zof-ai/zof-ci/internal/engine/storetest"
)

// TestArtifactsGoWithRun: the artifacts rows cascade from the run's row, so
// whatever deletes a run (DeleteRun) deletes its evidence.
func TestArtifactsGoWithRun(t *testing.T) {
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "zof.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.ArtifactsGoWithRun(t, s, func(id string) error {
		_, err := s.writer.Exec(`DELETE FROM runs WHERE id = ?`, id)
		return err
	})
}
