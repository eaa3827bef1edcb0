package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	sse "github.com/tmaxmax/go-sse"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/sanitize"
)

// Stream failures. All are temporary: reconnect with the last seq (Stream.Last).
var (
	// ErrStreamEnded: the connection closed before the `end` event; an event cut off in
	// the middle is discarded, as the SSE standard says.
	ErrStreamEnded = errors.New("the event stream ended before the run's end event")
	// ErrSilent: no event and no keepalive for the silence interval.
	ErrSilent = errors.New("the event stream went silent")
	// ErrBadEvent: an event that is not one of ours (not JSON, no seq, another run's).
	ErrBadEvent = errors.New("the event stream sent an event that cannot be used")
	// ErrGap: an event's seq skips over events not received; reconnecting fetches them.
	ErrGap = errors.New("the event stream skipped events")
)

// errBodyEOF replaces io.EOF under the SSE parser, so that it reports the end of the
// body as an error instead of dispatching a half-received event (see Stream).
var errBodyEOF = errors.New("end of the event stream body")

// EventsOption changes what Events asks for.
type EventsOption func(*eventsConfig)

type eventsConfig struct {
	onWait func(api.WaitReason)
}

// WithWait asks the server for the run's wait reasons as they change (`?wait=1`,
// docs/agents.md "Why a run waits"): Stream.Next calls f with each one before it returns the
// next event, and with a zero WaitReason once the run no longer waits. The reasons are not
// events of the run's log and never move Last. A server that does not know `wait=1` sends none.
func WithWait(f func(api.WaitReason)) EventsOption {
	return func(c *eventsConfig) { c.onWait = f }
}

// Events opens the run's live stream after seq after (0: from the first event). It makes one
// attempt and does not retry: the caller reconnects with Stream.Last. The stream ends with
// io.EOF after the server's `end` event. When the run had ended and after was its last event,
// the server answers 204 No Content: the Stream then ends with io.EOF at once, and End has the
// run's id and LastSeq but no Status (get the run for it).
func (c *Client) Events(ctx context.Context, id string, after int64, opts ...EventsOption) (*Stream, error) {
	var cfg eventsConfig
	for _, o := range opts {
		o(&cfg)
	}
	op := "stream the events of run " + sanitize.Line(id)
	connCtx, cancel := context.WithCancelCause(ctx)
	silence := c.opts.StreamSilence
	// The silence clock runs from the request: a server that accepts and never
	// answers is as dead as one that stops sending.
	timer := time.AfterFunc(silence, func() { cancel(ErrSilent) })
	fail := func(err error) (*Stream, error) {
		timer.Stop()
		cancel(nil)
		return nil, err
	}
	var q url.Values
	if cfg.onWait != nil {
		q = url.Values{"wait": {"1"}}
	}
	req, err := c.request(connCtx, http.MethodGet, runPath(id)+"/events", q, nil)
	if err != nil {
		return fail(err)
	}
	req.Header.Set("Accept", api.MediaEventStream)
	req.Header.Set("Cache-Control", "no-cache")
	if after > 0 {
		req.Header.Set(api.HeaderLastEventID, strconv.FormatInt(after, 10))
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if context.Cause(connCtx) == ErrSilent && ctx.Err() == nil {
			return fail(&Error{Op: op, Temporary: true, Kind: KindUnavailable, Err: ErrSilent,
				Msg: fmt.Sprintf("%s: no answer within %s", op, silence)})
		}
		return fail(c.transportError(ctx, op, err))
	}
	if resp.StatusCode == http.StatusNoContent && after > 0 {
		// The run ended and every event up to after was delivered: the
		// server's way (the SSE standard's) to say there is nothing to resume.
		resp.Body.Close()
		timer.Stop()
		cancel(nil)
		return &Stream{runID: id, last: after, end: &api.EndData{RunID: id, LastSeq: after}, err: io.EOF,
			body: http.NoBody, stop: func() {}}, nil
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return fail(c.statusError(call{op: op, runID: id}, resp))
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != api.MediaEventStream {
		body, _ := readLimited(resp.Body, maxErrorBytes)
		resp.Body.Close()
		return fail(&Error{Op: op, Status: resp.StatusCode, Temporary: true, Kind: KindUnavailable,
			Msg: fmt.Sprintf("%s: the server answered with %s instead of an event stream", op, describeBody(resp.Header.Get("Content-Type"), body))})
	}
	s := newStream(resp.Body, id, after, func() { timer.Reset(silence) })
	s.onWait = cfg.onWait
	s.ctx, s.parent, s.cancel, s.timer, s.silence = connCtx, ctx, cancel, timer, silence
	return s, nil
}

// Stream reads one connection of a run's event stream. Events come out in seq order, each
// once: duplicates (seq ≤ Last) are skipped, a gap is ErrGap. Next is not safe for concurrent
// use; to interrupt a blocked Next, end the context given to Events.
type Stream struct {
	runID string
	body  io.ReadCloser
	next  func() (sse.Event, error, bool)
	stop  func()
	last  int64
	end   *api.EndData
	err   error
	once  sync.Once
	// onWait gets the `wait` overlays (WithWait); nil: none were asked for.
	onWait func(api.WaitReason)

	ctx     context.Context // the connection's; its cause tells silence from the caller's cancel
	parent  context.Context
	cancel  context.CancelCauseFunc
	timer   *time.Timer
	silence time.Duration
}

// newStream reads events from body; activity is called whenever bytes arrive (keepalives too).
func newStream(body io.ReadCloser, runID string, after int64, activity func()) *Stream {
	r := &eofGuard{r: body, activity: activity}
	seq := iter.Seq2[sse.Event, error](sse.Read(r, &sse.ReadConfig{MaxEventSize: maxEventBytes}))
	next, stop := iter.Pull2(seq)
	return &Stream{runID: runID, body: body, next: next, stop: stop, last: after}
}

// eofGuard reports each read to activity and turns io.EOF into errBodyEOF. go-sse's Read
// dispatches an event that was still being received when the body ended at EOF; the SSE
// standard says to discard it, and a run's event cut in half must not look whole. With
// another error, Read still parses every complete event before it, then reports the error.
type eofGuard struct {
	r        io.Reader
	activity func()
}

func (g *eofGuard) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	if n > 0 && g.activity != nil {
		g.activity()
	}
	if err == io.EOF {
		err = errBodyEOF
	}
	return n, err
}

// Last is the seq of the last event returned (or the after given to Events).
func (s *Stream) Last() int64 { return s.last }

// End is the `end` event's data once Next has returned io.EOF.
func (s *Stream) End() *api.EndData { return s.end }

// Next returns the next event. After the `end` event it returns io.EOF; a dropped, silent
// or broken stream gives an error wrapping ErrStreamEnded, ErrSilent, ErrBadEvent or ErrGap
// (reconnect after Last), or the context's error. The stream is closed after any error.
func (s *Stream) Next() (api.Event, error) {
	for s.err == nil {
		raw, err, ok := s.next()
		if !ok {
			s.finish(fmt.Errorf("%w (the server closed the connection)", ErrStreamEnded))
			break
		}
		if err != nil {
			s.finish(s.readError(err))
			break
		}
		if raw.Type == api.EventEnd {
			s.finish(s.endEvent(raw))
			break
		}
		if raw.Data == "" {
			continue // a bare id or retry field carries nothing for us
		}
		if raw.Type == api.EventWait && s.onWait != nil {
			var w api.WaitReason
			if err := json.Unmarshal([]byte(raw.Data), &w); err != nil {
				s.finish(fmt.Errorf("%w: after seq %d came a wait reason that is not valid (%v)", ErrBadEvent, s.last, err))
				break
			}
			s.onWait(w)
			continue
		}
		var e api.Event
		if err := json.Unmarshal([]byte(raw.Data), &e); err != nil {
			s.finish(fmt.Errorf("%w: after seq %d came data that is not an event (%v)", ErrBadEvent, s.last, err))
			break
		}
		switch {
		case e.Seq <= 0:
			s.finish(fmt.Errorf("%w: after seq %d came an event without a seq", ErrBadEvent, s.last))
		case e.RunID != "" && s.runID != "" && e.RunID != s.runID:
			s.finish(fmt.Errorf("%w: event %d belongs to run %s, not %s", ErrBadEvent, e.Seq, sanitize.Line(e.RunID), sanitize.Line(s.runID)))
		case e.Seq <= s.last:
			continue // already seen (a resumed stream may repeat): never twice
		case e.Seq != s.last+1:
			s.finish(fmt.Errorf("%w: event %d came after %d", ErrGap, e.Seq, s.last))
		default:
			if e.Type == "" {
				e.Type = api.EventType(raw.Type)
			}
			s.last = e.Seq
			return e, nil
		}
	}
	return api.Event{}, s.err
}

// endEvent checks the `end` event: the stream may only end once every event was delivered.
func (s *Stream) endEvent(raw sse.Event) error {
	var end api.EndData
	if raw.Data != "" {
		if err := json.Unmarshal([]byte(raw.Data), &end); err != nil {
			return fmt.Errorf("%w: the end event's data is not valid (%v)", ErrBadEvent, err)
		}
	}
	if end.LastSeq > s.last {
		return fmt.Errorf("%w: the stream ended at event %d but the run's last event is %d", ErrGap, s.last, end.LastSeq)
	}
	s.end = &end
	return io.EOF
}

// readError explains why reading stopped.
func (s *Stream) readError(err error) error {
	switch {
	case s.ctx != nil && context.Cause(s.ctx) == ErrSilent && s.parent.Err() == nil:
		return fmt.Errorf("%w: no event or keepalive for %s", ErrSilent, s.silence)
	case s.parent != nil && s.parent.Err() != nil:
		return s.parent.Err()
	case errors.Is(err, errBodyEOF):
		return fmt.Errorf("%w (the connection closed after event %d)", ErrStreamEnded, s.last)
	case errors.Is(err, sse.ErrUnexpectedEOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w (cut off in the middle of an event after %d)", ErrStreamEnded, s.last)
	}
	if errors.Is(err, bufio.ErrTooLong) {
		return fmt.Errorf("%w: an event larger than %d MiB", ErrBadEvent, maxEventBytes>>20)
	}
	return fmt.Errorf("%w: %v", ErrStreamEnded, err)
}

// finish records the stream's end and releases the connection.
func (s *Stream) finish(err error) {
	s.err = err
	s.Close()
}

// Close releases the connection. It is safe to call more than once, not concurrently with Next.
func (s *Stream) Close() error {
	s.once.Do(func() {
		if s.err == nil {
			s.err = errors.New("the event stream is closed")
		}
		if s.timer != nil {
			s.timer.Stop()
		}
		if s.cancel != nil {
			s.cancel(nil)
		}
		s.body.Close()
		s.stop()
	})
	return nil
}
