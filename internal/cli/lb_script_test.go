package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// lbMaxBody bounds a request body the balancer keeps to send again to the
// next replica (zof serve's own default max_body is 5 MiB).
const lbMaxBody = 8 << 20

// lb VAR ADDR...: a round-robin HTTP load balancer on loopback in front of the
// zof serve replicas at ADDR..., as docs/serve.md puts one in front of
// replicas: each request goes to the next replica that accepts a connection
// (a stopped replica is skipped, as a health-checking balancer would), and
// responses, event streams included, pass through unbuffered. A request in
// flight on a replica that stops is not sent again: its client sees the
// broken connection. VAR is set to the balancer's URL; it closes when the
// script ends.
func lbCmd(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: lb VAR ADDR...")
	}
	backends := args[1:]
	var (
		next  atomic.Uint64
		inner = &http.Transport{
			DialContext:       (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
			DisableKeepAlives: true, // every request picks its replica afresh
		}
	)
	rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		start := next.Add(1)
		var lastErr error
		for i := range backends {
			addr := backends[(int(start)+i)%len(backends)]
			out := req.Clone(req.Context())
			out.URL.Scheme, out.URL.Host = "http", addr
			if req.GetBody != nil {
				body, err := req.GetBody()
				if err != nil {
					return nil, err
				}
				out.Body = body
			}
			resp, err := inner.RoundTrip(out)
			if err == nil {
				return resp, nil
			}
			var op *net.OpError
			if !errors.As(err, &op) || op.Op != "dial" {
				return nil, err // sent (or partly): never twice
			}
			lastErr = err
		}
		return nil, fmt.Errorf("no replica accepts a connection: %w", lastErr)
	})
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host = "http", "replica"
			pr.SetXForwarded()
		},
		Transport:     rt,
		FlushInterval: -1,
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			b, err := io.ReadAll(io.LimitReader(r.Body, lbMaxBody+1))
			if err != nil || len(b) > lbMaxBody {
				http.Error(w, "lb: request body unreadable or over 8 MiB", http.StatusBadRequest)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(b))
			r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
		}
		proxy.ServeHTTP(w, r)
	})}
	go func() { _ = srv.Serve(l) }()
	ts.Defer(func() { _ = srv.Close() })
	ts.Setenv(args[0], "http://"+l.Addr().String())
	ts.Logf("lb %s → %s", l.Addr(), strings.Join(backends, ", "))
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
