package client_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/client"
	"github.com/zof-ai/zof-ci/internal/clienttest"
)

// TestDeleteAgainstServer: Delete of a finished run with an admin token
// succeeds; the refusals come back as the kinds a caller acts on.
func TestDeleteAgainstServer(t *testing.T) {
	srv := clienttest.Start(t, clienttest.Options{})
	admin := newClient(t, srv.URL, clienttest.AdminToken)
	runner := newClient(t, srv.URL, clienttest.Token)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()

	req := gatedRequest("wait:del")
	req.Source = api.Source{Ref: "main", PR: 3, Trigger: "api"}
	run, _, err := runner.Create(ctx, req, "")
	if err != nil {
		t.Fatal(err)
	}
	<-srv.Gates.Started("del")
	if err := admin.Delete(ctx, run.ID); clientKind(err) != client.KindInvalid {
		t.Errorf("Delete of a running run = %v (kind %v), want KindInvalid (409)", err, clientKind(err))
	}
	srv.Gates.Open("del")
	st, err := runner.Events(ctx, run.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := st.Next(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if err := runner.Delete(ctx, run.ID); clientKind(err) != client.KindUnauthorized {
		t.Errorf("Delete with a runner token = %v (kind %v), want KindUnauthorized (403)", err, clientKind(err))
	}
	l, err := admin.List(ctx, client.ListOptions{Branch: "main", Trigger: "api", PR: 3, Flaky: false})
	if err != nil || len(l.Runs) != 1 || l.Runs[0].ID != run.ID {
		t.Errorf("List by branch, trigger and PR = %+v, %v; want the run", l, err)
	}
	if l, err := admin.List(ctx, client.ListOptions{Flaky: true}); err != nil || len(l.Runs) != 0 {
		t.Errorf("List of flaky runs = %+v, %v; want none", l, err)
	}
	if err := admin.Delete(ctx, run.ID); err != nil {
		t.Fatalf("Delete = %v", err)
	}
	var e *client.Error
	if _, err := admin.Get(ctx, run.ID); !errors.As(err, &e) || e.Status != http.StatusNotFound {
		t.Errorf("Get after Delete = %v, want 404", err)
	}
}
