package server_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/server"
	"github.com/zof-ai/zof-ci/internal/server/config"
)

// sessionCookie is the test's stand-in for the console's signed cookie: its
// value names an alpha principal.
const sessionCookie = "zof_session"

func withSessions(o *server.Options) {
	o.Session = func(r *http.Request) (config.Principal, bool) {
		c, err := r.Cookie(sessionCookie)
		if err != nil {
			return config.Principal{}, false
		}
		switch c.Value {
		case "alpha-runner":
			return config.Principal{Tenant: "alpha", Name: "ci", Role: config.RoleRunner}, true
		case "alpha-viewer":
			return config.Principal{Tenant: "alpha", Name: "dashboard", Role: config.RoleViewer}, true
		}
		return config.Principal{}, false
	}
}

// TestSessionAuthenticatesOnlySafeRequests: the console's cookie reads the
// API (the run page's EventSource), never mutates it, and sees only its
// tenant's runs.
func TestSessionAuthenticatesOnlySafeRequests(t *testing.T) {
	h := newHarness(t, harnessOpts{configure: withSessions})
	run := h.create(tokAlphaRunner, runReq("shop", "staging", []api.Step{httpStep("wait:s")}))
	other := h.create(tokBetaRunner, runReq("shop", "staging", []api.Step{httpStep("a")}))
	h.waitStatus(tokAlphaRunner, run.ID, api.StatusRunning)
	cookie := func(v string) []string { return []string{"Cookie", sessionCookie + "=" + v} }

	tests := []struct {
		name, method, path string
		hdr                []string
		want               int
	}{
		{"cookie reads a run", "GET", "/v1/runs/" + run.ID, cookie("alpha-viewer"), http.StatusOK},
		{"cookie lists runs", "GET", "/v1/runs", cookie("alpha-viewer"), http.StatusOK},
		{"another tenant's run is not found", "GET", "/v1/runs/" + other.ID, cookie("alpha-runner"), http.StatusNotFound},
		{"unknown session", "GET", "/v1/runs/" + run.ID, cookie("forged"), http.StatusUnauthorized},
		{"cookie never cancels", "POST", "/v1/runs/" + run.ID + "/cancel", cookie("alpha-runner"), http.StatusUnauthorized},
		{"cookie never creates", "POST", "/v1/runs", cookie("alpha-runner"), http.StatusUnauthorized},
		{"a header wins over the cookie", "GET", "/v1/runs/" + run.ID, append(cookie("alpha-runner"), "Authorization", "Bearer nope"), http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.do(tt.method, tt.path, "", nil, tt.hdr...)
			if r.status != tt.want {
				t.Errorf("%s %s: %d, want %d (%s)", tt.method, tt.path, r.status, tt.want, r.body)
			}
		})
	}

	// The event stream, as an EventSource asks for it: cookie and Accept only.
	st, r := h.stream("", run.ID, "", "Cookie", sessionCookie+"=alpha-viewer")
	if st == nil {
		t.Fatalf("stream with a session cookie: %d %s", r.status, r.body)
	}
	h.steps.open("s")
	evs, end := st.events(t)
	if len(evs) == 0 || end.Status != api.StatusPassed {
		t.Errorf("stream over a session: %d events, end %+v", len(evs), end)
	}
	if got := h.do("GET", "/v1/runs/"+run.ID, tokAlphaRunner, nil).run(t); got.Status != api.StatusPassed {
		t.Errorf("run %s", got.Status)
	}
}

// TestConsoleActionsAreTheAPIs: CancelRun and RerunRun, which the console
// calls, check the role and tenant and write the same audit lines as the
// API's cancel and rerun.
func TestConsoleActionsAreTheAPIs(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	ctx := context.Background()
	runner := config.Principal{Tenant: "alpha", Name: "ci", Role: config.RoleRunner}
	viewer := config.Principal{Tenant: "alpha", Name: "dashboard", Role: config.RoleViewer}
	beta := config.Principal{Tenant: "beta", Name: "ci", Role: config.RoleRunner}
	run := h.create(tokAlphaRunner, runReq("shop", "staging", []api.Step{httpStep("wait:x")}))
	h.waitStatus(tokAlphaRunner, run.ID, api.StatusRunning)

	var re *server.RoleError
	if _, err := h.srv.CancelRun(ctx, viewer, run.ID, ""); !errors.As(err, &re) {
		t.Errorf("viewer cancel: %v, want a RoleError", err)
	}
	if _, err := h.srv.CancelRun(ctx, beta, run.ID, ""); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("another tenant's cancel: %v, want not found", err)
	}
	if _, err := h.srv.RerunRun(ctx, runner, run.ID); !errors.As(err, new(*engine.StateError)) {
		t.Errorf("rerun of a running run: %v, want a state error", err)
	}
	if _, err := h.srv.CancelRun(ctx, runner, run.ID, "wrong build"); err != nil {
		t.Fatalf("cancel: %v", err)
	}
	done := h.waitStatus(tokAlphaRunner, run.ID, api.StatusCancelled)
	if done.Reason != "cancelled by ci: wrong build" {
		t.Errorf("reason %q", done.Reason)
	}
	again, err := h.srv.RerunRun(ctx, runner, run.ID)
	if err != nil || again.RerunOf != run.ID {
		t.Fatalf("rerun: %+v %v", again, err)
	}

	type line struct{ Principal, Tenant, Role, Action, RunID, Result string }
	var got []line
	for _, e := range h.auditEntries() {
		if e.Action == "create" {
			continue
		}
		got = append(got, line{e.Principal, e.Tenant, e.Role, e.Action, e.RunID, fmt.Sprintf("%d %s", e.Status, e.Result)})
	}
	want := []line{
		{"dashboard", "alpha", "viewer", "cancel", run.ID, "403 role too low"},
		{"ci", "beta", "runner", "cancel", run.ID, "404 run not found"},
		{"ci", "alpha", "runner", "rerun", run.ID, "409 run state conflict"},
		{"ci", "alpha", "runner", "cancel", run.ID, "202 cancel requested"},
		{"ci", "alpha", "runner", "rerun", again.ID, "201 rerun of " + run.ID},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}
	if !strings.HasSuffix(run.URL, "/runs/"+run.ID) || strings.Contains(run.URL, "/v1/") {
		t.Errorf("run URL %q, want the console's /runs/{id}", run.URL)
	}
}
