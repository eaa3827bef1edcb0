package client_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/zof-ai/zof-ci/client"
	"github.com/zof-ai/zof-ci/internal/clienttest"
)

// TestArtifactsAgainstServer: a run without failures lists none; an
// unknown artifact or another tenant's run is a 404 saying so; ArtifactURL
// is the API's address under the server.
func TestArtifactsAgainstServer(t *testing.T) {
	srv := clienttest.Start(t, clienttest.Options{})
	c := newClient(t, srv.URL, clienttest.Token)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	run, _, err := c.Create(ctx, gatedRequest("fine"), "")
	if err != nil {
		t.Fatal(err)
	}
	list, err := c.ListArtifacts(ctx, run.ID)
	if err != nil || list == nil || len(list) != 0 {
		t.Fatalf("ListArtifacts of a run with no failure = %v, %v; want an empty list", list, err)
	}
	_, err = c.GetArtifact(ctx, run.ID, "1-only-a1-s1-output.txt")
	var e *client.Error
	if !errors.As(err, &e) || e.Status != http.StatusNotFound || !strings.Contains(err.Error(), "has no artifact") {
		t.Fatalf("GetArtifact of an unknown name: %v, want a 404 saying the run has no such artifact", err)
	}
	if _, err := c.ListArtifacts(ctx, "no-such-run"); !errors.As(err, &e) || e.Status != http.StatusNotFound {
		t.Fatalf("ListArtifacts of an unknown run: %v, want 404", err)
	}
	if got, want := c.ArtifactURL("run 1", "a b.txt"), srv.URL+"/v1/runs/run%201/artifacts/a%20b.txt"; got != want {
		t.Errorf("ArtifactURL = %q, want %q", got, want)
	}
}
