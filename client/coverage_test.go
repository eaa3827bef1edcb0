package client_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/client"
	"github.com/zof-ai/zof-ci/internal/clienttest"
)

func TestCoverageAgainstServer(t *testing.T) {
	srv := clienttest.Start(t, clienttest.Options{})
	c := newClient(t, srv.URL, clienttest.Token)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	_, err := c.Coverage(ctx, "shop")
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Kind != client.KindInvalid || ce.Status != http.StatusNotFound || !strings.Contains(ce.Msg, "no coverage summary yet") {
		t.Fatalf("before any summary: %v", err)
	}
	req := gatedRequest("fine")
	req.Coverage = &api.CoverageSummary{
		CoverageCounts: api.CoverageCounts{Files: 2, Covered: 1, Uncovered: 1},
		Modules:        []api.ModuleCoverage{{Module: "svc", CoverageCounts: api.CoverageCounts{Files: 2, Covered: 1, Uncovered: 1}, UncoveredFiles: []string{"svc/x.go"}}},
	}
	run, _, err := c.Create(ctx, req, "")
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Coverage(ctx, req.Project)
	if err != nil {
		t.Fatal(err)
	}
	if got.RunID != run.ID || got.Summary.CoveredPercent != 50 || got.Summary.Modules[0].UncoveredFiles[0] != "svc/x.go" {
		t.Fatalf("coverage = %+v", got)
	}
	if _, err := c.Coverage(ctx, ""); clientKind(err) != client.KindInvalid {
		t.Errorf("no project: %v, want invalid before any request", err)
	}
}
