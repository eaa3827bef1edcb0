package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/zof-ai/zof-ci/api"
)

// frame is one SSE event as the server writes it.
func frame(seq int64, typ api.EventType, runID string) string {
	b, _ := json.Marshal(api.Event{Seq: seq, Type: typ, RunID: runID, At: time.Date(2030, 1, 1, 0, 0, int(seq), 0, time.UTC)})
	return fmt.Sprintf("id: %d\nevent: %s\ndata: %s\n\n", seq, typ, b)
}

func endFrame(last int64) string {
	return fmt.Sprintf("event: end\ndata: {\"run_id\":\"run_1\",\"status\":\"passed\",\"last_seq\":%d}\n\n", last)
}

// readAll reads a stream to its end and returns the seqs and the final error.
func readAll(s *Stream) ([]int64, error) {
	var seqs []int64
	for {
		e, err := s.Next()
		if err != nil {
			return seqs, err
		}
		seqs = append(seqs, e.Seq)
	}
}

func TestStreamParsing(t *testing.T) {
	ev := func(seq int64) string { return frame(seq, api.EventLog, "run_1") }
	tests := []struct {
		name  string
		input string
		after int64
		want  []int64
		err   error // io.EOF for a clean end
		msg   string
	}{
		{name: "clean", input: ev(1) + ev(2) + ": keepalive\n\n" + ev(3) + endFrame(3), want: []int64{1, 2, 3}, err: io.EOF},
		{name: "CRLF lines", input: strings.ReplaceAll(ev(1)+endFrame(1), "\n", "\r\n"), want: []int64{1}, err: io.EOF},
		{name: "resumed after 2", input: ev(1) + ev(2) + ev(3) + ev(4) + endFrame(4), after: 2, want: []int64{3, 4}, err: io.EOF},
		{name: "duplicates are skipped", input: ev(1) + ev(2) + ev(2) + ev(1) + ev(3) + endFrame(3), want: []int64{1, 2, 3}, err: io.EOF},
		{name: "dropped between events", input: ev(1) + ev(2), want: []int64{1, 2}, err: ErrStreamEnded, msg: "the connection closed after event 2"},
		{name: "cut mid-data", input: ev(1) + ev(2)[:30], want: []int64{1}, err: ErrStreamEnded, msg: "cut off in the middle of an event after 1"},
		{name: "cut before the blank line", input: ev(1) + strings.TrimSuffix(ev(2), "\n"), want: []int64{1}, err: ErrStreamEnded},
		{name: "cut after the id", input: ev(1) + "id: 2\n", want: []int64{1}, err: ErrStreamEnded},
		{name: "gap", input: ev(1) + ev(3), want: []int64{1}, err: ErrGap, msg: "event 3 came after 1"},
		{name: "end before the last event", input: ev(1) + endFrame(4), want: []int64{1}, err: ErrGap, msg: "ended at event 1 but the run's last event is 4"},
		{name: "garbage data", input: ev(1) + "data: <html>\n\n", want: []int64{1}, err: ErrBadEvent, msg: "after seq 1 came data that is not an event"},
		{name: "no seq", input: "event: log\ndata: {\"type\":\"log\"}\n\n", err: ErrBadEvent},
		{name: "another run's event", input: frame(1, api.EventLog, "run_2"), err: ErrBadEvent, msg: "belongs to run run_2"},
		{name: "bad end data", input: ev(1) + "event: end\ndata: nope\n\n", want: []int64{1}, err: ErrBadEvent},
		{name: "html page", input: "<html><body>502</body></html>\n", err: ErrStreamEnded},
		{name: "empty", input: "", err: ErrStreamEnded},
		{name: "comments only", input: ": keepalive\n\n: keepalive\n\n", err: ErrStreamEnded},
		{name: "bare id and retry fields", input: "id: 9\n\nretry: 10\n\n" + ev(1) + endFrame(1), want: []int64{1}, err: io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStream(io.NopCloser(strings.NewReader(tt.input)), "run_1", tt.after, nil)
			defer s.Close()
			got, err := readAll(s)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("seqs (-want +got):\n%s", diff)
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("error %v, want %v", err, tt.err)
			}
			if tt.msg != "" && (err == nil || !strings.Contains(err.Error(), tt.msg)) {
				t.Errorf("error %q does not contain %q", err, tt.msg)
			}
			if _, again := s.Next(); again != err {
				t.Errorf("Next after the end = %v, want the same %v", again, err)
			}
		})
	}
}

func TestStreamEndData(t *testing.T) {
	s := newStream(io.NopCloser(strings.NewReader(frame(1, api.EventRunCreated, "run_1")+endFrame(1))), "run_1", 0, nil)
	e, err := s.Next()
	if err != nil || e.Type != api.EventRunCreated || e.Seq != 1 {
		t.Fatalf("Next = %+v, %v", e, err)
	}
	if _, err := s.Next(); err != io.EOF {
		t.Fatalf("Next = %v, want io.EOF", err)
	}
	if diff := cmp.Diff(&api.EndData{RunID: "run_1", Status: api.StatusPassed, LastSeq: 1}, s.End()); diff != "" {
		t.Errorf("End (-want +got):\n%s", diff)
	}
	if s.Last() != 1 {
		t.Errorf("Last = %d", s.Last())
	}
}

func TestStreamEventTooLarge(t *testing.T) {
	big := "data: {\"seq\":1,\"type\":\"log\",\"message\":\"" + strings.Repeat("x", maxEventBytes) + "\"}\n\n"
	s := newStream(io.NopCloser(strings.NewReader(big)), "run_1", 0, nil)
	_, err := readAll(s)
	if !errors.Is(err, ErrBadEvent) || !strings.Contains(err.Error(), "larger than 8 MiB") {
		t.Errorf("error %v, want an event too large", err)
	}
}

// streamServer serves /v1/runs/run_1/events with handler.
func streamServer(t *testing.T, handler func(w http.ResponseWriter, r *http.Request, flush func())) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/runs/run_1/events" || r.Header.Get("Accept") != api.MediaEventStream {
			t.Errorf("request %s Accept %q", r.URL.Path, r.Header.Get("Accept"))
		}
		handler(w, r, func() { w.(http.Flusher).Flush() })
	}))
}

func sseHeaders(w http.ResponseWriter) {
	w.Header().Set("Content-Type", api.MediaEventStream)
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
}

func TestEventsOverHTTP(t *testing.T) {
	var lastID string
	srv := streamServer(t, func(w http.ResponseWriter, r *http.Request, flush func()) {
		lastID = r.Header.Get(api.HeaderLastEventID)
		sseHeaders(w)
		for seq := int64(1); seq <= 4; seq++ {
			io.WriteString(w, frame(seq, api.EventLog, "run_1"))
		}
		io.WriteString(w, endFrame(4))
	})
	defer srv.Close()
	c, _ := newClient(t, srv, Options{})
	s, err := c.Events(context.Background(), "run_1", 2)
	if err != nil {
		t.Fatal(err)
	}
	got, err := readAll(s)
	if err != io.EOF || !cmp.Equal(got, []int64{3, 4}) || lastID != "2" {
		t.Errorf("seqs %v err %v Last-Event-ID %q; want [3 4], EOF, \"2\"", got, err, lastID)
	}
}

// TestEventsWithWait: WithWait asks for the `wait` overlays (?wait=1) and hands each to its
// function, `{}` as a zero WaitReason; they are not events and do not move Last. Without it
// nothing is asked for, and a wait that is not valid JSON ends the stream as a bad event.
func TestEventsWithWait(t *testing.T) {
	const held = `{"kind":"tenant_limit","since":"2030-01-01T00:00:00Z","message":"tenant acme at 2 of 2 running (r_a, r_b)"}`
	tests := []struct {
		name     string
		withWait bool
		waitData string
		want     []api.WaitReason
		wantErr  error
	}{
		{name: "asked", withWait: true, waitData: held, want: []api.WaitReason{
			{Kind: "tenant_limit", Since: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), Message: "tenant acme at 2 of 2 running (r_a, r_b)"}, {}}, wantErr: io.EOF},
		{name: "not asked", waitData: held, wantErr: io.EOF},
		{name: "not JSON", withWait: true, waitData: "held", wantErr: ErrBadEvent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var asked string
			srv := streamServer(t, func(w http.ResponseWriter, r *http.Request, flush func()) {
				asked = r.URL.RawQuery
				sseHeaders(w)
				io.WriteString(w, frame(1, api.EventLog, "run_1"))
				if r.URL.Query().Get("wait") == "1" { // as zof serve: only when asked
					io.WriteString(w, "event: wait\ndata: "+tt.waitData+"\n\n")
					io.WriteString(w, "event: wait\ndata: {}\n\n")
				}
				io.WriteString(w, frame(2, api.EventLog, "run_1"))
				io.WriteString(w, endFrame(2))
			})
			defer srv.Close()
			c, _ := newClient(t, srv, Options{})
			var got []api.WaitReason
			var opts []EventsOption
			if tt.withWait {
				opts = append(opts, WithWait(func(w api.WaitReason) { got = append(got, w) }))
			}
			s, err := c.Events(context.Background(), "run_1", 0, opts...)
			if err != nil {
				t.Fatal(err)
			}
			seqs, err := readAll(s)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == io.EOF && (!cmp.Equal(seqs, []int64{1, 2}) || s.Last() != 2) {
				t.Errorf("seqs %v, Last %d; want [1 2], 2", seqs, s.Last())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("wait reasons (-want +got):\n%s", diff)
			}
			if wantQuery := map[bool]string{true: "wait=1", false: ""}[tt.withWait]; asked != wantQuery {
				t.Errorf("query %q, want %q", asked, wantQuery)
			}
		})
	}
}

// TestEventsNoContentAfterTheEnd: a server answers a reconnection after a finished run's last
// event with 204 No Content; that is the end of the stream, not a failure.
func TestEventsNoContentAfterTheEnd(t *testing.T) {
	srv := streamServer(t, func(w http.ResponseWriter, r *http.Request, _ func()) {
		if r.Header.Get(api.HeaderLastEventID) != "7" {
			t.Errorf("Last-Event-ID %q, want 7", r.Header.Get(api.HeaderLastEventID))
		}
		w.WriteHeader(http.StatusNoContent)
	})
	defer srv.Close()
	c, _ := newClient(t, srv, Options{})
	s, err := c.Events(context.Background(), "run_1", 7)
	if err != nil {
		t.Fatalf("204 after the last event: %v; want the stream's end", err)
	}
	defer s.Close()
	got, err := readAll(s)
	if err != io.EOF || len(got) != 0 || s.Last() != 7 {
		t.Errorf("seqs %v err %v last %d; want none, EOF, 7", got, err, s.Last())
	}
	if end := s.End(); end == nil || *end != (api.EndData{RunID: "run_1", LastSeq: 7}) {
		t.Errorf("End() = %+v, want run_1 at 7", end)
	}
}

func TestEventsRefused(t *testing.T) {
	tests := []struct {
		name      string
		handler   func(w http.ResponseWriter, r *http.Request, flush func())
		code      ErrorKind
		temporary bool
		msg       string
	}{
		{"404", func(w http.ResponseWriter, r *http.Request, _ func()) {
			writeProblem(w, api.Problem{Status: 404, Title: "Not Found"})
		}, KindInvalid, false, "run run_1 not found on"},
		{"401", func(w http.ResponseWriter, r *http.Request, _ func()) {
			writeProblem(w, api.Problem{Status: 401, Title: "Unauthorized"})
		}, KindUnauthorized, false, "refused the token (401)"},
		{"proxy HTML", func(w http.ResponseWriter, r *http.Request, _ func()) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(502)
			io.WriteString(w, "<!DOCTYPE html><title>Bad gateway</title>")
		}, KindUnavailable, true, "an HTML page"},
		{"JSON instead of a stream", func(w http.ResponseWriter, r *http.Request, _ func()) {
			writeJSON(w, 200, api.Run{ID: "run_1"})
		}, KindUnavailable, true, "instead of an event stream"},
		{"429", func(w http.ResponseWriter, r *http.Request, _ func()) {
			w.Header().Set("Retry-After", "5")
			writeProblem(w, api.Problem{Status: 429, Title: "Too Many Requests", Detail: "at most 2 streams"})
		}, KindUnavailable, true, "at most 2 streams"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := streamServer(t, tt.handler)
			defer srv.Close()
			c, _ := newClient(t, srv, Options{})
			s, err := c.Events(context.Background(), "run_1", 0)
			if s != nil {
				s.Close()
				t.Fatal("a stream was returned")
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.Kind != tt.code || ce.Temporary != tt.temporary || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %#v, want code %d temporary %v containing %q", err, tt.code, tt.temporary, tt.msg)
			}
			if tt.name == "429" && ce.RetryAfter != 5*time.Second {
				t.Errorf("RetryAfter = %s", ce.RetryAfter)
			}
		})
	}
}

func TestEventsSilence(t *testing.T) {
	release := make(chan struct{})
	srv := streamServer(t, func(w http.ResponseWriter, r *http.Request, flush func()) {
		sseHeaders(w)
		io.WriteString(w, frame(1, api.EventLog, "run_1"))
		flush()
		select { // a proxy that holds the connection open and passes nothing
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer srv.Close()
	defer close(release)
	c, _ := newClient(t, srv, Options{StreamSilence: 100 * time.Millisecond})
	s, err := c.Events(context.Background(), "run_1", 0)
	if err != nil {
		t.Fatal(err)
	}
	got, err := readAll(s)
	if !errors.Is(err, ErrSilent) || !cmp.Equal(got, []int64{1}) || !strings.Contains(err.Error(), "no event or keepalive for 100ms") {
		t.Errorf("seqs %v err %v; want [1] and silence", got, err)
	}
}

func TestEventsSilentBeforeHeaders(t *testing.T) {
	release := make(chan struct{})
	srv := streamServer(t, func(w http.ResponseWriter, r *http.Request, flush func()) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer srv.Close()
	defer close(release)
	c, _ := newClient(t, srv, Options{StreamSilence: 100 * time.Millisecond})
	_, err := c.Events(context.Background(), "run_1", 0)
	if !errors.Is(err, ErrSilent) || !IsTemporary(err) {
		t.Errorf("err %v, want a temporary silence", err)
	}
}

func TestKeepaliveResetsSilence(t *testing.T) {
	srv := streamServer(t, func(w http.ResponseWriter, r *http.Request, flush func()) {
		sseHeaders(w)
		// 15 × 100 ms of keepalives: 1.5 s, longer than the 1 s of silence allowed. Each gap
		// is a tenth of the silence, so a loaded machine that delays a keepalive by up to
		// 900 ms does not fail the test (with 40 ms against 100 ms, 60 ms of delay did).
		for range 15 {
			io.WriteString(w, ": keepalive\n\n")
			flush()
			time.Sleep(100 * time.Millisecond)
		}
		io.WriteString(w, frame(1, api.EventLog, "run_1")+endFrame(1))
	})
	defer srv.Close()
	c, _ := newClient(t, srv, Options{StreamSilence: time.Second})
	s, err := c.Events(context.Background(), "run_1", 0)
	if err != nil {
		t.Fatal(err)
	}
	got, err := readAll(s)
	if err != io.EOF || !cmp.Equal(got, []int64{1}) {
		t.Errorf("seqs %v err %v; want [1] and a clean end", got, err)
	}
}

func TestEventsCancelled(t *testing.T) {
	srv := streamServer(t, func(w http.ResponseWriter, r *http.Request, flush func()) {
		sseHeaders(w)
		io.WriteString(w, frame(1, api.EventLog, "run_1"))
		flush()
		<-r.Context().Done()
	})
	defer srv.Close()
	c, _ := newClient(t, srv, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	s, err := c.Events(ctx, "run_1", 0)
	if err != nil {
		t.Fatal(err)
	}
	if e, err := s.Next(); err != nil || e.Seq != 1 {
		t.Fatalf("Next = %v, %v", e.Seq, err)
	}
	time.AfterFunc(20*time.Millisecond, cancel)
	if _, err := s.Next(); !errors.Is(err, context.Canceled) {
		t.Errorf("Next after cancel = %v, want context.Canceled", err)
	}
}

// FuzzReadEvents feeds arbitrary bytes to the SSE → api.Event reader: it must never panic,
// never yield an event twice or out of order, and end with an error or a clean end.
func FuzzReadEvents(f *testing.F) {
	ev := func(seq int64) string { return frame(seq, api.EventMemberStatus, "run_1") }
	for _, seed := range []string{
		ev(1) + ev(2) + endFrame(2),
		ev(1) + ev(2)[:17],
		ev(1) + ev(1) + ev(3),
		ev(2) + ev(1),
		": keepalive\n\n" + ev(1) + "\r\n\r\n" + endFrame(1),
		"data: {\"seq\": 1}\ndata: {\"seq\": 2}\n\n",
		"\xef\xbb\xbfid: 1\nevent: log\ndata: {\"seq\":1,\"run_id\":\"run_1\"}\r\r",
		"event: end\ndata: {\"last_seq\": -1}\n\n",
		"data: {\"seq\": 9223372036854775807}\n\ndata: {\"seq\": 1}\n\n",
		"retry: 5\nid: \x00\n\n",
		"<html>",
		"",
	} {
		f.Add([]byte(seed), int64(0))
	}
	f.Add([]byte(ev(1)+ev(2)+ev(3)), int64(2))
	f.Fuzz(func(t *testing.T, data []byte, after int64) {
		if after < 0 {
			after = -after
		}
		s := newStream(io.NopCloser(strings.NewReader(string(data))), "run_1", after, nil)
		defer s.Close()
		last := after
		for range len(data) + 2 {
			e, err := s.Next()
			if err != nil {
				if err == io.EOF && s.End() == nil {
					t.Fatal("clean end without end data")
				}
				return
			}
			if e.Seq != last+1 {
				t.Fatalf("event %d after %d", e.Seq, last)
			}
			last = e.Seq
		}
		t.Fatal("more events than the input could hold")
	})
}
