// Package storetest is the conformance suite every engine.Store passes: run
// it from the store's own tests with Run.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
)

// T0 is the pinned clock of the suite's records.
var T0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// ConcurrentCreates is how many identical creates race in the idempotency
// test (the "200 concurrent identical submissions").
const ConcurrentCreates = 200

// Run runs the conformance suite, its subtests in parallel. open returns a
// new, empty store for one subtest; it registers its own cleanup with t.
func Run(t *testing.T, open func(t *testing.T) engine.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s engine.Store)
	}{
		{"CreateAndGet", testCreateAndGet},
		{"CreateRefusesBadFirstEvent", testCreateRefusesBadFirstEvent},
		{"TenantIsolationAndCopies", testTenantIsolationAndCopies},
		{"AppendRefusesGapsAndDuplicates", testAppendRefusesGapsAndDuplicates},
		{"AppendKeepsEventsAndSnapshot", testAppendKeepsEventsAndSnapshot},
		{"AppendWritesHeadAndNamedMembersOnly", testAppendPerMember},
		{"AppendCopiesHeadAndMemberList", testAppendCopiesHead},
		{"EventsAfterAndLimit", testEventsAfterAndLimit},
		{"ListPagingAndFilters", testListPagingAndFilters},
		{"NonTerminalOldestFirst", testNonTerminal},
		{"IdempotencyReturnsHolder", testIdempotencyReturnsHolder},
		{"IdempotencyKeyExpires", testIdempotencyKeyExpires},
		{"ConcurrentIdenticalCreates", testConcurrentIdenticalCreates},
		{"ConcurrentDistinctCreatesAndAppends", testConcurrentDistinct},
		{"AppendBatchAllOrNothing", testAppendBatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // each subtest has its own store
			tt.fn(t, open(t))
		})
	}
}

// Request is the definition the suite's runs execute: cases a (two steps) and
// b (one step) in project and environment.
func Request(project, environment string) *api.RunRequest {
	return &api.RunRequest{
		Project:     project,
		Environment: api.Environment{Name: environment, URL: "http://127.0.0.1:1"},
		Cases: []api.Case{
			{ID: "a", Steps: []api.Step{{Name: "s1", Run: &api.Command{Command: "true"}}, {Name: "s2", Timeout: api.Duration(1500 * time.Millisecond), Run: &api.Command{Command: "true"}}}},
			{ID: "b", Retries: 1, Steps: []api.Step{{Name: "s3", Run: &api.Command{Command: "true"}}}},
		},
		Selection: api.Selection{Scope: "all", Effective: "all"},
		Secrets:   []string{"hunter2"},
		Labels:    map[string]string{"team": "shop"},
	}
}

// NewRun builds what the engine stores for a new run: the record and its
// run.created event.
func NewRun(tenant, id string, req *api.RunRequest) (*engine.RunRecord, api.Event) {
	initial := api.NewRun(id, req, T0)
	initial.Tenant = tenant
	first := api.Event{Seq: 1, At: T0, Type: api.EventRunCreated, RunID: id, Run: initial}
	snap := &api.Run{}
	if err := snap.Apply(first); err != nil {
		panic(err) // a fresh run.created always applies
	}
	return &engine.RunRecord{Run: snap, Request: req}, first
}

// Create stores a new run of tenant in project "shop", environment "staging".
func Create(t testing.TB, s engine.Store, tenant, id string) *engine.RunRecord {
	t.Helper()
	return CreateIn(t, s, tenant, id, "shop", "staging")
}

// CreateIn stores a new run without an idempotency key.
func CreateIn(t testing.TB, s engine.Store, tenant, id, project, environment string) *engine.RunRecord {
	t.Helper()
	rec, first := NewRun(tenant, id, Request(project, environment))
	if holder, err := s.CreateRun(context.Background(), rec, first, nil); err != nil || holder != nil {
		t.Fatalf("CreateRun %s: holder %v, err %v", id, holder, err)
	}
	return rec
}

// AppendEvents folds evs into the stored snapshot and appends them, stamping
// their seqs from the run's last one.
func AppendEvents(s engine.Store, tenant, id string, evs ...api.Event) (*api.Run, error) {
	rec, err := s.GetRun(context.Background(), tenant, id)
	if err != nil {
		return nil, err
	}
	snap := rec.Run
	for i := range evs {
		evs[i].Seq = snap.LastSeq + 1
		evs[i].RunID = id
		if evs[i].At.IsZero() {
			evs[i].At = T0.Add(time.Duration(evs[i].Seq) * time.Second)
		}
		if err := snap.Apply(evs[i]); err != nil {
			return nil, err
		}
	}
	return snap, s.Append(context.Background(), AppendOf(id, snap, evs))
}

// AppendOf is the Append the engine makes for evs, which snap already
// folds in: the head and only the members the events change.
func AppendOf(id string, snap *api.Run, evs []api.Event) engine.Append {
	head := *snap
	head.Members = nil
	a := engine.Append{RunID: id, Run: &head, Events: evs}
	seen := map[int]bool{}
	for _, ev := range evs {
		switch ev.Type {
		case api.EventMemberStatus, api.EventMemberSubstate, api.EventStepStatus:
		default:
			continue
		}
		for i := range snap.Members {
			if snap.Members[i].ID == ev.Member && !seen[i] {
				seen[i] = true
				m := snap.Members[i]
				a.Members = append(a.Members, engine.MemberUpdate{Index: i, Member: &m})
			}
		}
	}
	return a
}

func mustAppend(t *testing.T, s engine.Store, tenant, id string, evs ...api.Event) *api.Run {
	t.Helper()
	snap, err := AppendEvents(s, tenant, id, evs...)
	if err != nil {
		t.Fatalf("appending to %s: %v", id, err)
	}
	return snap
}

// ended are the events that end a run of Request as cancelled.
func ended() []api.Event {
	return []api.Event{
		{Type: api.EventMemberStatus, Member: "a", Status: api.StatusCancelled},
		{Type: api.EventMemberStatus, Member: "b", Status: api.StatusCancelled},
		{Type: api.EventRunStatus, Status: api.StatusCancelled, Reason: "cancelled by request"},
	}
}

func events(t *testing.T, s engine.Store, id string, after int64, limit int) []api.Event {
	t.Helper()
	evs, err := s.Events(context.Background(), id, after, limit)
	if err != nil {
		t.Fatalf("Events %s: %v", id, err)
	}
	return evs
}

func get(t *testing.T, s engine.Store, tenant, id string) *engine.RunRecord {
	t.Helper()
	rec, err := s.GetRun(context.Background(), tenant, id)
	if err != nil {
		t.Fatalf("GetRun %s: %v", id, err)
	}
	return rec
}

func ids(runs []*api.Run) []string {
	var out []string
	for _, r := range runs {
		out = append(out, r.ID)
	}
	return out
}

func testCreateAndGet(t *testing.T, s engine.Store) {
	rec := Create(t, s, "t", "r1")
	if rec.Order <= 0 {
		t.Fatalf("CreateRun set Order %d, want > 0", rec.Order)
	}
	got := get(t, s, "t", "r1")
	if diff := cmp.Diff(rec, got); diff != "" {
		t.Errorf("GetRun (-created +got):\n%s", diff)
	}
	_, first := NewRun("t", "r1", Request("shop", "staging"))
	if diff := cmp.Diff([]api.Event{first}, events(t, s, "r1", 0, 0)); diff != "" {
		t.Errorf("the log of a new run (-want +got):\n%s", diff)
	}
	rec2 := Create(t, s, "t", "r2")
	if rec2.Order <= rec.Order {
		t.Errorf("second run has Order %d, the first %d; want increasing", rec2.Order, rec.Order)
	}
	dup, dupFirst := NewRun("t", "r1", Request("shop", "staging"))
	if _, err := s.CreateRun(context.Background(), dup, dupFirst, nil); !errors.Is(err, engine.ErrDuplicateRun) {
		t.Errorf("CreateRun with an existing id = %v, want ErrDuplicateRun", err)
	}
	if _, err := s.GetRun(context.Background(), "t", "missing"); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("GetRun of a missing run = %v, want ErrNotFound", err)
	}
	if _, err := s.Events(context.Background(), "missing", 0, 0); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("Events of a missing run = %v, want ErrNotFound", err)
	}
}

func testCreateRefusesBadFirstEvent(t *testing.T, s engine.Store) {
	rec, first := NewRun("t", "r1", Request("shop", "staging"))
	first.Seq = 2
	if _, err := s.CreateRun(context.Background(), rec, first, nil); !errors.Is(err, engine.ErrSeqConflict) {
		t.Fatalf("CreateRun with first seq 2 = %v, want ErrSeqConflict", err)
	}
	if _, err := s.GetRun(context.Background(), "t", "r1"); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("a refused create stored its run: %v", err)
	}
}

func testTenantIsolationAndCopies(t *testing.T, s engine.Store) {
	Create(t, s, "t", "r1")
	if _, err := s.GetRun(context.Background(), "u", "r1"); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("another tenant's run: %v, want ErrNotFound", err)
	}
	if runs, _, err := s.ListRuns(context.Background(), "u", engine.ListFilter{}); err != nil || len(runs) != 0 {
		t.Errorf("another tenant lists %d runs (err %v)", len(runs), err)
	}
	rec := get(t, s, "t", "r1")
	rec.Run.Members[0].Steps[0].Status = api.StepFailed
	rec.Run.Status = api.StatusBlocked
	evs := events(t, s, "r1", 0, 0)
	evs[0].Run.Status = api.StatusBlocked
	again := get(t, s, "t", "r1")
	if again.Run.Status != api.StatusInitial || again.Run.Members[0].Steps[0].Status != api.StepPending {
		t.Errorf("changing a returned run changed the store")
	}
	if evs := events(t, s, "r1", 0, 0); evs[0].Run.Status != api.StatusInitial {
		t.Errorf("changing a returned event changed the store")
	}
}

func testAppendRefusesGapsAndDuplicates(t *testing.T, s engine.Store) {
	Create(t, s, "t", "r1")
	mustAppend(t, s, "t", "r1", api.Event{Type: api.EventRunStatus, Status: api.StatusRunning})
	snap := get(t, s, "t", "r1").Run
	tests := []struct {
		name string
		snap int64
		seqs []int64
	}{
		{"repeat", 3, []int64{2, 3}},
		{"repeat of the last", 2, []int64{2}},
		{"gap", 4, []int64{4}},
		{"hole inside the batch", 5, []int64{3, 5}},
		{"snapshot behind the events", 2, []int64{3}},
		{"snapshot ahead of the events", 5, []int64{3}},
		{"no events, snapshot ahead", 3, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var evs []api.Event
			for _, q := range tt.seqs {
				evs = append(evs, api.Event{Seq: q, Type: api.EventLog, RunID: "r1", Message: "x"})
			}
			bad := snap.Clone()
			bad.LastSeq = tt.snap
			bad.Status = api.StatusCancelled
			err := s.Append(context.Background(), engine.WholeRun("r1", bad, evs))
			if !errors.Is(err, engine.ErrSeqConflict) {
				t.Fatalf("Append = %v, want ErrSeqConflict", err)
			}
			if n := len(events(t, s, "r1", 0, 0)); n != 2 {
				t.Fatalf("a refused append stored events: %d in the log, want 2", n)
			}
			if got := get(t, s, "t", "r1").Run; got.Status != api.StatusRunning || got.LastSeq != 2 {
				t.Fatalf("a refused append changed the snapshot: %s at seq %d", got.Status, got.LastSeq)
			}
		})
	}
	if err := s.Append(context.Background(), engine.Append{RunID: "missing", Run: &api.Run{LastSeq: 2}, Events: []api.Event{{Seq: 2, Type: api.EventLog}}}); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("Append to a missing run = %v, want ErrNotFound", err)
	}
}

func testAppendKeepsEventsAndSnapshot(t *testing.T, s engine.Store) {
	Create(t, s, "t", "r1")
	at := T0.Add(90 * time.Second)
	evs := []api.Event{
		{Type: api.EventRunStatus, Status: api.StatusQueued, At: at},
		{Type: api.EventRunSubstate, Substate: api.SubstateQueuePosition, Position: 3, At: at},
		{Type: api.EventRunStatus, Status: api.StatusRunning, At: at},
		{Type: api.EventMemberStatus, Member: "a", Status: api.StatusRunning, Attempt: 1, At: at},
		{Type: api.EventStepStatus, Member: "a", Step: 1, StepStatus: api.StepFailed, Duration: api.Duration(1234567 * time.Nanosecond),
			Failure: &api.Failure{Message: "status", Expected: "200", Actual: "503"}, Output: "HTTP/1.1 503\n", At: at},
		{Type: api.EventLog, Member: "a", Step: 1, Message: "line with \"quotes\" and ünïcode", At: at},
	}
	snap := mustAppend(t, s, "t", "r1", evs...)
	got := get(t, s, "t", "r1")
	if diff := cmp.Diff(snap, got.Run); diff != "" {
		t.Errorf("stored snapshot (-appended +got):\n%s", diff)
	}
	if diff := cmp.Diff(evs, events(t, s, "r1", 1, 0)); diff != "" {
		t.Errorf("stored events (-appended +got):\n%s", diff)
	}
	// The stored snapshot is the fold of the stored log.
	var fold api.Run
	for _, ev := range events(t, s, "r1", 0, 0) {
		if err := fold.Apply(ev); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff(got.Run, &fold); diff != "" {
		t.Errorf("snapshot vs fold of the log (-snapshot +fold):\n%s", diff)
	}
	// A batch larger than any single SQL statement would take.
	var many []api.Event
	for i := range 700 {
		many = append(many, api.Event{Type: api.EventLog, Message: fmt.Sprint(i)})
	}
	mustAppend(t, s, "t", "r1", many...)
	if n := len(events(t, s, "r1", 0, 0)); n != 707 {
		t.Errorf("%d events after a batch of 700, want 707", n)
	}
}

// testAppendPerMember: an append replaces the run's head and the members
// it names, and leaves every other member as it was stored, whatever the
// caller's copy of it says; a refused append changes no member either.
func testAppendPerMember(t *testing.T, s engine.Store) {
	ctx := context.Background()
	Create(t, s, "t", "r1")
	mustAppend(t, s, "t", "r1", api.Event{Type: api.EventRunStatus, Status: api.StatusRunning})
	before := get(t, s, "t", "r1").Run

	next := before.Clone()
	ev := api.Event{Seq: 3, At: T0, Type: api.EventMemberStatus, RunID: "r1", Member: "b", Status: api.StatusRunning, Attempt: 1}
	if err := next.Apply(ev); err != nil {
		t.Fatal(err)
	}
	// A change to member a that no event made and no update names: not stored.
	next.Members[0].Reason = "not in this append"
	head := *next
	head.Members = nil
	b := next.Members[1]
	a := engine.Append{RunID: "r1", Run: &head, Events: []api.Event{ev}, Members: []engine.MemberUpdate{{Index: 1, Member: &b}}}
	if err := s.Append(ctx, a); err != nil {
		t.Fatalf("Append: %v", err)
	}
	want := next.Clone()
	want.Members[0] = before.Members[0]
	got := get(t, s, "t", "r1").Run
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stored run (-want +got):\n%s", diff)
	}
	if len(got.Members) != 2 || got.Members[0].ID != "a" || got.Members[1].ID != "b" {
		t.Fatalf("members are %+v, want a then b", got.Members)
	}

	// A refused append (stale seq) names member a: a stays as stored.
	stale := *got
	stale.Members = nil
	changed := got.Members[0]
	changed.Status = api.StatusCancelled
	err := s.Append(ctx, engine.Append{RunID: "r1", Run: &stale, Members: []engine.MemberUpdate{{Index: 0, Member: &changed}},
		Events: []api.Event{{Seq: 3, At: T0, Type: api.EventMemberStatus, RunID: "r1", Member: "a", Status: api.StatusCancelled}}})
	if !errors.Is(err, engine.ErrSeqConflict) {
		t.Fatalf("stale Append = %v, want ErrSeqConflict", err)
	}
	if diff := cmp.Diff(got, get(t, s, "t", "r1").Run); diff != "" {
		t.Errorf("a refused append changed the run (-before +after):\n%s", diff)
	}
	// Lists and the resume read the members too.
	runs, _, err := s.ListRuns(ctx, "t", engine.ListFilter{})
	if err != nil || len(runs) != 1 {
		t.Fatalf("ListRuns = %d runs, %v", len(runs), err)
	}
	if diff := cmp.Diff(got, runs[0]); diff != "" {
		t.Errorf("listed run (-got +listed):\n%s", diff)
	}
	recs, err := s.NonTerminal(ctx)
	if err != nil || len(recs) != 1 {
		t.Fatalf("NonTerminal = %d runs, %v", len(recs), err)
	}
	if diff := cmp.Diff(got, recs[0].Run); diff != "" {
		t.Errorf("unfinished run (-got +resumed):\n%s", diff)
	}
}

// The engine reuses an append's head and member list once Append returns
// (engine.Store): what the store keeps of them must be its own copy.
func testAppendCopiesHead(t *testing.T, s engine.Store) {
	ctx := context.Background()
	Create(t, s, "t", "r1")
	next := get(t, s, "t", "r1").Run
	ev := api.Event{Seq: 2, At: T0, Type: api.EventMemberStatus, RunID: "r1", Member: "b", Status: api.StatusCancelled, Reason: "kept"}
	if err := next.Apply(ev); err != nil {
		t.Fatal(err)
	}
	head := *next
	head.Members = nil
	b := next.Members[1]
	ms := []engine.MemberUpdate{{Index: 1, Member: &b}}
	if err := s.Append(ctx, engine.Append{RunID: "r1", Run: &head, Events: []api.Event{ev}, Members: ms}); err != nil {
		t.Fatalf("Append: %v", err)
	}
	// The engine's next append overwrites both in place.
	head.Status, head.Reason, head.LastSeq = api.StatusPassed, "overwritten", 99
	a := next.Members[0]
	ms[0] = engine.MemberUpdate{Index: 0, Member: &a}
	if diff := cmp.Diff(next, get(t, s, "t", "r1").Run); diff != "" {
		t.Errorf("the stored run changed with the caller's head (-appended +stored):\n%s", diff)
	}
}

func testEventsAfterAndLimit(t *testing.T, s engine.Store) {
	Create(t, s, "t", "r1")
	var evs []api.Event
	for q := 2; q <= 10; q++ {
		evs = append(evs, api.Event{Type: api.EventLog, Message: fmt.Sprint(q)})
	}
	mustAppend(t, s, "t", "r1", evs...)
	tests := []struct {
		after int64
		limit int
		want  []int64
	}{
		{0, 0, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{7, 0, []int64{8, 9, 10}},
		{3, 2, []int64{4, 5}},
		{8, 5, []int64{9, 10}},
		{10, 0, nil},
		{99, 5, nil},
		{-4, 1, []int64{1}},
	}
	for _, tt := range tests {
		var seqs []int64
		for _, ev := range events(t, s, "r1", tt.after, tt.limit) {
			seqs = append(seqs, ev.Seq)
		}
		if diff := cmp.Diff(tt.want, seqs); diff != "" {
			t.Errorf("Events(after %d, limit %d) (-want +got):\n%s", tt.after, tt.limit, diff)
		}
	}
}

func testListPagingAndFilters(t *testing.T, s engine.Store) {
	CreateIn(t, s, "t", "r1", "shop", "staging")
	CreateIn(t, s, "t", "r2", "shop", "staging")
	CreateIn(t, s, "u", "other", "shop", "staging")
	CreateIn(t, s, "t", "r3", "shop", "prod")
	CreateIn(t, s, "t", "r4", "blog", "staging")
	CreateIn(t, s, "t", "r5", "shop", "staging")
	mustAppend(t, s, "t", "r2", ended()...)
	mustAppend(t, s, "t", "r4", api.Event{Type: api.EventRunStatus, Status: api.StatusRunning})

	list := func(f engine.ListFilter) ([][]string, error) {
		var pages [][]string
		for {
			runs, next, err := s.ListRuns(context.Background(), "t", f)
			if err != nil {
				return nil, err
			}
			pages = append(pages, ids(runs))
			if next == "" {
				return pages, nil
			}
			if len(pages) > 10 {
				return nil, errors.New("paging does not end")
			}
			f.Cursor = next
		}
	}
	tests := []struct {
		name string
		f    engine.ListFilter
		want [][]string
	}{
		{"all, one page", engine.ListFilter{}, [][]string{{"r5", "r4", "r3", "r2", "r1"}}},
		{"pages of 2", engine.ListFilter{Limit: 2}, [][]string{{"r5", "r4"}, {"r3", "r2"}, {"r1"}}},
		{"exact pages", engine.ListFilter{Limit: 5}, [][]string{{"r5", "r4", "r3", "r2", "r1"}}},
		{"statuses", engine.ListFilter{Statuses: []api.Status{api.StatusRunning, api.StatusCancelled}}, [][]string{{"r4", "r2"}}},
		{"one status, paged", engine.ListFilter{Statuses: []api.Status{api.StatusInitial}, Limit: 2}, [][]string{{"r5", "r3"}, {"r1"}}},
		{"project", engine.ListFilter{Project: "shop"}, [][]string{{"r5", "r3", "r2", "r1"}}},
		{"environment", engine.ListFilter{Environment: "prod"}, [][]string{{"r3"}}},
		{"project and environment", engine.ListFilter{Project: "shop", Environment: "staging", Limit: 1}, [][]string{{"r5"}, {"r2"}, {"r1"}}},
		{"nothing matches", engine.ListFilter{Project: "none"}, [][]string{nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := list(tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("pages (-want +got):\n%s", diff)
			}
		})
	}
	for _, c := range []string{"x", "-3", "0", "1.5"} {
		if _, _, err := s.ListRuns(context.Background(), "t", engine.ListFilter{Cursor: c}); !errors.Is(err, engine.ErrInvalidCursor) {
			t.Errorf("cursor %q: %v, want ErrInvalidCursor", c, err)
		}
	}
	runs, _, err := s.ListRuns(context.Background(), "t", engine.ListFilter{Environment: "prod"})
	if err != nil || len(runs) != 1 {
		t.Fatalf("ListRuns: %v %v", runs, err)
	}
	if diff := cmp.Diff(get(t, s, "t", "r3").Run, runs[0]); diff != "" {
		t.Errorf("listed run vs GetRun (-get +list):\n%s", diff)
	}
}

func testNonTerminal(t *testing.T, s engine.Store) {
	var orders []int64
	for i := 1; i <= 5; i++ {
		tenant := "t"
		if i == 3 {
			tenant = "u"
		}
		orders = append(orders, Create(t, s, tenant, fmt.Sprintf("r%d", i)).Order)
	}
	mustAppend(t, s, "t", "r2", ended()...)
	mustAppend(t, s, "t", "r4", api.Event{Type: api.EventRunStatus, Status: api.StatusRunning})
	mustAppend(t, s, "t", "r5", api.Event{Type: api.EventRunStatus, Status: api.StatusQueued})
	recs, err := s.NonTerminal(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	var gotOrders []int64
	for _, r := range recs {
		got = append(got, r.Run.ID)
		gotOrders = append(gotOrders, r.Order)
		if r.Request == nil || len(r.Request.Cases) != 2 {
			t.Errorf("run %s comes without its definition", r.Run.ID)
		}
	}
	if diff := cmp.Diff([]string{"r1", "r3", "r4", "r5"}, got); diff != "" {
		t.Errorf("NonTerminal (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int64{orders[0], orders[2], orders[3], orders[4]}, gotOrders); diff != "" {
		t.Errorf("orders (-want +got):\n%s", diff)
	}
	if r4 := recs[2].Run; r4.Status != api.StatusRunning || r4.LastSeq != 2 {
		t.Errorf("r4 = %s at seq %d, want running at 2", r4.Status, r4.LastSeq)
	}
}

func key(tenant, k, fp, runID string, created time.Time) *engine.IdempotencyRecord {
	return &engine.IdempotencyRecord{Tenant: tenant, Key: k, Fingerprint: fp, RunID: runID, CreatedAt: created, ExpiresAt: created.Add(engine.IdempotencyTTL)}
}

func createKeyed(t *testing.T, s engine.Store, id string, idem *engine.IdempotencyRecord) *engine.IdempotencyRecord {
	t.Helper()
	rec, first := NewRun(idem.Tenant, id, Request("shop", "staging"))
	holder, err := s.CreateRun(context.Background(), rec, first, idem)
	if err != nil {
		t.Fatalf("CreateRun %s: %v", id, err)
	}
	return holder
}

func testIdempotencyReturnsHolder(t *testing.T, s engine.Store) {
	k1 := key("t", "ci-123", "fp1", "r1", T0)
	if h := createKeyed(t, s, "r1", k1); h != nil {
		t.Fatalf("first create: holder %+v, want none", h)
	}
	tests := []struct {
		name   string
		id     string
		idem   *engine.IdempotencyRecord
		holder *engine.IdempotencyRecord // nil: a new run
	}{
		{"same key, same request", "r2", key("t", "ci-123", "fp1", "r2", T0.Add(time.Minute)), k1},
		{"same key, other request: the holder, for the caller to refuse", "r3", key("t", "ci-123", "other", "r3", T0.Add(time.Hour)), k1},
		{"just before expiry", "r4", key("t", "ci-123", "fp1", "r4", T0.Add(engine.IdempotencyTTL-time.Nanosecond)), k1},
		{"same key, other tenant", "r5", key("u", "ci-123", "fp1", "r5", T0), nil},
		{"other key", "r6", key("t", "ci-124", "fp1", "r6", T0), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := createKeyed(t, s, tt.id, tt.idem)
			if diff := cmp.Diff(tt.holder, h); diff != "" {
				t.Fatalf("holder (-want +got):\n%s", diff)
			}
			_, err := s.GetRun(context.Background(), tt.idem.Tenant, tt.id)
			if stored := err == nil; stored != (tt.holder == nil) {
				t.Errorf("run %s stored = %v (err %v), want %v", tt.id, stored, err, tt.holder == nil)
			}
		})
	}
}

func testIdempotencyKeyExpires(t *testing.T, s engine.Store) {
	if h := createKeyed(t, s, "r1", key("t", "k", "f", "r1", T0)); h != nil {
		t.Fatal(h)
	}
	// At exactly ExpiresAt the key is free again (kept "at least 7 days").
	later := key("t", "k", "g", "r2", T0.Add(engine.IdempotencyTTL))
	if h := createKeyed(t, s, "r2", later); h != nil {
		t.Fatalf("create after expiry: holder %+v, want a new run", h)
	}
	if h := createKeyed(t, s, "r3", key("t", "k", "g", "r3", T0.Add(engine.IdempotencyTTL+time.Hour))); h == nil || h.RunID != "r2" || h.Fingerprint != "g" {
		t.Fatalf("holder = %+v; want r2's key", h)
	}
	if _, err := s.GetRun(context.Background(), "t", "r3"); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("a deduplicated create stored its run: %v", err)
	}
	// The run whose key expired is still there.
	get(t, s, "t", "r1")
}

func testConcurrentIdenticalCreates(t *testing.T, s engine.Store) {
	IdenticalCreates(t, ConcurrentCreates, func(int) engine.Store { return s })
}

// IdenticalCreates makes n creates with one idempotency key at once, create i
// through store(i) (stores that share a database stand for replicas), and
// checks exactly one run is stored, with one event, and every other create is
// told that run holds the key.
func IdenticalCreates(t *testing.T, n int, store func(i int) engine.Store) {
	t.Helper()
	holders := make([]*engine.IdempotencyRecord, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			id := fmt.Sprintf("r%d", i)
			rec, first := NewRun("t", id, Request("shop", "staging"))
			<-start
			holders[i], errs[i] = store(i).CreateRun(context.Background(), rec, first, key("t", "same", "fp", id, T0))
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
				t.Fatalf("creates %s and r%d both stored a run", owner, i)
			}
			owner = fmt.Sprintf("r%d", i)
		}
	}
	if owner == "" {
		t.Fatal("no create stored a run")
	}
	for i, h := range holders {
		if h != nil && (h.RunID != owner || h.Fingerprint != "fp") {
			t.Fatalf("create %d was told the key belongs to %s, the owner is %s", i, h.RunID, owner)
		}
	}
	s := store(0)
	runs, _, err := s.ListRuns(context.Background(), "t", engine.ListFilter{})
	if err != nil || len(runs) != 1 || runs[0].ID != owner {
		t.Fatalf("stored runs %v (err %v), want only %s", ids(runs), err, owner)
	}
	if n := len(events(t, s, owner, 0, 0)); n != 1 {
		t.Errorf("the owner's log has %d events, want 1", n)
	}
}

func testConcurrentDistinct(t *testing.T, s engine.Store) {
	const n = 40
	orders := make([]int64, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			id := fmt.Sprintf("r%02d", i)
			rec, first := NewRun("t", id, Request("shop", "staging"))
			var idem *engine.IdempotencyRecord
			if i%2 == 0 {
				idem = key("t", id, "fp", id, T0)
			}
			if _, errs[i] = s.CreateRun(context.Background(), rec, first, idem); errs[i] != nil {
				return
			}
			orders[i] = rec.Order
			for range 3 {
				if _, errs[i] = AppendEvents(s, "t", id, api.Event{Type: api.EventLog, Message: "x"}); errs[i] != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	sorted := slices.Clone(orders)
	slices.Sort(sorted)
	if len(slices.Compact(sorted)) != n {
		t.Fatalf("orders are not unique: %v", orders)
	}
	recs, err := s.NonTerminal(context.Background())
	if err != nil || len(recs) != n {
		t.Fatalf("NonTerminal: %d runs, err %v", len(recs), err)
	}
	for i, r := range recs {
		if r.Order != sorted[i] || r.Run.LastSeq != 4 {
			t.Fatalf("NonTerminal[%d] = %s order %d seq %d; want order %d seq 4", i, r.Run.ID, r.Order, r.Run.LastSeq, sorted[i])
		}
	}
}
