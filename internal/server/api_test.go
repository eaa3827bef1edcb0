package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/server"
)

func TestAuthMatrix(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	run := h.create(tokAlphaRunner, runReq("shop", "staging", []api.Step{httpStep("wait:auth")}))
	path := "/v1/runs/" + run.ID
	tests := []struct {
		name       string
		method     string
		path       string
		token      string
		body       any
		hdr        []string
		want       int
		wantAuthHd bool
	}{
		{name: "no token", method: "GET", path: path, want: 401, wantAuthHd: true},
		{name: "unknown token", method: "GET", path: path, token: "not-a-token-of-this-server", want: 401, wantAuthHd: true},
		{name: "basic scheme", method: "GET", path: path, hdr: []string{"Authorization", "Basic YTpi"}, want: 401, wantAuthHd: true},
		{name: "bearer without token", method: "GET", path: path, hdr: []string{"Authorization", "Bearer "}, want: 401, wantAuthHd: true},
		{name: "token in query", method: "GET", path: path + "?token=" + tokAlphaRunner, want: 400},
		{name: "access_token in query with a valid header", method: "GET", path: path + "?access_token=x", token: tokAlphaRunner, want: 400},
		{name: "ACCESS_TOKEN any case", method: "GET", path: "/v1/runs?ACCESS_TOKEN=x", token: tokAlphaRunner, want: 400},
		{name: "viewer reads", method: "GET", path: path, token: tokAlphaViewer, want: 200},
		{name: "viewer lists", method: "GET", path: "/v1/runs", token: tokAlphaViewer, want: 200},
		{name: "viewer cannot create", method: "POST", path: "/v1/runs", token: tokAlphaViewer, body: runReq("shop", "staging", []api.Step{httpStep("a")}), want: 403},
		{name: "viewer cannot cancel", method: "POST", path: path + "/cancel", token: tokAlphaViewer, want: 403},
		{name: "viewer cannot rerun", method: "POST", path: path + "/rerun", token: tokAlphaViewer, want: 403},
		{name: "other tenant cannot see", method: "GET", path: path, token: tokBetaRunner, want: 404},
		{name: "other tenant cannot stream", method: "GET", path: path + "/events", token: tokBetaRunner, want: 404},
		{name: "other tenant cannot cancel", method: "POST", path: path + "/cancel", token: tokBetaRunner, want: 404},
		{name: "other tenant cannot rerun", method: "POST", path: path + "/rerun", token: tokBetaRunner, want: 404},
		{name: "missing run", method: "GET", path: "/v1/runs/run_nope", token: tokAlphaRunner, want: 404},
		{name: "unknown path", method: "GET", path: "/v2/runs", token: tokAlphaRunner, want: 404},
		{name: "wrong method", method: "PUT", path: path, token: tokAlphaRunner, want: 405},
		{name: "healthz needs no token", method: "GET", path: "/healthz", want: 200},
		{name: "readyz needs no token", method: "GET", path: "/readyz", want: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.do(tt.method, tt.path, tt.token, tt.body, tt.hdr...)
			if r.status != tt.want {
				t.Fatalf("status %d, want %d; body %s", r.status, tt.want, r.body)
			}
			if tt.want >= 400 {
				p := r.problem(t)
				if tt.want == 400 && !strings.Contains(p.Detail, "Authorization: Bearer") {
					t.Errorf("detail %q does not say how to send the token", p.Detail)
				}
			}
			if got := r.header.Get("WWW-Authenticate"); tt.wantAuthHd != strings.HasPrefix(got, `Bearer realm="zof"`) {
				t.Errorf("WWW-Authenticate = %q", got)
			}
			if tt.want == 405 && r.header.Get("Allow") == "" {
				t.Error("405 without Allow")
			}
		})
	}
	// The other tenant's 404 is the same as a missing run's: existence is not revealed.
	other := h.do("GET", path, tokBetaRunner, nil).problem(t)
	if strings.Contains(other.Detail, "alpha") {
		t.Errorf("404 detail reveals the owner: %q", other.Detail)
	}
	h.steps.open("auth")
}

func TestCreateAndIdempotency(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	req := runReq("shop", "staging", []api.Step{httpStep("a")})
	key := `"ci-github-acme-shop-123-1"`

	first := h.do("POST", "/v1/runs", tokAlphaRunner, req, api.HeaderIdempotencyKey, key)
	if first.status != http.StatusCreated {
		t.Fatalf("first create: %d %s", first.status, first.body)
	}
	run := first.run(t)
	if got, want := first.header.Get("Location"), "/v1/runs/"+run.ID; got != want {
		t.Errorf("Location = %q, want %q", got, want)
	}
	if run.Tenant != "alpha" || run.IdempotencyKey != "ci-github-acme-shop-123-1" || run.URL != "http://zof.test/runs/"+run.ID {
		t.Errorf("run tenant %q key %q url %q", run.Tenant, run.IdempotencyKey, run.URL)
	}

	// The same request, written differently (key order, spacing), is the same fingerprint.
	data, _ := json.Marshal(req)
	var generic map[string]any
	_ = json.Unmarshal(data, &generic)
	reordered, _ := json.MarshalIndent(generic, "", "   ")
	for _, body := range []any{req, reordered} {
		r := h.do("POST", "/v1/runs", tokAlphaRunner, body, api.HeaderIdempotencyKey, key)
		if r.status != http.StatusOK || r.header.Get(api.HeaderReplayed) != "true" {
			t.Fatalf("replay: %d %q %s", r.status, r.header.Get(api.HeaderReplayed), r.body)
		}
		if got := r.run(t).ID; got != run.ID {
			t.Errorf("replay returned %s, want %s", got, run.ID)
		}
	}
	// The unquoted form is the same key.
	if r := h.do("POST", "/v1/runs", tokAlphaRunner, req, api.HeaderIdempotencyKey, "ci-github-acme-shop-123-1"); r.status != http.StatusOK {
		t.Errorf("bare token key: %d %s", r.status, r.body)
	}

	// Same key, different request: 422 naming the run.
	other := runReq("shop", "staging", []api.Step{httpStep("b")})
	r := h.do("POST", "/v1/runs", tokAlphaRunner, other, api.HeaderIdempotencyKey, key)
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("conflict: %d %s", r.status, r.body)
	}
	p := r.problem(t)
	if p.RunID != run.ID || !strings.Contains(p.Detail, run.ID) {
		t.Errorf("conflict problem does not name %s: %+v", run.ID, p)
	}

	// Keys are per tenant: beta's same key is a new run.
	if r := h.do("POST", "/v1/runs", tokBetaRunner, req, api.HeaderIdempotencyKey, key); r.status != http.StatusCreated || r.run(t).ID == run.ID {
		t.Errorf("other tenant's key: %d %s", r.status, r.body)
	}
	// No key: no deduplication.
	a, b := h.create(tokAlphaRunner, req), h.create(tokAlphaRunner, req)
	if a.ID == b.ID {
		t.Error("two creates without a key gave one run")
	}

	for _, bad := range []struct{ name, value string }{
		{"empty quoted", `""`},
		{"unclosed", `"abc`},
		{"after closing quote", `"abc"x`},
		{"bad escape", `"a\nb"`},
		{"space in bare token", `a b`},
		{"comma", `a,b`},
		{"non-ascii", "\"caf\u00e9\""},
		{"too long", `"` + strings.Repeat("k", 256) + `"`},
	} {
		t.Run(bad.name, func(t *testing.T) {
			r := h.do("POST", "/v1/runs", tokAlphaRunner, req, api.HeaderIdempotencyKey, bad.value)
			if r.status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", r.status, r.body)
			}
			if p := r.problem(t); !strings.Contains(p.Detail, "Idempotency-Key") {
				t.Errorf("detail %q", p.Detail)
			}
		})
	}
	t.Run("two headers", func(t *testing.T) {
		r := h.do("POST", "/v1/runs", tokAlphaRunner, req, api.HeaderIdempotencyKey, `"a"`, api.HeaderIdempotencyKey, `"b"`)
		if r.status != http.StatusBadRequest {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
	})
	if v, _ := h.metric(`zof_idempotent_replays_total{tenant="alpha"}`); v != "3" {
		t.Errorf("replays metric = %q, want 3", v)
	}
}

func TestConcurrentIdenticalCreatesMakeOneRun(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	req := runReq("shop", "staging", []api.Step{httpStep("a")})
	const n = 200
	var wg sync.WaitGroup
	type result struct {
		status int
		id     string
		err    error
	}
	results := make([]result, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := h.try("POST", "/v1/runs", tokAlphaRunner, req, api.HeaderIdempotencyKey, `"same-key"`)
			if err != nil {
				results[i] = result{err: err}
				return
			}
			var run api.Run
			_ = json.Unmarshal(r.body, &run)
			results[i] = result{status: r.status, id: run.ID}
		}()
	}
	wg.Wait()
	created, replayed := 0, 0
	ids := map[string]bool{}
	for _, r := range results {
		if r.err != nil {
			t.Fatal(r.err)
		}
		switch r.status {
		case http.StatusCreated:
			created++
		case http.StatusOK:
			replayed++
		default:
			t.Fatalf("status %d", r.status)
		}
		ids[r.id] = true
	}
	if created != 1 || replayed != n-1 || len(ids) != 1 {
		t.Fatalf("created %d, replayed %d, distinct runs %d; want 1, %d, 1", created, replayed, len(ids), n-1)
	}
	var list api.RunList
	_ = json.Unmarshal(h.do("GET", "/v1/runs", tokAlphaRunner, nil).body, &list)
	if len(list.Runs) != 1 {
		t.Errorf("the tenant has %d runs, want 1", len(list.Runs))
	}
}

func TestBodyErrors(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	good, _ := json.Marshal(runReq("shop", "staging", []api.Step{httpStep("a")}))
	huge := `{"project":"` + strings.Repeat("x", 10<<20) + `"}`
	tests := []struct {
		name       string
		body       string
		hdr        []string
		want       int
		wantDetail string
	}{
		{"10 MB body", huge, nil, 413, "max_body"},
		{"unknown field", `{"project":"shop","colour":"red"}`, nil, 400, `"colour"`},
		{"nested unknown field", `{"project":"shop","environment":{"name":"s","exclusiv":true}}`, nil, 400, `"exclusiv"`},
		{"malformed", `{"project": "shop",`, nil, 400, "cut off"},
		{"syntax error", "{\"project\": \"shop\"\n  \"x\": 1}", nil, 400, "line 2"},
		{"trailing data", string(good) + ` {}`, nil, 400, "after the JSON value"},
		{"wrong type", `{"project": 42}`, nil, 400, "project"},
		{"empty body", ``, nil, 400, "JSON body"},
		{"wrong content type", string(good), []string{"Content-Type", "text/plain"}, 415, "application/json"},
		{"no content type", string(good), []string{"Content-Type", ""}, 415, "application/json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.do("POST", "/v1/runs", tokAlphaRunner, tt.body, tt.hdr...)
			if r.status != tt.want {
				t.Fatalf("status %d, want %d: %.300s", r.status, tt.want, r.body)
			}
			if p := r.problem(t); !strings.Contains(p.Detail, tt.wantDetail) {
				t.Errorf("detail %q does not contain %q", p.Detail, tt.wantDetail)
			}
		})
	}
	t.Run("10 MB chunked body", func(t *testing.T) {
		// No Content-Length: the limit must hold while reading.
		req, _ := http.NewRequest("POST", h.url+"/v1/runs", struct{ *strings.Reader }{strings.NewReader(huge)})
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tokAlphaRunner)
		res, err := h.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d", res.StatusCode)
		}
	})
	t.Run("cancel body strict too", func(t *testing.T) {
		run := h.create(tokAlphaRunner, runReq("shop", "staging", []api.Step{httpStep("wait:body")}))
		defer h.steps.open("body")
		r := h.do("POST", "/v1/runs/"+run.ID+"/cancel", tokAlphaRunner, `{"reason":"x","force":true}`)
		if r.status != 400 || !strings.Contains(r.problem(t).Detail, `"force"`) {
			t.Fatalf("status %d %s", r.status, r.body)
		}
	})
}

func TestSubmissionSafety(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	runStep := api.Step{Name: "migrate", Run: &api.Command{Command: "make migrate"}}
	hostVar := api.Step{Name: "v", HTTP: &api.HTTPRequest{URL: "http://${vars.host}/x"}}
	tests := []struct {
		name  string
		token string
		req   func() *api.RunRequest
		want  []string // one substring per expected refusal, in order
	}{
		{"run step refused", tokAlphaRunner, func() *api.RunRequest {
			return runReq("shop", "staging", []api.Step{httpStep("a"), runStep}, []api.Step{runStep})
		}, []string{"case-1 step 2 (migrate) is a run: step", "case-2 step 1 (migrate) is a run: step"}},
		{"serve refused", tokAlphaRunner, func() *api.RunRequest {
			r := runReq("shop", "staging", []api.Step{httpStep("a")})
			r.Environment.Serve = &api.Serve{Command: "./server"}
			return r
		}, []string{"has a serve command"}},
		{"environment url not allowed", tokAlphaRunner, func() *api.RunRequest {
			r := runReq("shop", "staging", []api.Step{httpStep("a")})
			r.Environment.URL = "http://10.0.0.5:8080"
			return r
		}, []string{"environment staging url: target http://10.0.0.5:8080 is not allowed", "case-1 step 1 (a): target http://10.0.0.5:8080/health is not allowed"}},
		{"step url not allowed", tokAlphaRunner, func() *api.RunRequest {
			return runReq("shop", "staging", []api.Step{{Name: "meta", HTTP: &api.HTTPRequest{URL: "http://169.254.169.254/latest/meta-data"}}})
		}, []string{"169.254.169.254"}},
		{"absolute path is a url", tokAlphaRunner, func() *api.RunRequest {
			return runReq("shop", "staging", []api.Step{{Name: "p", HTTP: &api.HTTPRequest{Path: "https://evil.example.com/x"}}})
		}, []string{"evil.example.com"}},
		{"https path glob outside", tokAlphaRunner, func() *api.RunRequest {
			return runReq("shop", "staging", []api.Step{{Name: "p", HTTP: &api.HTTPRequest{URL: "https://api.staging.example.com/admin/users"}}})
		}, []string{"api.staging.example.com/admin/users is not allowed"}},
		{"dot segments do not escape the path glob", tokAlphaRunner, func() *api.RunRequest {
			return runReq("shop", "staging", []api.Step{{Name: "p", HTTP: &api.HTTPRequest{URL: "https://api.staging.example.com/api/../admin"}}})
		}, []string{"is not allowed"}},
		{"capture in host", tokAlphaRunner, func() *api.RunRequest {
			return runReq("shop", "staging", []api.Step{{Name: "c", HTTP: &api.HTTPRequest{URL: "http://${capture.host}/x"}}})
		}, []string{"substitution in its scheme, host or port"}},
		{"path starting with a capture", tokAlphaRunner, func() *api.RunRequest {
			return runReq("shop", "staging", []api.Step{{Name: "c", HTTP: &api.HTTPRequest{Path: "${capture.next}"}}})
		}, []string{"could make it a full URL"}},
		{"vars resolved per variant", tokAlphaRunner, func() *api.RunRequest {
			r := runReq("shop", "staging", []api.Step{hostVar})
			r.Cases[0].Variants = []api.Variant{{Name: "local", Vars: map[string]string{"host": "127.0.0.1:8080"}}, {Name: "prod", Vars: map[string]string{"host": "prod.example.com"}}}
			return r
		}, []string{"case-1 variant prod step 1 (v): target http://prod.example.com/x is not allowed"}},
		{"no cases", tokAlphaRunner, func() *api.RunRequest { return runReq("shop", "staging") }, []string{"no cases"}},
		{"engine validation listed too", tokAlphaRunner, func() *api.RunRequest {
			return runReq("", "staging", []api.Step{{Name: "both"}})
		}, []string{"exactly one of http or run", "project is empty"}},
		// Allowed: nothing refused.
		{"capture in path is fine", tokAlphaRunner, func() *api.RunRequest {
			return runReq("shop", "staging", []api.Step{{Name: "c", HTTP: &api.HTTPRequest{Path: "/users/${capture.id}"}}})
		}, nil},
		{"allowed https target", tokAlphaRunner, func() *api.RunRequest {
			return runReq("shop", "staging", []api.Step{{Name: "p", HTTP: &api.HTTPRequest{URL: "https://api.staging.example.com/api/v1/users"}}})
		}, nil},
		{"commands allowed for the cmd tenant", tokCmdRunner, func() *api.RunRequest {
			return runReq("shop", "staging", []api.Step{runStep})
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.do("POST", "/v1/runs", tt.token, tt.req())
			if tt.want == nil {
				if r.status != http.StatusCreated {
					t.Fatalf("status %d, want 201: %s", r.status, r.body)
				}
				return
			}
			if r.status != http.StatusUnprocessableEntity {
				t.Fatalf("status %d, want 422: %s", r.status, r.body)
			}
			p := r.problem(t)
			if len(p.Errors) != len(tt.want) {
				t.Fatalf("errors %q, want %d of them", p.Errors, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.Contains(p.Errors[i], w) {
					t.Errorf("error %d = %q, want it to contain %q", i, p.Errors[i], w)
				}
			}
		})
	}
	// Nothing refused was created.
	var list api.RunList
	_ = json.Unmarshal(h.do("GET", "/v1/runs", tokAlphaRunner, nil).body, &list)
	if len(list.Runs) != 2 {
		t.Errorf("alpha has %d runs, want the 2 allowed ones", len(list.Runs))
	}
}

// TestQueueFIFOWithPositionsCountingDown runs on the injected clock: the
// engine's time stands still between the steps the test takes, so start
// times and the queue's once-a-second position updates (deep positions) do
// not depend on how fast a loaded machine schedules goroutines.
func TestQueueFIFOWithPositionsCountingDown(t *testing.T) {
	base := time.Date(2025, 5, 1, 12, 0, 0, 0, time.UTC)
	clock := &testClock{t: base}
	h := newHarness(t, harnessOpts{now: clock.Now})
	var runs []*api.Run
	for i := range 5 {
		runs = append(runs, h.create(tokAlphaRunner, runReq("shop", "staging", []api.Step{httpStep(fmt.Sprintf("wait:%d", i))})))
	}
	h.waitStatus(tokAlphaRunner, runs[0].ID, api.StatusRunning)
	h.waitStatus(tokAlphaRunner, runs[1].ID, api.StatusRunning)
	streams := make([]*sseConn, 5)
	for i := 2; i < 5; i++ {
		h.waitStatus(tokAlphaRunner, runs[i].ID, api.StatusQueued)
		streams[i], _ = h.stream(tokAlphaViewer, runs[i].ID, "")
	}
	// Finish runs one at a time, a minute apart on the engine's clock; each
	// frees the one slot for the oldest queued run, and only for it.
	for i := range 3 {
		clock.Advance(time.Minute)
		h.steps.open(fmt.Sprint(i))
		h.waitStatus(tokAlphaRunner, runs[i+2].ID, api.StatusRunning)
		for _, later := range runs[i+3:] {
			if st := h.do("GET", "/v1/runs/"+later.ID, tokAlphaRunner, nil).run(t).Status; st != api.StatusQueued {
				t.Fatalf("after run %d finished, run %s is %s: a later run overtook the queue", i, later.ID, st)
			}
		}
	}
	h.steps.open("3")
	h.steps.open("4")
	for i := 2; i < 5; i++ {
		evs, end := streams[i].events(t)
		if end.Status != api.StatusPassed || end.RunID != runs[i].ID || end.LastSeq != evs[len(evs)-1].Seq {
			t.Errorf("end %+v", end)
		}
		var positions []int
		for _, ev := range evs {
			if ev.Type == api.EventRunSubstate && ev.Substate == api.SubstateQueuePosition {
				positions = append(positions, ev.Position)
			}
		}
		// Run i was created with i-2 runs queued ahead of it.
		var want []int
		for p := i - 1; p >= 1; p-- {
			want = append(want, p)
		}
		if diff := cmp.Diff(want, positions); diff != "" {
			t.Errorf("run %d positions (-want +got):\n%s", i, diff)
		}
	}
	// FIFO: each queued run started when the run ahead of it freed the slot,
	// on the clock the test set.
	for i, r := range runs {
		want := base
		if i >= 2 {
			want = base.Add(time.Duration(i-1) * time.Minute)
		}
		if got := h.do("GET", "/v1/runs/"+r.ID, tokAlphaRunner, nil).run(t).StartedAt; !got.Equal(want) {
			t.Errorf("run %d started at %s, want %s", i, got.Format(time.TimeOnly), want.Format(time.TimeOnly))
		}
	}
}

func TestExclusiveEnvironmentBlocks(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	mk := func(step string) *api.RunRequest {
		r := runReq("shop", "staging", []api.Step{httpStep(step)})
		r.Environment.Exclusive = true
		r.BlockAfter = api.Duration(150 * time.Millisecond)
		return r
	}
	first := h.create(tokAlphaRunner, mk("wait:holder"))
	h.waitStatus(tokAlphaRunner, first.ID, api.StatusRunning)
	second := h.create(tokAlphaRunner, mk("a"))
	st, _ := h.stream(tokAlphaRunner, second.ID, "")
	evs, end := st.events(t)
	if end.Status != api.StatusBlocked {
		t.Fatalf("second run ended %s, want blocked", end.Status)
	}
	last := evs[len(evs)-1]
	if last.Type != api.EventRunStatus || !strings.Contains(last.Reason, first.ID) {
		t.Errorf("blocked reason %q does not name %s", last.Reason, first.ID)
	}
	got := h.do("GET", "/v1/runs/"+second.ID, tokAlphaRunner, nil).run(t)
	if got.Status != api.StatusBlocked || !strings.Contains(got.Reason, first.ID) || got.Status.Display() != "Failed (Blocked)" {
		t.Errorf("run %s %q", got.Status, got.Reason)
	}
	h.steps.open("holder")
}

func TestSupersede(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	mk := func(step string) *api.RunRequest {
		r := runReq("shop", "staging", []api.Step{httpStep(step)})
		r.ConcurrencyGroup = "shop/staging/pr-7"
		r.Supersede = true
		return r
	}
	running := h.create(tokAlphaRunner, mk("wait:old"))
	h.waitStatus(tokAlphaRunner, running.ID, api.StatusRunning)
	newer := h.create(tokAlphaRunner, mk("wait:new"))
	old := h.waitStatus(tokAlphaRunner, running.ID, api.StatusCancelled)
	if old.Reason != "superseded by "+newer.ID {
		t.Errorf("reason %q", old.Reason)
	}
	// A queued one is superseded too.
	newest := h.create(tokAlphaRunner, mk("a"))
	if r := h.waitStatus(tokAlphaRunner, newer.ID, api.StatusCancelled); r.Reason != "superseded by "+newest.ID {
		t.Errorf("reason %q", r.Reason)
	}
	h.waitStatus(tokAlphaRunner, newest.ID, api.StatusPassed)
}

func TestCancelAndRerun(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	run := h.create(tokAlphaRunner, runReq("shop", "staging", []api.Step{httpStep("wait:c")}))
	h.waitStatus(tokAlphaRunner, run.ID, api.StatusRunning)

	r := h.do("POST", "/v1/runs/"+run.ID+"/rerun", tokAlphaRunner, nil)
	if r.status != http.StatusConflict || r.problem(t).RunID != run.ID || !strings.Contains(r.problem(t).Detail, "running") {
		t.Fatalf("rerun of a running run: %d %s", r.status, r.body)
	}
	r = h.do("POST", "/v1/runs/"+run.ID+"/cancel", tokAlphaRunner, api.CancelRequest{Reason: "wrong branch"})
	if r.status != http.StatusAccepted || r.run(t).ID != run.ID {
		t.Fatalf("cancel: %d %s", r.status, r.body)
	}
	done := h.waitStatus(tokAlphaRunner, run.ID, api.StatusCancelled)
	if done.Reason != "cancelled by ci: wrong branch" {
		t.Errorf("reason %q", done.Reason)
	}
	r = h.do("POST", "/v1/runs/"+run.ID+"/cancel", tokAlphaRunner, nil)
	if r.status != http.StatusConflict {
		t.Fatalf("second cancel: %d %s", r.status, r.body)
	}
	if p := r.problem(t); p.RunID != run.ID || !strings.Contains(p.Detail, "cancelled") || !strings.Contains(p.Detail, run.ID) {
		t.Errorf("409 problem %+v", p)
	}
	r = h.do("POST", "/v1/runs/"+run.ID+"/rerun", tokAlphaAdmin, nil)
	if r.status != http.StatusCreated {
		t.Fatalf("rerun: %d %s", r.status, r.body)
	}
	again := r.run(t)
	if again.RerunOf != run.ID || again.ID == run.ID || r.header.Get("Location") != "/v1/runs/"+again.ID {
		t.Errorf("rerun %+v location %q", again, r.header.Get("Location"))
	}
	h.steps.open("c")
	h.waitStatus(tokAlphaRunner, again.ID, api.StatusPassed)

	// Queued runs are cancelled at once.
	h2 := h.create(tokBetaRunner, runReq("shop", "staging", []api.Step{httpStep("wait:b1")}))
	q := h.create(tokBetaRunner, runReq("shop", "staging", []api.Step{httpStep("a")}))
	h.waitStatus(tokBetaRunner, q.ID, api.StatusQueued)
	if r := h.do("POST", "/v1/runs/"+q.ID+"/cancel", tokBetaRunner, nil); r.status != http.StatusAccepted {
		t.Fatalf("cancel queued: %d %s", r.status, r.body)
	}
	h.waitStatus(tokBetaRunner, q.ID, api.StatusCancelled)
	h.steps.open("b1")
	h.waitStatus(tokBetaRunner, h2.ID, api.StatusPassed)
}

func TestListFiltersAndPaging(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	var ids []string
	for i := range 5 {
		project := "shop"
		if i%2 == 1 {
			project = "search"
		}
		step := "a"
		if i >= 3 {
			step = fmt.Sprintf("wait:l%d", i) // runs 3 and 4 keep running
		}
		ids = append(ids, h.create(tokAlphaRunner, runReq(project, "staging", []api.Step{httpStep(step)})).ID)
	}
	h.waitStatus(tokAlphaRunner, ids[2], api.StatusPassed)
	h.waitStatus(tokAlphaRunner, ids[4], api.StatusRunning)
	h.waitStatus(tokAlphaRunner, ids[3], api.StatusRunning)
	// A queued one, for the status filter.
	queued := h.create(tokAlphaRunner, runReq("shop", "staging", []api.Step{httpStep("a")}))
	h.waitStatus(tokAlphaRunner, queued.ID, api.StatusQueued)
	h.create(tokBetaRunner, runReq("shop", "staging", []api.Step{httpStep("a")})) // another tenant's: never listed

	list := func(query string) (api.RunList, resp) {
		r := h.do("GET", "/v1/runs"+query, tokAlphaViewer, nil)
		var l api.RunList
		if r.status == http.StatusOK {
			if err := json.Unmarshal(r.body, &l); err != nil {
				t.Fatal(err)
			}
		}
		return l, r
	}
	idsOf := func(l api.RunList) []string {
		var out []string
		for _, r := range l.Runs {
			out = append(out, r.ID)
		}
		return out
	}
	tests := []struct {
		query string
		want  []string
	}{
		{"", []string{queued.ID, ids[4], ids[3], ids[2], ids[1], ids[0]}},
		{"?status=queued&status=initial", []string{queued.ID}},
		{"?status=running,queued", []string{queued.ID, ids[4], ids[3]}},
		{"?project=search", []string{ids[3], ids[1]}},
		{"?project=shop&status=passed", []string{ids[2], ids[0]}},
		{"?environment=prod", nil},
	}
	for _, tt := range tests {
		l, r := list(tt.query)
		if r.status != 200 {
			t.Fatalf("%s: %d %s", tt.query, r.status, r.body)
		}
		if diff := cmp.Diff(tt.want, idsOf(l)); diff != "" {
			t.Errorf("GET /v1/runs%s (-want +got):\n%s", tt.query, diff)
		}
		if l.Runs == nil {
			t.Errorf("%s: runs is null, want []", tt.query)
		}
	}
	// Paging: newest first, every run once.
	var paged []string
	cursor := ""
	for pages := 0; ; pages++ {
		q := "?limit=2"
		if cursor != "" {
			q += "&cursor=" + cursor
		}
		l, r := list(q)
		if r.status != 200 || pages > 5 {
			t.Fatalf("page %d: %d %s", pages, r.status, r.body)
		}
		paged = append(paged, idsOf(l)...)
		if cursor = l.Next; cursor == "" {
			break
		}
	}
	if diff := cmp.Diff([]string{queued.ID, ids[4], ids[3], ids[2], ids[1], ids[0]}, paged); diff != "" {
		t.Errorf("paged (-want +got):\n%s", diff)
	}
	for _, bad := range []string{"?stauts=queued", "?status=done", "?limit=0", "?limit=501", "?limit=x", "?cursor=garbage", "?project=a&project=b"} {
		if _, r := list(bad); r.status != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", bad, r.status)
		} else {
			r.problem(t)
		}
	}
	h.steps.open("l3")
	h.steps.open("l4")
}

func TestAuditLog(t *testing.T) {
	now := time.Date(2025, 5, 1, 12, 0, 0, 0, time.UTC)
	h := newHarness(t, harnessOpts{configure: func(o *server.Options) { o.Now = func() time.Time { return now } }})
	req := runReq("shop", "staging", []api.Step{httpStep("a")})
	run := h.create(tokAlphaRunner, req, api.HeaderIdempotencyKey, `"k1"`)
	h.do("POST", "/v1/runs", tokAlphaRunner, req, api.HeaderIdempotencyKey, `"k1"`)
	h.do("POST", "/v1/runs", tokAlphaViewer, req)
	h.waitStatus(tokAlphaRunner, run.ID, api.StatusPassed)
	h.do("POST", "/v1/runs/"+run.ID+"/cancel", tokAlphaRunner, nil)
	rerun := h.do("POST", "/v1/runs/"+run.ID+"/rerun", tokAlphaAdmin, nil).run(t)
	h.do("GET", "/v1/runs/"+run.ID, tokAlphaRunner, nil) // reads are not audited

	type line struct{ Principal, Tenant, Role, Action, RunID, Key, Result string }
	var got []line
	for _, e := range h.auditEntries() {
		if !e.Time.Equal(now) {
			t.Errorf("time %v", e.Time)
		}
		got = append(got, line{e.Principal, e.Tenant, e.Role, e.Action, e.RunID, e.IdempotencyKey, fmt.Sprintf("%d %s", e.Status, e.Result)})
	}
	want := []line{
		{"ci", "alpha", "runner", "create", run.ID, "k1", "201 created"},
		{"ci", "alpha", "runner", "replay", run.ID, "k1", "200 replayed"},
		{"dashboard", "alpha", "viewer", "create", "", "", "403 role too low"},
		{"ci", "alpha", "runner", "cancel", run.ID, "", "409 run state conflict"},
		{"ops", "alpha", "admin", "rerun", rerun.ID, "", "201 rerun of " + run.ID},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}
}
