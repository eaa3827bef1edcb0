// Package memstore is the in-memory engine.Store of the embedded runner: one
// mutex, copies handed out, nothing survives the process.
package memstore

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
)

var _ engine.Store = (*Store)(nil)
var _ engine.BatchAppender = (*Store)(nil)

// Store keeps runs, event logs and idempotency keys in memory.
type Store struct {
	mu    sync.Mutex
	order int64
	runs  map[string]*entry
	list  []*entry // by Order, oldest first
	idem  map[idemKey]engine.IdempotencyRecord

	trigOnce sync.Once
	trigs    *triggers

	keepHistory bool                   // WithHistory
	history     []engine.HistoryRecord // oldest first by FinishedAt (history.go)
	// lastOutcome and days (snapshots of running totals) are the health
	// summaries (engine.FoldHistory).
	lastOutcome map[engine.CaseKey]*engine.LastOutcome
	days        map[engine.DayKey]*engine.DayCounts
	shadows     []engine.ShadowRecord // finished shadow runs, in the order they ended

	cov coverages // each project's latest coverage summary (coverage.go)
}

// entry is one run: its head (Members nil), its members and its log. An
// append replaces the head and the members it names, never the whole run.
type entry struct {
	order   int64
	run     api.Run // a copy: the engine reuses what Append is given
	members []*api.Member
	req     *api.RunRequest
	events  eventLog
	arts    artifacts // evidence of failed steps (artifacts.go)
}

// eventLog is a run's events as they were appended: the slices themselves,
// which no one changes once appended (Store.Append lets a store keep them),
// so an append copies no event, and first[k] is the log index of
// batches[k][0]. Copying each event into the log cost more than the rest of
// a commit's store work together (docs/benchmarks.md).
type eventLog struct {
	batches [][]api.Event
	first   []int
	n       int
}

func (l *eventLog) append(evs []api.Event) {
	if len(evs) == 0 {
		return
	}
	l.batches = append(l.batches, evs)
	l.first = append(l.first, l.n)
	l.n += len(evs)
}

// each calls fn with the events at log indexes from up to (not including)
// to, in order.
func (l *eventLog) each(from, to int, fn func(api.Event)) {
	// The batch holding index from: the last one that starts at or before it.
	k, found := slices.BinarySearch(l.first, from)
	if !found {
		k--
	}
	for i := from; i < to; k++ {
		b := l.batches[k][i-l.first[k]:]
		for _, ev := range b[:min(len(b), to-i)] {
			fn(ev)
			i++
		}
	}
}

// whole is the run with its members, a copy the caller may keep and change
// (as api.Run.Clone makes it, empty slices nil) in three allocations, not one
// per member: the members' steps share one array and their failed attempts
// another, each member's slice capped at its length so an append reallocates.
func (e *entry) whole() *api.Run {
	r := e.run
	ns, nf := 0, 0
	for _, m := range e.members {
		ns += len(m.Steps)
		nf += len(m.FailedAttempts)
	}
	r.Members = make([]api.Member, len(e.members))
	steps := make([]api.StepResult, 0, ns)
	var failed []string
	if nf > 0 {
		failed = make([]string, 0, nf)
	}
	for i, m := range e.members {
		c := *m
		c.Steps, c.FailedAttempts = nil, nil
		if len(m.Steps) > 0 {
			k := len(steps)
			steps = append(steps, m.Steps...)
			c.Steps = steps[k:len(steps):len(steps)]
		}
		if len(m.FailedAttempts) > 0 {
			k := len(failed)
			failed = append(failed, m.FailedAttempts...)
			c.FailedAttempts = failed[k:len(failed):len(failed)]
		}
		r.Members[i] = c
	}
	return &r
}

type idemKey struct{ tenant, key string }

// New returns an empty store.
func New(opts ...Option) *Store {
	s := &Store{runs: map[string]*entry{}, idem: map[idemKey]engine.IdempotencyRecord{}}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Option configures a Store.
type Option func(*Store)

// WithHistory makes the store record test health history (engine.HistoryStore)
// when a run ends. The embedded runner does not: nothing reads history in a
// process that exits after one run, and recording it cost about 4 µs per member
// (docs/benchmarks.md). Tests of history and the clienttest server do.
func WithHistory() Option { return func(s *Store) { s.keepHistory = true } }

// CreateRun implements engine.Store.
func (s *Store) CreateRun(_ context.Context, rec *engine.RunRecord, first api.Event, idem *engine.IdempotencyRecord) (*engine.IdempotencyRecord, error) {
	if first.Seq != 1 || rec.Run.LastSeq != 1 {
		return nil, fmt.Errorf("creating run %s: the first event must be seq 1: %w", rec.Run.ID, engine.ErrSeqConflict)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if idem != nil {
		k := idemKey{idem.Tenant, idem.Key}
		if held, ok := s.idem[k]; ok && held.ExpiresAt.After(idem.CreatedAt) {
			return &held, nil
		}
	}
	if _, ok := s.runs[rec.Run.ID]; ok {
		return nil, fmt.Errorf("creating run %s: %w", rec.Run.ID, engine.ErrDuplicateRun)
	}
	s.order++
	rec.Order = s.order
	// Values passed in are immutable by the Store contract: keep them, copy on the way out.
	members := make([]*api.Member, len(rec.Run.Members))
	for i := range rec.Run.Members {
		members[i] = &rec.Run.Members[i]
	}
	e := &entry{order: s.order, run: *rec.Run, members: members, req: rec.Request}
	e.run.Members = nil
	// Room for the appends of a run whose members each commit twice.
	e.events.batches = make([][]api.Event, 0, 2*len(members)+8)
	e.events.first = make([]int, 0, 2*len(members)+8)
	e.events.append([]api.Event{first})
	s.runs[rec.Run.ID] = e
	s.list = append(s.list, e)
	if idem != nil {
		s.idem[idemKey{idem.Tenant, idem.Key}] = *idem
	}
	return nil, nil
}

// Append implements engine.Store.
func (s *Store) Append(ctx context.Context, a engine.Append) error {
	return s.AppendBatch(ctx, []engine.Append{a})
}

// AppendBatch implements engine.BatchAppender: every append is checked before
// any is applied, so the batch is all or nothing.
func (s *Store) AppendBatch(_ context.Context, batch []engine.Append) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range batch {
		if err := s.checkAppend(a); err != nil {
			return err
		}
	}
	for _, a := range batch {
		e := s.runs[a.RunID]
		was := e.run.Status
		e.events.append(a.Events)
		e.run = *a.Run
		for _, u := range a.Members {
			e.members[u.Index] = u.Member
		}
		if s.keepHistory && !was.Terminal() && a.Run.Status.Terminal() {
			s.recordHistory(e)
		}
	}
	return nil
}

// checkAppend refuses an append that does not continue the run's log. Caller holds s.mu.
func (s *Store) checkAppend(a engine.Append) error {
	runID, snapshot, events := a.RunID, a.Run, a.Events
	e, ok := s.runs[runID]
	if !ok {
		return fmt.Errorf("appending to run %s: %w", runID, engine.ErrNotFound)
	}
	for _, u := range a.Members {
		if u.Index < 0 || u.Index >= len(e.members) || u.Member == nil || u.Member.ID != e.members[u.Index].ID {
			return fmt.Errorf("appending to run %s: no member %d as given; members keep the index api.NewRun gave them", runID, u.Index)
		}
	}
	last := e.run.LastSeq
	for i, ev := range events {
		if ev.Seq != last+int64(i)+1 {
			return fmt.Errorf("appending to run %s: got seq %d, want %d: %w", runID, ev.Seq, last+int64(i)+1, engine.ErrSeqConflict)
		}
	}
	if want := last + int64(len(events)); snapshot.LastSeq != want {
		return fmt.Errorf("appending to run %s: snapshot is at seq %d, the log at %d: %w", runID, snapshot.LastSeq, want, engine.ErrSeqConflict)
	}
	return nil
}

// GetRun implements engine.Store.
func (s *Store) GetRun(_ context.Context, tenant, id string) (*engine.RunRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.runs[id]
	if !ok || e.run.Tenant != tenant {
		return nil, fmt.Errorf("run %s: %w", id, engine.ErrNotFound)
	}
	return &engine.RunRecord{Order: e.order, Run: e.whole(), Request: e.req}, nil
}

// ListRuns implements engine.Store. The cursor is the Order of the last run returned.
func (s *Store) ListRuns(_ context.Context, tenant string, f engine.ListFilter) ([]*api.Run, string, error) {
	before := int64(-1)
	if f.Cursor != "" {
		n, err := strconv.ParseInt(f.Cursor, 10, 64)
		if err != nil || n < 1 {
			return nil, "", fmt.Errorf("cursor %q: %w", f.Cursor, engine.ErrInvalidCursor)
		}
		before = n
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*api.Run
	var lastOrder int64
	for i := len(s.list) - 1; i >= 0; i-- {
		e := s.list[i]
		if before >= 0 && e.order >= before {
			continue
		}
		if e.run.Tenant != tenant || !f.MatchHead(&e.run) || f.Flaky && !engine.AnyFlaky(e.members) {
			continue
		}
		if f.Limit > 0 && len(out) == f.Limit {
			return out, strconv.FormatInt(lastOrder, 10), nil
		}
		out = append(out, e.whole())
		lastOrder = e.order
	}
	return out, "", nil
}

// Events implements engine.Store.
func (s *Store) Events(_ context.Context, runID string, after int64, limit int) ([]api.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.runs[runID]
	if !ok {
		return nil, fmt.Errorf("events of run %s: %w", runID, engine.ErrNotFound)
	}
	// Seqs are 1..n without gaps, so seq k is at index k-1.
	start := min(max(after, 0), int64(e.events.n))
	end := int64(e.events.n)
	if limit > 0 {
		end = min(end, start+int64(limit))
	}
	out := make([]api.Event, 0, end-start)
	e.events.each(int(start), int(end), func(ev api.Event) { out = append(out, cloneEvent(ev)) })
	return out, nil
}

// NonTerminal implements engine.Store.
func (s *Store) NonTerminal(_ context.Context) ([]*engine.RunRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*engine.RunRecord
	for _, e := range s.list {
		if !e.run.Status.Terminal() {
			out = append(out, &engine.RunRecord{Order: e.order, Run: e.whole(), Request: e.req})
		}
	}
	return out, nil
}

// cloneEvent copies the parts of an event a caller could change.
func cloneEvent(ev api.Event) api.Event {
	if ev.Run != nil {
		ev.Run = ev.Run.Clone()
	}
	if ev.Failure != nil {
		f := *ev.Failure
		ev.Failure = &f
	}
	return ev
}
