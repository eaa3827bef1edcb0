package home

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/fleet"
)

// Problem types of the internal endpoints and of forwarded agent requests
// (the API's urn:zof:problem: types, docs/api.md).
const (
	probBase         = "urn:zof:problem:"
	probNoHome       = probBase + "fleet-home-unavailable"
	probUnauthorized = probBase + "unauthorized"
	probBadRequest   = probBase + "bad-request"
)

// Handler serves the internal endpoints under PathPrefix, for the other
// replicas only (the cluster secret): POST AttemptsPath and GET FleetPath.
func (h *Home) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+AttemptsPath, h.serveAttempt)
	mux.HandleFunc("GET "+FleetPath, h.serveFleet)
	mux.HandleFunc(PathPrefix, func(w http.ResponseWriter, r *http.Request) {
		allow := map[string]string{AttemptsPath: http.MethodPost, FleetPath: http.MethodGet}[r.URL.Path]
		if allow != "" {
			w.Header().Set("Allow", allow)
			problem(w, http.StatusMethodNotAllowed, probBase+"method-not-allowed", "Method not allowed", r.URL.Path+" takes "+allow)
			return
		}
		problem(w, http.StatusNotFound, probBase+"not-found", "Not found", "no internal endpoint "+r.Method+" "+r.URL.Path)
	})
	return mux
}

func problem(w http.ResponseWriter, status int, typ, title, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(api.Problem{Type: typ, Title: title, Status: status, Detail: detail})
}

// authorized checks the cluster secret, in constant time.
func (h *Home) authorized(w http.ResponseWriter, r *http.Request) bool {
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), []byte(h.secret)) != 1 {
		problem(w, http.StatusUnauthorized, probUnauthorized, "Unauthorized",
			"the internal endpoints of zof serve answer only the replicas of the same database (the cluster secret)")
		return false
	}
	return true
}

// notHome answers 503 when this replica is not the home; false when it is.
func (h *Home) notHome(w http.ResponseWriter) bool {
	cur, me := h.state()
	if me {
		return false
	}
	problem(w, http.StatusServiceUnavailable, probNoHome, "Not the fleet's home",
		fmt.Sprintf("replica %s is not the fleet's home (the home is %s); ask the home", h.o.Replica, orNone(cur.replica)))
	return true
}

// serveAttempt runs a delegated attempt on this replica's fleet and streams
// it (frame.go). The request's end (the executing replica cancelled it, or
// died) stops the attempt on its agent.
func (h *Home) serveAttempt(w http.ResponseWriter, r *http.Request) {
	if !h.authorized(w, r) || h.notHome(w) {
		return
	}
	var req attemptRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAttemptBody))
	if err := dec.Decode(&req); err != nil {
		problem(w, http.StatusBadRequest, probBadRequest, "Malformed attempt", "the attempt is not valid JSON: "+err.Error())
		return
	}
	if err := req.check(); err != nil {
		problem(w, http.StatusBadRequest, probBadRequest, "Malformed attempt", err.Error())
		return
	}
	rc := http.NewResponseController(w)
	// The attempt lasts as long as its member: no deadline of the server's.
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	fw := &frameWriter{w: w, rc: rc}
	fw.flush()

	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(h.o.AliveEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fw.write(frame{Type: frameAlive})
			}
		}
	})
	a := req.attempt()
	a.Started = func() { fw.write(frame{Type: frameStarted}) }
	out := h.o.Fleet.RunAttempt(r.Context(), a, func(evs []api.Event) { fw.write(frame{Type: frameEvents, Events: evs}) })
	close(done)
	wg.Wait()
	fw.write(frame{Type: frameOutcome, Outcome: toWire(out)})
}

// frameWriter writes whole frames, one at a time, each flushed.
type frameWriter struct {
	mu   sync.Mutex
	w    http.ResponseWriter
	rc   *http.ResponseController
	buf  []byte
	done bool // the outcome was written: nothing may follow (the handler returns)
}

func (fw *frameWriter) write(f frame) {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if fw.done {
		return // a late Started of an attempt that already ended
	}
	fw.done = f.Type == frameOutcome
	fw.buf = appendFrame(fw.buf[:0], f)
	if _, err := fw.w.Write(fw.buf); err != nil {
		return // the executing replica went away: the request's context ends
	}
	_ = fw.rc.Flush()
}

func (fw *frameWriter) flush() {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	_ = fw.rc.Flush()
}

// serveFleet is the home's whole fleet view, for the other replicas.
func (h *Home) serveFleet(w http.ResponseWriter, r *http.Request) {
	if !h.authorized(w, r) || h.notHome(w) {
		return
	}
	s := h.o.Fleet.Snapshot()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(s)
}

// snapshot is the home's view, read at most once per ViewTTL; the last
// one read for up to viewStale when the home does not answer, else an empty
// view and why it is unknown (a list of agents says so rather than show
// none; wait reasons and figures make do with the empty view).
func (h *Home) snapshot() (*fleet.Snapshot, error) {
	h.viewMu.Lock()
	defer h.viewMu.Unlock()
	cur, _ := h.state()
	now := time.Now()
	if h.view != nil && h.viewFrom == cur.replica && now.Sub(h.viewAt) < ViewTTL {
		return h.view, nil
	}
	s, err := h.fetchView(cur)
	if err == nil {
		h.view, h.viewAt, h.viewFrom = s, now, cur.replica
		return s, nil
	}
	h.unreachable(cur, "reading the fleet's view from its home replica", "err", err)
	if h.view != nil && now.Sub(h.viewAt) < viewStale {
		return h.view, nil
	}
	return &fleet.Snapshot{}, fmt.Errorf("%w: the fleet's home replica (%s) does not answer (%v); a new home is chosen within %s, try again",
		ErrViewUnknown, orNone(cur.replica), err, h.o.TTL+DefaultRenewEvery)
}

// ErrViewUnknown: this replica cannot read the fleet's view from its home
// (none is chosen yet, or it does not answer) and has none recent enough.
var ErrViewUnknown = errors.New("the fleet's agents are not known on this replica right now")

func (h *Home) fetchView(cur holder) (*fleet.Snapshot, error) {
	if cur.address == "" {
		return nil, fmt.Errorf("no replica is the fleet's home yet")
	}
	ctx, cancel := context.WithTimeout(context.Background(), viewTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(cur.address, "/")+FleetPath, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+h.secret)
	resp, err := h.o.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%d: %s", resp.StatusCode, problemDetail(resp))
	}
	var s fleet.Snapshot
	if err := json.NewDecoder(http.MaxBytesReader(nil, resp.Body, maxFrame)).Decode(&s); err != nil {
		return nil, fmt.Errorf("decoding the view: %w", err)
	}
	return &s, nil
}

type targetKey struct{}

func (h *Home) newProxy() *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(pr.In.Context().Value(targetKey{}).(*url.URL))
			pr.Out.Host = pr.In.Host
			pr.Out.Header.Set(ForwardedHeader, h.o.Replica)
		},
		Transport: h.o.Client.Transport,
		ModifyResponse: func(*http.Response) error {
			// The home answers: requests go to it, a later outage is logged again.
			h.down.Store(nil)
			h.warned.Store(nil)
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() != nil {
				return // the agent went away, or this replica stops
			}
			cur, _ := h.state()
			h.down.Store(&cur.replica) // the next requests wait for a new home
			h.unreachable(cur, "forwarding an agent request to the fleet's home replica", "err", err)
			problem(w, http.StatusServiceUnavailable, probNoHome, "Fleet home unreachable",
				fmt.Sprintf("the fleet's home replica %s does not answer; a new home is chosen within %s, try again", orNone(cur.replica), h.o.TTL))
		},
	}
}

// ForwardAgent answers an agent API request on a replica that is not the
// fleet's home: it forwards it to the home unchanged (the home checks the
// agent's token). While no home is known or the home does not answer, it
// waits up to holdWhileDown for a new one, then answers 503 with
// Retry-After; a request forwarded once already is 503 at once (no loops).
// false: this replica is the home and serves it.
func (h *Home) ForwardAgent(w http.ResponseWriter, r *http.Request) bool {
	var hold <-chan time.Time
	for {
		h.mu.Lock()
		cur, me, changed := h.cur, h.isMe(time.Now()), h.changed
		h.mu.Unlock()
		if me {
			return false
		}
		if r.Header.Get(ForwardedHeader) != "" {
			problem(w, http.StatusServiceUnavailable, probNoHome, "Fleet home moved",
				fmt.Sprintf("replica %s is no longer the fleet's home (the home is now %s); try again", h.o.Replica, orNone(cur.replica)))
			return true
		}
		target, err := url.Parse(cur.address)
		down := h.down.Load()
		if cur.address != "" && err == nil && (down == nil || *down != cur.replica) {
			h.forward(w, r, target)
			return true
		}
		if hold == nil {
			t := time.NewTimer(holdWhileDown)
			defer t.Stop()
			hold = t.C
		}
		select {
		case <-changed:
			continue
		case <-hold:
		case <-r.Context().Done():
			return true
		case <-h.stopping:
		}
		if cur.address != "" && err == nil {
			// Still the same home: try it (it may be back); its failure
			// is a 503 with Retry-After (the proxy's ErrorHandler).
			h.forward(w, r, target)
			return true
		}
		problem(w, http.StatusServiceUnavailable, probNoHome, "No fleet home",
			fmt.Sprintf("no replica is the fleet's home yet (one is chosen within %s); try again", h.o.TTL))
		return true
	}
}

// forward proxies r to the home at target; it ends when this replica stops.
func (h *Home) forward(w http.ResponseWriter, r *http.Request, target *url.URL) {
	ctx, cancel := context.WithCancel(context.WithValue(r.Context(), targetKey{}, target))
	defer cancel()
	go func() {
		select {
		case <-h.stopping:
			cancel()
		case <-ctx.Done():
		}
	}()
	h.proxy.ServeHTTP(w, r.WithContext(ctx))
}
