package client_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/zof-ai/zof-ci/client"
	"github.com/zof-ai/zof-ci/internal/clienttest"
	"github.com/zof-ai/zof-ci/internal/eventually"
)

func TestHealthAgainstServer(t *testing.T) {
	srv := clienttest.Start(t, clienttest.Options{})
	c := newClient(t, srv.URL, clienttest.Token)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	run, _, err := c.Create(ctx, gatedRequest("fine"), "")
	if err != nil {
		t.Fatal(err)
	}
	if !eventually.Wait(t, waitLimit, func() bool {
		r, err := c.Get(ctx, run.ID)
		return err == nil && r.Status.Terminal()
	}, fmt.Sprintf("run %s to finish", run.ID)) {
		t.Fatalf("run %s did not finish", run.ID)
	}
	h, err := c.Health(ctx, client.HealthOptions{Project: "shop", Environment: "staging", Since: "7d"})
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Cases) != 1 || h.Cases[0].Case != "only" || h.Cases[0].Runs != 1 || h.Cases[0].Failures != 0 {
		t.Fatalf("health = %+v", h)
	}
	if _, err := c.Health(ctx, client.HealthOptions{Project: "shop", Since: "forever"}); clientKind(err) != client.KindInvalid {
		t.Errorf("bad since: %v (kind %s), want invalid", err, clientKind(err))
	}
	if _, err := c.Health(ctx, client.HealthOptions{}); clientKind(err) != client.KindInvalid {
		t.Errorf("no project: %v, want invalid before any request", err)
	}
	// No shadow run yet: selection safety says so with zero runs.
	sh, err := c.SelectionHealth(ctx, client.HealthOptions{Project: "shop"})
	if err != nil || sh.ShadowRuns != 0 || sh.FaultyRunRecall != nil {
		t.Fatalf("selection health = %+v, %v", sh, err)
	}
	if _, err := c.SelectionHealth(ctx, client.HealthOptions{}); clientKind(err) != client.KindInvalid {
		t.Errorf("no project: %v, want invalid before any request", err)
	}
}
