package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/server/config"
)

// Metric names (api.md, GET /metrics). Every metric is labelled by tenant.
const (
	MetricRuns            = "zof_runs"                          // gauge: non-terminal runs by status, read at scrape time
	MetricQueueDepth      = "zof_queue_depth"                   // gauge: initial + queued runs
	MetricRunsCreated     = "zof_runs_created_total"            // counter: runs created (reruns included)
	MetricRunsFinished    = "zof_runs_finished_total"           // counter: runs that reached a terminal status, by status
	MetricQueueSeconds    = "zof_run_queue_seconds"             // histogram: created → running
	MetricVerdictSeconds  = "zof_run_verdict_seconds"           // histogram: created → terminal
	MetricSSEClients      = "zof_sse_clients"                   // gauge: open event streams
	MetricReplays         = "zof_idempotent_replays_total"      // counter: creates answered with an existing run
	MetricStuckRuns       = "zof_stuck_runs"                    // gauge: runs engine.Stuck listed on two checks in a row
	MetricHTTPRequests    = "zof_http_requests_total"           // counter: requests by route and status code
	MetricHTTPRequestSecs = "zof_http_request_duration_seconds" // histogram: non-stream request durations by route
	collectTimeout        = 5 * time.Second
	listPageLimit         = engine.MaxListLimit
)

// Histogram buckets, written as decimal literals: a bucket's `le` label is
// the shortest decimal that reads back as the float64, so computed bounds
// (prometheus.ExponentialBuckets(0.1, 3, n) gives 0.30000000000000004) would
// print as noise. Each list grows by about 3× (queue) and 2.5× (verdict).
var (
	// queueBuckets: seconds from creation to running; a free tenant starts a
	// run within 0.1 s, a busy one queues for minutes.
	queueBuckets = []float64{0.1, 0.3, 1, 3, 10, 30, 60, 180, 600, 1800, 3600}
	// verdictBuckets: seconds from creation to a terminal status; suites take
	// seconds to an hour.
	verdictBuckets = []float64{1, 2.5, 5, 10, 25, 60, 150, 300, 600, 1500, 3600}
)

type metrics struct {
	s        *Server
	reg      *prometheus.Registry
	handler  http.Handler
	createdC *prometheus.CounterVec
	finished *prometheus.CounterVec
	queue    *prometheus.HistogramVec
	verdict  *prometheus.HistogramVec
	sse      *prometheus.GaugeVec
	replays  *prometheus.CounterVec
	stuck    *prometheus.GaugeVec
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(s *Server) *metrics {
	m := &metrics{s: s, reg: prometheus.NewRegistry()}
	tenant := []string{"tenant"}
	m.createdC = prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricRunsCreated, Help: "Runs created, reruns included."}, tenant)
	m.finished = prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricRunsFinished, Help: "Runs that reached a terminal status, by status."}, []string{"tenant", "status"})
	m.queue = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: MetricQueueSeconds, Help: "Time from creation to running.",
		Buckets: queueBuckets}, tenant)
	m.verdict = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: MetricVerdictSeconds, Help: "Time from creation to a terminal status.",
		Buckets: verdictBuckets}, tenant)
	m.sse = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: MetricSSEClients, Help: "Open event streams."}, tenant)
	m.replays = prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricReplays, Help: "Creates answered with the run that owns the Idempotency-Key."}, tenant)
	m.stuck = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: MetricStuckRuns, Help: "Runs initial for over 2 minutes, or queued while capacity is free, on two checks in a row."}, tenant)
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricHTTPRequests, Help: "HTTP requests by route and status code."}, []string{"route", "code"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: MetricHTTPRequestSecs, Help: "Duration of non-stream HTTP requests.",
		Buckets: prometheus.DefBuckets}, []string{"route"})
	m.reg.MustRegister(m.createdC, m.finished, m.queue, m.verdict, m.sse, m.replays, m.stuck, m.requests, m.duration,
		&runsCollector{s: s},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if s.fleet != nil {
		m.reg.MustRegister(&fleetCollector{f: s.fleet}) // agents_metrics.go
	}
	// Every configured tenant shows up from the start, at zero.
	for _, t := range s.cfg.TenantNames() {
		m.createdC.WithLabelValues(t)
		m.queue.WithLabelValues(t)
		m.verdict.WithLabelValues(t)
		m.sse.WithLabelValues(t)
		m.replays.WithLabelValues(t)
		m.stuck.WithLabelValues(t)
		for _, st := range api.Statuses {
			if st.Terminal() {
				m.finished.WithLabelValues(t, string(st))
			}
		}
	}
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      slogPrintln{s},
		ErrorHandling: promhttp.ContinueOnError,
	})
	return m
}

type slogPrintln struct{ s *Server }

func (l slogPrintln) Println(v ...any) { l.s.log.Warn("metrics", "err", v) }

func (m *metrics) replay(tenant string)  { m.replays.WithLabelValues(tenant).Inc() }
func (m *metrics) created(tenant string) { m.createdC.WithLabelValues(tenant).Inc() }

func (m *metrics) request(route string, code int, d time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
	if route != "GET /v1/runs/{id}/events" {
		m.duration.WithLabelValues(route).Observe(d.Seconds())
	}
}

// serveMetrics is GET /metrics on the API listener. Metrics name every
// tenant and its run counts, so they are served here only to a caller that
// presents metrics_token; without one configured they live on the metrics
// listener alone (metrics_listen).
func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request, _ config.Principal) {
	if !s.cfg.HasMetricsToken() {
		writeProblem(w, http.StatusNotFound, probNotFound, "Not found",
			"metrics are not served on the API listener; scrape the metrics listener (metrics_listen in server.yaml, --metrics-listen), or set metrics_token to scrape here with it")
		return
	}
	s.metricsWithToken(w, r)
}

// metricsWithToken serves the metrics to the bearer of metrics_token, and
// answers 401 to everyone else (tenant tokens included).
func (s *Server) metricsWithToken(w http.ResponseWriter, r *http.Request) {
	scheme, token, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if !strings.EqualFold(scheme, "Bearer") || !s.cfg.MetricsAuthenticate(strings.TrimSpace(token)) || len(r.Header.Values("Authorization")) > 1 {
		unauthorized(w, "invalid_token", "metrics need `Authorization: Bearer METRICS_TOKEN`, the metrics_token of server.yaml (tenant tokens are not accepted: metrics name every tenant)")
		return
	}
	s.metrics.handler.ServeHTTP(w, r)
}

// MetricsHandler is the metrics listener's handler: GET /metrics, and 404
// for anything else. When metrics_token is configured it is required here
// too; otherwise the listener's address (loopback by default) is the guard.
func (s *Server) MetricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.HasMetricsToken() {
			s.metricsWithToken(w, r)
			return
		}
		s.metrics.handler.ServeHTTP(w, r)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, http.StatusNotFound, probNotFound, "Not found",
			fmt.Sprintf("no endpoint %s on the metrics listener: it serves GET /metrics only", r.URL.Path))
	})
	return mux
}

// ServeMetrics serves MetricsHandler on ln until ctx ends, then shuts down
// within ShutdownTimeout. It returns nil after a graceful shutdown.
func (s *Server) ServeMetrics(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.MetricsHandler(),
		ReadHeaderTimeout: s.opts.ReadHeaderTimeout,
		ReadTimeout:       s.opts.ReadTimeout,
		WriteTimeout:      s.opts.WriteTimeout,
		IdleTimeout:       s.opts.IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serving metrics on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
	defer cancel()
	err := hs.Shutdown(sctx)
	if err != nil {
		_ = hs.Close()
	}
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("shutting down the metrics listener: %w", err)
	}
	return nil
}

// runsCollector reads the non-terminal runs of every tenant from the engine
// at scrape time, so the gauges are exact whatever this process saw.
type runsCollector struct{ s *Server }

var (
	runsDesc  = prometheus.NewDesc(MetricRuns, "Non-terminal runs by status (terminal ones: "+MetricRunsFinished+").", []string{"tenant", "status"}, nil)
	queueDesc = prometheus.NewDesc(MetricQueueDepth, "Runs waiting to start (initial and queued).", []string{"tenant"}, nil)
)

func (c *runsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- runsDesc
	ch <- queueDesc
}

func (c *runsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(c.s.ctx, collectTimeout)
	defer cancel()
	waiting := []api.Status{api.StatusInitial, api.StatusQueued, api.StatusRunning}
	for _, t := range c.s.cfg.TenantNames() {
		counts := map[api.Status]int{}
		err := c.s.eachRun(ctx, t, waiting, func(r *api.Run) { counts[r.Status]++ })
		if err != nil {
			c.s.log.Warn("metrics: listing runs", "tenant", t, "err", err)
			ch <- prometheus.NewInvalidMetric(runsDesc, err)
			continue
		}
		for _, st := range waiting {
			ch <- prometheus.MustNewConstMetric(runsDesc, prometheus.GaugeValue, float64(counts[st]), t, string(st))
		}
		ch <- prometheus.MustNewConstMetric(queueDesc, prometheus.GaugeValue, float64(counts[api.StatusInitial]+counts[api.StatusQueued]), t)
	}
}

// eachRun calls fn for every run of the tenant with one of the statuses.
func (s *Server) eachRun(ctx context.Context, tenant string, statuses []api.Status, fn func(*api.Run)) error {
	cursor := ""
	for {
		runs, next, err := s.eng.List(ctx, tenant, engine.ListFilter{Statuses: statuses, Limit: listPageLimit, Cursor: cursor})
		if err != nil {
			return err
		}
		for _, r := range runs {
			fn(r)
		}
		if next == "" {
			return nil
		}
		cursor = next
	}
}

// observe is the engine's Observer: it measures time in queue when a run
// starts and time to verdict when it ends, from the events as they are stored
// (no subscription per run, no store reads).
func (s *Server) observe(tenant string, run *api.Run, evs []api.Event) {
	for _, ev := range evs {
		if ev.Type != api.EventRunStatus {
			continue
		}
		switch {
		case ev.Status == api.StatusRunning:
			s.metrics.queue.WithLabelValues(tenant).Observe(ev.At.Sub(run.CreatedAt).Seconds())
		case ev.Status.Terminal():
			s.finish(tenant, ev.Status, ev.At.Sub(run.CreatedAt))
		}
	}
}

func (s *Server) finish(tenant string, st api.Status, d time.Duration) {
	s.metrics.finished.WithLabelValues(tenant, string(st)).Inc()
	s.metrics.verdict.WithLabelValues(tenant).Observe(d.Seconds())
}

// watchStuck checks engine.Stuck periodically. A run listed on two checks in
// a row is stuck (the engine's advice: being queued with capacity free is
// normally momentary): it is counted in zof_stuck_runs and logged once.
func (s *Server) watchStuck() {
	t := time.NewTicker(s.opts.StuckInterval)
	defer t.Stop()
	prev := map[string]bool{}
	warned := map[string]bool{}
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		cur := map[string]bool{}
		counts := map[string]int{}
		for _, r := range s.eng.Stuck() {
			cur[r.RunID] = true
			if !prev[r.RunID] {
				continue
			}
			counts[r.Tenant]++
			if !warned[r.RunID] {
				warned[r.RunID] = true
				s.log.Warn("stuck run", "run", r.RunID, "tenant", r.Tenant, "status", r.Status, "created", r.Since, "why", r.Why)
			}
		}
		for id := range warned {
			if !cur[id] {
				delete(warned, id)
			}
		}
		prev = cur
		for _, name := range s.cfg.TenantNames() {
			s.metrics.stuck.WithLabelValues(name).Set(float64(counts[name]))
		}
	}
}
