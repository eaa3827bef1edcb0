package memstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/engine"
	"github.com/zof-ai/zof-ci/engine/memstore"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// newRun builds what the engine stores for a new run.
func newRun(t *testing.T, tenant, id string) (*engine.RunRecord, api.Event) {
	t.Helper()
	req := &api.RunRequest{Project: "shop", Environment: api.Environment{Name: "staging"},
		Cases: []api.Case{{ID: "a", Steps: []api.Step{{Name: "s", Run: &api.Command{Command: "true"}}}}}}
	initial := api.NewRun(id, req, t0)
	initial.Tenant = tenant
	first := api.Event{Seq: 1, At: t0, Type: api.EventRunCreated, RunID: id, Run: initial}
	snap := &api.Run{}
	if err := snap.Apply(first); err != nil {
		t.Fatal(err)
	}
	return &engine.RunRecord{Run: snap, Request: req}, first
}

func create(t *testing.T, s *memstore.Store, tenant, id string) *engine.RunRecord {
	t.Helper()
	rec, first := newRun(t, tenant, id)
	if holder, err := s.CreateRun(context.Background(), rec, first, nil); err != nil || holder != nil {
		t.Fatalf("CreateRun %s: %v %v", id, holder, err)
	}
	return rec
}

// appendEvents folds evs into the stored snapshot and appends them.
func appendEvents(s *memstore.Store, tenant, id string, evs ...api.Event) error {
	rec, err := s.GetRun(context.Background(), tenant, id)
	if err != nil {
		return err
	}
	snap := rec.Run
	for _, ev := range evs {
		if err := snap.Apply(ev); err != nil {
			return err
		}
	}
	return s.Append(context.Background(), id, snap, evs)
}

func TestAppendRefusesGapsAndDuplicates(t *testing.T) {
	s := memstore.New()
	create(t, s, "t", "r1")
	running := api.Event{Seq: 2, Type: api.EventRunStatus, RunID: "r1", Status: api.StatusRunning}
	if err := appendEvents(s, "t", "r1", running); err != nil {
		t.Fatal(err)
	}
	snap, _ := s.GetRun(context.Background(), "t", "r1")
	tests := []struct {
		name string
		snap int64
		seqs []int64
	}{
		{"repeat", 3, []int64{2, 3}},
		{"gap", 4, []int64{4}},
		{"hole inside the batch", 5, []int64{3, 5}},
		{"snapshot behind the events", 2, []int64{3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var evs []api.Event
			for _, q := range tt.seqs {
				evs = append(evs, api.Event{Seq: q, Type: api.EventLog, RunID: "r1", Message: "x"})
			}
			bad := snap.Run.Clone()
			bad.LastSeq = tt.snap
			err := s.Append(context.Background(), "r1", bad, evs)
			if !errors.Is(err, engine.ErrSeqConflict) {
				t.Fatalf("Append = %v, want ErrSeqConflict", err)
			}
			evs2, _ := s.Events(context.Background(), "r1", 0, 0)
			if len(evs2) != 2 {
				t.Fatalf("a refused append stored events: %d in the log", len(evs2))
			}
		})
	}
	if err := s.Append(context.Background(), "nope", snap.Run, nil); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("Append to a missing run = %v", err)
	}
}

func TestEventsAfterAndLimit(t *testing.T) {
	s := memstore.New()
	create(t, s, "t", "r1")
	var evs []api.Event
	for q := int64(2); q <= 10; q++ {
		evs = append(evs, api.Event{Seq: q, Type: api.EventLog, RunID: "r1", Message: fmt.Sprint(q)})
	}
	if err := appendEvents(s, "t", "r1", evs...); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		after int64
		limit int
		want  []int64
	}{
		{0, 0, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{7, 0, []int64{8, 9, 10}},
		{3, 2, []int64{4, 5}},
		{10, 0, nil},
		{99, 5, nil},
		{-4, 1, []int64{1}},
	}
	for _, tt := range tests {
		got, err := s.Events(context.Background(), "r1", tt.after, tt.limit)
		if err != nil {
			t.Fatal(err)
		}
		var seqs []int64
		for _, ev := range got {
			seqs = append(seqs, ev.Seq)
		}
		if diff := cmp.Diff(tt.want, seqs); diff != "" {
			t.Errorf("Events(after %d, limit %d) (-want +got):\n%s", tt.after, tt.limit, diff)
		}
	}
}

func TestConcurrentIdempotentCreates(t *testing.T) {
	s := memstore.New()
	const n = 100
	var wg sync.WaitGroup
	holders := make([]*engine.IdempotencyRecord, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec, first := newRun(t, "t", fmt.Sprintf("r%d", i))
			idem := &engine.IdempotencyRecord{Tenant: "t", Key: "k", Fingerprint: "f", RunID: rec.Run.ID, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
			holders[i], errs[i] = s.CreateRun(context.Background(), rec, first, idem)
		}()
	}
	wg.Wait()
	winners := 0
	owner := ""
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if holders[i] == nil {
			winners++
			owner = fmt.Sprintf("r%d", i)
		}
	}
	if winners != 1 {
		t.Fatalf("%d creates stored a run, want 1", winners)
	}
	for i, h := range holders {
		if h != nil && h.RunID != owner {
			t.Fatalf("create %d was told the key belongs to %s, the owner is %s", i, h.RunID, owner)
		}
	}
	runs, _, _ := s.ListRuns(context.Background(), "t", engine.ListFilter{})
	if len(runs) != 1 {
		t.Fatalf("%d runs stored, want 1", len(runs))
	}
}

func TestIdempotencyKeyExpires(t *testing.T) {
	s := memstore.New()
	rec, first := newRun(t, "t", "r1")
	idem := &engine.IdempotencyRecord{Tenant: "t", Key: "k", Fingerprint: "f", RunID: "r1", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	if h, err := s.CreateRun(context.Background(), rec, first, idem); h != nil || err != nil {
		t.Fatal(h, err)
	}
	rec2, first2 := newRun(t, "t", "r2")
	later := &engine.IdempotencyRecord{Tenant: "t", Key: "k", Fingerprint: "g", RunID: "r2", CreatedAt: t0.Add(2 * time.Hour), ExpiresAt: t0.Add(3 * time.Hour)}
	if h, err := s.CreateRun(context.Background(), rec2, first2, later); h != nil || err != nil {
		t.Fatalf("create after expiry: holder %v err %v, want a new run", h, err)
	}
	rec3, first3 := newRun(t, "t", "r3")
	again := *later
	again.RunID = "r3"
	h, err := s.CreateRun(context.Background(), rec3, first3, &again)
	if err != nil || h == nil || h.RunID != "r2" {
		t.Fatalf("holder = %+v, %v; want r2", h, err)
	}
	if _, err := s.GetRun(context.Background(), "t", "r3"); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("a deduplicated create stored its run: %v", err)
	}
}

func TestTenantsAndCopies(t *testing.T) {
	s := memstore.New()
	create(t, s, "t", "r1")
	if _, err := s.GetRun(context.Background(), "u", "r1"); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("another tenant's run: %v, want ErrNotFound", err)
	}
	if runs, _, _ := s.ListRuns(context.Background(), "u", engine.ListFilter{}); len(runs) != 0 {
		t.Errorf("another tenant lists %d runs", len(runs))
	}
	rec, _ := s.GetRun(context.Background(), "t", "r1")
	rec.Run.Members[0].Steps[0].Status = api.StepFailed
	rec.Run.Status = api.StatusBlocked
	again, _ := s.GetRun(context.Background(), "t", "r1")
	if again.Run.Status != api.StatusInitial || again.Run.Members[0].Steps[0].Status != api.StepPending {
		t.Errorf("changing a returned run changed the store")
	}
	if _, err := s.CreateRun(context.Background(), again, api.Event{Seq: 1, Type: api.EventRunCreated, RunID: "r1", Run: again.Run}, nil); !errors.Is(err, engine.ErrDuplicateRun) {
		t.Errorf("duplicate id: %v", err)
	}
}

func TestListAndNonTerminal(t *testing.T) {
	s := memstore.New()
	for i := 1; i <= 5; i++ {
		create(t, s, "t", fmt.Sprintf("r%d", i))
	}
	// r2 ends; r4 runs.
	if err := appendEvents(s, "t", "r2",
		api.Event{Seq: 2, Type: api.EventMemberStatus, RunID: "r2", Member: "a", Status: api.StatusCancelled},
		api.Event{Seq: 3, Type: api.EventRunStatus, RunID: "r2", Status: api.StatusCancelled}); err != nil {
		t.Fatal(err)
	}
	if err := appendEvents(s, "t", "r4", api.Event{Seq: 2, Type: api.EventRunStatus, RunID: "r4", Status: api.StatusRunning}); err != nil {
		t.Fatal(err)
	}
	ids := func(runs []*api.Run) []string {
		var out []string
		for _, r := range runs {
			out = append(out, r.ID)
		}
		return out
	}
	var pages [][]string
	cursor := ""
	for {
		runs, next, err := s.ListRuns(context.Background(), "t", engine.ListFilter{Limit: 2, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, ids(runs))
		if next == "" {
			break
		}
		cursor = next
	}
	if diff := cmp.Diff([][]string{{"r5", "r4"}, {"r3", "r2"}, {"r1"}}, pages); diff != "" {
		t.Errorf("pages (-want +got):\n%s", diff)
	}
	runs, _, _ := s.ListRuns(context.Background(), "t", engine.ListFilter{Statuses: []api.Status{api.StatusRunning, api.StatusCancelled}})
	if diff := cmp.Diff([]string{"r4", "r2"}, ids(runs)); diff != "" {
		t.Errorf("filtered (-want +got):\n%s", diff)
	}
	if _, _, err := s.ListRuns(context.Background(), "t", engine.ListFilter{Cursor: "x"}); !errors.Is(err, engine.ErrInvalidCursor) {
		t.Errorf("bad cursor: %v", err)
	}
	recs, _ := s.NonTerminal(context.Background())
	var got []string
	var orders []int64
	for _, r := range recs {
		got = append(got, r.Run.ID)
		orders = append(orders, r.Order)
	}
	if diff := cmp.Diff([]string{"r1", "r3", "r4", "r5"}, got); diff != "" {
		t.Errorf("NonTerminal (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int64{1, 3, 4, 5}, orders); diff != "" {
		t.Errorf("orders (-want +got):\n%s", diff)
	}
}
