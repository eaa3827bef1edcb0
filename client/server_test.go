package client_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/client"
	"github.com/zof-ai/zof-ci/internal/clienttest"
)

// waitLimit bounds every wait on the real server; it needs a fraction of it.
const waitLimit = 5 * time.Second

func gatedRequest(steps ...string) *api.RunRequest {
	var ss []api.Step
	for _, s := range steps {
		ss = append(ss, api.Step{Name: s, Run: &api.Command{Command: "true"}})
	}
	return &api.RunRequest{Project: "shop", Environment: api.Environment{Name: "staging"},
		Cases: []api.Case{{ID: "only", Steps: ss}}}
}

func newClient(t *testing.T, url, token string) *client.Client {
	t.Helper()
	c, err := client.New(url, token, client.Options{MaxRetries: 1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestAgainstServer drives every call of the client against the real server.
func TestAgainstServer(t *testing.T) {
	srv := clienttest.Start(t, clienttest.Options{})
	c := newClient(t, srv.URL, clienttest.Token)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()

	run, replayed, err := c.Create(ctx, gatedRequest("wait:one"), "key-1")
	if err != nil || replayed || run.ID == "" {
		t.Fatalf("Create = %+v %v %v", run, replayed, err)
	}
	again, replayed, err := c.Create(ctx, gatedRequest("wait:one"), "key-1")
	if err != nil || !replayed || again.ID != run.ID {
		t.Errorf("replay = %v %v %v, want %s replayed", again.ID, replayed, err, run.ID)
	}
	_, _, err = c.Create(ctx, gatedRequest("other"), "key-1")
	if clientKind(err) != client.KindInvalid || !strings.Contains(err.Error(), "422") {
		t.Errorf("same key, other request: %v (kind %s), want 64 with the 422", err, clientKind(err))
	}

	got, err := c.Get(ctx, run.ID)
	if err != nil || got.ID != run.ID || got.Project != "shop" {
		t.Errorf("Get = %+v, %v", got, err)
	}
	list, err := c.List(ctx, client.ListOptions{Statuses: []api.Status{api.StatusInitial, api.StatusQueued, api.StatusRunning}, Project: "shop"})
	if err != nil || len(list.Runs) != 1 || list.Runs[0].ID != run.ID {
		t.Errorf("List = %+v, %v", list, err)
	}

	// The stream from the start; the run ends once the gate opens.
	st, err := c.Events(ctx, run.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	<-srv.Gates.Started("one")
	srv.Gates.Open("one")
	fold := &api.Run{}
	for {
		e, err := st.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if err := fold.Apply(e); err != nil {
			t.Fatalf("Apply: %v", err)
		}
	}
	if fold.Status != api.StatusPassed || st.End() == nil || st.End().LastSeq != fold.LastSeq {
		t.Errorf("stream ended with %s, end %+v, last %d", fold.Status, st.End(), fold.LastSeq)
	}
	// Resuming after the last event of a finished run gives only the end.
	st, err = c.Events(ctx, run.ID, fold.LastSeq)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Next(); err != io.EOF {
		t.Errorf("resumed finished stream: %v, want io.EOF", err)
	}

	// Cancel of a finished run: 409 → 64 with the server's detail. Rerun: a new run.
	_, err = c.Cancel(ctx, run.ID, "too late")
	if clientKind(err) != client.KindInvalid || !strings.Contains(err.Error(), "409") {
		t.Errorf("Cancel of a passed run: %v (kind %s)", err, clientKind(err))
	}
	re, err := c.Rerun(ctx, run.ID)
	if err != nil || re.ID == run.ID || re.RerunOf != run.ID {
		t.Fatalf("Rerun = %+v, %v", re, err)
	}
	blocked, _, err := c.Create(ctx, gatedRequest("wait:never"), "")
	if err != nil {
		t.Fatal(err)
	}
	<-srv.Gates.Started("never")
	cancelled, err := c.Cancel(ctx, blocked.ID, "not needed")
	if err != nil || cancelled.ID != blocked.ID {
		t.Errorf("Cancel = %+v, %v", cancelled, err)
	}

	// Refusals.
	if _, err := newClient(t, srv.URL, "wrong-token-0123456789").Get(ctx, run.ID); clientKind(err) != client.KindUnauthorized ||
		!strings.Contains(err.Error(), "the server refused the token (401): check --token / ZOF_TOKEN") {
		t.Errorf("bad token: %v", err)
	}
	if _, _, err := newClient(t, srv.URL, clienttest.ViewerToken).Create(ctx, gatedRequest("x"), "k"); clientKind(err) != client.KindUnauthorized ||
		!strings.Contains(err.Error(), "(403)") {
		t.Errorf("viewer creating: %v", err)
	}
	if _, err := newClient(t, srv.URL, clienttest.OtherToken).Get(ctx, run.ID); clientKind(err) != client.KindInvalid ||
		!strings.Contains(err.Error(), "run "+run.ID+" not found on "+srv.URL+" (or it belongs to another tenant)") {
		t.Errorf("other tenant: %v", err)
	}
	if _, err := c.Events(ctx, "run_nope", 0); clientKind(err) != client.KindInvalid {
		t.Errorf("stream of an unknown run: %v", err)
	}
}

// TestConcurrentCreatesMakeOneRun: N identical creates at once (a CI system retrying
// aggressively) all name the same run.
func TestConcurrentCreatesMakeOneRun(t *testing.T) {
	srv := clienttest.Start(t, clienttest.Options{})
	c := newClient(t, srv.URL, clienttest.Token)
	const n = 8
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run, _, err := c.Create(context.Background(), gatedRequest("a"), "same-key")
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = run.ID
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("run ids %v, want one", ids)
		}
	}
}

// TestStreamSurvivesDrop: the server cuts every connection mid-run; a new stream from the
// last seq continues without loss or repeat.
func TestStreamSurvivesDrop(t *testing.T) {
	srv := clienttest.Start(t, clienttest.Options{})
	c := newClient(t, srv.URL, clienttest.Token)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	run, _, err := c.Create(ctx, gatedRequest("wait:a", "wait:b"), "")
	if err != nil {
		t.Fatal(err)
	}
	fold := &api.Run{}
	var seen []int64
	st, err := c.Events(ctx, run.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	drops := 0
	for fold.LastSeq == 0 || !fold.Status.Terminal() {
		e, err := st.Next()
		if err != nil {
			if err == io.EOF || !errors.Is(err, client.ErrStreamEnded) {
				t.Fatalf("Next: %v", err)
			}
			drops++
			if st, err = c.Events(ctx, run.ID, fold.LastSeq); err != nil {
				t.Fatal(err)
			}
			continue
		}
		seen = append(seen, e.Seq)
		if err := fold.Apply(e); err != nil {
			t.Fatal(err)
		}
		if e.Type == api.EventStepStatus && e.StepStatus == api.StepRunning {
			// Mid-run: cut everything, then let the step finish.
			srv.DropConnections()
			srv.Gates.Open(strings.TrimPrefix(fold.Members[0].Steps[e.Step-1].Name, "wait:"))
		}
	}
	if drops == 0 {
		t.Error("no drop happened")
	}
	for i, s := range seen {
		if s != int64(i+1) {
			t.Fatalf("seqs %v: lost or repeated an event", seen)
		}
	}
	want, _ := srv.Run(run.ID)
	if fold.Status != api.StatusPassed || fold.LastSeq != want.LastSeq {
		t.Errorf("fold %s at %d, server %s at %d", fold.Status, fold.LastSeq, want.Status, want.LastSeq)
	}
}

// clientKind is the client.ErrorKind of err, -1 when err is not a *client.Error.
func clientKind(err error) client.ErrorKind {
	var e *client.Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return -1
}
