package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/engine/memstore"
	"github.com/zof-ai/zof-ci/internal/server"
	"github.com/zof-ai/zof-ci/internal/server/config"
	"github.com/zof-ai/zof-ci/internal/trigger"
)

// TestTriggersEndpoints: GET /v1/triggers is tenant-scoped, filters, and
// the webhook routes answer 404 until a receiver is mounted.
func TestTriggersEndpoints(t *testing.T) {
	cfg, err := config.Parse([]byte(testConfig), "server.yaml", lookup)
	if err != nil {
		t.Fatal(err)
	}
	store := memstore.New()
	eng, err := engine.New(engine.Config{Store: store, Steps: newGatedSteps(), TenantLimit: cfg.TenantLimit})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Options{Config: cfg, Engine: eng, Triggers: store})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	now := time.Now()
	for i, tenant := range []string{"alpha", "alpha", "beta"} {
		r := trigger.New(tenant, api.TriggerWebhook, trigger.SourceGitHub, "d"+string(rune('0'+i)), now)
		if i == 1 {
			r.State, r.Reason = api.TriggerFailed, "suite invalid"
		}
		if _, err := store.CreateTrigger(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	get := func(path, token string) (int, []byte) {
		req, _ := http.NewRequest("GET", hs.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b json.RawMessage
		_ = json.NewDecoder(resp.Body).Decode(&b)
		return resp.StatusCode, b
	}
	list := func(path string) api.TriggerList {
		code, b := get(path, tokAlphaViewer)
		if code != 200 {
			t.Fatalf("%s: %d %s", path, code, b)
		}
		var l api.TriggerList
		if err := json.Unmarshal(b, &l); err != nil {
			t.Fatal(err)
		}
		return l
	}
	if l := list("/v1/triggers"); len(l.Triggers) != 2 || l.Triggers[0].Key != "d1" {
		t.Errorf("alpha sees %+v", l.Triggers)
	}
	failed := list("/v1/triggers?state=failed")
	if len(failed.Triggers) != 1 || failed.Triggers[0].Reason != "suite invalid" {
		t.Errorf("failed %+v", failed.Triggers)
	}
	if l := list("/v1/triggers?limit=1"); len(l.Triggers) != 1 || l.Next == "" {
		t.Errorf("paging %+v", l)
	}
	if code, _ := get("/v1/triggers/"+failed.Triggers[0].ID, tokAlphaViewer); code != 200 {
		t.Errorf("get own trigger: %d", code)
	}
	if code, _ := get("/v1/triggers/"+failed.Triggers[0].ID, tokBetaRunner); code != 404 {
		t.Errorf("another tenant's trigger: %d, want 404", code)
	}
	for path, want := range map[string]int{"/v1/triggers?state=bogus": 400, "/v1/triggers?sort=x": 400, "/v1/triggers?limit=0": 400, "/v1/triggers?cursor=zz": 400} {
		if code, _ := get(path, tokAlphaViewer); code != want {
			t.Errorf("%s: %d, want %d", path, code, want)
		}
	}
	if code, _ := get("/v1/triggers", ""); code != 401 {
		t.Errorf("no token: %d", code)
	}
	resp, err := http.Post(hs.URL+"/v1/webhooks/github", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("webhooks without a receiver: %d", resp.StatusCode)
	}
}

// fakeHooks records which webhook endpoint was called.
type fakeHooks struct{ called []string }

func (f *fakeHooks) ServeGitHub(w http.ResponseWriter, _ *http.Request) {
	f.called = append(f.called, "github")
	w.WriteHeader(http.StatusAccepted)
}

func (f *fakeHooks) ServeGitLab(w http.ResponseWriter, _ *http.Request) {
	f.called = append(f.called, "gitlab")
	w.WriteHeader(http.StatusAccepted)
}

var _ server.Webhooks = (*fakeHooks)(nil)

// TestWebhooksComposed: Options.Webhooks builds the receiver with the server
// it creates runs through, and the server mounts it; a receiver that cannot be
// built fails New.
func TestWebhooksComposed(t *testing.T) {
	cfg, err := config.Parse([]byte(testConfig), "server.yaml", lookup)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(engine.Config{Store: memstore.New(), Steps: newGatedSteps(), TenantLimit: cfg.TenantLimit})
	if err != nil {
		t.Fatal(err)
	}
	hooks := &fakeHooks{}
	var built *server.Server
	srv, err := server.New(server.Options{Config: cfg, Engine: eng, Webhooks: func(s *server.Server) (server.Webhooks, error) {
		built = s
		return hooks, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	if built != srv {
		t.Errorf("the receiver was built with %p, not the server %p", built, srv)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	for _, p := range []string{"github", "gitlab"} {
		resp, err := http.Post(hs.URL+"/v1/webhooks/"+p, "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Errorf("%s: %d, want the receiver's 202", p, resp.StatusCode)
		}
	}
	if strings.Join(hooks.called, ",") != "github,gitlab" {
		t.Errorf("receiver calls %v", hooks.called)
	}

	_, err = server.New(server.Options{Config: cfg, Engine: eng, Webhooks: func(*server.Server) (server.Webhooks, error) {
		return nil, errors.New("no secret for acme/shop")
	}})
	if err == nil || !strings.Contains(err.Error(), "no secret for acme/shop") {
		t.Errorf("New with a failing receiver: %v", err)
	}
}
