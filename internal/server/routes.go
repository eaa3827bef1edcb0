package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/zof-ai/zof-ci/internal/server/config"
)

// route is one endpoint of api.md. The router is built from this table and
// the OpenAPI test checks the table and the mux against openapi.yaml.
type route struct {
	method string
	path   string
	role   config.Role // 0: no token needed
	stream bool        // no write deadline
	agent  bool        // an endpoint agent's route (agents.go): agent tokens only
	h      func(w http.ResponseWriter, r *http.Request, p config.Principal)
}

func (rt route) pattern() string { return rt.method + " " + rt.path }

func (s *Server) routes() []route {
	return append([]route{
		{method: "POST", path: "/v1/runs", role: config.RoleRunner, h: s.createRun},
		{method: "GET", path: "/v1/runs", role: config.RoleViewer, h: s.listRuns},
		{method: "GET", path: "/v1/runs/{id}", role: config.RoleViewer, h: s.getRun},
		{method: "GET", path: "/v1/runs/{id}/events", role: config.RoleViewer, stream: true, h: s.streamEvents},
		{method: "POST", path: "/v1/runs/{id}/cancel", role: config.RoleRunner, h: s.cancelRun},
		{method: "POST", path: "/v1/runs/{id}/rerun", role: config.RoleRunner, h: s.rerunRun},
		{method: "POST", path: "/v1/webhooks/github", h: s.webhook(config.ProviderGitHub)},
		{method: "POST", path: "/v1/webhooks/gitlab", h: s.webhook(config.ProviderGitLab)},
		{method: "GET", path: "/v1/triggers", role: config.RoleViewer, h: s.listTriggers},
		{method: "GET", path: "/v1/triggers/{id}", role: config.RoleViewer, h: s.getTrigger},
		{method: "GET", path: "/v1/health", role: config.RoleViewer, h: s.getHealth},
		// Selection safety from shadow runs (health.go).
		{method: "GET", path: "/v1/health/selection", role: config.RoleViewer, h: s.getSelectionHealth},
		// Each project's latest coverage summary (coverage.go).
		{method: "GET", path: "/v1/coverage", role: config.RoleViewer, h: s.getCoverage},
		{method: "GET", path: "/healthz", h: s.healthz},
		{method: "GET", path: "/readyz", h: s.readyz},
		{method: "GET", path: "/metrics", h: s.serveMetrics},

		// Deleting a finished run (admin, audited).
		{method: "DELETE", path: "/v1/runs/{id}", role: config.RoleAdmin, h: s.deleteRun},
	},
		// Blocks of endpoints kept in their own files.
		slices.Concat(s.artifactRoutes(), s.agentRoutes())...)
}

// queryTokenParams are query parameters that carry credentials in other APIs;
// they are refused so a token never sits in a URL (and so in access logs).
var queryTokenParams = []string{"token", "access_token"}

type principalKey struct{}

// wrap adds what every route needs: panics become 500s, tokens in the query
// string are refused, the caller is authenticated and authorised, and a
// non-stream response gets a write deadline.
func (s *Server) wrap(rt route) http.Handler {
	pattern := rt.pattern()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		start := time.Now()
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic in handler", "route", pattern, "panic", v)
				if !sw.wrote {
					writeProblem(sw, http.StatusInternalServerError, probInternal, "Internal error",
						"the server failed on this request; it is logged. Retry, and report it if it persists")
				}
			}
			s.metrics.request(pattern, sw.status(), time.Since(start))
		}()
		if !rt.stream {
			_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.opts.WriteTimeout))
		}
		q := r.URL.Query()
		for _, name := range queryTokenParams {
			for k := range q {
				if strings.EqualFold(k, name) {
					writeProblem(sw, http.StatusBadRequest, probTokenInURL, "Token in URL refused",
						"tokens in URLs leak into logs and browser history; send it as `Authorization: Bearer TOKEN` and remove ?"+k+"= (then rotate that token: it may have been logged)")
					return
				}
			}
		}
		var p config.Principal
		if rt.role != 0 || rt.agent {
			var ok bool
			p, ok = s.authenticate(sw, r)
			if !ok {
				return
			}
			if p.Agent() && !rt.agent {
				writeProblem(sw, http.StatusForbidden, probWrongPrincipal, "Agent token refused",
					fmt.Sprintf("token %q is an agent token of pool %s (tenant %s); it may call only /v1/agent/... (docs/agents.md). Use a user token for %s %s", p.Name, p.Pool, p.Tenant, rt.method, rt.path))
				return
			}
			if p.Role < rt.role {
				need := rt.role.String() + " or admin"
				if rt.role == config.RoleAdmin {
					need = "admin"
				}
				writeProblem(sw, http.StatusForbidden, probForbidden, "Role too low",
					fmt.Sprintf("token %q of tenant %s has role %s; %s %s needs %s. Use a token with that role", p.Name, p.Tenant, p.Role, rt.method, rt.path, need))
				if rt.method != http.MethodGet {
					s.audit.record(p, actionOf(rt), r.PathValue("id"), "", http.StatusForbidden, "role too low")
				}
				return
			}
			r = r.WithContext(context.WithValue(r.Context(), principalKey{}, p))
		}
		rt.h(sw, r, p)
	})
}

func actionOf(rt route) string {
	path := rt.path
	switch {
	case rt.method == http.MethodDelete:
		return "delete"
	case strings.HasSuffix(path, "/cancel"):
		return "cancel"
	case strings.HasSuffix(path, "/rerun"):
		return "rerun"
	}
	return "create"
}

// authenticate reads `Authorization: Bearer TOKEN`; a missing or unknown
// token is answered 401 here. A GET without the header may be a browser's
// (the console's EventSource cannot send one): Options.Session decides from
// its cookie. Only safe methods, so a forged cross-site request can never
// mutate anything with a session.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (config.Principal, bool) {
	hs := r.Header.Values("Authorization")
	if len(hs) == 0 && r.Method == http.MethodGet && s.opts.Session != nil {
		if p, ok := s.opts.Session(r); ok {
			return p, true
		}
	}
	if len(hs) == 0 {
		unauthorized(w, "", "no token: send `Authorization: Bearer TOKEN` (zof reads it from --token or ZOF_TOKEN)")
		return config.Principal{}, false
	}
	if len(hs) > 1 {
		unauthorized(w, "invalid_request", "more than one Authorization header; send exactly one `Authorization: Bearer TOKEN`")
		return config.Principal{}, false
	}
	scheme, token, ok := strings.Cut(strings.TrimSpace(hs[0]), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		unauthorized(w, "invalid_request", "the Authorization header must be `Bearer TOKEN`; other schemes are not supported")
		return config.Principal{}, false
	}
	p, ok := s.cfg.AuthenticateAny(token)
	if !ok {
		unauthorized(w, "invalid_token", "the token is not known to this server; check ZOF_TOKEN (or --token) and that it belongs to a tenant in server.yaml")
		return config.Principal{}, false
	}
	return p, true
}

func unauthorized(w http.ResponseWriter, code, detail string) {
	v := `Bearer realm="zof"`
	if code != "" {
		v += `, error="` + code + `"`
	}
	w.Header().Set("WWW-Authenticate", v)
	writeProblem(w, http.StatusUnauthorized, probUnauthorized, "Unauthorized", detail)
}

// top answers what the mux cannot with problem+json: unknown paths (404) and
// known paths with another method (405 with Allow).
func (s *Server) top() http.Handler {
	methods := []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pat := s.mux.Handler(r); pat != "" {
			s.mux.ServeHTTP(w, r) // sets the path values
			return
		}
		var allow []string
		for _, m := range methods {
			r2 := r.Clone(r.Context())
			r2.Method = m
			if _, p := s.mux.Handler(r2); p != "" {
				allow = append(allow, m)
			}
		}
		if len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeProblem(w, http.StatusMethodNotAllowed, probMethod, "Method not allowed",
				fmt.Sprintf("%s is not supported on %s; use %s", r.Method, r.URL.Path, strings.Join(slices.DeleteFunc(allow, func(m string) bool { return m == http.MethodHead }), " or ")))
			return
		}
		writeProblem(w, http.StatusNotFound, probNotFound, "Not found",
			fmt.Sprintf("no endpoint %s; the API is under /v1 (see openapi.yaml)", r.URL.Path))
	})
}

// statusWriter remembers the status for metrics and whether anything was written.
type statusWriter struct {
	http.ResponseWriter
	code  int
	wrote bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.code, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.code, w.wrote = http.StatusOK, true
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) status() int {
	if !w.wrote {
		return http.StatusOK
	}
	return w.code
}

// Unwrap lets http.ResponseController reach Flush and the deadlines.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// errorsAs is errors.As with a type parameter.
func errorsAs[T error](err error) (T, bool) {
	var t T
	ok := errors.As(err, &t)
	return t, ok
}
