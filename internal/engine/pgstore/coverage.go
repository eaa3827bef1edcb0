package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
)

// PutCoverage stores c as the project's latest coverage summary unless the
// stored one was received later (docs/coverage.md, "On the server"): of two
// replicas writing at once, the later summary stays.
func (s *Store) PutCoverage(ctx context.Context, tenant string, c *api.ProjectCoverage) (err error) {
	defer classify(&err)
	body, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("storing the coverage of %s: %w", c.Project, err)
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO coverage (tenant, project, received_at, body) VALUES ($1, $2, $3, $4)
		ON CONFLICT (tenant, project) DO UPDATE SET received_at = excluded.received_at, body = excluded.body
		WHERE excluded.received_at >= coverage.received_at`,
		tenant, c.Project, c.ReceivedAt.UnixNano(), string(body))
	if err != nil {
		return fmt.Errorf("storing the coverage of %s in %s: %w", c.Project, s.where, err)
	}
	return nil
}

// Coverage is the project's latest coverage summary; nil when it has none.
func (s *Store) Coverage(ctx context.Context, tenant, project string) (c *api.ProjectCoverage, err error) {
	defer classify(&err)
	var body string
	err = s.pool.QueryRow(ctx, `SELECT body FROM coverage WHERE tenant = $1 AND project = $2`, tenant, project).Scan(&body)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the coverage of %s in %s: %w", project, s.where, err)
	}
	return engine.DecodeCoverage([]byte(body))
}

// ListCoverage is the tenant's projects' latest coverage summaries by
// project name, at most limit (the primary key's order).
func (s *Store) ListCoverage(ctx context.Context, tenant string, limit int) (out []*api.ProjectCoverage, err error) {
	defer classify(&err)
	rows, err := s.pool.Query(ctx, `SELECT body FROM coverage WHERE tenant = $1 ORDER BY project COLLATE "C" LIMIT $2`, tenant, max(limit, 0))
	if err != nil {
		return nil, fmt.Errorf("listing coverage in %s: %w", s.where, err)
	}
	bodies, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("listing coverage in %s: %w", s.where, err)
	}
	out = make([]*api.ProjectCoverage, 0, len(bodies))
	for _, b := range bodies {
		c, err := engine.DecodeCoverage([]byte(b))
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}
