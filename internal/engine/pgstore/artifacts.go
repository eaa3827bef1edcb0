package pgstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
)

var _ engine.ArtifactStore = (*Store)(nil)

const artifactColumns = `name, member, step, attempt, kind, content_type, truncated, size`

// PutArtifacts implements engine.ArtifactStore in one transaction that
// locks the run's row first: members of one run fail in parallel, and the
// cap's sum and the inserts of one put must not interleave with another's.
func (s *Store) PutArtifacts(ctx context.Context, runID string, arts []engine.Artifact) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("storing artifacts of run %s in %s: %w", runID, s.where, err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	var one int
	switch err := tx.QueryRow(ctx, `SELECT 1 FROM runs WHERE id = $1 FOR UPDATE`, runID).Scan(&one); {
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("storing artifacts of run %s: %w", runID, engine.ErrNotFound)
	case err != nil:
		return fmt.Errorf("storing artifacts of run %s in %s: %w", runID, s.where, err)
	}
	names := make([]string, len(arts))
	for i, a := range arts {
		names[i] = a.Name
	}
	var used, ord int64
	var taken []string
	if err := tx.QueryRow(ctx, `SELECT COALESCE(SUM(counted), 0)::bigint, COALESCE(MAX(ord), 0)::bigint,
		COALESCE(array_agg(name) FILTER (WHERE name = ANY($2)), '{}')
		FROM artifacts WHERE run_id = $1`, runID, names).Scan(&used, &ord, &taken); err != nil {
		return fmt.Errorf("storing artifacts of run %s in %s: %w", runID, s.where, err)
	}
	seen := make(map[string]bool, len(taken))
	for _, n := range taken {
		seen[n] = true
	}
	fresh := make([]engine.Artifact, 0, len(arts))
	for _, a := range arts {
		if !seen[a.Name] {
			fresh = append(fresh, a)
		}
	}
	for _, a := range engine.CapArtifacts(used, fresh) {
		ord++
		if _, err := tx.Exec(ctx, `INSERT INTO artifacts (run_id, ord, counted, content, `+artifactColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (run_id, name) DO NOTHING`,
			runID, ord, engine.ContentBytes(a.Artifact, a.Content), a.Content,
			a.Name, a.Member, a.Step, a.Attempt, string(a.Kind), a.ContentType, a.Truncated, a.Size); err != nil {
			return fmt.Errorf("storing artifact %q of run %s in %s: %w", a.Name, runID, s.where, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("storing artifacts of run %s in %s: %w", runID, s.where, err)
	}
	return nil
}

// scanArtifact reads artifactColumns.
func scanArtifact(row pgx.Row, a *api.Artifact, extra ...any) error {
	var kind string
	if err := row.Scan(append([]any{&a.Name, &a.Member, &a.Step, &a.Attempt, &kind, &a.ContentType, &a.Truncated, &a.Size}, extra...)...); err != nil {
		return err
	}
	a.Kind = api.ArtifactKind(kind)
	return nil
}

// Artifacts implements engine.ArtifactStore.
func (s *Store) Artifacts(ctx context.Context, runID string) ([]api.Artifact, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+artifactColumns+` FROM artifacts WHERE run_id = $1 ORDER BY ord`, runID)
	if err != nil {
		return nil, fmt.Errorf("listing the artifacts of run %s in %s: %w", runID, s.where, err)
	}
	defer rows.Close()
	out := []api.Artifact{}
	for rows.Next() {
		var a api.Artifact
		if err := scanArtifact(rows, &a); err != nil {
			return nil, fmt.Errorf("listing the artifacts of run %s: %w", runID, err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing the artifacts of run %s in %s: %w", runID, s.where, err)
	}
	return out, nil
}

// Artifact implements engine.ArtifactStore.
func (s *Store) Artifact(ctx context.Context, runID, name string) (*engine.Artifact, error) {
	var a engine.Artifact
	err := scanArtifact(s.pool.QueryRow(ctx, `SELECT `+artifactColumns+`, content FROM artifacts WHERE run_id = $1 AND name = $2`, runID, name), &a.Artifact, &a.Content)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, fmt.Errorf("artifact %q of run %s: %w", name, runID, engine.ErrArtifactNotFound)
	case err != nil:
		return nil, fmt.Errorf("reading artifact %q of run %s in %s: %w", name, runID, s.where, err)
	}
	if a.Content == nil {
		a.Content = []byte{}
	}
	return &a, nil
}
