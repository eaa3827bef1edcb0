package home

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
)

// The parser of an attempt's stream, fed anything a broken or hostile peer
// could send: it never panics, a frame it accepts is one of the four types
// with only its own data, and what it accepts encodes back to a frame it
// reads the same.
func FuzzReadFrame(f *testing.F) {
	for _, fr := range []frame{
		{Type: frameAlive},
		{Type: frameStarted},
		{Type: frameEvents, Events: []api.Event{{Type: api.EventStepStatus, Step: 1, StepStatus: api.StepRunning}, {Type: api.EventLog, Message: "hi\x00"}}},
		{Type: frameOutcome, Outcome: toWire(engine.RemoteOutcome{Status: api.StatusFailed, Why: "x",
			Evidence: map[int][]engine.Evidence{1: {{Kind: api.ArtifactOutput, Content: []byte{0, 0xff}}}}})},
		{Type: frameOutcome, Outcome: &wireOutcome{Lost: "gone"}},
	} {
		f.Add(appendFrame(nil, fr))
	}
	f.Add([]byte(`{"type":"alive","events":[]}` + "\n"))
	f.Add([]byte(`{"type":"outcome"}`))
	f.Add([]byte(`{"type":"started"} {"type":"alive"}` + "\n"))
	f.Add([]byte("\n\n"))
	f.Add([]byte(`{"type":"events","outcome":{}}` + "\n" + `{"type":"alive"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bufio.NewReaderSize(bytes.NewReader(b), 16)
		for range 8 {
			fr, err := readFrame(r)
			if err != nil {
				if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, errFrameTooLong) ||
					strings.Contains(err.Error(), "frame") {
					return
				}
				t.Fatalf("unexpected error %v", err)
			}
			switch fr.Type {
			case frameAlive, frameStarted:
				if fr.Events != nil || fr.Outcome != nil {
					t.Fatalf("%s frame with data: %+v", fr.Type, fr)
				}
			case frameEvents:
				if fr.Outcome != nil {
					t.Fatalf("events frame with an outcome")
				}
			case frameOutcome:
				if fr.Outcome == nil || fr.Events != nil {
					t.Fatalf("outcome frame %+v", fr)
				}
				fr.Outcome.outcome() // must not panic
			default:
				t.Fatalf("accepted type %q", fr.Type)
			}
			again, err := readFrame(bufio.NewReader(bytes.NewReader(appendFrame(nil, fr))))
			if err != nil {
				t.Fatalf("re-reading %+v: %v", fr, err)
			}
			if !reflect.DeepEqual(normalise(again), normalise(fr)) {
				t.Fatalf("round trip changed the frame: %+v → %+v", fr, again)
			}
		}
	})
}

// normalise makes empty and nil slices alike (omitempty drops both).
func normalise(f frame) frame {
	if len(f.Events) == 0 {
		f.Events = nil
	}
	if f.Outcome != nil {
		o := *f.Outcome
		if len(o.Events) == 0 {
			o.Events = nil
		}
		if len(o.Evidence) == 0 {
			o.Evidence = nil
		}
		for i := range o.Evidence {
			if len(o.Evidence[i].Content) == 0 {
				o.Evidence[i].Content = nil
			}
		}
		f.Outcome = &o
	}
	return f
}

// A line longer than maxFrame is refused without reading it all into one
// frame.
func TestReadFrameTooLong(t *testing.T) {
	long := append(append([]byte(`{"type":"events","events":[{"type":"log","message":"`), bytes.Repeat([]byte("x"), maxFrame)...), []byte(`"}]}`+"\n")...)
	if _, err := readFrame(bufio.NewReader(bytes.NewReader(long))); !errors.Is(err, errFrameTooLong) {
		t.Fatalf("err %v, want errFrameTooLong", err)
	}
}
