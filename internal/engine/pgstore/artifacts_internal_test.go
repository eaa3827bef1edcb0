package pgstore

import (
	"context"
	"testing"

	"github.com/zof-ai/zof-ci/internal/engine/pgstore/pgtest"
	"github.com/zof-ai/zof-ci/internal/engine/storetest"
)

// TestArtifactsGoWithRun: the artifacts rows cascade from the run's row, so
// whatever deletes a run (DeleteRun) deletes its evidence.
func TestArtifactsGoWithRun(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, pgtest.URL(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.ArtifactsGoWithRun(t, s, func(id string) error {
		_, err := s.pool.Exec(ctx, `DELETE FROM runs WHERE id = $1`, id)
		return err
	})
}
