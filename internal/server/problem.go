package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/zof-ai/zof-ci/api"
)

// Problem types (RFC 9457 `type`): stable URNs a client may switch on.
const (
	probPrefix         = "urn:zof:problem:"
	probBadRequest     = probPrefix + "bad-request"
	probBadJSON        = probPrefix + "malformed-json"
	probUnknownField   = probPrefix + "unknown-field"
	probTooLarge       = probPrefix + "body-too-large"
	probMediaType      = probPrefix + "unsupported-media-type"
	probUnauthorized   = probPrefix + "unauthorized"
	probForbidden      = probPrefix + "forbidden"
	probTokenInURL     = probPrefix + "token-in-url"
	probNotFound       = probPrefix + "not-found"
	probMethod         = probPrefix + "method-not-allowed"
	probIdemKey        = probPrefix + "idempotency-key"
	probIdemConflict   = probPrefix + "idempotency-conflict"
	probRefused        = probPrefix + "run-refused"
	probState          = probPrefix + "run-state"
	probBadEventID     = probPrefix + "bad-event-id"
	probTooManyStreams = probPrefix + "too-many-streams"
	probUnavailable    = probPrefix + "unavailable"
	probInternal       = probPrefix + "internal"
	probBadQuery       = probPrefix + "bad-query"
	probShuttingDown   = probPrefix + "shutting-down"
	mediaJSON          = "application/json"
)

// writeProblem writes an RFC 9457 body.
func writeProblem(w http.ResponseWriter, status int, typ, title, detail string) {
	writeProblemBody(w, api.Problem{Type: typ, Title: title, Status: status, Detail: detail})
}

func writeProblemBody(w http.ResponseWriter, p api.Problem) {
	b, err := json.Marshal(p)
	if err != nil { // a Problem always marshals
		b = []byte(`{"type":"about:blank","title":"Internal error","status":500}`)
	}
	h := w.Header()
	h.Set("Content-Type", api.MediaProblem)
	h.Set("Content-Length", strconv.Itoa(len(b)+1))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	_, _ = w.Write(append(b, '\n'))
}

// writeJSON writes v as the response body.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		writeProblem(w, http.StatusInternalServerError, probInternal, "Internal error", "the response could not be encoded; this is a bug in zof serve, please report it")
		return
	}
	h := w.Header()
	h.Set("Content-Type", mediaJSON)
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// bodyError is a request body problem with its status.
type bodyError struct {
	status int
	typ    string
	title  string
	detail string
}

func (e *bodyError) Error() string { return e.detail }

func (e *bodyError) write(w http.ResponseWriter) {
	writeProblem(w, e.status, e.typ, e.title, e.detail)
}

// decodeJSON reads the body into v strictly: JSON media type, at most max
// bytes, no unknown fields, nothing after the value. optional allows an
// empty body (v keeps its zero value).
func decodeJSON(w http.ResponseWriter, r *http.Request, max int64, v any, optional bool) *bodyError {
	if r.ContentLength > max {
		return tooLarge(max)
	}
	if r.ContentLength != 0 {
		ct := r.Header.Get("Content-Type")
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != mediaJSON && !(strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))) {
			if ct == "" {
				ct = "none"
			}
			return &bodyError{http.StatusUnsupportedMediaType, probMediaType, "Unsupported media type",
				fmt.Sprintf("the body must be JSON: send `Content-Type: application/json` (got %s)", ct)}
		}
	}
	body := http.MaxBytesReader(w, r.Body, max)
	defer body.Close()
	data, err := io.ReadAll(body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return tooLarge(max)
		}
		return &bodyError{http.StatusBadRequest, probBadRequest, "Body not read", "the request body could not be read (" + err.Error() + "); send it again"}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		if optional {
			return nil
		}
		return &bodyError{http.StatusBadRequest, probBadJSON, "Empty body", "the request needs a JSON body (a run request); see openapi.yaml for its schema"}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err, data)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &bodyError{http.StatusBadRequest, probBadJSON, "Malformed JSON",
			fmt.Sprintf("the body has data after the JSON value (at byte %d); send exactly one JSON object", dec.InputOffset())}
	}
	return nil
}

func tooLarge(max int64) *bodyError {
	return &bodyError{http.StatusRequestEntityTooLarge, probTooLarge, "Body too large",
		fmt.Sprintf("the request body is larger than this server's limit of %d bytes (max_body in server.yaml); select fewer cases or ask the operator to raise max_body", max)}
}

// jsonError explains a decoding error: where, and what to change.
func jsonError(err error, data []byte) *bodyError {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		line, col := position(data, syn.Offset)
		return &bodyError{http.StatusBadRequest, probBadJSON, "Malformed JSON",
			fmt.Sprintf("the body is not valid JSON at line %d, column %d: %v", line, col, syn)}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &bodyError{http.StatusBadRequest, probBadJSON, "Malformed JSON", "the body ends in the middle of the JSON value; was it cut off?"}
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "the body"
		}
		return &bodyError{http.StatusBadRequest, probBadJSON, "Wrong JSON type",
			fmt.Sprintf("%s: expected %s, got JSON %s", field, typ.Type, typ.Value)}
	}
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return &bodyError{http.StatusBadRequest, probUnknownField, "Unknown field",
			fmt.Sprintf("unknown field %s in the body; remove it or check its spelling (an older server? see openapi.yaml)", name)}
	}
	return &bodyError{http.StatusBadRequest, probBadJSON, "Malformed JSON", "the body could not be decoded: " + strings.TrimPrefix(msg, "json: ")}
}

// position turns a byte offset into a 1-based line and column.
func position(data []byte, off int64) (int, int) {
	off = min(max(off, 0), int64(len(data)))
	before := data[:off]
	line := bytes.Count(before, []byte{'\n'}) + 1
	col := int(off) - bytes.LastIndexByte(before, '\n')
	return line, col
}
