package server

import (
	"context"
	"fmt"
	"net/http"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/server/config"
)

// CoverageStore keeps each project's latest coverage summary (docs/coverage.md,
// "On the server"): the run request of zof run --server carries one, GET
// /v1/coverage reads it. Coverage is (nil, nil) when the project has none.
// memstore, sqlitestore and pgstore implement it (storetest.RunCoverage).
type CoverageStore interface {
	PutCoverage(ctx context.Context, tenant string, c *api.ProjectCoverage) error
	Coverage(ctx context.Context, tenant, project string) (*api.ProjectCoverage, error)
}

// takeCoverage takes the coverage summary off a run request, so it is not
// part of the run (nor of its idempotency fingerprint), and checks its bounds
// (api.CoverageSummary.Validate). nil when the request has none.
func takeCoverage(req *api.RunRequest) (*api.CoverageSummary, *bodyError) {
	c := req.Coverage
	req.Coverage = nil
	if c == nil {
		return nil, nil
	}
	if err := c.Validate(); err != nil {
		return nil, &bodyError{http.StatusBadRequest, probBadRequest, "Invalid coverage summary",
			fmt.Sprintf("coverage: %v; zof run sends a valid summary (docs/coverage.md), or leave coverage out", err)}
	}
	return c, nil
}

// recordCoverage stores a created run's coverage summary as its project's
// latest. A failure is logged and the run goes on: coverage never stops one.
func (s *Server) recordCoverage(ctx context.Context, tenant string, run *api.Run, c *api.CoverageSummary) {
	if c == nil || s.opts.Coverage == nil {
		return
	}
	rec := &api.ProjectCoverage{Project: run.Project, RunID: run.ID, Commit: run.Source.SHA, Ref: run.Source.Ref,
		ReceivedAt: s.opts.Now().UTC(), Summary: *c}
	if err := s.opts.Coverage.PutCoverage(ctx, tenant, rec); err != nil {
		s.log.Warn("storing a coverage summary; the run goes on without it", "tenant", tenant, "project", run.Project, "run", run.ID, "err", err)
	}
}

// getCoverage is GET /v1/coverage?project=P: the project's latest coverage
// summary, of the caller's tenant.
func (s *Server) getCoverage(w http.ResponseWriter, r *http.Request, p config.Principal) {
	q := r.URL.Query()
	for k, v := range q {
		if k != "project" {
			writeProblem(w, http.StatusBadRequest, probBadQuery, "Unknown query parameter",
				fmt.Sprintf("unknown query parameter %q; GET /v1/coverage takes project", k))
			return
		}
		if len(v) > 1 {
			writeProblem(w, http.StatusBadRequest, probBadQuery, "Repeated query parameter", fmt.Sprintf("%s is given %d times; give it once", k, len(v)))
			return
		}
	}
	project := q.Get("project")
	if project == "" {
		writeProblem(w, http.StatusBadRequest, probBadQuery, "Missing project", "give ?project=NAME: coverage is per project")
		return
	}
	if s.opts.Coverage == nil {
		writeProblem(w, http.StatusNotImplemented, probUnavailable, "Coverage not recorded",
			"this server's store does not keep coverage summaries (docs/coverage.md)")
		return
	}
	c, err := s.opts.Coverage.Coverage(r.Context(), p.Tenant, project)
	if err != nil {
		s.log.Error("reading coverage", "tenant", p.Tenant, "project", project, "err", err)
		writeProblem(w, http.StatusInternalServerError, probInternal, "Internal error", "the coverage could not be read (it is logged); retry, and tell the operator if it persists")
		return
	}
	if c == nil {
		writeProblem(w, http.StatusNotFound, probNotFound, "No coverage yet",
			fmt.Sprintf("project %q has no coverage summary yet: run zof run --server in a git checkout of the project (docs/coverage.md)", project))
		return
	}
	writeJSON(w, http.StatusOK, c)
}
