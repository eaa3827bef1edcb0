// Package server is the HTTP API of `zof serve` (docs/api.md) over the run engine.
//
// Decisions where api.md is silent (README and the report repeat them):
//
//   - Idempotency-Key: optional. Absent means no deduplication. The value is
//     an RFC 8941 sf-string ("..."), as the IETF draft says; a bare token of
//     visible ASCII (no quotes, backslashes, commas or spaces) is accepted too,
//     because people type keys by hand with curl. At most MaxIdempotencyKey
//     characters; an empty, too long or badly quoted key, or two of the
//     header, is 400.
//   - The fingerprint of a create is engine.Fingerprint of the decoded
//     request: the same JSON with other whitespace or key order is the same
//     request.
//   - Last-Event-ID (header) wins over ?after=. Both must be a non-negative
//     decimal seq; a seq beyond the run's last event is 400 naming the last
//     seq ("from the future": a client can only have seen seqs that exist).
//   - A stream whose client falls more than the engine's subscriber buffer
//     behind is closed; the client resumes with Last-Event-ID and loses
//     nothing. The `end` event has no id, so Last-Event-ID stays the last seq.
//   - A request whose Last-Event-ID header is at or past the last seq of a
//     finished run is answered 204 No Content: the client has everything,
//     and 204 is the standard's way to stop an EventSource reconnecting
//     (otherwise every reconnect would replay `end`, forever). ?after= alone
//     still gets `end`, and a seq past the end of an unfinished run is 400.
//   - /healthz and /readyz need no token: probes have none, and they carry no
//     tenant data. /metrics names every tenant with its run counts: it is
//     served on a separate listener (metrics_listen, loopback by default;
//     ServeMetrics), and on the API listener only to the bearer of
//     metrics_token (401 otherwise; 404 when no metrics_token is set).
//   - GET /v1/runs refuses unknown query parameters (a mistyped filter would
//     silently list everything); `status` may repeat or be comma-separated.
//   - Tokens in the query string (?token=, ?access_token=) are refused with 400
//     on every route, even with a valid header: URLs end up in logs.
//   - Streams per tenant are bounded by the tenant's max_streams (429 with
//     Retry-After beyond it).
//   - Metrics: gauges of non-terminal runs and queue depth are read from the
//     engine at scrape time; time in queue, time to verdict and finished runs
//     come from the engine's observer as events are stored; stuck runs are checked periodically (a run listed by
//     engine.Stuck on two checks in a row is reported, as the engine advises).
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/server/config"
	"github.com/zof-ai/zof-ci/internal/trigger"
)

// Timeouts and intervals. Each is overridable through Options (tests use short ones).
const (
	// DefaultReadHeaderTimeout closes connections that dribble their headers
	// (slowloris); a real client sends them in one packet.
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultReadTimeout bounds reading a whole request including its body
	// (5 MiB over a slow CI link fits easily). Streams clear it.
	DefaultReadTimeout = 60 * time.Second
	// DefaultWriteTimeout bounds writing a non-stream response; it is set per
	// request, so it never cuts an event stream (api.md).
	DefaultWriteTimeout = 60 * time.Second
	// DefaultStreamWriteTimeout bounds one write of a stream: a client that
	// accepts nothing for this long is gone (its TCP window stays full).
	DefaultStreamWriteTimeout = 30 * time.Second
	// DefaultIdleTimeout closes idle keep-alive connections.
	DefaultIdleTimeout = 120 * time.Second
	// DefaultKeepalive is the SSE comment interval (api.md: "at least every 15 s").
	DefaultKeepalive = 15 * time.Second
	// DefaultShutdownTimeout bounds a graceful shutdown before connections are closed hard.
	DefaultShutdownTimeout = 10 * time.Second
	// DefaultStuckInterval is how often engine.Stuck is checked.
	DefaultStuckInterval = 30 * time.Second
	// MaxHeaderBytes bounds request headers; ours are small (a token and a key).
	MaxHeaderBytes = 64 << 10
	// readyTimeout bounds the store's readiness check.
	readyTimeout = 2 * time.Second
	// retryAfterStreams is the Retry-After of a 429 for too many streams.
	retryAfterStreams = 5
	// retryAfterStopped is the Retry-After of a 503 while the engine stops.
	retryAfterStopped = 5
	// retryAfterStore is the Retry-After of a 503 while the store is
	// unreachable (a database restart takes seconds).
	retryAfterStore = 2
	// retryAfterFleet is the Retry-After of a 503 while a replica cannot read the
	// fleet's view (a new home is being chosen: renewals are a second apart).
	retryAfterFleet = 1
)

// Options configure a Server. Config and Engine are required.
type Options struct {
	Config *config.Config
	// Engine is the run engine; the caller constructs it (with its store and
	// engine.Config{TenantLimit: cfg.TenantLimit, RunURL: cfg.RunURL,
	// BlockAfter: cfg.BlockAfter, LeaveQueuedOnStop: true}) and runs it.
	Engine *engine.Engine
	// Ready reports whether the store is reachable (GET /readyz); nil: always.
	Ready func(ctx context.Context) error
	// Logger receives faults and stuck-run warnings; nil discards.
	Logger *slog.Logger
	// Audit receives one JSON line per mutation; nil sends them to Logger.
	Audit io.Writer
	// Now is the clock of audit lines (default time.Now).
	Now func() time.Time
	// Triggers is the store of webhook deliveries and schedule ticks that
	// GET /v1/triggers lists (the same sqlitestore.Store as the engine's);
	// nil lists none.
	Triggers trigger.Store
	// History is the store of finished members' outcomes behind GET
	// /v1/health (the same store as the engine's, when it records them);
	// nil answers every case empty. The server prunes it to history_days.
	History engine.HistoryStore
	// Coverage keeps each project's latest coverage summary, sent with
	// runs and read by GET /v1/coverage (coverage.go); nil: summaries are
	// dropped and GET /v1/coverage answers 501.
	Coverage CoverageStore
	// Webhooks builds the receiver of POST /v1/webhooks/github and
	// /v1/webhooks/gitlab (package server/webhook, composed by zof serve).
	// New calls it once with the server, through which the receiver creates
	// runs (Submit), before the first request; nil: both answer 404.
	Webhooks func(*Server) (Webhooks, error)
	// Fleet dispatches pool runs' members to endpoint agents and serves
	// the agent API (agents.go); the same *fleet.Fleet is the engine's
	// Config.Remote. nil: the agent API answers 404 and GET /v1/agents is empty.
	Fleet Fleet
	// Session authenticates a GET that has no Authorization header, from
	// its session cookie: the web console's run page follows
	// /v1/runs/{id}/events with an EventSource, which sends cookies but no
	// header. Never consulted for other methods. nil: tokens only.
	Session func(*http.Request) (config.Principal, bool)

	// Zero values take the Default* constants.
	ReadHeaderTimeout  time.Duration
	ReadTimeout        time.Duration
	WriteTimeout       time.Duration
	StreamWriteTimeout time.Duration
	IdleTimeout        time.Duration
	Keepalive          time.Duration
	// WaitRefresh: how often a ?wait=1 stream checks its run's wait reason (default WaitRefresh).
	WaitRefresh     time.Duration
	ShutdownTimeout time.Duration
	StuckInterval   time.Duration
	// HistoryPruneInterval: default DefaultHistoryPruneInterval.
	HistoryPruneInterval time.Duration
}

// Server is the HTTP API. Create it with New, serve it with Serve (or mount
// Handler and call Close when done).
type Server struct {
	opts    Options
	cfg     *config.Config
	eng     *engine.Engine
	log     *slog.Logger
	audit   *auditLog
	metrics *metrics
	handler http.Handler
	mux     *http.ServeMux

	ctx    context.Context // ends on Close: background work and streams stop
	cancel context.CancelFunc
	bg     sync.WaitGroup

	closing     chan struct{} // closed when shutdown begins: streams end, readyz fails
	closingOnce sync.Once

	streamsMu sync.Mutex
	streams   map[string]int // open streams per tenant

	frames frameCache // encoded events shared by the streams of a run

	webhooks Webhooks // built by Options.Webhooks in New; nil: none

	fleet Fleet // Options.Fleet; nil: none
}

// New builds a Server and starts its background work (metrics of runs the
// store holds unfinished, stuck-run checks). Call Close, or Serve, to stop it.
func New(opts Options) (*Server, error) {
	if opts.Config == nil {
		return nil, errors.New("server: Options.Config is required (config.Load)")
	}
	if opts.Engine == nil {
		return nil, errors.New("server: Options.Engine is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&opts.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	def(&opts.ReadTimeout, DefaultReadTimeout)
	def(&opts.WriteTimeout, DefaultWriteTimeout)
	def(&opts.StreamWriteTimeout, DefaultStreamWriteTimeout)
	def(&opts.IdleTimeout, DefaultIdleTimeout)
	def(&opts.Keepalive, DefaultKeepalive)
	def(&opts.WaitRefresh, WaitRefresh)
	def(&opts.ShutdownTimeout, DefaultShutdownTimeout)
	def(&opts.StuckInterval, DefaultStuckInterval)
	def(&opts.HistoryPruneInterval, DefaultHistoryPruneInterval)

	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		opts:    opts,
		cfg:     opts.Config,
		eng:     opts.Engine,
		log:     opts.Logger,
		audit:   newAuditLog(opts.Audit, opts.Logger, opts.Now),
		ctx:     ctx,
		cancel:  cancel,
		closing: make(chan struct{}),
		streams: map[string]int{},
		fleet:   opts.Fleet,
	}
	s.metrics = newMetrics(s)
	s.mux = http.NewServeMux()
	for _, rt := range s.routes() {
		s.mux.Handle(rt.pattern(), s.wrap(rt))
	}
	s.handler = s.top()
	if opts.Webhooks != nil {
		h, err := opts.Webhooks(s)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("server: building the webhook receiver: %w", err)
		}
		s.webhooks = h
	}

	if s.fleet != nil {
		s.fleet.SetAudit(func(tenant, pool, agent, action, result string) {
			s.audit.record(config.Principal{Tenant: tenant, Name: agent, Pool: pool}, action, "", "", 0, result)
		})
	}
	opts.Engine.Observe(s.observe)
	s.bg.Add(1)
	go func() { defer s.bg.Done(); s.watchStuck() }()
	s.bg.Add(1)
	go func() { defer s.bg.Done(); s.pruneHistory() }()
	return s, nil
}

// Mount serves h at pattern beside the API (zof serve mounts the web
// console's pages this way, so they share the listener, its timeouts and
// graceful shutdown). Call it before Serve; a pattern the API serves
// panics, as http.ServeMux.Handle does.
func (s *Server) Mount(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// Handler is the API's http.Handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Close ends open streams and background work and waits for the latter. It
// does not stop the engine.
func (s *Server) Close() {
	s.beginShutdown()
	s.cancel()
	s.bg.Wait()
}

func (s *Server) beginShutdown() {
	s.closingOnce.Do(func() { close(s.closing) })
}

// httpServer is the http.Server for the handler: slowloris and body timeouts,
// no WriteTimeout (it would cut streams; non-stream handlers set their own).
func (s *Server) httpServer() *http.Server {
	return &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.opts.ReadHeaderTimeout,
		ReadTimeout:       s.opts.ReadTimeout,
		IdleTimeout:       s.opts.IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
}

// Serve answers on ln until ctx ends, then shuts down gracefully: it stops
// accepting, ends every event stream (each flushed; clients resume with
// Last-Event-ID), lets in-flight requests finish within ShutdownTimeout and
// stops the background work. It returns nil after a graceful shutdown. The
// engine is the caller's: stop it after Serve returns, so whatever the last
// requests did is recorded.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := s.httpServer()
	hs.RegisterOnShutdown(s.beginShutdown)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		s.Close()
		return fmt.Errorf("serving on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	s.beginShutdown()
	sctx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
	defer cancel()
	err := hs.Shutdown(sctx)
	if err != nil {
		s.log.Warn("graceful shutdown did not finish in time; closing the remaining connections", "timeout", s.opts.ShutdownTimeout, "err", err)
		_ = hs.Close()
	}
	<-errc // http.ErrServerClosed
	s.Close()
	if err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	return nil
}

// ListenAndServe listens on addr (host:port) and serves until ctx ends.
func ListenAndServe(ctx context.Context, srv *Server, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		srv.Close()
		return fmt.Errorf("listening on %s: %w; is another zof serve running, or set `listen:` in server.yaml", addr, err)
	}
	return srv.Serve(ctx, ln)
}
