package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/engine/memstore"
)

// downStore is a store whose database can be made unreachable: its reads
// and creates then fail as pgstore's do (marked engine.ErrUnavailable).
type downStore struct {
	*memstore.Store
	down atomic.Bool
}

func (d *downStore) fail() error {
	if d.down.Load() {
		return fmt.Errorf("dial tcp 10.0.0.9:5432: connect: connection refused (%w)", engine.ErrUnavailable)
	}
	return nil
}

func (d *downStore) CreateRun(ctx context.Context, rec *engine.RunRecord, first api.Event, idem *engine.IdempotencyRecord) (*engine.IdempotencyRecord, error) {
	if err := d.fail(); err != nil {
		return nil, err
	}
	return d.Store.CreateRun(ctx, rec, first, idem)
}

func (d *downStore) GetRun(ctx context.Context, tenant, id string) (*engine.RunRecord, error) {
	if err := d.fail(); err != nil {
		return nil, err
	}
	return d.Store.GetRun(ctx, tenant, id)
}

func (d *downStore) ListRuns(ctx context.Context, tenant string, f engine.ListFilter) ([]*api.Run, string, error) {
	if err := d.fail(); err != nil {
		return nil, "", err
	}
	return d.Store.ListRuns(ctx, tenant, f)
}

// TestStoreUnreachableIs503: while the store cannot be reached, creates,
// reads and lists answer 503 with Retry-After and a problem body that names
// no internal detail; once it is back the same requests succeed.
func TestStoreUnreachableIs503(t *testing.T) {
	ds := &downStore{Store: memstore.New()}
	h := newHarness(t, harnessOpts{store: ds})
	req := runReq("shop", "staging", []api.Step{httpStep("s")})
	ds.down.Store(true)
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"POST", "/v1/runs", req},
		{"GET", "/v1/runs/run_missing", nil},
		{"GET", "/v1/runs", nil},
	} {
		r := h.do(c.method, c.path, tokAlphaRunner, c.body)
		if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
			t.Fatalf("%s %s with the store down: %d, Retry-After %q; want 503 with Retry-After", c.method, c.path, r.status, r.header.Get("Retry-After"))
		}
		p := r.problem(t)
		if p.Status != http.StatusServiceUnavailable || p.Title != "Store unavailable" || strings.Contains(p.Detail, "10.0.0.9") {
			t.Fatalf("%s %s: problem %+v", c.method, c.path, p)
		}
	}
	ds.down.Store(false)
	run := h.create(tokAlphaRunner, req)
	if r := h.do("GET", "/v1/runs", tokAlphaRunner, nil); r.status != http.StatusOK {
		t.Fatalf("list after the store came back: %d", r.status)
	}
	if r := h.do("GET", "/v1/runs/"+run.ID, tokAlphaRunner, nil); r.status != http.StatusOK {
		t.Fatalf("get after the store came back: %d", r.status)
	}
}
