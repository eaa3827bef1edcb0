package server_test

import (
	"bytes"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/server"
	"go.yaml.in/yaml/v3"
)

func TestMetrics(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	done := h.create(tokAlphaRunner, manySteps(1))
	h.waitStatus(tokAlphaRunner, done.ID, api.StatusPassed)
	for i := range 3 { // two running, one queued
		h.create(tokAlphaRunner, manySteps(1, "wait:m"+string(rune('a'+i))))
	}
	defer func() {
		for i := range 3 {
			h.steps.open("m" + string(rune('a'+i)))
		}
	}()
	eventually(t, "queue depth 1", func() bool { v, _ := h.metric(`zof_queue_depth{tenant="alpha"}`); return v == "1" })
	want := map[string]string{
		`zof_runs{status="running",tenant="alpha"}`:                 "2",
		`zof_runs{status="queued",tenant="alpha"}`:                  "1",
		`zof_runs{status="initial",tenant="beta"}`:                  "0",
		`zof_runs_created_total{tenant="alpha"}`:                    "4",
		`zof_runs_finished_total{status="passed",tenant="alpha"}`:   "1",
		`zof_runs_finished_total{status="blocked",tenant="beta"}`:   "0",
		`zof_run_queue_seconds_count{tenant="alpha"}`:               "3", // done and the two running
		`zof_run_verdict_seconds_count{tenant="alpha"}`:             "1",
		`zof_sse_clients{tenant="alpha"}`:                           "0",
		`zof_idempotent_replays_total{tenant="alpha"}`:              "0",
		`zof_stuck_runs{tenant="alpha"}`:                            "0",
		`zof_http_requests_total{code="201",route="POST /v1/runs"}`: "4",
	}
	for sample, v := range want {
		eventually(t, sample+" = "+v, func() bool { got, _ := h.metric(sample); return got == v })
	}
	r := h.do("GET", "/metrics", "", nil)
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "zof_http_request_duration_seconds_bucket"} {
		if !bytes.Contains(r.body, []byte(name)) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
}

// TestStuckRuns: a run that stays initial past 2 minutes (here: the engine
// is not running and the clock jumps) is counted and logged once it is seen
// on two checks in a row.
func TestStuckRuns(t *testing.T) {
	clock := &testClock{t: time.Date(2025, 5, 1, 12, 0, 0, 0, time.UTC)}
	logs := &syncBuffer{}
	h := newHarness(t, harnessOpts{noEngine: true, now: clock.Now, logs: logs,
		configure: func(o *server.Options) { o.StuckInterval = 10 * time.Millisecond }})
	run := h.create(tokAlphaRunner, manySteps(1))
	clock.Advance(3 * time.Minute)
	eventually(t, "stuck gauge", func() bool { v, _ := h.metric(`zof_stuck_runs{tenant="alpha"}`); return v == "1" })
	time.Sleep(50 * time.Millisecond) // more checks: still one warning
	if n := strings.Count(logs.String(), "stuck run"); n != 1 || !strings.Contains(logs.String(), run.ID) {
		t.Errorf("%d warnings:\n%s", n, logs.String())
	}
	h.startEngine()
	eventually(t, "stuck gauge back to 0", func() bool { v, _ := h.metric(`zof_stuck_runs{tenant="alpha"}`); return v == "0" })
}

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestOpenAPIMatchesRouter: every route the server answers is in openapi.yaml
// and every operation of openapi.yaml is answered by that route, both ways.
func TestOpenAPIMatchesRouter(t *testing.T) {
	var doc struct {
		OpenAPI string                               `yaml:"openapi"`
		Paths   map[string]map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(server.OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method, op := range ops {
			if method == "parameters" {
				continue
			}
			documented = append(documented, strings.ToUpper(method)+" "+path)
			if _, ok := op["responses"]; !ok {
				t.Errorf("%s %s has no responses", method, path)
			}
		}
	}
	routes := server.Routes()
	sort.Strings(documented)
	sort.Strings(routes)
	if diff := cmp.Diff(routes, documented); diff != "" {
		t.Errorf("router vs openapi.yaml (-router +openapi):\n%s", diff)
	}
	// The table is what the mux serves: each documented operation resolves
	// to its own pattern on the real handler.
	h := newHarness(t, harnessOpts{})
	srv := h.srv
	for _, op := range documented {
		method, path, _ := strings.Cut(op, " ")
		concrete := strings.ReplaceAll(path, "{id}", "run_x")
		req, _ := http.NewRequest(method, "http://zof.test"+concrete, nil)
		if got := srv.Pattern(req); got != op {
			t.Errorf("%s %s is served by %q, want %q", method, concrete, got, op)
		}
	}
}
