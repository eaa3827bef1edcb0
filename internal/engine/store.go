package engine

import (
	"context"
	"errors"
	"time"

	"github.com/zof-ai/zof-ci/api"
)

// Store is everything the engine remembers across a restart: runs (their
// state and definition), their event logs and idempotency keys. memstore
// implements it for the embedded runner; `zof serve` backs it with SQLite.
// Each method is one atomic operation, so a SQL implementation maps it to one
// transaction. Values passed in and handed out are treated as immutable.
//
// A run is stored as its head (the run's own fields) and one row per member,
// beside its event log. An append writes its events, the head and only the
// members those events changed, so the cost of an event does not grow with
// the number of members (docs/design-postgres.md describes the shape).
type Store interface {
	// CreateRun stores a new run: rec, its first event (seq 1) and, when idem is
	// not nil, the idempotency record, all or nothing. If idem's (tenant, key)
	// is already held by an unexpired record (ExpiresAt after idem.CreatedAt),
	// nothing is stored and that holder is returned with a nil error: this is
	// what makes N concurrent identical creates produce exactly one run. On
	// success it sets rec.Order to a value larger than any earlier run's.
	CreateRun(ctx context.Context, rec *RunRecord, first api.Event, idem *IdempotencyRecord) (holder *IdempotencyRecord, err error)
	// Append adds events to a run's log, replaces its head and the members
	// the events changed, atomically. The events' seqs must continue the log
	// without a gap and a.Run.LastSeq must be the last of them; otherwise
	// nothing is stored and the error wraps ErrSeqConflict. The store may
	// keep the events and the *api.Member values of a.Members (no one
	// changes them), but copies what it keeps of *a.Run and of the
	// a.Members slice: the engine reuses both once Append returns.
	Append(ctx context.Context, a Append) error
	// GetRun returns the run, its members included, with its definition. A
	// run of another tenant is ErrNotFound, exactly like a missing one. The
	// run is the caller's own copy: changing it changes nothing in the store
	// (conformance test TenantIsolationAndCopies), so the engine hands it on
	// without copying it again. The definition is shared and never changed.
	GetRun(ctx context.Context, tenant, id string) (*RunRecord, error)
	// ListRuns returns the tenant's runs newest first (by Order), filtered, at
	// most f.Limit of them, and an opaque cursor for the next page ("" at the
	// end). A cursor the store did not make wraps ErrInvalidCursor.
	ListRuns(ctx context.Context, tenant string, f ListFilter) (runs []*api.Run, next string, err error)
	// Events returns up to limit events of the run with seq > after, in order.
	Events(ctx context.Context, runID string, after int64, limit int) ([]api.Event, error)
	// NonTerminal returns every run that is initial, queued or running, oldest
	// first (by Order): what the scheduler resumes after a restart.
	NonTerminal(ctx context.Context) ([]*RunRecord, error)
}

// BatchAppender is an optional Store capability: Append to several runs as one
// atomic operation (all or nothing). The scheduler uses it for queue positions,
// which move for every queued run of a tenant whenever one of its runs ends.
type BatchAppender interface {
	AppendBatch(ctx context.Context, batch []Append) error
}

// Append is one append to a run's log: the events and what they changed.
type Append struct {
	RunID string
	// Run is the run's head after the events: every field but Members, which
	// is nil. Run.LastSeq is the seq of the last event.
	Run *api.Run
	// Members are the members the events changed, as they are after them.
	Members []MemberUpdate
	Events  []api.Event
	// Lease is the lease the run is executed under (see Cluster), "" for a
	// run no replica holds. A Cluster store refuses the append, with
	// ErrLeaseLost, when the run is held under another lease (or under one
	// when Lease is ""): a replica that lost a run writes nothing more to
	// it. Other stores have one writer and ignore it.
	Lease string
}

// MemberUpdate is one member's new state, at its index in Run.Members (the
// order api.NewRun gives, which never changes).
type MemberUpdate struct {
	Index  int
	Member *api.Member
}

// WholeRun is an Append that rewrites every member of snap: for tools and
// tests that hold a whole snapshot. The engine sends only what changed.
func WholeRun(runID string, snap *api.Run, events []api.Event) Append {
	head := *snap
	head.Members = nil
	a := Append{RunID: runID, Run: &head, Events: events, Members: make([]MemberUpdate, len(snap.Members))}
	for i := range snap.Members {
		m := snap.Members[i]
		a.Members[i] = MemberUpdate{Index: i, Member: &m}
	}
	return a
}

// RunRecord is a run as stored: its snapshot and the definition it executes
// (kept so the run can execute after a restart and be rerun). The tenant is
// Run.Tenant.
type RunRecord struct {
	// Order is the creation order, assigned by the store; FIFO queues and
	// newest-first lists sort by it.
	Order   int64
	Run     *api.Run
	Request *api.RunRequest
}

// IdempotencyRecord binds a tenant's Idempotency-Key to the run it created.
type IdempotencyRecord struct {
	Tenant      string
	Key         string
	Fingerprint string
	RunID       string
	CreatedAt   time.Time
	ExpiresAt   time.Time
}

// ListFilter selects runs for List. Zero values match everything.
type ListFilter struct {
	Statuses    []api.Status
	Project     string
	Environment string
	// Branch, PR and Trigger match the run's Source.Ref, Source.PR and
	// Source.Trigger ("ci", "api", "webhook", "schedule") exactly.
	Branch  string
	PR      int
	Trigger string
	// Flaky keeps only runs with at least one flaky member (a pass after a
	// failed attempt). Failed-only is Statuses failed and blocked.
	Flaky bool
	// Limit is the page size (engine default DefaultListLimit, at most MaxListLimit).
	Limit  int
	Cursor string
}

// Match reports whether a run passes the filter (stores may use it, or do
// the same in SQL). Flaky looks at r.Members: a store that keeps a run's
// head without its members checks them itself (MatchHead, AnyFlaky).
func (f ListFilter) Match(r *api.Run) bool {
	if !f.MatchHead(r) {
		return false
	}
	if f.Flaky {
		for _, m := range r.Members {
			if m.Flaky {
				return true
			}
		}
		return false
	}
	return true
}

// AnyFlaky reports whether one of the members is flaky.
func AnyFlaky(members []*api.Member) bool {
	for _, m := range members {
		if m.Flaky {
			return true
		}
	}
	return false
}

// MatchHead is Match without Flaky: the fields of the run's head.
func (f ListFilter) MatchHead(r *api.Run) bool {
	if f.Project != "" && r.Project != f.Project {
		return false
	}
	if f.Environment != "" && r.Environment != f.Environment {
		return false
	}
	if f.Branch != "" && r.Source.Ref != f.Branch {
		return false
	}
	if f.PR != 0 && r.Source.PR != f.PR {
		return false
	}
	if f.Trigger != "" && r.Source.Trigger != f.Trigger {
		return false
	}
	if len(f.Statuses) == 0 {
		return true
	}
	for _, s := range f.Statuses {
		if r.Status == s {
			return true
		}
	}
	return false
}

// Store errors, matched with errors.Is.
var (
	// ErrNotFound: no such run for this tenant.
	ErrNotFound = errors.New("run not found")
	// ErrSeqConflict: Append's events do not continue the run's log.
	ErrSeqConflict = errors.New("event seq does not continue the run's log")
	// ErrInvalidCursor: a List cursor that no List returned.
	ErrInvalidCursor = errors.New("invalid list cursor")
	// ErrDuplicateRun: CreateRun with an id that exists.
	ErrDuplicateRun = errors.New("a run with this id already exists")
)
