package server_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/api"
)

// eventSourceFixture is the npm project of a standard EventSource client
// (package.json and its lockfile pin npm's `eventsource`) and its script.
const eventSourceFixture = "testdata/eventsource"

// npmCITimeout bounds installing the fixture (a download on a cold cache).
const npmCITimeout = 3 * time.Minute

// needNode reports a missing node, npm or package: in CI (CI=true) the test
// fails, since it proves what no Go client can; elsewhere it skips, loudly.
func needNode(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s; CI must run this test: install node 20+ and npm (apt-get install nodejs npm)", msg)
	}
	t.Skipf("SKIPPED, NOT RUN: %s; install node 20+ and npm to run this test (in CI it fails instead)", msg)
}

// installEventSource copies the fixture into a temporary directory, installs
// its locked dependencies with `npm ci` and returns the directory.
func installEventSource(t *testing.T) (node, dir string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		needNode(t, "node is not on PATH")
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		needNode(t, "npm is not on PATH")
	}
	dir = t.TempDir()
	for _, name := range []string{"package.json", "package-lock.json", "follow.mjs"} {
		b, err := os.ReadFile(filepath.Join(eventSourceFixture, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), npmCITimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		needNode(t, "npm ci of %s failed (%v):\n%s", eventSourceFixture, err, out)
	}
	return node, dir
}

// TestStandardEventSourceStopsAfterEnd follows a finished run with a real
// WHATWG EventSource (npm's eventsource under node). It gets every event and
// `end`; the server closes; the client reconnects once with Last-Event-ID,
// is answered 204 No Content and stops for good. Before the 204, it
// reconnected every 3 s, each time replaying `end`.
func TestStandardEventSourceStopsAfterEnd(t *testing.T) {
	node, dir := installEventSource(t)
	h := newHarness(t, harnessOpts{})
	run := h.create(tokAlphaRunner, manySteps(2))
	done := h.waitStatus(tokAlphaRunner, run.ID, api.StatusPassed)

	// The library reconnects 3 s after the close; one reconnection and the
	// 204 fit well within the deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "follow.mjs", h.url+"/v1/runs/"+run.ID+"/events")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "ZOF_TOKEN="+tokAlphaViewer)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("the EventSource was still reconnecting after %s:\n%s", 30*time.Second, out.String())
	}
	if err != nil {
		t.Fatalf("node follow.mjs: %v:\n%s", err, out.String())
	}
	var requests, responses, ends []string
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		kind, rest, _ := strings.Cut(line, " ")
		switch kind {
		case "request":
			requests = append(requests, rest)
		case "response":
			responses = append(responses, rest)
		case "end":
			ends = append(ends, rest)
		}
	}
	last := fmt.Sprint(done.LastSeq)
	wantEnd := fmt.Sprintf(`{"run_id":%q,"status":"passed","last_seq":%d}`, run.ID, done.LastSeq)
	if fmt.Sprint(requests) != fmt.Sprint([]string{"", last}) ||
		fmt.Sprint(responses) != fmt.Sprint([]string{"200", "204"}) ||
		len(ends) != 1 || ends[0] != wantEnd ||
		!strings.HasSuffix(strings.TrimSpace(out.String()), "closed") {
		t.Errorf("want one request without Last-Event-ID answered 200 with %s, one with Last-Event-ID %s answered 204, then closed; the client saw:\n%s", wantEnd, last, out.String())
	}
}

// TestReconnectAfterEnd: which requests for a finished run's stream are
// answered 204 (nothing left: stop reconnecting) and which get events.
func TestReconnectAfterEnd(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	run := h.create(tokAlphaRunner, manySteps(2))
	done := h.waitStatus(tokAlphaRunner, run.ID, api.StatusPassed)
	last := done.LastSeq
	tests := []struct {
		name, query string
		hdr         []string
		status      int
		events      int64 // events before `end` when 200
	}{
		{"Last-Event-ID at the end", "", []string{api.HeaderLastEventID, fmt.Sprint(last)}, http.StatusNoContent, 0},
		{"Last-Event-ID past the end", "", []string{api.HeaderLastEventID, fmt.Sprint(last + 5)}, http.StatusNoContent, 0},
		{"Last-Event-ID wins over ?after=", "?after=1", []string{api.HeaderLastEventID, fmt.Sprint(last)}, http.StatusNoContent, 0},
		{"Last-Event-ID one before the end", "", []string{api.HeaderLastEventID, fmt.Sprint(last - 1)}, http.StatusOK, 1},
		{"?after= at the end still gets end", fmt.Sprintf("?after=%d", last), nil, http.StatusOK, 0},
		{"no id: the whole log", "", nil, http.StatusOK, last},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, r := h.stream(tokAlphaViewer, run.ID, tt.query, tt.hdr...)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if tt.status == http.StatusNoContent {
				if len(r.body) != 0 || r.header.Get("Content-Type") != "" {
					t.Errorf("204 with Content-Type %q and body %q", r.header.Get("Content-Type"), r.body)
				}
				return
			}
			evs, end := st.events(t)
			if int64(len(evs)) != tt.events || end.LastSeq != last || end.Status != api.StatusPassed {
				t.Errorf("%d events then end %+v; want %d events then end at %d", len(evs), end, tt.events, last)
			}
		})
	}
}
