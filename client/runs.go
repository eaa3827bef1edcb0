package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/sanitize"
)

// MaxIdempotencyKey bounds a key's length; the client's own keys are 64 hex characters.
const MaxIdempotencyKey = 255

// Create submits a run. With a non-empty idempotencyKey (sent as an RFC 8941 sf-string,
// IETF httpapi Idempotency-Key draft) a repeated create returns the run the key already
// made, with replayed true; a create retried after a network failure re-sends the same key,
// so it can never start a second run.
func (c *Client) Create(ctx context.Context, req *api.RunRequest, idempotencyKey string) (run *api.Run, replayed bool, err error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, false, invalidf("encoding the run request: %w", err)
	}
	cl := call{op: "create a run", method: http.MethodPost, path: "/v1/runs", body: body, want: []int{http.StatusCreated, http.StatusOK}, header: http.Header{}}
	if idempotencyKey != "" {
		sf, err := SFString(idempotencyKey)
		if err != nil {
			return nil, false, err
		}
		cl.header.Set(api.HeaderIdempotencyKey, sf)
		cl.safe = true
	}
	var out api.Run
	resp, err := c.do(ctx, cl, &out)
	if err != nil {
		return nil, false, err
	}
	replayed = resp.status == http.StatusOK || strings.EqualFold(resp.header.Get(api.HeaderReplayed), "true")
	if out.ID == "" {
		return nil, false, c.unreachable(&Error{Op: cl.op, Status: resp.status, Temporary: true, Msg: "create a run: the answer names no run"}, 1)
	}
	return &out, replayed, nil
}

// SFString encodes a key as an RFC 8941 sf-string: printable ASCII in double quotes, with
// backslash and quote escaped. Other characters cannot be sent: a usage error.
func SFString(key string) (string, error) {
	if len(key) > MaxIdempotencyKey {
		return "", invalidf("--idempotency-key is %d characters long; use at most %d", len(key), MaxIdempotencyKey)
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(key); i++ {
		ch := key[i]
		if ch < 0x20 || ch > 0x7e {
			return "", invalidf("--idempotency-key may only hold printable ASCII characters (RFC 8941 sf-string); it has %q at byte %d", ch, i)
		}
		if ch == '"' || ch == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(ch)
	}
	b.WriteByte('"')
	return b.String(), nil
}

// Get returns a run's snapshot.
func (c *Client) Get(ctx context.Context, id string) (*api.Run, error) {
	var out api.Run
	_, err := c.do(ctx, call{op: "get run " + sanitize.Line(id), method: http.MethodGet, path: runPath(id), runID: id, safe: true, want: []int{http.StatusOK}}, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// ListOptions filter GET /v1/runs. Zero values match everything.
type ListOptions struct {
	Statuses    []api.Status
	Project     string
	Environment string
	// Branch, PR and Trigger match the run's source exactly; Flaky keeps
	// runs with a flaky member.
	Branch  string
	PR      int
	Trigger string
	Flaky   bool
	// Limit is the page size (0: the server's default).
	Limit int
	// Cursor is RunList.Next of the previous page.
	Cursor string
}

// List returns a page of runs, newest first.
func (c *Client) List(ctx context.Context, o ListOptions) (*api.RunList, error) {
	q := url.Values{}
	for _, s := range o.Statuses {
		q.Add("status", string(s))
	}
	if o.Project != "" {
		q.Set("project", o.Project)
	}
	if o.Environment != "" {
		q.Set("environment", o.Environment)
	}
	if o.Branch != "" {
		q.Set("branch", o.Branch)
	}
	if o.PR > 0 {
		q.Set("pr", strconv.Itoa(o.PR))
	}
	if o.Trigger != "" {
		q.Set("trigger", o.Trigger)
	}
	if o.Flaky {
		q.Set("flaky", "true")
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.Cursor != "" {
		q.Set("cursor", o.Cursor)
	}
	var out api.RunList
	if _, err := c.do(ctx, call{op: "list runs", method: http.MethodGet, path: "/v1/runs", query: q, safe: true, want: []int{http.StatusOK}}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Cancel asks the server to cancel a run and returns the run as of the request; a running run
// reaches cancelled within seconds (follow it). A terminal run is refused (409, KindInvalid).
func (c *Client) Cancel(ctx context.Context, id, reason string) (*api.Run, error) {
	body, _ := json.Marshal(api.CancelRequest{Reason: reason})
	var out api.Run
	// Safe to retry: cancelling a run that is already stopping changes nothing.
	_, err := c.do(ctx, call{op: "cancel run " + sanitize.Line(id), method: http.MethodPost, path: runPath(id) + "/cancel", body: body, runID: id, safe: true,
		want: []int{http.StatusAccepted, http.StatusOK}}, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// Rerun starts a new run with a terminal run's definition and returns it. It is retried only
// when the request surely did not arrive, so a flaky network cannot start two reruns.
func (c *Client) Rerun(ctx context.Context, id string) (*api.Run, error) {
	var out api.Run
	_, err := c.do(ctx, call{op: "rerun run " + sanitize.Line(id), method: http.MethodPost, path: runPath(id) + "/rerun", runID: id,
		want: []int{http.StatusCreated, http.StatusOK}}, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

func runPath(id string) string { return "/v1/runs/" + url.PathEscape(id) }

// Delete removes a finished run for good (an admin token only). A run that has not finished is
// refused (409, KindInvalid): cancel it and wait for it first. It is retried only when the request
// surely did not arrive, so a retry cannot answer "not found" for a run it deleted itself.
func (c *Client) Delete(ctx context.Context, id string) error {
	_, err := c.do(ctx, call{op: "delete run " + sanitize.Line(id), method: http.MethodDelete, path: runPath(id), runID: id,
		want: []int{http.StatusNoContent}}, nil)
	return err
}
