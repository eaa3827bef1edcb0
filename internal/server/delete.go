package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/server/config"
)

// deleteRun is DELETE /v1/runs/{id}: 204 when the run is gone.
func (s *Server) deleteRun(w http.ResponseWriter, r *http.Request, p config.Principal) {
	err := s.DeleteRun(r.Context(), p, r.PathValue("id"))
	switch {
	case err == nil:
		w.WriteHeader(http.StatusNoContent)
	case errors.Is(err, engine.ErrDeleteUnsupported):
		writeProblem(w, http.StatusNotImplemented, probInternal, "Delete not supported",
			"this server's run store cannot delete runs; run zof serve with its SQLite or PostgreSQL store")
	default:
		s.mutationError(w, err)
	}
}

// DeleteRun deletes a finished run of p's tenant for p, as DELETE
// /v1/runs/{id} does (the console's Delete calls it): an admin only, only a
// terminal run, and an audit line names p whatever the outcome. The run's
// members, events, definition and idempotency keys go; its test history
// stays (docs/api.md). Errors: *RoleError, *engine.NotFoundError for another
// tenant's run, *engine.StateError while it has not finished,
// engine.ErrDeleteUnsupported.
func (s *Server) DeleteRun(ctx context.Context, p config.Principal, id string) error {
	if p.Role < config.RoleAdmin {
		s.audit.record(p, "delete", id, "", http.StatusForbidden, "role too low")
		return &RoleError{Principal: p, Action: "delete", Need: config.RoleAdmin}
	}
	if err := s.eng.Delete(ctx, p.Tenant, id); err != nil {
		status := statusOf(err)
		if errors.Is(err, engine.ErrDeleteUnsupported) {
			status = http.StatusNotImplemented
		}
		s.audit.record(p, "delete", id, "", status, errTitle(err))
		return err
	}
	s.audit.record(p, "delete", id, "", http.StatusNoContent, "deleted")
	return nil
}
