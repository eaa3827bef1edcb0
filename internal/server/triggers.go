package server

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/server/config"
	"github.com/zof-ai/zof-ci/internal/trigger"
)

// Webhooks receives the webhook endpoints (package server/webhook). The
// server answers them without a bearer token: the receiver checks the
// provider's signature on the raw body before anything else.
type Webhooks interface {
	ServeGitHub(w http.ResponseWriter, r *http.Request)
	ServeGitLab(w http.ResponseWriter, r *http.Request)
}

// webhook answers POST /v1/webhooks/{provider} with the receiver that
// Options.Webhooks built, or 404 when there is none.
func (s *Server) webhook(provider string) func(w http.ResponseWriter, r *http.Request, _ config.Principal) {
	return func(w http.ResponseWriter, r *http.Request, _ config.Principal) {
		h := s.webhooks
		if h == nil {
			writeProblem(w, http.StatusNotFound, probNotFound, "Webhooks not enabled",
				"this server receives no webhooks; its operator enables them by configuring repositories in server.yaml")
			return
		}
		if provider == config.ProviderGitHub {
			h.ServeGitHub(w, r)
		} else {
			h.ServeGitLab(w, r)
		}
	}
}

// triggerQuery are the query parameters of GET /v1/triggers.
var triggerQuery = map[string]bool{"state": true, "source": true, "cursor": true, "limit": true}

// listTriggers is GET /v1/triggers: the tenant's webhook deliveries and
// schedule ticks, newest first, failed ones included (a delivery that could
// not be processed is visible here, not silent).
func (s *Server) listTriggers(w http.ResponseWriter, r *http.Request, p config.Principal) {
	q := r.URL.Query()
	for k, v := range q {
		if !triggerQuery[k] {
			writeProblem(w, http.StatusBadRequest, probBadQuery, "Unknown query parameter",
				fmt.Sprintf("unknown query parameter %q; GET /v1/triggers takes state (repeatable), source, cursor and limit", k))
			return
		}
		if k != "state" && len(v) > 1 {
			writeProblem(w, http.StatusBadRequest, probBadQuery, "Repeated query parameter", fmt.Sprintf("%s is given %d times; give it once", k, len(v)))
			return
		}
	}
	f := trigger.Filter{Source: q.Get("source"), Cursor: q.Get("cursor")}
	for _, v := range q["state"] {
		for _, st := range strings.Split(v, ",") {
			st = strings.TrimSpace(st)
			if !api.TriggerState(st).Valid() {
				writeProblem(w, http.StatusBadRequest, probBadQuery, "Unknown state",
					fmt.Sprintf("state %q is not one of accepted, processing, run_created, ignored, failed", st))
				return
			}
			f.States = append(f.States, api.TriggerState(st))
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > trigger.MaxListLimit {
			writeProblem(w, http.StatusBadRequest, probBadQuery, "Bad limit", fmt.Sprintf("limit %q must be a whole number from 1 to %d", v, trigger.MaxListLimit))
			return
		}
		f.Limit = n
	}
	out := api.TriggerList{Triggers: []api.Trigger{}}
	if s.opts.Triggers == nil {
		writeJSON(w, http.StatusOK, out)
		return
	}
	list, next, err := s.opts.Triggers.ListTriggers(r.Context(), p.Tenant, f)
	if err != nil {
		if errors.Is(err, trigger.ErrInvalidCursor) {
			writeProblem(w, http.StatusBadRequest, probBadQuery, "Bad cursor", "cursor is not one this server returned; start again without it")
			return
		}
		s.log.Error("listing triggers", "tenant", p.Tenant, "err", err)
		writeProblem(w, http.StatusInternalServerError, probInternal, "Internal error", "the triggers could not be read (it is logged); retry, and tell the operator if it persists")
		return
	}
	for _, rec := range list {
		out.Triggers = append(out.Triggers, rec.Trigger)
	}
	out.Next = next
	writeJSON(w, http.StatusOK, out)
}

// getTrigger is GET /v1/triggers/{id}.
func (s *Server) getTrigger(w http.ResponseWriter, r *http.Request, p config.Principal) {
	id := r.PathValue("id")
	notFound := func() {
		writeProblem(w, http.StatusNotFound, probNotFound, "Trigger not found", fmt.Sprintf("no trigger %s in tenant %s; GET /v1/triggers lists them", id, p.Tenant))
	}
	if s.opts.Triggers == nil {
		notFound()
		return
	}
	rec, err := s.opts.Triggers.GetTrigger(r.Context(), p.Tenant, id)
	if errors.Is(err, trigger.ErrNotFound) {
		notFound()
		return
	}
	if err != nil {
		s.log.Error("reading a trigger", "tenant", p.Tenant, "id", id, "err", err)
		writeProblem(w, http.StatusInternalServerError, probInternal, "Internal error", "the trigger could not be read (it is logged); retry")
		return
	}
	writeJSON(w, http.StatusOK, rec.Trigger)
}
