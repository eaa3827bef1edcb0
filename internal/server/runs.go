package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/server/config"
)

// MaxIdempotencyKey bounds an Idempotency-Key's length. The IETF draft sets
// no limit; 255 is what the largest public APIs accept (Stripe's limit), far
// more than zof's derived keys (a hex digest) need.
const MaxIdempotencyKey = 255

// createRun is POST /v1/runs.
func (s *Server) createRun(w http.ResponseWriter, r *http.Request, p config.Principal) {
	key, kerr := parseIdempotencyKey(r.Header.Values(api.HeaderIdempotencyKey))
	if kerr != nil {
		writeProblem(w, http.StatusBadRequest, probIdemKey, "Malformed Idempotency-Key", kerr.Error())
		s.audit.record(p, "create", "", "", http.StatusBadRequest, "malformed idempotency key")
		return
	}
	var req api.RunRequest
	if berr := decodeJSON(w, r, s.cfg.MaxBody, &req, false); berr != nil {
		berr.write(w)
		s.audit.record(p, "create", "", key, berr.status, berr.title)
		return
	}
	cov, berr := takeCoverage(&req)
	if berr != nil {
		berr.write(w)
		s.audit.record(p, "create", "", key, berr.status, berr.title)
		return
	}
	run, replayed, err := s.create(r.Context(), p, &req, engine.CreateOptions{IdempotencyKey: key})
	if err != nil {
		if re, ok := errorsAs[*RefusedError](err); ok {
			writeProblemBody(w, api.Problem{Type: probRefused, Title: "Run refused", Status: http.StatusUnprocessableEntity,
				Detail: refusedDetail(re.Problems), Errors: re.Problems})
			return
		}
		s.engineError(w, err)
		return
	}
	if !replayed {
		s.recordCoverage(r.Context(), p.Tenant, run, cov)
	}
	w.Header().Set("Location", "/v1/runs/"+url.PathEscape(run.ID))
	if replayed {
		w.Header().Set(api.HeaderReplayed, "true")
		writeJSON(w, http.StatusOK, run)
		return
	}
	writeJSON(w, http.StatusCreated, run)
}

// RefusedError is a run refused before anything ran (api.md, Safety):
// every problem, each telling what to change.
type RefusedError struct{ Problems []string }

func (e *RefusedError) Error() string { return refusedDetail(e.Problems) }

// Submit creates a run through the same path as POST /v1/runs: the safety
// checks of the principal's tenant, engine.Create with opts (idempotency key
// and fingerprint), metrics, and an audit line naming the principal (for
// triggers "webhook:github", "schedule:NAME"). A refused run is a
// *RefusedError; engine errors are returned as they are. replayed is true
// when opts.IdempotencyKey already named a run, which is returned.
func (s *Server) Submit(ctx context.Context, p config.Principal, req *api.RunRequest, opts engine.CreateOptions) (run *api.Run, replayed bool, err error) {
	return s.create(ctx, p, req, opts)
}

// Get returns a run of tenant (engine.Get).
func (s *Server) Get(ctx context.Context, tenant, id string) (*api.Run, error) {
	return s.eng.Get(ctx, tenant, id)
}

// Wait follows a run of tenant until it is terminal (engine.Wait).
func (s *Server) Wait(ctx context.Context, tenant, id string) (*api.Run, error) {
	return s.eng.Wait(ctx, tenant, id)
}

func (s *Server) create(ctx context.Context, p config.Principal, req *api.RunRequest, opts engine.CreateOptions) (*api.Run, bool, error) {
	key := opts.IdempotencyKey
	if probs := s.refusals(p.Tenant, req); len(probs) > 0 {
		s.audit.record(p, "create", "", key, http.StatusUnprocessableEntity, "refused: "+strings.Join(probs, "; "))
		return nil, false, &RefusedError{Problems: probs}
	}
	req = s.releaseQuarantines(ctx, p.Tenant, req, &opts)
	run, replayed, err := s.eng.Create(ctx, p.Tenant, req, opts)
	if err != nil {
		s.audit.record(p, "create", runIDOf(err), key, statusOf(err), errTitle(err))
		return nil, false, err
	}
	if replayed {
		s.metrics.replay(p.Tenant)
		s.audit.record(p, "replay", run.ID, key, http.StatusOK, "replayed")
		return run, true, nil
	}
	s.metrics.created(p.Tenant)
	s.audit.record(p, "create", run.ID, key, http.StatusCreated, "created")
	return run, false, nil
}

// statusOf is the HTTP status engineError answers for err.
func statusOf(err error) int {
	switch {
	case errors.As(err, new(*engine.NotFoundError)):
		return http.StatusNotFound
	case errors.As(err, new(*engine.StateError)):
		return http.StatusConflict
	case errors.As(err, new(*engine.IdempotencyConflictError)), errors.As(err, new(*engine.ValidationError)):
		return http.StatusUnprocessableEntity
	case errors.Is(err, engine.ErrStopped) || errors.Is(err, context.Canceled) || errors.Is(err, engine.ErrUnavailable):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func refusedDetail(probs []string) string {
	if len(probs) == 1 {
		return "the run was refused before anything ran: " + probs[0]
	}
	return fmt.Sprintf("the run was refused before anything ran: %d problems, listed in errors; fix them in the suite, or ask the server's operator to change the tenant's settings in server.yaml", len(probs))
}

// parseIdempotencyKey reads the header (see the package comment for the format).
func parseIdempotencyKey(values []string) (string, error) {
	switch len(values) {
	case 0:
		return "", nil
	case 1:
	default:
		return "", errors.New("the Idempotency-Key header is given more than once; send it once")
	}
	return ParseIdempotencyKey(values[0])
}

// ParseIdempotencyKey reads an Idempotency-Key value: an RFC 8941 sf-string
// ("..." with \" and \\ escapes, printable ASCII) or, leniently, a bare token
// of visible ASCII without quotes, backslashes, commas or whitespace.
func ParseIdempotencyKey(v string) (string, error) {
	v = strings.TrimSpace(v)
	hint := `; send a quoted string of at most 255 printable ASCII characters, like Idempotency-Key: "8e03978e-40d5-43e8-bc93-6894a57f9324"`
	var key string
	if strings.HasPrefix(v, `"`) {
		var b strings.Builder
		closed := false
		for i := 1; i < len(v); i++ {
			c := v[i]
			switch {
			case c == '\\':
				if i+1 >= len(v) || (v[i+1] != '"' && v[i+1] != '\\') {
					return "", errors.New("the Idempotency-Key has a backslash that escapes neither \" nor \\" + hint)
				}
				i++
				b.WriteByte(v[i])
			case c == '"':
				if i != len(v)-1 {
					return "", errors.New("the Idempotency-Key has data after its closing quote" + hint)
				}
				closed = true
			case c < 0x20 || c > 0x7e:
				return "", errors.New("the Idempotency-Key holds a character that is not printable ASCII" + hint)
			default:
				b.WriteByte(c)
			}
		}
		if !closed {
			return "", errors.New("the Idempotency-Key's quote is not closed" + hint)
		}
		key = b.String()
	} else {
		for i := 0; i < len(v); i++ {
			if c := v[i]; c <= 0x20 || c > 0x7e || c == '"' || c == '\\' || c == ',' {
				return "", errors.New("the Idempotency-Key holds a space, comma, quote, backslash or non-ASCII character" + hint)
			}
		}
		key = v
	}
	switch {
	case key == "":
		return "", errors.New("the Idempotency-Key is empty" + hint)
	case len(key) > MaxIdempotencyKey:
		return "", fmt.Errorf("the Idempotency-Key has %d characters, more than %d%s", len(key), MaxIdempotencyKey, hint)
	}
	return key, nil
}

// engineError answers an engine error and returns the status it chose.
func (s *Server) engineError(w http.ResponseWriter, err error) int {
	if nf, ok := errorsAs[*engine.NotFoundError](err); ok {
		writeProblemBody(w, api.Problem{Type: probNotFound, Title: "Run not found", Status: http.StatusNotFound, Detail: nf.Error()})
		return http.StatusNotFound
	}
	if se, ok := errorsAs[*engine.StateError](err); ok {
		writeProblemBody(w, api.Problem{Type: probState, Title: "Run is " + se.Status.Display(), Status: http.StatusConflict, Detail: se.Error(), RunID: se.RunID})
		return http.StatusConflict
	}
	if ic, ok := errorsAs[*engine.IdempotencyConflictError](err); ok {
		writeProblemBody(w, api.Problem{Type: probIdemConflict, Title: "Idempotency-Key already used", Status: http.StatusUnprocessableEntity, Detail: ic.Error(), RunID: ic.RunID})
		return http.StatusUnprocessableEntity
	}
	if ve, ok := errorsAs[*engine.ValidationError](err); ok {
		writeProblemBody(w, api.Problem{Type: probRefused, Title: "Run refused", Status: http.StatusUnprocessableEntity, Detail: refusedDetail(ve.Problems), Errors: ve.Problems})
		return http.StatusUnprocessableEntity
	}
	if errors.Is(err, engine.ErrUnavailable) {
		s.log.Warn("the store is unreachable", "err", err)
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterStore))
		writeProblem(w, http.StatusServiceUnavailable, probUnavailable, "Store unavailable",
			"the server cannot reach its database at the moment; nothing was lost: retry in a moment (on this or another replica)")
		return http.StatusServiceUnavailable
	}
	if errors.Is(err, engine.ErrStopped) || errors.Is(err, context.Canceled) {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterStopped))
		writeProblem(w, http.StatusServiceUnavailable, probUnavailable, "Shutting down", "the server is stopping and takes no new runs; retry in a moment (against the restarted server)")
		return http.StatusServiceUnavailable
	}
	s.log.Error("engine error", "err", err)
	writeProblem(w, http.StatusInternalServerError, probInternal, "Internal error", "the server could not complete the request (it is logged); retry, and tell the operator if it persists")
	return http.StatusInternalServerError
}

func runIDOf(err error) string {
	if ic, ok := errorsAs[*engine.IdempotencyConflictError](err); ok {
		return ic.RunID
	}
	if se, ok := errorsAs[*engine.StateError](err); ok {
		return se.RunID
	}
	return ""
}

func errTitle(err error) string {
	switch {
	case errors.As(err, new(*engine.IdempotencyConflictError)):
		return "idempotency key conflict"
	case errors.As(err, new(*engine.StateError)):
		return "run state conflict"
	case errors.As(err, new(*engine.ValidationError)):
		return "invalid run request"
	case errors.As(err, new(*engine.NotFoundError)):
		return "run not found"
	}
	return "error: " + err.Error()
}

// getRun is GET /v1/runs/{id}.
func (s *Server) getRun(w http.ResponseWriter, r *http.Request, p config.Principal) {
	run, err := s.eng.Get(r.Context(), p.Tenant, r.PathValue("id"))
	if err != nil {
		s.engineError(w, err)
		return
	}
	s.addWaits(run)
	writeJSON(w, http.StatusOK, run)
}

// listQuery are the query parameters of GET /v1/runs.
var listQuery = map[string]bool{"status": true, "project": true, "environment": true, "cursor": true, "limit": true,
	"branch": true, "pr": true, "trigger": true, "flaky": true}

// listRuns is GET /v1/runs.
func (s *Server) listRuns(w http.ResponseWriter, r *http.Request, p config.Principal) {
	q := r.URL.Query()
	for k := range q {
		if !listQuery[k] {
			writeProblem(w, http.StatusBadRequest, probBadQuery, "Unknown query parameter",
				fmt.Sprintf("unknown query parameter %q; GET /v1/runs takes status (repeatable), project, environment, branch, pr, trigger, flaky, cursor and limit", k))
			return
		}
	}
	for _, k := range []string{"project", "environment", "cursor", "limit", "branch", "pr", "trigger", "flaky"} {
		if len(q[k]) > 1 {
			writeProblem(w, http.StatusBadRequest, probBadQuery, "Repeated query parameter", fmt.Sprintf("%s is given %d times; give it once", k, len(q[k])))
			return
		}
	}
	f := engine.ListFilter{Project: q.Get("project"), Environment: q.Get("environment"), Cursor: q.Get("cursor")}
	for _, v := range q["status"] {
		for _, st := range strings.Split(v, ",") {
			st = strings.TrimSpace(st)
			if !api.Status(st).Valid() {
				writeProblem(w, http.StatusBadRequest, probBadQuery, "Unknown status",
					fmt.Sprintf("status %q is not one of initial, queued, running, passed, failed, cancelled, blocked", st))
				return
			}
			f.Statuses = append(f.Statuses, api.Status(st))
		}
	}
	if err := sourceFilter(q, &f); err != nil {
		writeProblem(w, http.StatusBadRequest, probBadQuery, "Bad filter", err.Error())
		return
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > engine.MaxListLimit {
			writeProblem(w, http.StatusBadRequest, probBadQuery, "Bad limit",
				fmt.Sprintf("limit %q must be a whole number from 1 to %d", v, engine.MaxListLimit))
			return
		}
		f.Limit = n
	}
	runs, next, err := s.eng.List(r.Context(), p.Tenant, f)
	if err != nil {
		if ve, ok := errorsAs[*engine.ValidationError](err); ok {
			writeProblemBody(w, api.Problem{Type: probBadQuery, Title: "Bad query", Status: http.StatusBadRequest, Detail: strings.Join(ve.Problems, "; ")})
			return
		}
		s.engineError(w, err)
		return
	}
	out := api.RunList{Runs: make([]api.Run, 0, len(runs)), Next: next}
	for _, run := range runs {
		out.Runs = append(out.Runs, *run)
	}
	writeJSON(w, http.StatusOK, out)
}

// cancelRun is POST /v1/runs/{id}/cancel.
func (s *Server) cancelRun(w http.ResponseWriter, r *http.Request, p config.Principal) {
	id := r.PathValue("id")
	var body api.CancelRequest
	if berr := decodeJSON(w, r, s.cfg.MaxBody, &body, true); berr != nil {
		berr.write(w)
		s.audit.record(p, "cancel", id, "", berr.status, berr.title)
		return
	}
	run, err := s.CancelRun(r.Context(), p, id, body.Reason)
	if err != nil {
		s.mutationError(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, run)
}

// rerunRun is POST /v1/runs/{id}/rerun.
func (s *Server) rerunRun(w http.ResponseWriter, r *http.Request, p config.Principal) {
	id := r.PathValue("id")
	var body struct{}
	if berr := decodeJSON(w, r, s.cfg.MaxBody, &body, true); berr != nil {
		berr.write(w)
		s.audit.record(p, "rerun", id, "", berr.status, berr.title)
		return
	}
	run, err := s.RerunRun(r.Context(), p, id)
	if err != nil {
		s.mutationError(w, err)
		return
	}
	w.Header().Set("Location", "/v1/runs/"+url.PathEscape(run.ID))
	writeJSON(w, http.StatusCreated, run)
}

// RoleError is a mutation refused because the principal's role is too low.
type RoleError struct {
	Principal config.Principal
	Action    string
	Need      config.Role
}

func (e *RoleError) Error() string {
	if e.Need == config.RoleAdmin {
		return fmt.Sprintf("token %q of tenant %s has role %s; to %s a run it needs admin. Use an admin token",
			e.Principal.Name, e.Principal.Tenant, e.Principal.Role, e.Action)
	}
	return fmt.Sprintf("token %q of tenant %s has role %s; to %s a run it needs %s or admin. Use a token with that role",
		e.Principal.Name, e.Principal.Tenant, e.Principal.Role, e.Action, e.Need)
}

// mutationError answers an error of CancelRun or RerunRun (already audited).
func (s *Server) mutationError(w http.ResponseWriter, err error) {
	if re, ok := errorsAs[*RoleError](err); ok {
		writeProblem(w, http.StatusForbidden, probForbidden, "Role too low", re.Error())
		return
	}
	s.engineError(w, err)
}

// allowed audits and refuses a mutation by a principal below role runner
// (the API's router refuses them first; the console calls CancelRun and
// RerunRun directly).
func (s *Server) allowed(p config.Principal, action, id string) error {
	if p.Role >= config.RoleRunner {
		return nil
	}
	s.audit.record(p, action, id, "", http.StatusForbidden, "role too low")
	return &RoleError{Principal: p, Action: action, Need: config.RoleRunner}
}

// CancelRun cancels a run of p's tenant for p, as POST /v1/runs/{id}/cancel
// does (the console's Cancel calls it): a runner or admin only, the run
// records "cancelled by NAME: reason" (reason may be empty), and an audit
// line names p whatever the outcome. Errors: *RoleError, or the engine's
// (*engine.NotFoundError for another tenant's run, *engine.StateError when
// it is already terminal).
func (s *Server) CancelRun(ctx context.Context, p config.Principal, id, reason string) (*api.Run, error) {
	if err := s.allowed(p, "cancel", id); err != nil {
		return nil, err
	}
	why := "cancelled by " + p.Name
	if reason != "" {
		why += ": " + reason
	}
	run, err := s.eng.Cancel(ctx, p.Tenant, id, why)
	if err != nil {
		s.audit.record(p, "cancel", id, "", statusOf(err), errTitle(err))
		return nil, err
	}
	s.audit.record(p, "cancel", id, "", http.StatusAccepted, "cancel requested")
	return run, nil
}

// RerunRun reruns a terminal run of p's tenant for p, as POST
// /v1/runs/{id}/rerun does (the console's Rerun calls it), with the same
// checks, metrics and audit line; errors as CancelRun's.
func (s *Server) RerunRun(ctx context.Context, p config.Principal, id string) (*api.Run, error) {
	if err := s.allowed(p, "rerun", id); err != nil {
		return nil, err
	}
	run, err := s.eng.Rerun(ctx, p.Tenant, id)
	if err != nil {
		s.audit.record(p, "rerun", id, "", statusOf(err), errTitle(err))
		return nil, err
	}
	s.metrics.created(p.Tenant)
	s.audit.record(p, "rerun", run.ID, "", http.StatusCreated, "rerun of "+id)
	return run, nil
}

// healthz is GET /healthz: the process answers.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request, _ config.Principal) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz is GET /readyz: the store answers and the server is not stopping.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request, _ config.Principal) {
	select {
	case <-s.closing:
		writeProblem(w, http.StatusServiceUnavailable, probShuttingDown, "Shutting down", "the server is stopping; send traffic to another replica")
		return
	default:
	}
	if s.opts.Ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		if err := s.opts.Ready(ctx); err != nil {
			s.log.Warn("not ready: the store does not answer", "err", err)
			writeProblem(w, http.StatusServiceUnavailable, probUnavailable, "Store unavailable",
				"the server cannot reach its store (see its log); check the data directory or database")
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
