package server

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/health"
	"github.com/zof-ai/zof-ci/internal/server/config"
)

const (
	// DefaultHealthSince is the window of GET /v1/health without ?since=.
	DefaultHealthSince = 30 * health.Day
	// DefaultHistoryPruneInterval is how often history older than
	// history_days is deleted.
	DefaultHistoryPruneInterval = time.Hour
)

// healthQuery are the query parameters of GET /v1/health.
var healthQuery = map[string]bool{"project": true, "environment": true, "since": true}

// healthParams reads the query of GET path (project, environment, since)
// or answers 400 and says false.
func (s *Server) healthParams(w http.ResponseWriter, r *http.Request, path string) (health.Query, bool) {
	q := r.URL.Query()
	for k, v := range q {
		if !healthQuery[k] {
			writeProblem(w, http.StatusBadRequest, probBadQuery, "Unknown query parameter",
				fmt.Sprintf("unknown query parameter %q; GET %s takes project, environment and since", k, path))
			return health.Query{}, false
		}
		if len(v) > 1 {
			writeProblem(w, http.StatusBadRequest, probBadQuery, "Repeated query parameter", fmt.Sprintf("%s is given %d times; give it once", k, len(v)))
			return health.Query{}, false
		}
	}
	project := q.Get("project")
	if project == "" {
		writeProblem(w, http.StatusBadRequest, probBadQuery, "Missing project", "give ?project=NAME: health is per project")
		return health.Query{}, false
	}
	since := DefaultHealthSince
	if v := q.Get("since"); v != "" {
		d, err := health.ParseSince(v)
		if err != nil {
			writeProblem(w, http.StatusBadRequest, probBadQuery, "Bad since", err.Error())
			return health.Query{}, false
		}
		since = d
	}
	now := s.opts.Now()
	return health.Query{Project: project, Environment: q.Get("environment"), Since: now.Add(-since), Now: now}, true
}

// getHealth is GET /v1/health: per case of one project of the caller's
// tenant, how it behaved over the window (package health, docs/health.md).
func (s *Server) getHealth(w http.ResponseWriter, r *http.Request, p config.Principal) {
	hq, ok := s.healthParams(w, r, "/v1/health")
	if !ok {
		return
	}
	project := hq.Project
	if s.opts.History == nil {
		// An empty answer would read as "no failures": say that nothing is recorded.
		writeProblem(w, http.StatusNotImplemented, probUnavailable, "Test health not recorded",
			"this server's store does not record test history (docs/health.md, \"Stores\"): run zof serve on SQLite or PostgreSQL for zof health")
		return
	}
	sums, err := s.opts.History.HealthSummary(r.Context(), p.Tenant, health.Filter(hq))
	if err != nil {
		s.log.Error("reading history", "tenant", p.Tenant, "project", project, "err", err)
		writeProblem(w, http.StatusInternalServerError, probInternal, "Internal error", "the history could not be read (it is logged); retry, and tell the operator if it persists")
		return
	}
	writeJSON(w, http.StatusOK, health.FromSummaries(hq, sums))
}

// shadowHistory is what GET /v1/health/selection reads: the store's
// finished shadow runs (engine.ShadowStore).
type shadowHistory interface {
	ShadowHistory(ctx context.Context, tenant string, f engine.HistoryFilter) ([]engine.ShadowRecord, error)
}

var _ shadowHistory = engine.ShadowStore(nil)

// getSelectionHealth is GET /v1/health/selection: how safe change-aware
// selection was over the window, from the shadow runs of one project of the
// caller's tenant (health.Selection, docs/health.md "Selection safety").
func (s *Server) getSelectionHealth(w http.ResponseWriter, r *http.Request, p config.Principal) {
	hq, ok := s.healthParams(w, r, "/v1/health/selection")
	if !ok {
		return
	}
	sh, _ := s.opts.History.(shadowHistory)
	if sh == nil {
		writeProblem(w, http.StatusNotImplemented, probUnavailable, "Shadow runs not recorded",
			"this server's store does not record shadow runs (docs/health.md, \"Stores\"): run zof serve on SQLite or PostgreSQL for zof health --selection")
		return
	}
	recs, err := sh.ShadowHistory(r.Context(), p.Tenant, engine.HistoryFilter{Project: hq.Project, Environment: hq.Environment, Since: hq.Since})
	if err != nil {
		s.log.Error("reading shadow runs", "tenant", p.Tenant, "project", hq.Project, "err", err)
		writeProblem(w, http.StatusInternalServerError, probInternal, "Internal error", "the shadow runs could not be read (it is logged); retry, and tell the operator if it persists")
		return
	}
	writeJSON(w, http.StatusOK, health.Selection(hq, recs))
}

// pruneHistory deletes history older than history_days now and then every
// HistoryPruneInterval, until the server closes.
func (s *Server) pruneHistory() {
	if s.opts.History == nil {
		return
	}
	t := time.NewTicker(s.opts.HistoryPruneInterval)
	defer t.Stop()
	for {
		before := s.opts.Now().Add(-time.Duration(s.cfg.HistoryDays) * health.Day)
		if n, err := s.opts.History.PruneHistory(s.ctx, before); err != nil {
			s.log.Warn("pruning test health history; it is retried", "before", before, "err", err)
		} else if n > 0 {
			s.log.Info("pruned test health history", "records", n, "before", before)
		}
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
	}
}
