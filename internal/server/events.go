package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/server/config"
)

// resubscribeDelay is the pause before following a run again when the
// engine's subscription ended before the run's end (the engine had not loaded
// the run yet, e.g. just after a restart).
const resubscribeDelay = 50 * time.Millisecond

// ParseAfter reads where a stream starts: the Last-Event-ID header wins over
// ?after=; both absent (or empty) is 0, the beginning. Values are decimal
// seqs >= 0; anything else is an error for a person.
func ParseAfter(lastEventID string, after []string) (int64, error) {
	src, v := "Last-Event-ID", strings.TrimSpace(lastEventID)
	if v == "" {
		switch len(after) {
		case 0:
			return 0, nil
		case 1:
		default:
			return 0, errors.New("?after= is given more than once; give it once")
		}
		src, v = "?after=", strings.TrimSpace(after[0])
		if v == "" {
			return 0, nil
		}
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			if v[0] == '-' {
				return 0, fmt.Errorf("%s %q is negative; event ids are seqs from 1 (use 0 or omit it to start at the beginning)", src, clip(v))
			}
			return 0, fmt.Errorf("%s %q is not an event id; send the number of the last `id:` received (or omit it to start at the beginning)", src, clip(v))
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s %q is too large to be an event id", src, clip(v))
	}
	return n, nil
}

// clip shortens a value echoed in an error.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// streamEvents is GET /v1/runs/{id}/events: Server-Sent Events (api.md).
func (s *Server) streamEvents(w http.ResponseWriter, r *http.Request, p config.Principal) {
	id := r.PathValue("id")
	after, err := ParseAfter(r.Header.Get(api.HeaderLastEventID), r.URL.Query()["after"])
	if err != nil {
		writeProblem(w, http.StatusBadRequest, probBadEventID, "Bad event id", err.Error())
		return
	}
	run, err := s.eng.Get(r.Context(), p.Tenant, id)
	if err != nil {
		s.engineError(w, err)
		return
	}
	if r.Header.Get(api.HeaderLastEventID) != "" && run.Status.Terminal() && after >= run.LastSeq {
		// A reconnection after the end: the client has every event and the
		// `end` (which has no id, so Last-Event-ID stays the last seq).
		// 204 is how the SSE standard (WHATWG HTML, "Server-sent events")
		// tells an EventSource to stop reconnecting; replaying `end` would
		// make it reconnect forever.
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if after > run.LastSeq {
		writeProblemBody(w, api.Problem{Type: probBadEventID, Title: "Event id from the future", Status: http.StatusBadRequest, RunID: id,
			Detail: fmt.Sprintf("run %s has events up to %d, so no client has seen event %d; resume with the last id you received, or omit it to start at the beginning", id, run.LastSeq, after)})
		return
	}
	select {
	case <-s.closing:
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterStopped))
		writeProblem(w, http.StatusServiceUnavailable, probShuttingDown, "Shutting down", "the server is stopping; reconnect in a moment with Last-Event-ID")
		return
	default:
	}
	if !s.acquireStream(p.Tenant) {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterStreams))
		writeProblem(w, http.StatusTooManyRequests, probTooManyStreams, "Too many streams",
			fmt.Sprintf("tenant %s has %d event streams open, its limit (max_streams in server.yaml); close streams you no longer read, or poll GET /v1/runs/%s", p.Tenant, s.cfg.Tenants[p.Tenant].MaxStreams, id))
		return
	}
	defer s.releaseStream(p.Tenant)

	st := &stream{s: s, w: w, rc: http.NewResponseController(w), runID: id, last: after, wantWait: r.URL.Query().Get("wait") == "1"}
	// The whole-request read deadline (ReadTimeout) would end the stream's
	// context when it passes; a stream reads nothing more.
	_ = st.rc.SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", api.MediaEventStream)
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if st.flush() != nil {
		return
	}
	st.run(r, p.Tenant, run.Status, run.LastSeq)
}

// stream writes one client's events.
type stream struct {
	s      *Server
	w      http.ResponseWriter
	rc     *http.ResponseController
	runID  string
	last   int64 // seq of the last event written
	buf    bytes.Buffer
	frames *runFrames
	// deadlineSet is when the write deadline was last moved.
	deadlineSet time.Time
	// wantWait: ?wait=1 asked for `wait` overlays (agents.go).
	wantWait bool
	lastWait string
}

func (st *stream) run(r *http.Request, tenant string, status api.Status, logged int64) {
	ctx := r.Context()
	keep := time.NewTicker(st.s.opts.Keepalive)
	defer keep.Stop()
	st.frames = st.s.frames.acquire(st.runID)
	defer st.s.frames.release(st.runID)
	var waitC <-chan time.Time
	if st.wantWait {
		t := time.NewTicker(st.s.opts.WaitRefresh)
		defer t.Stop()
		waitC = t.C
	}
	// The first overlay goes out at once, not a refresh later: after the
	// events the log held when the stream opened (logged), so a follower
	// reads "created" before why the run waits, or now when it has them all.
	firstWait := st.wantWait
	// firstWaitDue sends the first overlay once the log's events up to logged
	// are written; false means the client is gone.
	firstWaitDue := func() bool {
		if !firstWait || st.last < logged {
			return true
		}
		firstWait = false
		return st.wait(tenant, status) == nil
	}
	for {
		sub, err := st.s.eng.Subscribe(ctx, tenant, st.runID, st.last)
		if err != nil {
			st.s.log.Warn("event stream: subscribing", "run", st.runID, "err", err)
			return
		}
		if !firstWaitDue() {
			return
		}
	events:
		for {
			select {
			case ev, ok := <-sub.C:
				if !ok {
					break events
				}
				st.buf.Reset()
				last := st.add(ev, &status)
				// Take what is already waiting too and write it at once: a
				// stream that is behind catches up in few writes.
			batch:
				for st.buf.Len() < maxBatchBytes {
					select {
					case ev, ok := <-sub.C:
						if !ok {
							break batch // the outer select sees the close
						}
						last = st.add(ev, &status)
					default:
						break batch
					}
				}
				if st.write() != nil {
					return
				}
				st.last = last
				if !firstWaitDue() {
					return
				}
			case <-waitC:
				if st.wait(tenant, status) != nil {
					return
				}
			case <-keep.C:
				// Sent whether or not events flowed: a comment every
				// interval, simply, rather than a timer reset per event.
				if st.comment("keepalive") != nil {
					return
				}
			case <-st.s.closing:
				// Shutdown: what was written is flushed; the client resumes
				// with Last-Event-ID against the restarted server.
				_ = st.comment("server shutting down; reconnect with Last-Event-ID")
				return
			}
		}
		switch err := sub.Err(); {
		case errors.Is(err, engine.ErrDropped):
			// Too slow: the engine never waits for a reader. Closing tells
			// the client to resume from its Last-Event-ID, losing nothing.
			st.s.log.Info("event stream: client fell behind and was disconnected; it resumes with Last-Event-ID", "run", st.runID, "last_seq", st.last)
			return
		case err != nil:
			return // the client went away, the engine stopped or the store failed
		}
		if status.Terminal() {
			st.end(status)
			return
		}
		// The subscription ended before the run did: the engine had not
		// loaded the run yet (just after a restart). Follow it again.
		run, err := st.s.eng.Get(ctx, tenant, st.runID)
		if err != nil {
			return
		}
		if run.Status.Terminal() && run.LastSeq <= st.last {
			st.end(run.Status)
			return
		}
		if !run.Status.Terminal() {
			select {
			case <-time.After(resubscribeDelay):
			case <-ctx.Done():
				return
			case <-st.s.closing:
				return
			}
		}
	}
}

// maxBatchBytes bounds what one write of a catching-up stream carries.
const maxBatchBytes = 64 << 10

// add appends an event's frame to the buffer and returns its seq.
func (st *stream) add(ev api.Event, status *api.Status) int64 {
	if ev.Type == api.EventRunStatus {
		*status = ev.Status
	}
	st.buf.Write(st.frames.frame(ev))
	return ev.Seq
}

// end sends `event: end` (no id: Last-Event-ID stays the last seq).
func (st *stream) end(status api.Status) {
	b, _ := json.Marshal(api.EndData{RunID: st.runID, Status: status, LastSeq: st.last})
	st.buf.Reset()
	st.buf.WriteString("event: " + api.EventEnd + "\ndata: ")
	st.buf.Write(b)
	st.buf.WriteString("\n\n")
	_ = st.write()
}

func (st *stream) comment(text string) error {
	st.buf.Reset()
	st.buf.WriteString(": " + text + "\n\n")
	return st.write()
}

// write sends the buffer and flushes it, within StreamWriteTimeout.
func (st *stream) write() error {
	// Moving the deadline is a timer update in the runtime: do it when a
	// quarter of it has passed, not on every event.
	if now := time.Now(); now.Sub(st.deadlineSet) > st.s.opts.StreamWriteTimeout/4 {
		st.deadlineSet = now
		_ = st.rc.SetWriteDeadline(now.Add(st.s.opts.StreamWriteTimeout))
	}
	if _, err := st.w.Write(st.buf.Bytes()); err != nil {
		return err
	}
	return st.rc.Flush()
}

func (st *stream) flush() error {
	st.deadlineSet = time.Now()
	_ = st.rc.SetWriteDeadline(st.deadlineSet.Add(st.s.opts.StreamWriteTimeout))
	return st.rc.Flush()
}

// acquireStream counts a stream against the tenant's max_streams.
func (s *Server) acquireStream(tenant string) bool {
	limit := s.cfg.Tenants[tenant].MaxStreams
	s.streamsMu.Lock()
	defer s.streamsMu.Unlock()
	if s.streams[tenant] >= limit {
		return false
	}
	s.streams[tenant]++
	s.metrics.sse.WithLabelValues(tenant).Inc()
	return true
}

func (s *Server) releaseStream(tenant string) {
	s.streamsMu.Lock()
	defer s.streamsMu.Unlock()
	s.streams[tenant]--
	s.metrics.sse.WithLabelValues(tenant).Dec()
}

// frameRing is how many encoded events of a run are kept for its streams:
// every stream of a run sends the same bytes for an event, so it is encoded
// once rather than once per watcher. It matches the engine's default
// subscriber buffer, so a lagging stream still finds its frames.
const frameRing = 1024

// frameCache holds the encoded recent events of the runs being streamed.
type frameCache struct {
	mu   sync.Mutex
	runs map[string]*runFrames
}

type runFrames struct {
	refs int // guarded by frameCache.mu
	mu   sync.Mutex
	ring [frameRing]cachedFrame
}

type cachedFrame struct {
	seq int64
	b   []byte
}

func (c *frameCache) acquire(runID string) *runFrames {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.runs == nil {
		c.runs = map[string]*runFrames{}
	}
	rf := c.runs[runID]
	if rf == nil {
		rf = &runFrames{}
		c.runs[runID] = rf
	}
	rf.refs++
	return rf
}

func (c *frameCache) release(runID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if rf := c.runs[runID]; rf != nil {
		if rf.refs--; rf.refs <= 0 {
			delete(c.runs, runID)
		}
	}
}

// frame is the event as an SSE frame: id, event, one-line JSON data. The
// bytes are shared: callers must not change them.
func (rf *runFrames) frame(ev api.Event) []byte {
	slot := &rf.ring[ev.Seq%frameRing]
	rf.mu.Lock()
	defer rf.mu.Unlock()
	if slot.seq == ev.Seq && slot.b != nil {
		return slot.b
	}
	var b bytes.Buffer
	b.WriteString("id: ")
	b.WriteString(strconv.FormatInt(ev.Seq, 10))
	b.WriteString("\nevent: ")
	b.WriteString(string(ev.Type))
	b.WriteString("\ndata: ")
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ev); err != nil { // an api.Event always encodes
		b.WriteString("{}\n")
	}
	b.WriteString("\n")
	slot.seq, slot.b = ev.Seq, b.Bytes()
	return slot.b
}
