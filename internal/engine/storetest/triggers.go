package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/trigger"
)

// RunTriggers runs the conformance suite of trigger.Store, its subtests in
// parallel. open returns a new, empty store for one subtest.
func RunTriggers(t *testing.T, open func(t *testing.T) trigger.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s trigger.Store)
	}{
		{"CreateGetUpdate", testTriggerCreateGetUpdate},
		{"DuplicateReturnsHolder", testTriggerDuplicate},
		{"ExpiredKeyIsFree", testTriggerExpired},
		{"TenantIsolation", testTriggerTenants},
		{"ListNewestFirstFiltersAndPages", testTriggerList},
		{"Pending", testTriggerPending},
		{"ConcurrentDuplicates", testTriggerConcurrent},
		{"UpdateByTheLeaseHolder", testTriggerUpdateByHolder},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, open(t))
		})
	}
}

// NewTrigger is a github delivery trigger of tenant with key, created at at.
func NewTrigger(tenant, id, key string, at time.Time) *trigger.Record {
	r := trigger.New(tenant, api.TriggerWebhook, trigger.SourceGitHub, key, at)
	r.ID = id
	r.Event = "pull_request.synchronize"
	r.Repo, r.SHA, r.PR, r.Ref = "acme/shop", "abc123", 7, "feature"
	r.Detail = []byte(`{"kind":"pull_request"}`)
	return r
}

func createTrigger(t *testing.T, s trigger.Store, r *trigger.Record) {
	t.Helper()
	holder, err := s.CreateTrigger(context.Background(), r)
	if err != nil || holder != nil {
		t.Fatalf("CreateTrigger(%s): holder %v, err %v", r.ID, holder, err)
	}
}

func testTriggerCreateGetUpdate(t *testing.T, s trigger.Store) {
	ctx := context.Background()
	r := NewTrigger("t", "trg_1", "d-1", T0)
	createTrigger(t, s, r)
	if r.Order <= 0 {
		t.Errorf("Order not set: %d", r.Order)
	}
	got, err := s.GetTrigger(ctx, "t", "trg_1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, got); diff != "" {
		t.Errorf("stored (-want +got):\n%s", diff)
	}
	got.Detail[0] = 'X' // a copy: the store's record is untouched
	up := r.Clone()
	up.State, up.RunID, up.Attempts, up.Reported, up.Reason = api.TriggerRunCreated, "run_9", 2, true, ""
	up.UpdatedAt = T0.Add(time.Minute)
	up.Detail = []byte(`{"kind":"pull_request","x":1}`)
	if err := s.UpdateTrigger(ctx, up); err != nil {
		t.Fatal(err)
	}
	got, err = s.GetTrigger(ctx, "t", "trg_1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(up, got); diff != "" {
		t.Errorf("updated (-want +got):\n%s", diff)
	}
	missing := NewTrigger("t", "trg_nope", "d-x", T0)
	if err := s.UpdateTrigger(ctx, missing); !errors.Is(err, trigger.ErrNotFound) {
		t.Errorf("UpdateTrigger of a missing trigger: %v, want ErrNotFound", err)
	}
	if _, err := s.GetTrigger(ctx, "t", "trg_nope"); !errors.Is(err, trigger.ErrNotFound) {
		t.Errorf("GetTrigger of a missing trigger: %v", err)
	}
}

// A record stored under a lease (Owner set, as the webhook receiver and the
// scheduler store them) is updated by its holder on every store: a Leaser
// accepts the write of the live lease's owner (its fencing refuses the
// others: pgstore's TestTriggerUpdateIsFencedByTheLease), a store of one
// process ignores Owner.
func testTriggerUpdateByHolder(t *testing.T, s trigger.Store) {
	ctx := context.Background()
	r := NewTrigger("t", "trg_1", "d-1", time.Now())
	r.Owner = "own_holder"
	createTrigger(t, s, r)
	for i, st := range []api.TriggerState{api.TriggerProcessing, api.TriggerRunCreated} {
		up := r.Clone()
		up.State, up.Attempts, up.RunID, up.Reported = st, i+1, "run_1", i == 1
		if err := s.UpdateTrigger(ctx, up); err != nil {
			t.Fatalf("the holder's update to %s: %v", st, err)
		}
		got, err := s.GetTrigger(ctx, "t", "trg_1")
		if err != nil {
			t.Fatal(err)
		}
		if got.State != st || got.Attempts != i+1 || got.Reported != (i == 1) {
			t.Errorf("after the holder's update to %s: %+v reported %v", st, got.Trigger, got.Reported)
		}
	}
}

func testTriggerDuplicate(t *testing.T, s trigger.Store) {
	ctx := context.Background()
	first := NewTrigger("t", "trg_1", "d-1", T0)
	createTrigger(t, s, first)
	dup := NewTrigger("t", "trg_2", "d-1", T0.Add(time.Hour))
	holder, err := s.CreateTrigger(ctx, dup)
	if err != nil || holder == nil || holder.ID != "trg_1" {
		t.Fatalf("duplicate: holder %+v, err %v; want trg_1", holder, err)
	}
	if _, err := s.GetTrigger(ctx, "t", "trg_2"); !errors.Is(err, trigger.ErrNotFound) {
		t.Errorf("the duplicate was stored: %v", err)
	}
	// Another source or another key is not a duplicate.
	gl := NewTrigger("t", "trg_3", "d-1", T0)
	gl.Source = trigger.SourceGitLab
	createTrigger(t, s, gl)
	createTrigger(t, s, NewTrigger("t", "trg_4", "d-2", T0))
}

func testTriggerExpired(t *testing.T, s trigger.Store) {
	ctx := context.Background()
	createTrigger(t, s, NewTrigger("t", "trg_1", "d-1", T0))
	// Just before expiry it still holds; at expiry the key is free.
	early := NewTrigger("t", "trg_2", "d-1", T0.Add(trigger.DedupeTTL-time.Second))
	if h, err := s.CreateTrigger(ctx, early); err != nil || h == nil {
		t.Fatalf("before expiry: holder %v err %v", h, err)
	}
	late := NewTrigger("t", "trg_3", "d-1", T0.Add(trigger.DedupeTTL))
	createTrigger(t, s, late)
	if _, err := s.GetTrigger(ctx, "t", "trg_3"); err != nil {
		t.Fatal(err)
	}
}

func testTriggerTenants(t *testing.T, s trigger.Store) {
	ctx := context.Background()
	createTrigger(t, s, NewTrigger("a", "trg_a", "d-1", T0))
	createTrigger(t, s, NewTrigger("b", "trg_b", "d-1", T0)) // same key, other tenant
	if _, err := s.GetTrigger(ctx, "b", "trg_a"); !errors.Is(err, trigger.ErrNotFound) {
		t.Errorf("tenant b read a's trigger: %v", err)
	}
	list, _, err := s.ListTriggers(ctx, "a", trigger.Filter{})
	if err != nil || len(list) != 1 || list[0].ID != "trg_a" {
		t.Errorf("tenant a lists %v (err %v)", triggerIDs(list), err)
	}
}

func triggerIDs(rs []*trigger.Record) []string {
	out := []string{}
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

func testTriggerList(t *testing.T, s trigger.Store) {
	ctx := context.Background()
	for i := range 7 {
		r := NewTrigger("t", fmt.Sprintf("trg_%d", i), fmt.Sprintf("d-%d", i), T0.Add(time.Duration(i)*time.Second))
		if i%2 == 1 {
			r.State = api.TriggerFailed
		}
		if i == 6 {
			r.Source, r.Kind, r.Event = trigger.SourceSchedule, api.TriggerSchedule, "nightly"
		}
		createTrigger(t, s, r)
	}
	var all []string
	cursor := ""
	for page := 0; page < 10; page++ {
		list, next, err := s.ListTriggers(ctx, "t", trigger.Filter{Limit: 3, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, triggerIDs(list)...)
		if next == "" {
			break
		}
		cursor = next
	}
	if want := []string{"trg_6", "trg_5", "trg_4", "trg_3", "trg_2", "trg_1", "trg_0"}; !cmp.Equal(all, want) {
		t.Errorf("pages %v, want %v", all, want)
	}
	failed, _, err := s.ListTriggers(ctx, "t", trigger.Filter{States: []api.TriggerState{api.TriggerFailed}})
	if err != nil || !cmp.Equal(triggerIDs(failed), []string{"trg_5", "trg_3", "trg_1"}) {
		t.Errorf("failed: %v (err %v)", triggerIDs(failed), err)
	}
	sched, _, err := s.ListTriggers(ctx, "t", trigger.Filter{Source: trigger.SourceSchedule, Event: "nightly", Limit: 1})
	if err != nil || !cmp.Equal(triggerIDs(sched), []string{"trg_6"}) {
		t.Errorf("schedule: %v (err %v)", triggerIDs(sched), err)
	}
	if _, _, err := s.ListTriggers(ctx, "t", trigger.Filter{Cursor: "bogus"}); !errors.Is(err, trigger.ErrInvalidCursor) {
		t.Errorf("bogus cursor: %v", err)
	}
}

func testTriggerPending(t *testing.T, s trigger.Store) {
	ctx := context.Background()
	states := []struct {
		state    api.TriggerState
		reported bool
	}{
		{api.TriggerAccepted, false}, {api.TriggerProcessing, false}, {api.TriggerRunCreated, false},
		{api.TriggerRunCreated, true}, {api.TriggerIgnored, false}, {api.TriggerFailed, false},
	}
	for i, st := range states {
		r := NewTrigger("t", fmt.Sprintf("trg_%d", i), fmt.Sprintf("d-%d", i), T0)
		r.State, r.Reported = st.state, st.reported
		createTrigger(t, s, r)
	}
	old := NewTrigger("u", "trg_old", "d-old", T0.Add(-trigger.DedupeTTL))
	createTrigger(t, s, old)
	got, err := s.PendingTriggers(ctx, T0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"trg_0", "trg_1", "trg_2"}; !cmp.Equal(triggerIDs(got), want) {
		t.Errorf("pending %v, want %v (oldest first, expired left out)", triggerIDs(got), want)
	}
}

func testTriggerConcurrent(t *testing.T, s trigger.Store) {
	const n = 50
	holders := make([]*trigger.Record, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			r := NewTrigger("t", fmt.Sprintf("trg_%02d", i), "same", T0)
			<-start
			holders[i], errs[i] = s.CreateTrigger(context.Background(), r)
		})
	}
	close(start)
	wg.Wait()
	owner := ""
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("create %d: %v", i, errs[i])
		}
		if holders[i] == nil {
			if owner != "" {
				t.Fatalf("%s and trg_%02d both stored", owner, i)
			}
			owner = fmt.Sprintf("trg_%02d", i)
		}
	}
	for i, h := range holders {
		if h != nil && h.ID != owner {
			t.Fatalf("create %d told the holder is %s, the owner is %s", i, h.ID, owner)
		}
	}
	list, _, err := s.ListTriggers(context.Background(), "t", trigger.Filter{})
	if err != nil || len(list) != 1 {
		t.Fatalf("stored %v (err %v), want one", triggerIDs(list), err)
	}
}
