package home

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
)

// attemptRequest is the body of POST /v1/cluster/attempts: the
// engine.RemoteAttempt, without its Started hook (the started frame).
type attemptRequest struct {
	Tenant  string            `json:"tenant"`
	Pool    string            `json:"pool"`
	RunID   string            `json:"run_id"`
	Member  string            `json:"member"`
	Attempt int               `json:"attempt"`
	Case    *api.Case         `json:"case"`
	Variant api.Variant       `json:"variant,omitempty"`
	BaseURL string            `json:"base_url,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
	Secrets []string          `json:"secrets,omitempty"`
}

func (r *attemptRequest) check() error {
	var probs []string
	if r.Tenant == "" || r.Pool == "" || r.RunID == "" || r.Member == "" {
		probs = append(probs, "tenant, pool, run_id and member are required")
	}
	if r.Attempt < 1 {
		probs = append(probs, "attempt counts from 1")
	}
	if r.Case == nil {
		probs = append(probs, "case is required")
	}
	if len(probs) > 0 {
		return errors.New(strings.Join(probs, "; "))
	}
	return nil
}

func (r *attemptRequest) attempt() engine.RemoteAttempt {
	return engine.RemoteAttempt{Tenant: r.Tenant, Pool: r.Pool, RunID: r.RunID, Member: r.Member, Attempt: r.Attempt,
		Case: r.Case, Variant: r.Variant, BaseURL: r.BaseURL, Headers: r.Headers, Secrets: r.Secrets}
}

// delegate has the home at cur run attempt a. done is false when the home
// did not take the attempt (unreachable, or no longer the home): the caller
// tries again once it knows the home. Once the home took it, every end of
// the stream but an outcome is a lost attempt.
func (h *Home) delegate(ctx context.Context, cur holder, a engine.RemoteAttempt, record func([]api.Event)) (out engine.RemoteOutcome, done bool) {
	body, err := json.Marshal(attemptRequest{Tenant: a.Tenant, Pool: a.Pool, RunID: a.RunID, Member: a.Member, Attempt: a.Attempt,
		Case: a.Case, Variant: a.Variant, BaseURL: a.BaseURL, Headers: a.Headers, Secrets: a.Secrets})
	if err != nil {
		return engine.RemoteOutcome{Status: api.StatusFailed, Why: fmt.Sprintf("encoding the attempt for the fleet's home: %v; this is a bug in zof, please report it", err)}, true
	}
	rctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, strings.TrimRight(cur.address, "/")+AttemptsPath, bytes.NewReader(body))
	if err != nil {
		h.log.Error("the fleet home's address is not a URL", "home", cur.replica, "address", cur.address, "err", err)
		return engine.RemoteOutcome{}, false
	}
	req.Header.Set("Authorization", "Bearer "+h.secret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.o.Client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return cancelled(cur), true
		}
		h.unreachable(cur, "the fleet's home replica does not answer; attempts wait for it", "run", a.RunID, "member", a.Member, "err", err)
		return engine.RemoteOutcome{}, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		detail := problemDetail(resp)
		switch {
		case resp.StatusCode == http.StatusBadRequest:
			return engine.RemoteOutcome{Status: api.StatusFailed,
				Why: fmt.Sprintf("the fleet's home replica %s refused the attempt (%s); this is a bug in zof, please report it", cur.replica, detail)}, true
		case resp.StatusCode == http.StatusUnauthorized:
			h.log.Error("the fleet's home replica refused this replica's cluster secret; do both use the same database?", "home", cur.replica, "address", cur.address)
		default:
			h.unreachable(cur, "the fleet's home replica did not take the attempt; attempts wait for a home", "status", resp.StatusCode, "detail", detail)
		}
		return engine.RemoteOutcome{}, false
	}
	// From here the home holds the attempt.
	h.warned.Store(nil)
	silent := time.AfterFunc(h.o.AliveTimeout, func() {
		cancel(fmt.Errorf("no word from it for %s", h.o.AliveTimeout))
	})
	defer silent.Stop()
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	for {
		f, err := readFrame(br)
		if err != nil {
			if ctx.Err() != nil {
				return cancelled(cur), true
			}
			why := err.Error()
			if c := context.Cause(rctx); c != nil {
				why = c.Error()
			} else if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				why = "its stream ended before the outcome"
			}
			return engine.RemoteOutcome{Lost: fmt.Sprintf("the fleet's home replica %s was lost (%s)", cur.replica, why)}, true
		}
		silent.Reset(h.o.AliveTimeout)
		switch f.Type {
		case frameStarted:
			if a.Started != nil {
				a.Started()
			}
		case frameEvents:
			if len(f.Events) > 0 {
				record(f.Events)
			}
		case frameOutcome:
			return f.Outcome.outcome(), true
		}
	}
}

func cancelled(cur holder) engine.RemoteOutcome {
	return engine.RemoteOutcome{Status: api.StatusCancelled,
		Why: fmt.Sprintf("cancelled; the fleet's home replica %s stops the member on its agent", cur.replica)}
}

// problemDetail is the detail of an error answer, bounded.
func problemDetail(resp *http.Response) string {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	var p api.Problem
	if json.Unmarshal(b, &p) == nil && p.Detail != "" {
		return p.Detail
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		s = http.StatusText(resp.StatusCode)
	}
	return s
}
