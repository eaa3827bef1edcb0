package webhook_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/engine/pgstore"
	"github.com/zof-ai/zof-ci/internal/engine/pgstore/pgtest"
	"github.com/zof-ai/zof-ci/internal/server/config"
	"github.com/zof-ai/zof-ci/internal/server/webhook"
	"github.com/zof-ai/zof-ci/internal/trigger"
)

// noSubmit is a Submitter the test never expects to be used.
type noSubmit struct{ t *testing.T }

func (n noSubmit) Submit(context.Context, config.Principal, *api.RunRequest, engine.CreateOptions) (*api.Run, bool, error) {
	n.t.Error("Submit called")
	return nil, false, errors.New("no runs here")
}
func (n noSubmit) Get(context.Context, string, string) (*api.Run, error) {
	return nil, errors.New("no runs here")
}
func (n noSubmit) Wait(context.Context, string, string) (*api.Run, error) {
	return nil, errors.New("no runs here")
}

func pgStore(t *testing.T, url string) *pgstore.Store {
	t.Helper()
	s, err := pgstore.Open(context.Background(), url, pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestResumeLeavesADeliveryALiveReplicaHolds: replicas on one PostgreSQL;
// a delivery another live replica holds (its lease is live) is not taken up
// by a replica that starts, so it is processed, and reported, once. Once
// that replica released it (it stopped), the next start takes it up.
func TestResumeLeavesADeliveryALiveReplicaHolds(t *testing.T) {
	url := pgtest.URL(t)
	other, store := pgStore(t, url), pgStore(t, url)
	ctx := context.Background()
	rec := trigger.New("t1", api.TriggerWebhook, trigger.SourceGitHub, "held-1", time.Now())
	rec.Repo, rec.Detail, rec.Owner = repoName, []byte(`{"provider":"github","repo":"`+repoName+`"}`), "live-replica"
	if h, err := other.CreateTrigger(ctx, rec); err != nil || h != nil {
		t.Fatalf("CreateTrigger: holder %v, err %v", h, err)
	}
	start := func() *webhook.Receiver {
		recv, err := webhook.New(webhook.Options{Config: &config.Config{}, Store: store, Submitter: noSubmit{t}})
		if err != nil {
			t.Fatal(err)
		}
		return recv
	}

	recv := start()
	n, err := recv.Resume(ctx)
	recv.Close()
	if err != nil || n != 0 {
		t.Fatalf("a starting replica took up %d deliveries (err %v); want 0: the live replica holds it", n, err)
	}
	if got, err := store.GetTrigger(ctx, "t1", rec.ID); err != nil || got.State != api.TriggerAccepted || got.Owner != "live-replica" {
		t.Fatalf("the held delivery became %+v (err %v); want it untouched", got, err)
	}

	// The holder stops and releases it: the next start takes it up (and,
	// the repository being unknown here, fails it).
	if err := other.ReleaseTriggers(ctx, "live-replica"); err != nil {
		t.Fatal(err)
	}
	recv = start()
	n, err = recv.Resume(ctx)
	recv.Wait()
	if err != nil || n != 1 {
		recv.Close()
		t.Fatalf("after the release, a start took up %d deliveries (err %v); want 1", n, err)
	}
	recv.Close()
	got, err := store.GetTrigger(ctx, "t1", rec.ID)
	if err != nil || got.State != api.TriggerFailed || got.Owner == "live-replica" || got.Owner == "" {
		t.Fatalf("the released delivery became %+v (err %v); want failed under the new replica's lease", got, err)
	}
}
