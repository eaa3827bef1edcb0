package server_test

import (
	"bytes"
	"io"
	"net/http"
	"regexp"
	"slices"
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
	waitUntil(t, "queue depth 1", func() bool { v, _ := h.metric(`zof_queue_depth{tenant="alpha"}`); return v == "1" })
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
		waitUntil(t, sample+" = "+v, func() bool { got, _ := h.metric(sample); return got == v })
	}
	body := h.metrics()
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "zof_http_request_duration_seconds_bucket"} {
		if !bytes.Contains(body, []byte(name)) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
}

// TestMetricsExposure: metrics name every tenant, so the API listener
// serves them only to the bearer of metrics_token; the metrics listener
// serves them (with the token too, when one is configured).
func TestMetricsExposure(t *testing.T) {
	open := newHarness(t, harnessOpts{})
	guarded := newHarness(t, harnessOpts{config: "metrics_token: {env: METRICS}\n" + testConfig})
	tests := []struct {
		name   string
		h      *harness
		url    func(*harness) string
		path   string
		token  string
		status int
	}{
		{"API listener, anonymous, no metrics token set", open, apiURL, "/metrics", "", http.StatusNotFound},
		{"API listener, a tenant admin, no metrics token set", open, apiURL, "/metrics", tokAlphaAdmin, http.StatusNotFound},
		{"metrics listener, anonymous, no metrics token set", open, metricsURL, "/metrics", "", http.StatusOK},
		{"metrics listener, another path", open, metricsURL, "/v1/runs", "", http.StatusNotFound},
		{"API listener, anonymous", guarded, apiURL, "/metrics", "", http.StatusUnauthorized},
		{"API listener, a tenant admin", guarded, apiURL, "/metrics", tokAlphaAdmin, http.StatusUnauthorized},
		{"API listener, a wrong token", guarded, apiURL, "/metrics", tokMetrics + "x", http.StatusUnauthorized},
		{"API listener, the metrics token", guarded, apiURL, "/metrics", tokMetrics, http.StatusOK},
		{"metrics listener, anonymous", guarded, metricsURL, "/metrics", "", http.StatusUnauthorized},
		{"metrics listener, the metrics token", guarded, metricsURL, "/metrics", tokMetrics, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", tt.url(tt.h)+tt.path, nil)
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			res, err := tt.h.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tt.status, body)
			}
			if leaks := bytes.Contains(body, []byte(`tenant="alpha"`)); leaks != (tt.status == http.StatusOK) {
				t.Errorf("names the tenants: %v, want %v:\n%.300s", leaks, tt.status == http.StatusOK, body)
			}
			if bytes.Contains(body, []byte(tokMetrics)) {
				t.Error("the answer prints the metrics token")
			}
		})
	}
}

func apiURL(h *harness) string     { return h.url }
func metricsURL(h *harness) string { return h.metricsURL }

// TestMetricBucketLabelsAreExact: every histogram bucket prints as the
// decimal it was configured as, never a float artefact such as
// le="0.30000000000000004".
func TestMetricBucketLabelsAreExact(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	run := h.create(tokAlphaRunner, manySteps(1))
	h.waitStatus(tokAlphaRunner, run.ID, api.StatusPassed)
	le := regexp.MustCompile(`^(\w+)_bucket\{.*le="([^"]+)"`)
	buckets := map[string][]string{}
	for _, line := range strings.Split(string(h.metrics()), "\n") {
		m := le.FindStringSubmatch(line)
		if m == nil || m[2] == "+Inf" {
			continue
		}
		if len(strings.TrimLeft(strings.NewReplacer(".", "", "e", "", "-", "", "+", "").Replace(m[2]), "0")) > 6 {
			t.Errorf("bucket label le=%q is not a short exact decimal: %s", m[2], line)
		}
		if !slices.Contains(buckets[m[1]], m[2]) {
			buckets[m[1]] = append(buckets[m[1]], m[2])
		}
	}
	want := map[string][]string{
		server.MetricQueueSeconds:   {"0.1", "0.3", "1", "3", "10", "30", "60", "180", "600", "1800", "3600"},
		server.MetricVerdictSeconds: {"1", "2.5", "5", "10", "25", "60", "150", "300", "600", "1500", "3600"},
	}
	for name, w := range want {
		if diff := cmp.Diff(w, buckets[name]); diff != "" {
			t.Errorf("%s buckets (-want +got):\n%s", name, diff)
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
	waitUntil(t, "stuck gauge", func() bool { v, _ := h.metric(`zof_stuck_runs{tenant="alpha"}`); return v == "1" })
	time.Sleep(50 * time.Millisecond) // more checks: still one warning
	if n := strings.Count(logs.String(), "stuck run"); n != 1 || !strings.Contains(logs.String(), run.ID) {
		t.Errorf("%d warnings:\n%s", n, logs.String())
	}
	h.startEngine()
	waitUntil(t, "stuck gauge back to 0", func() bool { v, _ := h.metric(`zof_stuck_runs{tenant="alpha"}`); return v == "0" })
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
