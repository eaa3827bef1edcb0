package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
)

// PutCoverage stores c as the project's latest coverage summary unless the
// stored one was received later (docs/coverage.md, "On the server").
func (s *Store) PutCoverage(ctx context.Context, tenant string, c *api.ProjectCoverage) error {
	body, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("storing the coverage of %s: %w", c.Project, err)
	}
	_, err = s.writer.ExecContext(ctx, `INSERT INTO coverage (tenant, project, received_at, body) VALUES (?, ?, ?, ?)
		ON CONFLICT (tenant, project) DO UPDATE SET received_at = excluded.received_at, body = excluded.body
		WHERE excluded.received_at >= coverage.received_at`,
		tenant, c.Project, c.ReceivedAt.UnixNano(), string(body))
	if err != nil {
		return fmt.Errorf("storing the coverage of %s in %s: %w", c.Project, s.path, err)
	}
	return nil
}

// Coverage is the project's latest coverage summary; nil when it has none.
func (s *Store) Coverage(ctx context.Context, tenant, project string) (*api.ProjectCoverage, error) {
	var body string
	err := s.reader.QueryRowContext(ctx, `SELECT body FROM coverage WHERE tenant = ? AND project = ?`, tenant, project).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the coverage of %s in %s: %w", project, s.path, err)
	}
	return engine.DecodeCoverage([]byte(body))
}

// ListCoverage is the tenant's projects' latest coverage summaries by
// project name, at most limit (the primary key's order).
func (s *Store) ListCoverage(ctx context.Context, tenant string, limit int) ([]*api.ProjectCoverage, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT body FROM coverage WHERE tenant = ? ORDER BY project LIMIT ?`, tenant, max(limit, 0))
	if err != nil {
		return nil, fmt.Errorf("listing coverage in %s: %w", s.path, err)
	}
	defer rows.Close()
	out := []*api.ProjectCoverage{}
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return nil, fmt.Errorf("listing coverage in %s: %w", s.path, err)
		}
		c, err := engine.DecodeCoverage([]byte(body))
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing coverage in %s: %w", s.path, err)
	}
	return out, nil
}
