package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/zof-ai/zof-ci/api"
)

const (
	// maxAnswer bounds an answer body read from the server: a poll answer
	// carries whole case definitions, far below this.
	maxAnswer = 16 << 20
	// maxProblem bounds an error body read for its message.
	maxProblem = 64 << 10
	// fencedType ends the problem type of a write under a lease that is no
	// longer the agent's (docs/agents.md, Leases and fencing).
	fencedType = "lease-fenced"
)

// ErrorKind is what an agent's fatal error means; the CLI maps it to an exit code.
type ErrorKind int

const (
	// KindUnauthorized: the server refused the agent token (401, or 403 for a
	// token that is not an agent token).
	KindUnauthorized ErrorKind = iota + 1
	// KindProtocol: the server speaks another version of the agent protocol (426).
	KindProtocol
)

// Error is a fault the agent cannot outlive: it stops, killing its steps.
type Error struct {
	Kind ErrorKind
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// errFenced: the lease is no longer this agent's (409 lease-fenced, or the
// server no longer knows it).
var errFenced = errors.New("the server fenced the lease (it was given up, expired or granted again)")

// callError is a failed call that may pass when sent again (network, 5xx,
// 429), or a refusal the agent logs and survives (another 4xx).
type callError struct {
	op        string
	status    int
	temporary bool
	msg       string
}

func (e *callError) Error() string { return e.op + ": " + e.msg }

// call sends one request to the server and decodes a 2xx answer into out (nil: none).
func (a *agent) call(ctx context.Context, op, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s: encoding the request: %w", op, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, body)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	req.Header.Set("Authorization", "Bearer "+a.o.Token)
	req.Header.Set(api.AgentProtocolHeader, strconv.Itoa(api.AgentProtocol))
	req.Header.Set("User-Agent", "zof-agent/"+a.o.Version)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &callError{op: op, temporary: true, msg: a.redact(err.Error())}
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		a.contact()
		if out == nil || resp.StatusCode == http.StatusNoContent {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxProblem))
			return nil
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
		if err != nil {
			return &callError{op: op, status: resp.StatusCode, temporary: true, msg: "reading the answer: " + err.Error()}
		}
		if len(b) > maxAnswer {
			return &callError{op: op, status: resp.StatusCode, msg: fmt.Sprintf("the answer is larger than %d bytes; is --server the zof serve API?", maxAnswer)}
		}
		if err := json.Unmarshal(b, out); err != nil {
			return &callError{op: op, status: resp.StatusCode, msg: fmt.Sprintf("the answer is not the agent protocol's JSON (%v); is --server the zof serve API?", err)}
		}
		return nil
	}
	return a.statusError(op, resp)
}

// statusError turns a non-2xx answer into what it means for the agent.
func (a *agent) statusError(op string, resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxProblem))
	var p api.Problem
	detail := strings.TrimSpace(string(b))
	if json.Unmarshal(b, &p) == nil && (p.Detail != "" || p.Title != "") {
		detail = p.Title
		if p.Detail != "" {
			detail = p.Detail
		}
	}
	if len(detail) > 300 {
		detail = detail[:300] + "…"
	}
	detail = a.redact(detail)
	code := resp.StatusCode
	switch {
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		a.contact()
		return &Error{Kind: KindUnauthorized, Msg: fmt.Sprintf(
			"the server refused the agent token (%d %s: %s); check --token or ZOF_AGENT_TOKEN against the pool's tokens in server.yaml (docs/agents.md)",
			code, http.StatusText(code), detail)}
	case code == http.StatusUpgradeRequired:
		a.contact()
		theirs := resp.Header.Get(api.AgentProtocolHeader)
		if theirs == "" {
			theirs = "another version"
		}
		return &Error{Kind: KindProtocol, Msg: fmt.Sprintf(
			"the server speaks agent protocol %s and this zof agent speaks %d (%s); run a zof agent of the server's release",
			theirs, api.AgentProtocol, detail)}
	case code == http.StatusConflict && (strings.HasSuffix(p.Type, fencedType) || p.Type == ""):
		a.contact()
		return errFenced
	case code == http.StatusNotFound:
		a.contact()
		return fmt.Errorf("%s: %w (%s)", op, errNotFound, detail)
	case code == http.StatusTooManyRequests || code == http.StatusRequestTimeout || code >= 500:
		return &callError{op: op, status: code, temporary: true, msg: fmt.Sprintf("%d %s: %s", code, http.StatusText(code), detail)}
	}
	a.contact()
	return &callError{op: op, status: code, msg: fmt.Sprintf("%d %s: %s", code, http.StatusText(code), detail)}
}

// errNotFound: the server does not know what the request names: the agent's
// session (it restarted, or dropped the agent as lost; the agent connects
// again) or a lease (fenced).
var errNotFound = errors.New("not found")

// redact removes the token from text that came from the network.
func (a *agent) redact(s string) string {
	if a.o.Token == "" {
		return s
	}
	return a.mask.String(s)
}
