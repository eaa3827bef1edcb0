package web

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/server/config"
)

// fakeRuns is a tenant-scoped run store, with the engine's not-found error.
type fakeRuns struct {
	mu   sync.Mutex
	runs map[string]*api.Run // by id
	// calls records the console's mutations with their principals.
	calls []string
}

func (f *fakeRuns) Get(_ context.Context, tenant, id string) (*api.Run, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.runs[id]
	if !ok || r.Tenant != tenant {
		return nil, &engine.NotFoundError{RunID: id}
	}
	return r.Clone(), nil
}

func (f *fakeRuns) List(_ context.Context, tenant string, lf engine.ListFilter) ([]*api.Run, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*api.Run
	for _, r := range f.runs {
		if r.Tenant == tenant && lf.Match(r) {
			out = append(out, r.Clone())
		}
	}
	slices.SortFunc(out, func(a, b *api.Run) int { return b.CreatedAt.Compare(a.CreatedAt) })
	return out, "", nil
}

func (f *fakeRuns) CancelRun(_ context.Context, p config.Principal, id, reason string) (*api.Run, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.runs[id]
	if !ok || r.Tenant != p.Tenant {
		return nil, &engine.NotFoundError{RunID: id}
	}
	f.calls = append(f.calls, "cancel "+id+" by "+p.Name+": "+reason)
	r.Status = api.StatusCancelled
	return r.Clone(), nil
}

func (f *fakeRuns) RerunRun(_ context.Context, p config.Principal, id string) (*api.Run, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "rerun "+id+" by "+p.Name)
	return &api.Run{ID: id + "-rerun"}, nil
}

func (f *fakeRuns) DeleteRun(_ context.Context, p config.Principal, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.runs[id]
	if !ok || r.Tenant != p.Tenant {
		return &engine.NotFoundError{RunID: id}
	}
	if p.Role < config.RoleAdmin {
		return fmt.Errorf("%s may not delete runs", p.Name)
	}
	if !r.Status.Terminal() {
		return &engine.StateError{RunID: id, Status: r.Status, Op: "delete"}
	}
	f.calls = append(f.calls, "delete "+id+" by "+p.Name)
	delete(f.runs, id)
	return nil
}

// fakeAuth knows three tokens: two tenants' runners and a viewer.
type fakeAuth map[string]config.Principal

func (a fakeAuth) Authenticate(token string) (config.Principal, bool) {
	p, ok := a[token]
	return p, ok && token != ""
}

func (a fakeAuth) AuthenticateSum(sum [sha256.Size]byte) (config.Principal, bool) {
	for tok, p := range a {
		if sha256.Sum256([]byte(tok)) == sum {
			return p, true
		}
	}
	return config.Principal{}, false
}

type consoleFixture struct {
	srv  *httptest.Server
	runs *fakeRuns
	auth fakeAuth
}

func newConsole(t *testing.T) *consoleFixture {
	t.Helper()
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	runs := &fakeRuns{runs: map[string]*api.Run{
		"run_a": {ID: "run_a", Tenant: "payments", Project: "checkout", Environment: "staging", Status: api.StatusRunning, CreatedAt: t0,
			Members: []api.Member{{ID: hostile, Status: api.StatusRunning}}},
		"run_done": {ID: "run_done", Tenant: "payments", Project: "checkout", Environment: "staging", Status: api.StatusFailed, CreatedAt: t0.Add(time.Minute)},
		"run_b":    {ID: "run_b", Tenant: "search", Project: "secret-project", Environment: "prod", Status: api.StatusPassed, CreatedAt: t0},
	}}
	auth := fakeAuth{
		"tok-pay":    {Tenant: "payments", Name: "ci", Role: config.RoleRunner},
		"tok-view":   {Tenant: "payments", Name: "dashboard", Role: config.RoleViewer},
		"tok-admin":  {Tenant: "payments", Name: "ops", Role: config.RoleAdmin},
		"tok-search": {Tenant: "search", Name: "ci", Role: config.RoleAdmin},
	}
	c, err := New(Options{Runs: runs, Actions: runs, Auth: auth, Now: func() time.Time { return t0.Add(time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	return &consoleFixture{srv: srv, runs: runs, auth: auth}
}

// browser is a client with a cookie jar that does not follow redirects.
func (f *consoleFixture) browser(t *testing.T) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func do(t *testing.T, c *http.Client, method, u string, form url.Values, header ...string) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func (f *consoleFixture) login(t *testing.T, token string) *http.Client {
	t.Helper()
	b := f.browser(t)
	res, _ := do(t, b, "POST", f.srv.URL+"/login", url.Values{"token": {token}, "next": {"/runs"}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/runs" {
		t.Fatalf("login: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	return b
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func TestConsoleLoginAndTenantIsolation(t *testing.T) {
	f := newConsole(t)
	anon := f.browser(t)

	res, _ := do(t, anon, "GET", f.srv.URL+"/runs?status=failed", nil)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/login?next=%2Fruns%3Fstatus%3Dfailed" {
		t.Fatalf("anonymous /runs: %d to %q, want a redirect to the login keeping the filter", res.StatusCode, res.Header.Get("Location"))
	}
	res, body := do(t, anon, "POST", f.srv.URL+"/login", url.Values{"token": {"wrong"}})
	if res.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "not known to this server") {
		t.Errorf("bad token: %d %q", res.StatusCode, body)
	}

	b := f.login(t, "tok-pay")
	u, _ := url.Parse(f.srv.URL)
	cookies := b.Jar.Cookies(u)
	if len(cookies) != 1 || strings.Contains(cookies[0].Value, "tok-pay") {
		t.Fatalf("session cookie %v must exist and must not hold the token", cookies)
	}
	res, _ = do(t, f.browser(t), "POST", f.srv.URL+"/login", url.Values{"token": {"tok-pay"}})
	sc := res.Header.Get("Set-Cookie")
	for _, want := range []string{"HttpOnly", "SameSite=Strict", "Path=/"} {
		if !strings.Contains(sc, want) {
			t.Errorf("Set-Cookie %q lacks %s", sc, want)
		}
	}

	res, body = do(t, b, "GET", f.srv.URL+"/runs", nil)
	if res.StatusCode != 200 {
		t.Fatalf("/runs: %d", res.StatusCode)
	}
	if !strings.Contains(body, "run_a") || strings.Contains(body, "secret-project") || strings.Contains(body, "run_b") {
		t.Errorf("/runs must list the tenant's runs only:\n%s", body)
	}
	csp := res.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "script-src 'self' 'unsafe-inline'") {
		t.Errorf("CSP %q must allow only our own scripts", csp)
	}

	res, _ = do(t, b, "GET", f.srv.URL+"/runs/run_b", nil)
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("another tenant's run: %d, want 404", res.StatusCode)
	}

	// Scripts use the same pages with a Bearer token.
	res, body = do(t, http.DefaultClient, "GET", f.srv.URL+"/runs/run_b", nil, "Authorization", "Bearer tok-search")
	if res.StatusCode != 200 || !strings.Contains(body, "secret-project") {
		t.Errorf("Bearer GET /runs/run_b: %d", res.StatusCode)
	}
	res, _ = do(t, http.DefaultClient, "GET", f.srv.URL+"/runs", nil, "Authorization", "Bearer nope")
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("unknown Bearer token: %d, want 401", res.StatusCode)
	}

	// A tampered cookie is no session.
	tampered := f.browser(t)
	tampered.Jar.SetCookies(u, []*http.Cookie{{Name: SessionCookie, Value: strings.Replace(cookies[0].Value, "a", "b", 1) + "x"}})
	res, _ = do(t, tampered, "GET", f.srv.URL+"/runs", nil)
	if res.StatusCode != http.StatusSeeOther {
		t.Errorf("tampered cookie: %d, want a redirect to the login", res.StatusCode)
	}

	// Removing the token from the config ends its sessions.
	delete(f.auth, "tok-pay")
	res, _ = do(t, b, "GET", f.srv.URL+"/runs", nil)
	if res.StatusCode != http.StatusSeeOther {
		t.Errorf("session of a removed token: %d, want a redirect to the login", res.StatusCode)
	}
}

func TestConsoleEscapesUntrustedText(t *testing.T) {
	f := newConsole(t)
	b := f.login(t, "tok-pay")
	_, body := do(t, b, "GET", f.srv.URL+"/runs/run_a", nil)
	if strings.Contains(body, "<script>alert") || strings.Contains(body, "<img src=x") {
		t.Fatalf("a hostile member id became markup:\n%s", body)
	}
	if !strings.Contains(body, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") {
		t.Errorf("the hostile member id is not shown escaped")
	}
}

func TestConsoleMutations(t *testing.T) {
	f := newConsole(t)

	viewer := f.login(t, "tok-view")
	_, body := do(t, viewer, "GET", f.srv.URL+"/runs/run_a", nil)
	if strings.Contains(body, "Cancel…") || strings.Contains(body, ">Rerun<") {
		t.Errorf("a viewer sees mutating buttons")
	}
	csrf := csrfRe.FindStringSubmatch(body)[1]
	res, _ := do(t, viewer, "POST", f.srv.URL+"/runs/run_a/cancel", url.Values{"csrf": {csrf}})
	if res.StatusCode != http.StatusForbidden {
		t.Errorf("viewer cancel: %d, want 403", res.StatusCode)
	}

	runner := f.login(t, "tok-pay")
	_, body = do(t, runner, "GET", f.srv.URL+"/runs/run_a", nil)
	if !strings.Contains(body, `href="/runs/run_a/cancel"`) {
		t.Fatalf("a runner sees no Cancel on a running run")
	}
	if strings.Contains(body, ">Rerun<") {
		t.Errorf("Rerun is offered on a run that is not terminal")
	}
	_, body = do(t, runner, "GET", f.srv.URL+"/runs/run_a/cancel", nil)
	if !strings.Contains(body, "Yes, cancel the run") {
		t.Fatalf("no confirmation page")
	}
	csrf = csrfRe.FindStringSubmatch(body)[1]

	res, _ = do(t, runner, "POST", f.srv.URL+"/runs/run_a/cancel", url.Values{"reason": {"wrong build"}})
	if res.StatusCode != http.StatusForbidden {
		t.Errorf("cancel without the form token: %d, want 403", res.StatusCode)
	}
	res, _ = do(t, runner, "POST", f.srv.URL+"/runs/run_a/cancel", url.Values{"reason": {"wrong build"}, "csrf": {csrf}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/runs/run_a" {
		t.Errorf("cancel: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	res, _ = do(t, runner, "POST", f.srv.URL+"/runs/run_done/rerun", url.Values{"csrf": {csrf}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/runs/run_done-rerun" {
		t.Errorf("rerun: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	res, _ = do(t, runner, "POST", f.srv.URL+"/runs/run_b/cancel", url.Values{"csrf": {csrf}})
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("cancel of another tenant's run: %d, want 404", res.StatusCode)
	}
	want := []string{"cancel run_a by ci: wrong build", "rerun run_done by ci"}
	if !slices.Equal(f.runs.calls, want) {
		t.Errorf("mutations %q, want %q", f.runs.calls, want)
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"":                  "/runs",
		"/runs/x?a=b":       "/runs/x?a=b",
		"//evil.example":    "/runs",
		"/\\evil.example":   "/runs",
		"https://evil.test": "/runs",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRunPageMembersArePaged(t *testing.T) {
	f := newConsole(t)
	big := &api.Run{ID: "run_big", Tenant: "payments", Project: "p", Environment: "e", Status: api.StatusFailed}
	for i := range 450 {
		m := api.Member{ID: fmt.Sprintf("case-%03d", i), Status: api.StatusPassed}
		switch {
		case i%150 == 7:
			m.Status = api.StatusFailed
			m.Steps = []api.StepResult{{Name: "s", Status: api.StepFailed, Failure: &api.Failure{Message: "boom"}}}
		case i%200 == 3:
			m.Flaky = true
		}
		big.Members = append(big.Members, m)
	}
	f.runs.runs["run_big"] = big
	b := f.login(t, "tok-pay")

	count := func(body string) int { return strings.Count(body, `data-member="case-`) }
	for _, tt := range []struct {
		query      string
		rows       int
		text, next string
	}{
		{"", 200, "200 of 450 shown, page 1 of 3", "?page=2"},
		{"?page=3", 50, "50 of 450 shown, page 3 of 3", ""},
		{"?page=99", 50, "page 3 of 3", ""},
		{"?members=failed", 3, "3 of 3 shown", ""},
		{"?members=flaky", 3, "3 of 3 shown", ""},
	} {
		_, body := do(t, b, "GET", f.srv.URL+"/runs/run_big"+tt.query, nil)
		if got := count(body); got != tt.rows {
			t.Errorf("%q: %d member rows, want %d", tt.query, got, tt.rows)
		}
		if !strings.Contains(body, tt.text) {
			t.Errorf("%q: the page does not say %q", tt.query, tt.text)
		}
		if tt.next != "" && !strings.Contains(body, `href="`+tt.next+`"`) {
			t.Errorf("%q: no link to %q", tt.query, tt.next)
		}
		// Results list every failure whatever the page.
		if n := strings.Count(body, `<div class="failure">`); n != 3 {
			t.Errorf("%q: %d failures in Results, want 3", tt.query, n)
		}
	}
}

func TestConsoleDelete(t *testing.T) {
	f := newConsole(t)
	runner := f.login(t, "tok-pay")
	_, body := do(t, runner, "GET", f.srv.URL+"/runs/run_done", nil)
	if strings.Contains(body, "Delete…") {
		t.Errorf("a runner is offered Delete")
	}
	csrf := csrfRe.FindStringSubmatch(body)[1]
	if res, _ := do(t, runner, "POST", f.srv.URL+"/runs/run_done/delete", url.Values{"csrf": {csrf}}); res.StatusCode != http.StatusForbidden {
		t.Errorf("runner delete: %d, want 403", res.StatusCode)
	}

	admin := f.login(t, "tok-admin")
	_, body = do(t, admin, "GET", f.srv.URL+"/runs/run_a", nil)
	if strings.Contains(body, "Delete…") {
		t.Errorf("Delete is offered on a running run")
	}
	_, body = do(t, admin, "GET", f.srv.URL+"/runs/run_done", nil)
	if !strings.Contains(body, `href="/runs/run_done/delete"`) {
		t.Fatalf("an admin is not offered Delete on a finished run")
	}
	_, body = do(t, admin, "GET", f.srv.URL+"/runs/run_done/delete", nil)
	if !strings.Contains(body, "Yes, delete the run") {
		t.Fatalf("no confirmation page")
	}
	csrf = csrfRe.FindStringSubmatch(body)[1]
	if res, _ := do(t, admin, "POST", f.srv.URL+"/runs/run_done/delete", nil); res.StatusCode != http.StatusForbidden {
		t.Errorf("delete without the form token: %d, want 403", res.StatusCode)
	}
	if res, _ := do(t, admin, "POST", f.srv.URL+"/runs/run_b/delete", url.Values{"csrf": {csrf}}); res.StatusCode != http.StatusNotFound {
		t.Errorf("delete of another tenant's run: %d, want 404", res.StatusCode)
	}
	res, _ := do(t, admin, "POST", f.srv.URL+"/runs/run_done/delete", url.Values{"csrf": {csrf}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/runs?deleted=run_done" {
		t.Fatalf("delete: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	_, body = do(t, admin, "GET", f.srv.URL+"/runs?deleted=run_done", nil)
	if !strings.Contains(body, "was deleted") || strings.Contains(body, `href="/runs/run_done"`) {
		t.Errorf("the list after a delete must say so and not list the run")
	}
	if want := []string{"delete run_done by ops"}; !slices.Equal(f.runs.calls, want) {
		t.Errorf("mutations %q, want %q", f.runs.calls, want)
	}
}

func TestRunsFiltersBySourceInTheURL(t *testing.T) {
	f := newConsole(t)
	t0 := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	add := func(id, ref string, pr int, trigger string, flaky bool) {
		f.runs.runs[id] = &api.Run{ID: id, Tenant: "payments", Project: "checkout", Environment: "staging", Status: api.StatusPassed, CreatedAt: t0,
			Source: api.Source{Ref: ref, PR: pr, Trigger: trigger}, Members: []api.Member{{ID: "m", Status: api.StatusPassed, Flaky: flaky}}}
	}
	add("run_main_ci", "main", 0, "ci", false)
	add("run_main_sched", "main", 0, "schedule", true)
	add("run_pr", "feature", 42, "webhook", false)
	b := f.login(t, "tok-pay")
	rowsOf := func(body string) []string {
		var ids []string
		for _, m := range regexp.MustCompile(`<tr data-run="([^"]+)"`).FindAllStringSubmatch(body, -1) {
			ids = append(ids, m[1])
		}
		slices.Sort(ids)
		return ids
	}
	for _, tt := range []struct {
		query string
		want  []string
		shows string // the filter is shown as set
	}{
		{"?branch=main", []string{"run_main_ci", "run_main_sched"}, `name="branch" value="main"`},
		{"?branch=main&trigger=ci", []string{"run_main_ci"}, `<option selected>ci</option>`},
		{"?pr=%2342", []string{"run_pr"}, `name="pr" value="#42"`},
		{"?flaky=1", []string{"run_main_sched"}, `name="flaky" value="1" checked`},
		{"?trigger=bogus", []string{"run_a", "run_done", "run_main_ci", "run_main_sched", "run_pr"}, `<option value="">any</option><option>ci</option>`},
	} {
		res, body := do(t, b, "GET", f.srv.URL+"/runs"+tt.query, nil)
		if res.StatusCode != 200 {
			t.Errorf("%s: %d", tt.query, res.StatusCode)
		}
		if got := rowsOf(body); !slices.Equal(got, tt.want) {
			t.Errorf("%s: rows %v, want %v", tt.query, got, tt.want)
		}
		if !strings.Contains(body, tt.shows) {
			t.Errorf("%s: the form does not show the filter (%s)", tt.query, tt.shows)
		}
	}
	res, body := do(t, b, "GET", f.srv.URL+"/runs?pr=abc", nil)
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "is not a number") {
		t.Errorf("?pr=abc: %d, want 400 saying why", res.StatusCode)
	}
}
