package pgstore_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/engine/pgstore/pgtest"
	"github.com/zof-ai/zof-ci/internal/engine/storetest"
)

// proxy forwards TCP to the database; cut drops every connection and
// refuses new ones until restore.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	t.Cleanup(func() { _ = ln.Close(); p.cut() })
	go p.serve()
	return p
}

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		u, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		p.conns = append(p.conns, c, u)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(u, c); _ = u.Close() }()
		go func() { _, _ = io.Copy(c, u); _ = c.Close() }()
	}
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

func (p *proxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}

// TestPingFollowsOutage: Ping (what /readyz calls) fails while the database
// is unreachable and succeeds again, with the same pool, once it is back;
// the data written before is still there.
func TestPingFollowsOutage(t *testing.T) {
	u, err := url.Parse(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	p := newProxy(t, u.Host)
	u.Host = p.ln.Addr().String()
	q := u.Query()
	q.Set("connect_timeout", "2")
	u.RawQuery = q.Encode()
	s := openAt(t, u.String())
	storetest.Create(t, s, "t", "r1")
	ctx := context.Background()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("ping before the outage: %v", err)
	}

	p.cut()
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err = s.Ping(pctx)
	cancel()
	if err == nil {
		t.Fatal("ping succeeded while the database was unreachable")
	}
	if !errors.Is(err, engine.ErrUnavailable) {
		t.Fatalf("ping during the outage: %v, want it marked engine.ErrUnavailable", err)
	}
	// What a server serves fails as unavailable (503 + Retry-After), not as
	// an internal error; a create tried now stores nothing.
	for name, op := range map[string]func(context.Context) error{
		"GetRun": func(ctx context.Context) error { _, err := s.GetRun(ctx, "t", "r1"); return err },
		"ListRuns": func(ctx context.Context) error {
			_, _, err := s.ListRuns(ctx, "t", engine.ListFilter{Limit: 10})
			return err
		},
		"Events": func(ctx context.Context) error { _, err := s.Events(ctx, "r1", 0, 10); return err },
		"CreateRun": func(ctx context.Context) error {
			rec, first := storetest.NewRun("t", "r2", storetest.Request("shop", "staging"))
			_, err := s.CreateRun(ctx, rec, first, nil)
			return err
		},
	} {
		octx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := op(octx)
		cancel()
		if !errors.Is(err, engine.ErrUnavailable) {
			t.Errorf("%s during the outage: %v, want engine.ErrUnavailable", name, err)
		}
	}

	p.restore()
	// The pool replaces its dead connections; allow a few tries (each fails fast).
	deadline := time.Now().Add(10 * time.Second)
	for err = s.Ping(ctx); err != nil && time.Now().Before(deadline); err = s.Ping(ctx) {
	}
	if err != nil {
		t.Fatalf("ping after the database came back: %v", err)
	}
	if _, err := s.GetRun(ctx, "t", "r1"); err != nil {
		t.Fatalf("the run written before the outage: %v", err)
	}
	// The create refused during the outage stored nothing; sent again, it is stored once.
	if _, err := s.GetRun(ctx, "t", "r2"); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("the create refused during the outage: GetRun = %v, want not found", err)
	}
	storetest.Create(t, s, "t", "r2")
	if runs, _, err := s.ListRuns(ctx, "t", engine.ListFilter{}); err != nil || len(runs) != 2 {
		t.Fatalf("after the outage: %d runs (err %v), want 2", len(runs), err)
	}
}
