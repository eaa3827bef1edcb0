package runner

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/client"
	"github.com/zof-ai/zof-ci/internal/ci"
	"github.com/zof-ai/zof-ci/internal/clienttest"
	"github.com/zof-ai/zof-ci/internal/eventually"
	"github.com/zof-ai/zof-ci/internal/gate"
	"github.com/zof-ai/zof-ci/internal/reporters/report"
	"github.com/zof-ai/zof-ci/internal/reporters/reporttest"
)

// These tests run the follower against the real server (clienttest: server.New over a real
// engine), with the faults a network causes: connections cut, the server killed and started
// again, a proxy that breaks the stream.

// waitLimit bounds each wait on the real server.
const waitLimit = 10 * time.Second

const gatedSuite = `version: 1
project: shop
environments:
  staging: {url: "http://127.0.0.1:1"}
cases:
  - id: login
    steps:
      - name: "wait:login"
        run: "true"
  - id: cart
    steps:
      - name: "add"
        run: "true"
      - name: "%s"
        run: "true"
`

func writeSuite(t *testing.T, cartStep string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "zof.yaml")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(gatedSuite, "%s", cartStep)), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func remoteOptions(t *testing.T, suitePath string) (RunOptions, *lockedBuffer) {
	out := &lockedBuffer{}
	return RunOptions{
		Select:            SelectOptions{SuitePath: suitePath, Scope: "all", Lookup: func(string) (string, bool) { return "", false }},
		Timeout:           waitLimit,
		CancelOnInterrupt: true,
		PollInterval:      100 * time.Millisecond,
		Stdout:            out,
		Stderr:            out,
		StopWait:          waitLimit,
		ExitOf:            func(v gate.Verdict) report.Exit { return reporttest.Exits[v.Kind] },
	}, out
}

func testClient(t *testing.T, url string) *client.Client {
	t.Helper()
	c, err := client.New(url, clienttest.Token, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func waitFor(t *testing.T, what string, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(waitLimit):
		t.Fatalf("timed out waiting for %s", what)
	}
}

var runIDRe = regexp.MustCompile(`(?m)^(?:submitted|attached to) run (\S+?)[: ]`)

func runIDOf(t *testing.T, out string) string {
	t.Helper()
	m := runIDRe.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no run id in:\n%s", out)
	}
	return m[1]
}

// TestRemoteRunToVerdict: submit, follow live, report and exit like the embedded run.
func TestRemoteRunToVerdict(t *testing.T) {
	srv := clienttest.Start(t, clienttest.Options{})
	o, out := remoteOptions(t, writeSuite(t, "fail:total differs"))
	o.JSON = filepath.Join(t.TempDir(), "result.json")
	srv.Gates.Open("login")
	code, err := RunRemote(context.Background(), o, RemoteOptions{Client: testClient(t, srv.URL), CI: ci.Context{Provider: ci.Local}})
	if err != nil {
		t.Fatal(err)
	}
	if code.Kind != gate.Failed {
		t.Errorf("verdict %s, want failed\n%s", code.Kind, out)
	}
	for _, want := range []string{
		"idempotency key: ",
		"(random: no CI run identity, so every invocation starts a new run)",
		"submitted run run_",
		"✓ login passed",
		"✗ cart failed at step 2 \"fail:total differs\"",
		"cart step 2 \"fail:total differs\" failed (", // the step line says the failure, once
		"): total differs\n",
		"gate failed: 1 of 2 members failed: cart",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	b, err := os.ReadFile(o.JSON)
	if err != nil || !strings.Contains(string(b), `"exit_code": 1`) {
		t.Errorf("json report: %v\n%s", err, b)
	}
	id := runIDOf(t, out.String())
	run, err := srv.Run(id)
	if err != nil || run.Status != api.StatusFailed || run.Source.Provider != "local" || run.ConcurrencyGroup != "" {
		t.Errorf("server's run: %+v, %v", run, err)
	}
}

// TestRemoteReplayAttaches: the same CI step run again (same key) attaches to the first run;
// a new attempt of the CI run starts a new one.
func TestRemoteReplayAttaches(t *testing.T) {
	srv := clienttest.Start(t, clienttest.Options{})
	suitePath := writeSuite(t, "total")
	gh := ci.Context{Provider: ci.GitHub, Repo: "acme/shop", SHA: "0123456789abcdef", Ref: "refs/pull/7/merge", PR: 7, RunID: "99", Attempt: 1, Job: "gate"}
	c := testClient(t, srv.URL)

	o, out := remoteOptions(t, suitePath)
	if code, err := RunRemote(context.Background(), o, RemoteOptions{Client: c, CI: gh, Detach: true}); err != nil || code.Kind != gate.Passed {
		t.Fatalf("detach: %s %v\n%s", code.Kind, err, out)
	}
	first := strings.TrimSpace(lastLine(out.String()))

	o2, out2 := remoteOptions(t, suitePath)
	go func() {
		waitFor(t, "the login step", srv.Gates.Started("login"))
		srv.Gates.Open("login")
	}()
	code, err := RunRemote(context.Background(), o2, RemoteOptions{Client: c, CI: gh})
	if err != nil || code.Kind != gate.Passed {
		t.Fatalf("retry: %s %v\n%s", code.Kind, err, out2)
	}
	if !strings.Contains(out2.String(), "attached to run "+first+": the idempotency key was used before") {
		t.Errorf("the retried step did not attach to %s:\n%s", first, out2)
	}
	run, err := srv.Run(first)
	if err != nil || run.ConcurrencyGroup != "shop/staging/pr-7" || run.Source.CIRunID != "99" || run.Source.SHA != gh.SHA {
		t.Errorf("server's run: %+v, %v", run, err)
	}

	gh.Attempt = 2
	o3, out3 := remoteOptions(t, suitePath)
	if code, err := RunRemote(context.Background(), o3, RemoteOptions{Client: c, CI: gh}); err != nil || code.Kind != gate.Passed {
		t.Fatalf("attempt 2: %s %v\n%s", code.Kind, err, out3)
	}
	if id := runIDOf(t, out3.String()); id == first || !strings.Contains(out3.String(), "submitted run") {
		t.Errorf("attempt 2 reused run %s:\n%s", first, out3)
	}
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	return s[strings.LastIndexByte(s, '\n')+1:]
}

// TestRemoteInterruptCancels: Ctrl-C cancels the remote run, waits for its terminal status,
// reports and exits 130.
func TestRemoteInterruptCancels(t *testing.T) {
	srv := clienttest.Start(t, clienttest.Options{})
	o, out := remoteOptions(t, writeSuite(t, "total"))
	ctx, interrupt := context.WithCancel(context.Background())
	go func() {
		waitFor(t, "the login step", srv.Gates.Started("login"))
		eventually.Wait(t, waitLimit, func() bool { return strings.Contains(out.String(), "submitted run") }, "the submitted run line")
		interrupt()
	}()
	code, err := RunRemote(ctx, o, RemoteOptions{Client: testClient(t, srv.URL), CI: ci.Context{Provider: ci.Local}})
	if err != nil || code.Kind != gate.Interrupted {
		t.Fatalf("verdict %s %v, want 130\n%s", code.Kind, err, out)
	}
	run, err := srv.Run(runIDOf(t, out.String()))
	if err != nil || run.Status != api.StatusCancelled || !strings.Contains(run.Reason, "interrupted (SIGINT/SIGTERM)") {
		t.Errorf("server's run: %s %q, %v", run.Status, run.Reason, err)
	}
	if !strings.Contains(out.String(), "Run "+run.ID+" Cancelled") {
		t.Errorf("the summary does not show the cancelled run:\n%s", out)
	}
}

// TestRemoteInterruptWhileSubmitting: Ctrl-C after the server created the run but before its
// answer arrived: the client finds the run by its key and cancels it; no second run remains.
func TestRemoteInterruptWhileSubmitting(t *testing.T) {
	srv := clienttest.Start(t, clienttest.Options{})
	target, _ := url.Parse(srv.URL)
	rp := httputil.NewSingleHostReverseProxy(target)
	ctx, interrupt := context.WithCancel(context.Background())
	held := false
	px := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/v1/runs" && !held {
			held = true
			// The server gets the create; its answer is lost in the interrupt.
			rp.ServeHTTP(httptest.NewRecorder(), r)
			interrupt()
			<-r.Context().Done()
			return
		}
		rp.ServeHTTP(w, r)
	}))
	defer px.Close()
	o, out := remoteOptions(t, writeSuite(t, "total"))
	code, err := RunRemote(ctx, o, RemoteOptions{Client: testClient(t, px.URL), CI: ci.Context{Provider: ci.Local}})
	if err != nil || code.Kind != gate.Interrupted {
		t.Fatalf("verdict %s %v, want 130\n%s", code.Kind, err, out)
	}
	// The cancel is asked for (202) and takes effect at the run's next safe
	// checkpoint: wait for it, boundedly.
	var list *api.RunList
	cancelled := func() bool {
		list, err = testClient(t, srv.URL).List(context.Background(), client.ListOptions{})
		return err == nil && len(list.Runs) == 1 && list.Runs[0].Status == api.StatusCancelled
	}
	if !eventually.Wait(t, waitLimit, cancelled, "the run to be cancelled") {
		t.Fatalf("runs on the server: %+v, %v", list, err)
	}
	if !strings.Contains(out.String(), "interrupted while submitting: run "+list.Runs[0].ID+" cancelled") {
		t.Errorf("output:\n%s", out)
	}
}

// TestRemoteSurvivesRestart: the server is killed while the run waits in the queue and
// started again over the same store (the engine resumes what it held): the follower
// reconnects, resumes, and exits with the run's real verdict.
func TestRemoteSurvivesRestart(t *testing.T) {
	srv := clienttest.Start(t, clienttest.Options{MaxConcurrentRuns: 1})
	c := testClient(t, srv.URL)
	// A run that holds the tenant's only slot until the server dies.
	blocker, _, err := c.Create(context.Background(), &api.RunRequest{Project: "other", Environment: api.Environment{Name: "x"},
		Cases: []api.Case{{ID: "hold", Steps: []api.Step{{Name: "wait:hold", Run: &api.Command{Command: "true"}}}}}}, "")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the blocker", srv.Gates.Started("hold"))
	srv.Gates.Open("login")

	o, out := remoteOptions(t, writeSuite(t, "total"))
	go func() {
		eventually.Wait(t, waitLimit, func() bool { return strings.Contains(out.String(), "In queue (position 1)") }, "the run to wait in the queue")
		srv.Restart() // our run waited in the queue; the engine resumes both runs
		srv.Gates.Open("hold")
	}()
	code, err := RunRemote(context.Background(), o, RemoteOptions{Client: c, CI: ci.Context{Provider: ci.Local}})
	if err != nil || code.Kind != gate.Passed {
		t.Fatalf("verdict %s %v, want 0\n%s", code.Kind, err, out)
	}
	id := runIDOf(t, out.String())
	run, _ := srv.Run(id)
	if run.Status != api.StatusPassed {
		t.Errorf("server's run %s", run.Status)
	}
	if b, _ := srv.Run(blocker.ID); !b.Status.Terminal() {
		t.Errorf("blocker %s, want finished", b.Status)
	}
	if !strings.Contains(out.String(), "✓ cart passed") || !strings.Contains(out.String(), "gate passed: 2 of 2 members passed") {
		t.Errorf("output:\n%s", out)
	}
}

// TestRemoteDropsAndProxyFaults follows runs through faults between client and server and
// checks that the fold equals the server's own snapshot.
func TestRemoteDropsAndProxyFaults(t *testing.T) {
	tests := []struct {
		name     string
		proxy    func(w http.ResponseWriter, r *http.Request, next http.Handler)
		noStream bool
		drops    bool
		notice   string
	}{
		{name: "connections cut mid-run", drops: true},
		{name: "--no-stream", noStream: true},
		{name: "proxy answers HTML to streams", proxy: func(w http.ResponseWriter, r *http.Request, next http.Handler) {
			if strings.HasSuffix(r.URL.Path, "/events") {
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(http.StatusBadGateway)
				io.WriteString(w, "<html><h1>502 Bad Gateway</h1></html>")
				return
			}
			next.ServeHTTP(w, r)
		}, notice: "stream unavailable (stream the events of run "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := clienttest.Start(t, clienttest.Options{})
			target, _ := url.Parse(srv.URL)
			base := srv.URL
			if tt.proxy != nil {
				rp := httputil.NewSingleHostReverseProxy(target)
				rp.FlushInterval = -1
				px := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { tt.proxy(w, r, rp) }))
				t.Cleanup(px.Close)
				base = px.URL
			}
			o, out := remoteOptions(t, writeSuite(t, "wait:cart"))
			o.NoStream = tt.noStream
			go func() {
				waitFor(t, "login", srv.Gates.Started("login"))
				if tt.drops {
					srv.DropConnections()
				}
				srv.Gates.Open("login")
				waitFor(t, "cart", srv.Gates.Started("cart"))
				if tt.drops {
					srv.DropConnections()
					time.Sleep(20 * time.Millisecond)
					srv.DropConnections()
				}
				srv.Gates.Open("cart")
			}()
			code, err := RunRemote(context.Background(), o, RemoteOptions{Client: testClient(t, base), CI: ci.Context{Provider: ci.Local}})
			if err != nil || code.Kind != gate.Passed {
				t.Fatalf("verdict %s %v\n%s", code.Kind, err, out)
			}
			if got := strings.Count(out.String(), "stream unavailable"); (tt.notice != "") != (got == 1) || got > 1 || !strings.Contains(out.String(), tt.notice) {
				t.Errorf("stream notices: %d, want %q:\n%s", got, tt.notice, out)
			}
			if !strings.Contains(out.String(), "✓ cart passed") {
				t.Errorf("output:\n%s", out)
			}
		})
	}
}

// TestWatchAttaches: zof watch on a run someone else submitted.
func TestWatchAttaches(t *testing.T) {
	srv := clienttest.Start(t, clienttest.Options{})
	c := testClient(t, srv.URL)
	run, _, err := c.Create(context.Background(), &api.RunRequest{Project: "shop", Environment: api.Environment{Name: "staging"},
		Cases: []api.Case{{ID: "a", Steps: []api.Step{{Name: "wait:a", Run: &api.Command{Command: "true"}}, {Name: "fail:nope", Run: &api.Command{Command: "true"}}}}}}, "")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		waitFor(t, "a", srv.Gates.Started("a"))
		srv.Gates.Open("a")
	}()
	o, out := remoteOptions(t, "")
	code, err := Watch(context.Background(), o, WatchOptions{Client: c, RunID: run.ID})
	if err != nil || code.Kind != gate.Failed {
		t.Fatalf("verdict %s %v, want 1\n%s", code.Kind, err, out)
	}
	if !strings.HasPrefix(out.String(), "following run "+run.ID+" (shop on staging, ") {
		t.Errorf("output:\n%s", out)
	}
	_, err = Watch(context.Background(), o, WatchOptions{Client: c, RunID: "run_missing"})
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Kind != client.KindInvalid {
		t.Errorf("watch of a missing run: %v", err)
	}
	final, _ := srv.Run(run.ID)
	snap, _ := c.Get(context.Background(), run.ID)
	if diff := cmp.Diff(final.LastSeq, snap.LastSeq); diff != "" {
		t.Error(diff)
	}
}

// TestRemoteSaysWhatHoldsTheRun: a run held by its tenant's limit says so while it waits,
// live from the real server's stream, once.
func TestRemoteSaysWhatHoldsTheRun(t *testing.T) {
	srv := clienttest.Start(t, clienttest.Options{MaxConcurrentRuns: 1})
	suitePath := writeSuite(t, "total")
	c := testClient(t, srv.URL)
	o, out := remoteOptions(t, suitePath)
	if code, err := RunRemote(context.Background(), o, RemoteOptions{Client: c, CI: ci.Context{Provider: ci.Local}, Detach: true}); err != nil || code.Kind != gate.Passed {
		t.Fatalf("detach: %s %v\n%s", code.Kind, err, out)
	}
	first := strings.TrimSpace(lastLine(out.String()))
	waitFor(t, "the first run's login step", srv.Gates.Started("login"))

	o2, out2 := remoteOptions(t, suitePath)
	go func() {
		// The gate opens only once the second run said what holds it: without the line,
		// the run times out and the test fails.
		for end := time.Now().Add(waitLimit); time.Now().Before(end) && !strings.Contains(out2.String(), " is waiting: "); time.Sleep(10 * time.Millisecond) {
		}
		srv.Gates.Open("login")
	}()
	code, err := RunRemote(context.Background(), o2, RemoteOptions{Client: c, CI: ci.Context{Provider: ci.Local}})
	if err != nil || code.Kind != gate.Passed {
		t.Fatalf("second run: %s %v\n%s", code.Kind, err, out2)
	}
	second := runIDOf(t, out2.String())
	want := "run " + second + " is waiting: tenant " + clienttest.Tenant + " at 1 of 1 running (" + first + ")"
	if n := strings.Count(out2.String(), want); n != 1 {
		t.Errorf("output says %q %d times, want once:\n%s", want, n, out2)
	}
}
