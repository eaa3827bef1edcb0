package engine

import (
	"context"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/api"
)

// keepStore keeps what CreateRun and Append are given, as a store may (the
// members and events by reference), with a deep copy of the run as it was
// given to CreateRun.
type keepStore struct {
	noStore
	rec   *RunRecord
	given *api.Run
}

func (s *keepStore) CreateRun(_ context.Context, rec *RunRecord, _ api.Event, _ *IdempotencyRecord) (*IdempotencyRecord, error) {
	s.rec, s.given = rec, rec.Run.Clone()
	rec.Order = 1
	return nil, nil
}

func (s *keepStore) Append(context.Context, Append) error { return nil }

// sharedMembers is the first part of a run's members that a and b share:
// the member array, a member's steps or failed attempts.
func sharedMembers(a, b *api.Run) string {
	return shared(reflect.ValueOf(a.Members), reflect.ValueOf(b.Members), "Members")
}

// Create builds a run once and hands each holder what it may change: the
// store keeps what it was given; the run state has a member array of its own
// and shares the members' steps and failed attempts, which neither side ever
// changes in place (a commit copies a member before changing it); Create's
// caller gets a copy that shares nothing. So the commits that follow (a retry
// appending a failed attempt, steps changing) and a caller changing its run
// leave the store's run exactly as it was given.
func TestCreateSharesNothingMutable(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	st := &keepStore{}
	e, err := New(Config{Store: st, Steps: noSteps{}, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	step := func(n string) api.Step { return api.Step{Name: n, Run: &api.Command{Command: "true"}} }
	req := &api.RunRequest{Project: "p", Cases: []api.Case{
		{ID: "a", Retries: 1, Steps: []api.Step{step("a1"), step("a2")}},
		{ID: "b", Steps: []api.Step{step("b1")}, Variants: []api.Variant{{Name: "x"}, {Name: "y"}}},
	}}
	created, _, err := e.Create(context.Background(), "t", req, CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e.mu.Lock()
	rs := e.active[created.ID]
	e.mu.Unlock()
	stored := st.rec.Run
	for _, c := range []struct {
		name string
		a, b *api.Run
	}{{"Create's caller and the store", created, stored}, {"Create's caller and the run state", created, rs.snap}} {
		if !reflect.DeepEqual(c.a.Members, c.b.Members) {
			t.Fatalf("%s hold different members", c.name)
		}
		if p := sharedMembers(c.a, c.b); p != "" {
			t.Errorf("%s share %s", c.name, p)
		}
	}
	if !reflect.DeepEqual(rs.snap.Members, stored.Members) {
		t.Fatal("the run state and the store hold different members")
	}
	if &rs.snap.Members[0] == &stored.Members[0] {
		t.Error("the run state shares the store's member array")
	}

	// The run executes by hand: a, then a retry of a, and b/x.
	commit := func(evs ...api.Event) {
		t.Helper()
		if err := e.commit(rs, evs...); err != nil {
			t.Fatal(err)
		}
	}
	commit(api.Event{Type: api.EventRunStatus, Status: api.StatusRunning})
	for attempt := 1; attempt <= 2; attempt++ {
		commit(api.Event{Type: api.EventMemberStatus, Member: "a", Status: api.StatusRunning, Attempt: attempt},
			api.Event{Type: api.EventStepStatus, Member: "a", Step: 1, StepStatus: api.StepRunning})
		commit(api.Event{Type: api.EventStepStatus, Member: "a", Step: 1, StepStatus: api.StepFailed, Failure: &api.Failure{Message: "no"}},
			api.Event{Type: api.EventStepStatus, Member: "a", Step: 2, StepStatus: api.StepSkipped})
	}
	commit(api.Event{Type: api.EventMemberStatus, Member: "a", Status: api.StatusFailed, Attempt: 2, Reason: "step 1"},
		api.Event{Type: api.EventMemberStatus, Member: "b/x", Status: api.StatusRunning, Attempt: 1},
		api.Event{Type: api.EventStepStatus, Member: "b/x", Step: 1, StepStatus: api.StepPassed})
	if m, _ := rs.member("a"); len(m.FailedAttempts) != 1 || m.Status != api.StatusFailed {
		t.Fatalf("member a after two failed attempts: %+v", m)
	}
	// The caller changes its copy as it likes.
	created.Members[1].Steps[0].Status = api.StepFailed
	created.Members[2].FailedAttempts = append(created.Members[2].FailedAttempts, "mine")

	if !reflect.DeepEqual(stored, st.given) {
		t.Errorf("the run the store was given changed after CreateRun:\n got %+v\nwant %+v", stored, st.given)
	}
	if m, _ := rs.member("b/x"); m.Steps[0].Status != api.StepPassed {
		t.Errorf("the caller's change reached the run state: b/x step 1 is %s", m.Steps[0].Status)
	}
}

// copyRun copies a run whose every field is set, deeply equal, and shares
// no member, step or failed attempt with it; appending to one member's
// failed attempts leaves its neighbour's alone although they share an array.
func TestCopyRunSharesNothingMutable(t *testing.T) {
	var r api.Run
	seed := 0
	fill(t, reflect.ValueOf(&r).Elem(), &seed)
	r.Members = append(r.Members, api.Member{ID: "no steps"})
	got := copyRun(&r)
	want := r.Clone()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("copyRun differs from Clone:\n got %+v\nwant %+v", got, want)
	}
	for i := range r.Members {
		a, b := &got.Members[i], &r.Members[i]
		if len(a.Steps) > 0 && &a.Steps[0] == &b.Steps[0] || len(a.FailedAttempts) > 0 && &a.FailedAttempts[0] == &b.FailedAttempts[0] {
			t.Errorf("member %d shares its steps or failed attempts with the original", i)
		}
	}
	if &got.Members[0] == &r.Members[0] {
		t.Error("the copy shares the member array")
	}
	next := got.Members[1].FailedAttempts[0]
	got.Members[0].FailedAttempts = append(got.Members[0].FailedAttempts, "new")
	got.Members[0].Steps = append(got.Members[0].Steps, api.StepResult{Name: "new"})
	if got.Members[1].FailedAttempts[0] != next || got.Members[1].Steps[0].Name == "new" {
		t.Error("appending to member 0 of the copy wrote into member 1")
	}
}

// gateStore is keepStore whose appends wait, each, for a value on gate, and
// which records every append's events.
type gateStore struct {
	keepStore
	entered chan struct{} // an append has started
	gate    chan struct{}
	mu      sync.Mutex
	appends [][]api.Event
}

func (s *gateStore) Append(_ context.Context, a Append) error {
	s.entered <- struct{}{}
	<-s.gate
	s.mu.Lock()
	defer s.mu.Unlock()
	s.appends = append(s.appends, a.Events)
	return nil
}

// Commits that arrive while another is being stored are stored together,
// in one append, in the order they arrived; a commit that does not fit the
// lifecycle is refused alone; every event reaches an observer and a
// subscriber once, in seq order.
func TestGroupCommit(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	st := &gateStore{entered: make(chan struct{}, 16), gate: make(chan struct{}, 16)}
	e, err := New(Config{Store: st, Steps: noSteps{}, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	var observed []int64
	e.Observe(func(_ string, _ *api.Run, evs []api.Event) {
		for _, ev := range evs {
			observed = append(observed, ev.Seq)
		}
	})
	var cases []api.Case
	for i := range 6 {
		cases = append(cases, api.Case{ID: fmt.Sprintf("m%d", i), Steps: []api.Step{{Name: "s", Run: &api.Command{Command: "true"}}}})
	}
	created, _, err := e.Create(context.Background(), "t", &api.RunRequest{Project: "p", Cases: cases}, CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e.mu.Lock()
	rs := e.active[created.ID]
	e.mu.Unlock()
	sub := newSubscriber(100)
	rs.mu.Lock()
	rs.subs[sub] = struct{}{}
	rs.mu.Unlock()

	deadline := time.After(10 * time.Second)
	errs := make(chan error, 16)
	go func() { errs <- e.commit(rs, api.Event{Type: api.EventRunStatus, Status: api.StatusRunning}) }()
	select {
	case <-st.entered:
	case <-deadline:
		t.Fatal("the first commit never reached the store")
	}
	// Five commits arrive while the first is in the store: m0..m3 start, and
	// one names a member the run does not have.
	refused := make(chan error, 1)
	for i := range 5 {
		ev := api.Event{Type: api.EventMemberStatus, Member: fmt.Sprintf("m%d", i), Status: api.StatusRunning, Attempt: 1}
		if i == 2 {
			ev.Member = "nobody"
		}
		go func() {
			err := e.commit(rs, ev)
			if ev.Member == "nobody" {
				refused <- err
				return
			}
			errs <- err
		}()
		// Each is queued before the next starts, so the group's order is known.
		for queued := false; !queued; {
			rs.mu.Lock()
			queued = len(rs.queue) == i+1
			rs.mu.Unlock()
			select {
			case <-deadline:
				t.Fatalf("commit %d never queued", i)
			default:
				runtime.Gosched()
			}
		}
	}
	st.gate <- struct{}{} // the first append
	select {
	case <-st.entered: // the group's append
	case <-deadline:
		t.Fatal("the queued commits never reached the store")
	}
	st.gate <- struct{}{}
	for range 5 {
		if err := <-errs; err != nil {
			t.Errorf("commit: %v", err)
		}
	}
	if err := <-refused; err == nil || !strings.Contains(err.Error(), "nobody") {
		t.Errorf("the commit of an unknown member: %v, want its refusal", err)
	}
	if len(st.appends) != 2 {
		t.Fatalf("%d appends, want 2 (the first commit, then the group of four)", len(st.appends))
	}
	var members []string
	for _, ev := range st.appends[1] {
		members = append(members, ev.Member)
	}
	if want := []string{"m0", "m1", "m3", "m4"}; !slices.Equal(members, want) {
		t.Errorf("the group stored %v, want %v", members, want)
	}
	want := []int64{2, 3, 4, 5, 6}
	if !slices.Equal(observed, want) {
		t.Errorf("observers saw seqs %v, want %v", observed, want)
	}
	var got []int64
	for len(got) < len(want) {
		select {
		case evs := <-sub.live:
			for _, ev := range evs {
				got = append(got, ev.Seq)
			}
		case <-deadline:
			t.Fatalf("the subscriber got %v, want %v", got, want)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("the subscriber got seqs %v, want %v", got, want)
	}
	if m, _ := rs.member("m4"); m.Status != api.StatusRunning {
		t.Errorf("m4 after the group: %s, want running", m.Status)
	}
}

// A committer holds the run's lock through an append while the store's
// appends are fast (nothing to group: a commit waits on the lock, which is
// cheaper than a queue), and releases it once they are slow.
func TestGroupCommitOnlyForSlowStores(t *testing.T) {
	for _, tt := range []struct {
		name     string
		cost     time.Duration
		released bool
	}{{"fast store", time.Microsecond, false}, {"slow store", time.Millisecond, true}} {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
			st := &gateStore{entered: make(chan struct{}, 1), gate: make(chan struct{}, 1)}
			e, err := New(Config{Store: st, Steps: noSteps{}, Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			created, _, err := e.Create(context.Background(), "t", &api.RunRequest{Project: "p", Cases: []api.Case{{ID: "a", Steps: []api.Step{{Name: "s", Run: &api.Command{Command: "true"}}}}}}, CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			e.mu.Lock()
			rs := e.active[created.ID]
			e.mu.Unlock()
			e.appendCost.Store(int64(tt.cost))
			done := make(chan error, 1)
			go func() { done <- e.commit(rs, api.Event{Type: api.EventRunStatus, Status: api.StatusRunning}) }()
			select {
			case <-st.entered:
			case <-time.After(10 * time.Second):
				t.Fatal("the commit never reached the store")
			}
			released := rs.mu.TryLock()
			if released {
				rs.mu.Unlock()
			}
			st.gate <- struct{}{}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if released != tt.released {
				t.Errorf("the run's lock was free during the append: %v, want %v", released, tt.released)
			}
		})
	}
}
