package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
)

var _ engine.ArtifactStore = (*Store)(nil)

const artifactColumns = `name, member, step, attempt, kind, content_type, truncated, size`

// PutArtifacts implements engine.ArtifactStore in one write transaction:
// SQLite's single writer makes the cap's sum and the inserts atomic.
func (s *Store) PutArtifacts(ctx context.Context, runID string, arts []engine.Artifact) error {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("storing artifacts of run %s in %s: %w", runID, s.path, err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	var used, ord int64
	var exists bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM runs WHERE id = ?),
		(SELECT COALESCE(SUM(counted), 0) FROM artifacts WHERE run_id = ?),
		(SELECT COALESCE(MAX(ord), 0) FROM artifacts WHERE run_id = ?)`, runID, runID, runID).Scan(&exists, &used, &ord); err != nil {
		return fmt.Errorf("storing artifacts of run %s in %s: %w", runID, s.path, err)
	}
	if !exists {
		return fmt.Errorf("storing artifacts of run %s: %w", runID, engine.ErrNotFound)
	}
	fresh := make([]engine.Artifact, 0, len(arts))
	for _, a := range arts {
		var taken bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM artifacts WHERE run_id = ? AND name = ?)`, runID, a.Name).Scan(&taken); err != nil {
			return fmt.Errorf("storing artifacts of run %s in %s: %w", runID, s.path, err)
		}
		if !taken {
			fresh = append(fresh, a)
		}
	}
	for _, a := range engine.CapArtifacts(used, fresh) {
		ord++
		if _, err := tx.ExecContext(ctx, `INSERT INTO artifacts (run_id, ord, counted, content, `+artifactColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, name) DO NOTHING`,
			runID, ord, engine.ContentBytes(a.Artifact, a.Content), a.Content,
			a.Name, a.Member, a.Step, a.Attempt, string(a.Kind), a.ContentType, boolInt(a.Truncated), a.Size); err != nil {
			return fmt.Errorf("storing artifact %q of run %s in %s: %w", a.Name, runID, s.path, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("storing artifacts of run %s in %s: %w", runID, s.path, err)
	}
	return nil
}

// scanArtifact reads artifactColumns.
func scanArtifact(row interface{ Scan(...any) error }, a *api.Artifact, extra ...any) error {
	var kind string
	var truncated int
	if err := row.Scan(append([]any{&a.Name, &a.Member, &a.Step, &a.Attempt, &kind, &a.ContentType, &truncated, &a.Size}, extra...)...); err != nil {
		return err
	}
	a.Kind, a.Truncated = api.ArtifactKind(kind), truncated != 0
	return nil
}

// Artifacts implements engine.ArtifactStore.
func (s *Store) Artifacts(ctx context.Context, runID string) ([]api.Artifact, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT `+artifactColumns+` FROM artifacts WHERE run_id = ? ORDER BY ord`, runID)
	if err != nil {
		return nil, fmt.Errorf("listing the artifacts of run %s in %s: %w", runID, s.path, err)
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
		return nil, fmt.Errorf("listing the artifacts of run %s in %s: %w", runID, s.path, err)
	}
	return out, nil
}

// Artifact implements engine.ArtifactStore.
func (s *Store) Artifact(ctx context.Context, runID, name string) (*engine.Artifact, error) {
	var a engine.Artifact
	err := scanArtifact(s.reader.QueryRowContext(ctx, `SELECT `+artifactColumns+`, content FROM artifacts WHERE run_id = ? AND name = ?`, runID, name), &a.Artifact, &a.Content)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, fmt.Errorf("artifact %q of run %s: %w", name, runID, engine.ErrArtifactNotFound)
	case err != nil:
		return nil, fmt.Errorf("reading artifact %q of run %s in %s: %w", name, runID, s.path, err)
	}
	if a.Content == nil {
		a.Content = []byte{}
	}
	return &a, nil
}
