package agent

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
)

// answerTransport answers the hello with a session, the poll with body and
// every write with 204, without a network.
type answerTransport struct{ body []byte }

func (t answerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp := &http.Response{StatusCode: http.StatusNoContent, Header: http.Header{}, Body: http.NoBody, Request: req}
	switch {
	case strings.HasSuffix(req.URL.Path, "/sessions"):
		resp.StatusCode = http.StatusOK
		resp.Body = io.NopCloser(strings.NewReader(`{"agent_id":"ag_1","tenant":"t","pool":"p","heartbeat_every":"1s","lease_ttl":"15s","poll_wait":"1s","policy":{"targets":["http://127.0.0.1:*"],"allow_commands":true}}`))
	case strings.HasSuffix(req.URL.Path, "/poll"):
		resp.StatusCode = http.StatusOK
		resp.Body = io.NopCloser(bytes.NewReader(t.body))
	}
	return resp, nil
}

// passSteps passes every step without running anything.
type passSteps struct{}

func (passSteps) Run(ctx context.Context, s api.Step, in engine.StepInput) engine.StepOutput {
	return engine.StepOutput{Status: api.StepPassed, Output: strings.Repeat("o", 10)}
}

// FuzzPollAnswer: whatever a poll answer holds, the agent decodes it or
// refuses it, never panics, never holds more leases than its concurrency,
// and every lease it takes ends.
func FuzzPollAnswer(f *testing.F) {
	f.Add([]byte(`{"leases":[{"id":"L1","epoch":1,"run_id":"r","member":"m","attempt":1,"case":{"id":"m","steps":[{"run":{"command":"x"}}]}}]}`))
	f.Add([]byte(`{"leases":[{"id":"L1","epoch":1,"case":{"id":"m","timeout":"1ms","steps":[{"http":{"method":"GET","url":"http://10.0.0.1/"}},{"run":{"command":"x"}}]}},{"id":"L2","epoch":2,"case":{"id":"n","steps":[]}},{"id":"L3","epoch":3,"case":{"id":"o"}}]}`))
	f.Add([]byte(`{"stop":[{"id":"L1","reason":"cancelled: the run was cancelled"},{"id":"","reason":""}]}`))
	f.Add([]byte(`{"leases":[{"id":"","epoch":0},{"id":"L1","epoch":-4}]}`))
	f.Add([]byte(`{"leases":null,"stop":null}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"leases":[{"id":"L1","epoch":1,"case":{"steps":[{"timeout":"-1s","run":{"command":""}}]}}],"stop":[{"id":"L1","reason":"lease-fenced"}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		a := newAgent(ctx, Options{Server: "http://zof.invalid", Token: "agent-token-0123456789", Name: "fuzz", Concurrency: 2,
			Version: "fuzz", Out: io.Discard, Steps: passSteps{}, Transport: answerTransport{body: body}})
		w, err := a.pollOnce(ctx)
		if err != nil {
			return
		}
		a.handle(w)
		a.mu.Lock()
		n := len(a.leases)
		a.mu.Unlock()
		if n > 2 {
			t.Fatalf("holding %d leases with concurrency 2", n)
		}
		done := make(chan struct{})
		go func() {
			a.wg.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			buf := make([]byte, 1<<20)
			t.Fatalf("a lease did not end within 10s of %q:\n%s", body, buf[:runtime.Stack(buf, true)])
		}
		a.kill(nil)
	})
}
