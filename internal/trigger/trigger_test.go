package trigger_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/trigger"
)

// TestBackoffFullJitter: the wait before retry n is drawn from
// [0, min(Max, Base·2ⁿ⁻¹)).
func TestBackoffFullJitter(t *testing.T) {
	var ceilings []int64
	b := trigger.Backoff{Base: time.Second, Max: 5 * time.Second, Rand: func(n int64) int64 { ceilings = append(ceilings, n); return n - 1 }}
	for n := 1; n <= 5; n++ {
		if w := b.Wait(n); w != time.Duration(ceilings[n-1]-1) {
			t.Errorf("Wait(%d) = %v", n, w)
		}
	}
	want := []int64{int64(time.Second), int64(2 * time.Second), int64(4 * time.Second), int64(5 * time.Second), int64(5 * time.Second)}
	if !cmp.Equal(ceilings, want) {
		t.Errorf("ceilings %v, want %v", ceilings, want)
	}
	if w := (trigger.Backoff{}).Wait(100); w < 0 || w >= trigger.DefaultMaxDelay {
		t.Errorf("Wait(100) = %v, want below the default cap", w)
	}
}

func TestBackoffDo(t *testing.T) {
	var slept []time.Duration
	b := trigger.Backoff{Attempts: 3, Rand: func(n int64) int64 { return n / 2 },
		Sleep: func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }}
	calls := 0
	err := b.Do(context.Background(), func(int) error { calls++; return errors.New("503") })
	if err == nil || calls != 3 || len(slept) != 2 {
		t.Errorf("transient: err %v, calls %d, sleeps %v", err, calls, slept)
	}
	calls = 0
	err = b.Do(context.Background(), func(int) error { calls++; return &trigger.Permanent{Err: errors.New("invalid suite")} })
	if !trigger.IsPermanent(err) || calls != 1 || !strings.Contains(err.Error(), "invalid suite") {
		t.Errorf("permanent: err %v, calls %d", err, calls)
	}
	calls = 0
	err = b.Do(context.Background(), func(n int) error {
		calls++
		if n < 2 {
			return errors.New("flaky")
		}
		return nil
	})
	if err != nil || calls != 2 {
		t.Errorf("recovering: err %v calls %d", err, calls)
	}
	// A stop ends the waiting.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls = 0
	err = trigger.Backoff{Attempts: 5}.Do(ctx, func(int) error { calls++; return errors.New("down") })
	if err == nil || calls != 1 {
		t.Errorf("cancelled: err %v calls %d", err, calls)
	}
}

func TestNewAndStates(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.FixedZone("x", 3600))
	r := trigger.New("t", api.TriggerWebhook, trigger.SourceGitHub, "d", now)
	if !strings.HasPrefix(r.ID, "trg_") || len(r.ID) != 20 || r.State != api.TriggerAccepted || r.CreatedAt.Location() != time.UTC ||
		!r.ExpiresAt.Equal(now.Add(7*24*time.Hour)) {
		t.Errorf("%+v", r)
	}
	if trigger.New("t", "", "", "", now).ID == r.ID {
		t.Error("ids repeat")
	}
	for _, s := range []api.TriggerState{api.TriggerRunCreated, api.TriggerIgnored, api.TriggerFailed} {
		if !s.Done() || !s.Valid() {
			t.Errorf("%s", s)
		}
	}
	if api.TriggerProcessing.Done() || api.TriggerState("x").Valid() {
		t.Error("states")
	}
}
