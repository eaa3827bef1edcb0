// Package clienttest starts a real `zof serve` (server.New over a real engine and an in-memory
// store) on a loopback port, for end-to-end tests of the client, the follower and the CLI. It
// can drop every connection (a network blip) and restart the server on the same address and
// store (a crash and restart, as with a persistent store).
package clienttest

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/engine/memstore"
	"github.com/zof-ai/zof-ci/internal/server"
	"github.com/zof-ai/zof-ci/internal/server/config"
	"github.com/zof-ai/zof-ci/internal/step"
)

// Tokens of the test server's tenant "acme" (runner, viewer and admin) and of tenant "other".
const (
	Token       = "clienttest-runner-token-0123456789"
	ViewerToken = "clienttest-viewer-token-0123456789"
	OtherToken  = "clienttest-other-token-01234567890"
	AdminToken  = "clienttest-admin-token-01234567890"
	Tenant      = "acme"
)

// stopLimit bounds shutting a server down in a test.
const stopLimit = 10 * time.Second

// TB is the part of testing.TB the server needs, so a testscript command can start one too.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Errorf(format string, args ...any)
	Cleanup(func())
}

var _ TB = (testing.TB)(nil)

// Options configure the test server.
type Options struct {
	// MaxConcurrentRuns of tenant acme (default 4).
	MaxConcurrentRuns int
	// Keepalive is the SSE comment interval (default 1 s, so silence tests stay short).
	Keepalive time.Duration
	// RealSteps executes steps for real (step.NewExecutor in Dir); otherwise steps are Gates.
	RealSteps bool
	Dir       string
}

// Server is a running test server.
type Server struct {
	// URL is the base URL ("http://127.0.0.1:PORT").
	URL string
	// Gates controls steps when Options.RealSteps is false.
	Gates *Gates

	tb    TB
	opts  Options
	cfg   *config.Config
	store *memstore.Store
	addr  string

	mu         sync.Mutex
	eng        *engine.Engine
	ln         *trackingListener
	stop       context.CancelFunc
	served     chan error
	stopEngine context.CancelFunc
	engineDone chan struct{}
	running    bool
}

// Start starts a server; it is stopped when the test ends.
func Start(tb TB, o Options) *Server {
	tb.Helper()
	if o.MaxConcurrentRuns <= 0 {
		o.MaxConcurrentRuns = 4
	}
	if o.Keepalive <= 0 {
		o.Keepalive = time.Second
	}
	yaml := fmt.Sprintf(`
listen: 127.0.0.1:0
tenants:
  %s:
    max_concurrent_runs: %d
    allow_commands: true
    allowed_targets: ["http://127.0.0.1:*"]
    tokens:
      - {name: ci, role: runner, env: RUNNER}
      - {name: dashboard, role: viewer, env: VIEWER}
      - {name: ops, role: admin, env: ADMIN}
  other:
    allow_commands: true
    allowed_targets: ["http://127.0.0.1:*"]
    tokens:
      - {name: ci, role: runner, env: OTHER}
`, Tenant, o.MaxConcurrentRuns)
	env := map[string]string{"RUNNER": Token, "VIEWER": ViewerToken, "OTHER": OtherToken, "ADMIN": AdminToken}
	cfg, err := config.Parse([]byte(yaml), "server.yaml", func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		tb.Fatalf("clienttest: %v", err)
	}
	s := &Server{tb: tb, opts: o, cfg: cfg, store: memstore.New(memstore.WithHistory()), Gates: NewGates()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("clienttest: %v", err)
	}
	s.addr = ln.Addr().String()
	s.URL = "http://" + s.addr
	s.start(ln)
	tb.Cleanup(s.Stop)
	return s
}

// start runs a new engine and server over the store on ln.
func (s *Server) start(ln net.Listener) {
	var steps engine.StepRunner = s.Gates
	if s.opts.RealSteps {
		steps = step.NewExecutor(step.ExecutorOptions{})
	}
	eng, err := engine.New(engine.Config{
		Store:             s.store,
		Steps:             steps,
		TenantLimit:       s.cfg.TenantLimit,
		RunURL:            s.cfg.RunURL,
		BlockAfter:        s.cfg.BlockAfter,
		LeaveQueuedOnStop: true,
		Dir:               s.opts.Dir,
	})
	if err != nil {
		s.tb.Fatalf("clienttest: %v", err)
	}
	srv, err := server.New(server.Options{Config: s.cfg, Engine: eng, History: s.store, Coverage: s.store, Logger: slog.New(slog.DiscardHandler), Keepalive: s.opts.Keepalive})
	if err != nil {
		s.tb.Fatalf("clienttest: %v", err)
	}
	engCtx, stopEngine := context.WithCancel(context.Background())
	engineDone := make(chan struct{})
	go func() { defer close(engineDone); _ = eng.Run(engCtx) }()
	tl := &trackingListener{Listener: ln, conns: map[net.Conn]struct{}{}}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, tl) }()
	s.mu.Lock()
	s.eng, s.ln, s.stop, s.served, s.stopEngine, s.engineDone, s.running = eng, tl, stop, served, stopEngine, engineDone, true
	s.mu.Unlock()
}

// Engine is the current engine (it changes on Restart).
func (s *Server) Engine() *engine.Engine {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.eng
}

// Run reads a run of tenant acme from the engine.
func (s *Server) Run(id string) (*api.Run, error) {
	return s.Engine().Get(context.Background(), Tenant, id)
}

// DropConnections closes every open connection at once, as a network blip or a proxy
// restart does; the server itself goes on.
func (s *Server) DropConnections() {
	s.mu.Lock()
	ln := s.ln
	s.mu.Unlock()
	if ln != nil {
		ln.closeAll()
	}
}

// Kill stops the server hard: connections are cut, the listener closes, the engine stops
// (its running runs end as cancelled, queued runs stay in the store). Start it again with
// Restart.
func (s *Server) Kill() {
	s.mu.Lock()
	if !s.running {
		s.mu.Unlock()
		return
	}
	s.running = false
	ln, stop, served, stopEngine, engineDone := s.ln, s.stop, s.served, s.stopEngine, s.engineDone
	s.mu.Unlock()
	ln.closeAll()
	stop()
	select {
	case <-served:
	case <-time.After(stopLimit):
		s.tb.Errorf("clienttest: the server did not stop within %s", stopLimit)
	}
	ln.closeAll()
	stopEngine()
	select {
	case <-engineDone:
	case <-time.After(stopLimit):
		s.tb.Errorf("clienttest: the engine did not stop within %s", stopLimit)
	}
}

// Restart starts a new server and engine on the same address over the same store.
func (s *Server) Restart() {
	s.Kill()
	var ln net.Listener
	var err error
	for end := time.Now().Add(stopLimit); ; time.Sleep(10 * time.Millisecond) {
		if ln, err = net.Listen("tcp", s.addr); err == nil || time.Now().After(end) {
			break
		}
	}
	if err != nil {
		s.tb.Fatalf("clienttest: listening again on %s: %v", s.addr, err)
	}
	s.start(ln)
}

// Stop stops the server for good.
func (s *Server) Stop() { s.Kill() }

// trackingListener remembers accepted connections so they can be cut.
type trackingListener struct {
	net.Listener
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.conns[c] = struct{}{}
	l.mu.Unlock()
	return &trackedConn{Conn: c, l: l}, nil
}

func (l *trackingListener) closeAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.conns {
		c.Close()
		delete(l.conns, c)
	}
}

type trackedConn struct {
	net.Conn
	l    *trackingListener
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c.Conn)
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}

// Gates is a step runner whose steps wait for the test: a step named "wait:KEY" blocks until
// Open(KEY) (or the run is cancelled), "fail" or "fail:MESSAGE" fails, every other step passes.
type Gates struct {
	mu      sync.Mutex
	gates   map[string]chan struct{}
	started map[string]chan struct{}
}

var _ engine.StepRunner = (*Gates)(nil)

// NewGates returns gates that are all closed.
func NewGates() *Gates {
	return &Gates{gates: map[string]chan struct{}{}, started: map[string]chan struct{}{}}
}

func (g *Gates) get(m map[string]chan struct{}, key string) chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	c, ok := m[key]
	if !ok {
		c = make(chan struct{})
		m[key] = c
	}
	return c
}

// Open lets the steps waiting on key pass (once).
func (g *Gates) Open(key string) {
	c := g.get(g.gates, key)
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-c:
	default:
		close(c)
	}
}

// Started is closed once a step waits on key.
func (g *Gates) Started(key string) <-chan struct{} { return g.get(g.started, key) }

// Run executes a step.
func (g *Gates) Run(ctx context.Context, s api.Step, _ step.Input) step.Output {
	if key, ok := strings.CutPrefix(s.Name, "wait:"); ok {
		st := g.get(g.started, key)
		g.mu.Lock()
		select {
		case <-st:
		default:
			close(st)
		}
		g.mu.Unlock()
		select {
		case <-g.get(g.gates, key):
		case <-ctx.Done():
			return step.Output{Status: api.StepCancelled, Failure: &api.Failure{Message: "cancelled"}}
		}
	}
	if msg, ok := strings.CutPrefix(s.Name, "fail"); ok {
		msg = strings.TrimPrefix(msg, ":")
		if msg == "" {
			msg = "failed on purpose"
		}
		return step.Output{Status: api.StepFailed, Failure: &api.Failure{Message: msg, Expected: "pass", Actual: "fail"}}
	}
	return step.Output{Status: api.StepPassed}
}
