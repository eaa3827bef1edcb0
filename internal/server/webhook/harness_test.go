package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/api"
	cigithub "github.com/zof-ai/zof-ci/internal/ci/github"
	"github.com/zof-ai/zof-ci/internal/ci/github/githubtest"
	cigitlab "github.com/zof-ai/zof-ci/internal/ci/gitlab"
	"github.com/zof-ai/zof-ci/internal/ci/gitlab/gitlabtest"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/engine/sqlitestore"
	"github.com/zof-ai/zof-ci/internal/server"
	"github.com/zof-ai/zof-ci/internal/server/config"
	"github.com/zof-ai/zof-ci/internal/server/webhook"
	"github.com/zof-ai/zof-ci/internal/step"
	"github.com/zof-ai/zof-ci/internal/trigger"
)

// waitLimit bounds every wait; a correct server needs a fraction of it.
const waitLimit = 10 * time.Second

const (
	hookSecret   = "hook-secret-0123456789abcdef"
	otherSecret  = "other-secret-0123456789abcdef"
	viewerToken  = "viewer-token-0123456789abcdef"
	ghToken      = "ghs_installation_token"
	glToken      = "glpat-api"
	repoName     = "acme/shop"
	gitlabRepo   = "group/shop"
	gitlabProjID = 42
)

// The suite of the repository under test: cart fails, login passes; a
// suite at a "slow" sha has a cart step that blocks until released.
const suiteText = `version: 1
project: shop
environments:
  staging:
    url: ${SUT_URL}
defaults:
  environment: staging
selection:
  unmapped: none
cases:
  - id: login
    covers: ["auth/**"]
    steps:
      - name: health
        http: {method: GET, path: /ok}
        expect: {status: 200}
  - id: cart
    covers: ["cart/**"]
    steps:
      - name: cart works
        http: {method: GET, path: %s}
        expect: {status: 200}
`

func suiteWith(cartPath string) string { return fmt.Sprintf(suiteText, cartPath) }

// sut is the system under test: /ok passes, /fail answers 500, /block waits
// until released (or the request ends).
type sut struct {
	*httptest.Server
	release chan struct{}
	once    sync.Once
}

func newSUT(t *testing.T) *sut {
	s := &sut{release: make(chan struct{})}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			io.WriteString(w, "ok")
		case "/block":
			select {
			case <-s.release:
			case <-r.Context().Done():
			}
		default:
			w.WriteHeader(500)
		}
	}))
	t.Cleanup(func() { s.open(); s.Close() })
	return s
}

func (s *sut) open() { s.once.Do(func() { close(s.release) }) }

// repoAPI wraps the GitHub and GitLab fakes with the file endpoints they lack.
type repoAPI struct {
	gh *githubtest.Fake
	gl *gitlabtest.Fake
	*httptest.Server

	mu       sync.Mutex
	suites   map[string]string // sha → suite file
	fail     int               // 502s still to serve on file reads
	block    chan struct{}     // when set, file reads wait for it
	reads    int
	accepted []string
	auths    []string // the Authorization of each file read
}

var (
	ghContents = regexp.MustCompile(`^/repos/([^/]+)/([^/]+)/contents/(.+)$`)
	glRaw      = regexp.MustCompile(`^/api/v4/projects/([^/]+)/repository/files/([^/]+)/raw$`)
)

func newRepoAPI(t *testing.T) *repoAPI {
	a := &repoAPI{gh: githubtest.New(t), gl: gitlabtest.New(t), suites: map[string]string{}}
	a.gl.Tokens[glToken] = true
	a.Server = httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.Server.Close)
	return a
}

func (a *repoAPI) serve(w http.ResponseWriter, r *http.Request) {
	path := r.URL.EscapedPath()
	gh, gl := ghContents.FindStringSubmatch(path), glRaw.FindStringSubmatch(path)
	if gh == nil && gl == nil {
		if strings.HasPrefix(path, "/api/v4/") {
			a.gl.Config.Handler.ServeHTTP(w, r)
		} else {
			a.gh.Config.Handler.ServeHTTP(w, r)
		}
		return
	}
	a.mu.Lock()
	a.reads++
	a.accepted = append(a.accepted, r.Header.Get("Accept"))
	a.auths = append(a.auths, r.Header.Get("Authorization"))
	block, fail := a.block, a.fail > 0
	if fail {
		a.fail--
	}
	content, ok := a.suites[r.URL.Query().Get("ref")]
	a.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-r.Context().Done():
			return
		}
	}
	switch {
	case gh != nil && !a.githubAuthorized(r.Header.Get("Authorization"), gh[1]+"/"+gh[2]):
		w.WriteHeader(401)
		io.WriteString(w, `{"message":"Bad credentials"}`)
	case gl != nil && r.Header.Get("PRIVATE-TOKEN") != glToken:
		w.WriteHeader(401)
		io.WriteString(w, `{"message":"401 Unauthorized"}`)
	case fail:
		w.WriteHeader(502)
		io.WriteString(w, `{"message":"Server Error"}`)
	case !ok || (gh != nil && unescape(gh[3]) != "zof.yaml") || (gl != nil && unescape(gl[2]) != "zof.yaml"):
		w.WriteHeader(404)
		io.WriteString(w, `{"message":"Not Found"}`)
	default:
		io.WriteString(w, content)
	}
}

// githubAuthorized: token_env's token, or (with the fake App on) an
// installation token the fake issued for the repository.
func (a *repoAPI) githubAuthorized(auth, repo string) bool {
	if app := a.gh.App; app != nil {
		return app.Valid(auth, repo)
	}
	return auth == "Bearer "+ghToken
}

func unescape(s string) string {
	u, _ := url.PathUnescape(s)
	return u
}

func (a *repoAPI) setSuite(sha, text string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.suites[sha] = text
}

func (a *repoAPI) fileReads() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.reads
}

// syncBuffer collects log lines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// harness is a real server (engine, SQLite store, step executor, HTTP API on
// loopback) with the webhook receiver, against the fakes.
type harness struct {
	t     *testing.T
	api   *repoAPI
	sut   *sut
	cfg   *config.Config
	path  string
	store *sqlitestore.Store
	eng   *engine.Engine
	srv   *server.Server
	recv  *webhook.Receiver
	http  *httptest.Server
	logs  *syncBuffer
	stop  func()
	opts  harnessOpts
	clock *clock
}

type harnessOpts struct {
	attempts int
	scope    string // of pull_request and merge_request events (default changed)
	// pushScope is the scope of GitHub push and merge_group events (default smoke).
	pushScope string
	// app: the GitHub repository authenticates as GitHub App appID (no
	// token_env), and the fake GitHub API authenticates like GitHub.
	app bool
	// appChecksOnly: the fake GitHub API authenticates like GitHub (check
	// runs only for Apps) while the repository keeps token_env.
	appChecksOnly bool
	// store wraps the store the receiver writes triggers to (nil: as is).
	store func(trigger.Store) trigger.Store
}

// The fake GitHub App: its ID and the installation on acme/shop.
const (
	appID          = 4242
	installationID = 77
)

// clock is the fake clock of GitHub App tokens and the fake App.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newHarness(t *testing.T, o harnessOpts) *harness {
	h := &harness{t: t, api: newRepoAPI(t), sut: newSUT(t), path: filepath.Join(t.TempDir(), "zof.db"), logs: &syncBuffer{}, opts: o,
		clock: &clock{t: time.Now()}}
	if o.scope == "" {
		h.opts.scope = "changed"
	}
	if o.pushScope == "" {
		h.opts.pushScope = "smoke"
	}
	env := map[string]string{"HOOK": hookSecret, "OTHER_HOOK": otherSecret, "VIEWER": viewerToken, "GH_TOKEN": ghToken, "GL_TOKEN": glToken,
		"APP_KEY": string(githubtest.KeyPEM(githubtest.TestKey()))}
	credentials := "token_env: GH_TOKEN"
	if o.app || o.appChecksOnly {
		app := h.api.gh.EnableApp(appID)
		app.Now = h.clock.Now
		app.Install(repoName, installationID)
		app.PATs[ghToken] = true
	}
	if o.app {
		credentials = fmt.Sprintf("app_id: %d\n        private_key_env: APP_KEY", appID)
	}
	yaml := fmt.Sprintf(`
tenants:
  acme:
    allowed_targets: ["http://127.0.0.1:*"]
    tokens: [{name: dash, role: viewer, env: VIEWER}]
    repositories:
      - provider: github
        repo: %[1]s
        api_url: %[2]s
        webhook_secret_env: HOOK
        %[6]s
        vars: {SUT_URL: %[3]q}
        events:
          pull_request: {environment: staging, scope: %[4]s}
          push: {environment: staging, scope: %[7]s}
          merge_group: {environment: staging, scope: %[7]s}
      - provider: gitlab
        repo: %[5]s
        api_url: %[2]s/api/v4
        webhook_secret_env: HOOK
        token_env: GL_TOKEN
        vars: {SUT_URL: %[3]q}
        events:
          merge_request: {scope: %[4]s}
  other:
    tokens: [{name: x, role: viewer, sha256: 0000000000000000000000000000000000000000000000000000000000000000}]
    repositories:
      - {provider: github, repo: other/repo, webhook_secret_env: OTHER_HOOK, events: {push: {}}}
`, repoName, h.api.URL, h.sut.URL, h.opts.scope, gitlabRepo, credentials, h.opts.pushScope)
	cfg, err := config.Parse([]byte(yaml), "server.yaml", func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	h.cfg = cfg
	h.start()
	t.Cleanup(h.shutdown)
	return h
}

func (h *harness) start() {
	t := h.t
	store, err := sqlitestore.Open(context.Background(), h.path, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(h.logs, nil))
	eng, err := engine.New(engine.Config{Store: store, Steps: step.NewExecutor(step.ExecutorOptions{}), TenantLimit: h.cfg.TenantLimit,
		RunURL: h.cfg.RunURL, BlockAfter: h.cfg.BlockAfter, LeaveQueuedOnStop: true, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	noSleep := func(context.Context, time.Duration) error { return nil }
	var recv *webhook.Receiver
	var triggers trigger.Store = store
	if h.opts.store != nil {
		triggers = h.opts.store(store)
	}
	srv, err := server.New(server.Options{Config: h.cfg, Engine: eng, Logger: log, Triggers: store, Audit: io.Discard,
		Webhooks: func(srv *server.Server) (server.Webhooks, error) {
			var err error
			recv, err = webhook.New(webhook.Options{Config: h.cfg, Store: triggers, Submitter: srv, Logger: log, Now: h.clock.Now,
				Backoff:     trigger.Backoff{Attempts: h.opts.attempts, Sleep: noSleep},
				GitHubRetry: cigithub.Retry{Sleep: noSleep}, GitLabRetry: cigitlab.Retry{Delay: time.Nanosecond}})
			return recv, err
		}})
	if err != nil {
		t.Fatal(err)
	}
	engCtx, stopEngine := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = eng.Run(engCtx) }()
	if _, err := recv.Resume(context.Background()); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	h.store, h.eng, h.srv, h.recv, h.http = store, eng, srv, recv, hs
	h.stop = func() {
		hs.Close()
		recv.Close()
		srv.Close()
		stopEngine()
		<-done
		_ = store.Close()
	}
}

func (h *harness) shutdown() {
	if h.stop != nil {
		h.stop()
		h.stop = nil
	}
}

// restart stops everything and starts again on the same SQLite file.
func (h *harness) restart() {
	h.shutdown()
	h.start()
}

type response struct {
	status  int
	trigger api.Trigger
	body    string
}

func (h *harness) post(path string, header map[string]string, body []byte) response {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.http.URL+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	c := &http.Client{Timeout: waitLimit}
	resp, err := c.Do(req)
	if err != nil {
		h.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := response{status: resp.StatusCode, body: string(b)}
	_ = json.Unmarshal(b, &out.trigger)
	return out
}

// github posts a signed GitHub delivery.
func (h *harness) github(event, delivery string, payload []byte) response {
	h.t.Helper()
	return h.post("/v1/webhooks/github", map[string]string{
		"X-GitHub-Event": event, "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": webhook.SignGitHub(hookSecret, payload)}, payload)
}

func (h *harness) gitlab(event, delivery string, payload []byte) response {
	h.t.Helper()
	return h.post("/v1/webhooks/gitlab", map[string]string{
		"X-Gitlab-Event": event, "Idempotency-Key": delivery, "X-Gitlab-Token": hookSecret}, payload)
}

// triggers lists the tenant's stored triggers.
func (h *harness) triggers() []*trigger.Record {
	h.t.Helper()
	list, _, err := h.store.ListTriggers(context.Background(), "acme", trigger.Filter{Limit: trigger.MaxListLimit})
	if err != nil {
		h.t.Fatal(err)
	}
	return list
}

// waitTrigger waits until the trigger is done (and reported, for run_created).
func (h *harness) waitTrigger(id string) *trigger.Record {
	h.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
		rec, err := h.store.GetTrigger(context.Background(), "acme", id)
		if err == nil && rec.State.Done() && (rec.State != api.TriggerRunCreated || rec.Reported) {
			return rec
		}
		time.Sleep(5 * time.Millisecond)
	}
	rec, _ := h.store.GetTrigger(context.Background(), "acme", id)
	h.t.Fatalf("trigger %s did not finish: %+v\nlogs:\n%s", id, rec, h.logs.String())
	return nil
}

func (h *harness) waitState(id string, state api.TriggerState) *trigger.Record {
	h.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
		rec, err := h.store.GetTrigger(context.Background(), "acme", id)
		if err == nil && rec.State == state {
			return rec
		}
		time.Sleep(5 * time.Millisecond)
	}
	h.t.Fatalf("trigger %s never reached %s\nlogs:\n%s", id, state, h.logs.String())
	return nil
}

func (h *harness) runs() []*api.Run {
	h.t.Helper()
	runs, _, err := h.eng.List(context.Background(), "acme", engine.ListFilter{Limit: engine.MaxListLimit})
	if err != nil {
		h.t.Fatal(err)
	}
	return runs
}

func (h *harness) run(id string) *api.Run {
	h.t.Helper()
	r, err := h.eng.Wait(context.Background(), "acme", id)
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

// prPayload is a pull_request delivery as GitHub sends it (the fields zof reads, and more).
func prPayload(action string, number int, headSHA string) []byte {
	return []byte(fmt.Sprintf(`{
  "action": %q, "number": %d,
  "pull_request": {"number": %d, "changed_files": 1, "state": "open",
    "head": {"sha": %q, "ref": "feature", "repo": {"full_name": %q}},
    "base": {"sha": "1111111111111111111111111111111111111111", "ref": "main", "repo": {"full_name": %q, "default_branch": "main"}}},
  "repository": {"full_name": %q, "name": "shop", "owner": {"login": "acme"}, "default_branch": "main"},
  "sender": {"login": "octocat"}
}`, action, number, number, headSHA, repoName, repoName, repoName))
}

func mrPayload(action string, iid int, headSHA string) []byte {
	return []byte(fmt.Sprintf(`{
  "object_kind": "merge_request", "event_type": "merge_request",
  "user": {"username": "tanuki"},
  "project": {"id": %d, "path_with_namespace": %q, "default_branch": "main"},
  "object_attributes": {"iid": %d, "action": %q, "source_branch": "feature", "target_branch": "main", "oldrev": "2222222222222222222222222222222222222222",
    "last_commit": {"id": %q}}
}`, gitlabProjID, gitlabRepo, iid, action, headSHA))
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
