package home

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
)

// The stream of one delegated attempt (POST /v1/cluster/attempts): one JSON
// object per line (NDJSON), in this order: any number of alive, at most one
// started, events after it, and last the outcome. Nothing follows the
// outcome; a stream that ends before it means the home was lost.
const (
	frameAlive   = "alive"
	frameStarted = "started"
	frameEvents  = "events"
	frameOutcome = "outcome"
)

// maxFrame bounds one line of the stream. The largest frame is an outcome
// carrying what an agent's result may (server.MaxAgentBody, 8 MiB, of
// which evidence is base64 in both): twice that leaves room for the
// re-encoding.
const maxFrame = 16 << 20

// maxAttemptBody bounds the attempt request: a case with its steps, the
// environment's headers and the run's secrets, as a run request is (the
// largest max_body a tenant may set is far below).
const maxAttemptBody = 16 << 20

// frame is one line of the stream.
type frame struct {
	Type    string       `json:"type"`
	Events  []api.Event  `json:"events,omitempty"`
	Outcome *wireOutcome `json:"outcome,omitempty"`
}

// wireOutcome is engine.RemoteOutcome on the wire.
type wireOutcome struct {
	Status   api.Status     `json:"status,omitempty"`
	Why      string         `json:"why,omitempty"`
	Events   []api.Event    `json:"events,omitempty"`
	Lost     string         `json:"lost,omitempty"`
	Evidence []wireEvidence `json:"evidence,omitempty"`
}

type wireEvidence struct {
	Step        int              `json:"step"`
	Kind        api.ArtifactKind `json:"kind"`
	ContentType string           `json:"content_type,omitempty"`
	Content     []byte           `json:"content"`
	Truncated   bool             `json:"truncated,omitempty"`
}

func toWire(out engine.RemoteOutcome) *wireOutcome {
	w := &wireOutcome{Status: out.Status, Why: out.Why, Events: out.Events, Lost: out.Lost}
	for _, step := range slices.Sorted(maps.Keys(out.Evidence)) {
		for _, e := range out.Evidence[step] {
			w.Evidence = append(w.Evidence, wireEvidence{Step: step, Kind: e.Kind, ContentType: e.ContentType, Content: e.Content, Truncated: e.Truncated})
		}
	}
	return w
}

func (w *wireOutcome) outcome() engine.RemoteOutcome {
	out := engine.RemoteOutcome{Status: w.Status, Why: w.Why, Events: w.Events, Lost: w.Lost}
	for _, e := range w.Evidence {
		if out.Evidence == nil {
			out.Evidence = map[int][]engine.Evidence{}
		}
		out.Evidence[e.Step] = append(out.Evidence[e.Step], engine.Evidence{Kind: e.Kind, ContentType: e.ContentType, Content: e.Content, Truncated: e.Truncated})
	}
	return out
}

// errFrameTooLong: a line longer than maxFrame.
var errFrameTooLong = errors.New("a frame of the attempt's stream is longer than its limit")

// readFrame reads and checks one frame. io.EOF: the stream ended cleanly
// between frames (before an outcome, that is a lost home too).
func readFrame(r *bufio.Reader) (frame, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if len(line)+len(chunk) > maxFrame+1 {
			return frame{}, errFrameTooLong
		}
		line = append(line, chunk...)
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if errors.Is(err, io.EOF) && len(line) > 0 {
			return frame{}, io.ErrUnexpectedEOF
		}
		return frame{}, err
	}
	line = bytes.TrimSpace(line)
	var f frame
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return frame{}, fmt.Errorf("a frame of the attempt's stream is not valid: %w", err)
	}
	if dec.More() {
		return frame{}, errors.New("a frame of the attempt's stream holds more than one object")
	}
	switch f.Type {
	case frameAlive, frameStarted:
		if f.Events != nil || f.Outcome != nil {
			return frame{}, fmt.Errorf("a %s frame carries data", f.Type)
		}
	case frameEvents:
		if f.Outcome != nil {
			return frame{}, errors.New("an events frame carries an outcome")
		}
	case frameOutcome:
		if f.Outcome == nil || f.Events != nil {
			return frame{}, errors.New("an outcome frame must carry the outcome and nothing else")
		}
	default:
		return frame{}, fmt.Errorf("unknown frame type %.40q", f.Type)
	}
	return f, nil
}

// appendFrame encodes f as one line.
func appendFrame(dst []byte, f frame) []byte {
	b, err := json.Marshal(f)
	if err != nil {
		// Events and outcomes are plain data: this is a bug.
		panic(fmt.Sprintf("encoding a frame: %v", err))
	}
	return append(append(dst, b...), '\n')
}
