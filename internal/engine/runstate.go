// runState: the engine's live view of one unfinished run.

package engine

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/secret"
)

// runState is the engine's live view of one non-terminal run.
type runState struct {
	id     string
	tenant string
	order  int64
	req    *api.RunRequest
	mask   *secret.Masker
	// lease is the lease this replica executes the run under (Cluster
	// stores; "" otherwise). Set before the run state is shared; never changes.
	lease string

	mu     sync.Mutex // serialises the run's appends; guards snap, done, frozen, subs
	snap   *api.Run
	index  map[string]int // member id → index in snap.Members (never changes)
	done   bool           // the terminal run.status is stored
	frozen bool           // the engine stopped and left the run for the next start: nothing more is recorded
	subs   map[*subscriber]struct{}
	// scratch is reused by the run's commits (commit.go); only the
	// committer touches it, and the snapshot, while committing is set.
	scratch appendScratch
	// committing: a commit is being stored (the lock is released during
	// the store's append); queue holds the commits waiting for the next
	// group, cond wakes them (group commit, commit.go).
	committing bool
	queue      []*commitWaiter
	cond       *sync.Cond

	// resumed: the run was running when a previous process stopped; this
	// engine continues it (see resumeRunning). interrupted counts, per
	// member, the attempts restarts cut short (set before execution starts).
	resumed     bool
	interrupted map[string]int

	// Guarded by Engine.mu.
	exSince      time.Time // when it started waiting behind an exclusive environment
	exHolder     string    // the run it waits behind
	posAt        time.Time // when its queue position was last written (scheduler only)
	cancel       context.CancelCauseFunc
	cancelReason string

	// released is closed once the engine has let go of the run (retire, or
	// endWaiting for a run that never started): whatever a finished run
	// still writes after its terminal status is written by then.
	released    chan struct{}
	releaseOnce sync.Once
}

func newRunState(rec *RunRecord) *runState {
	rs := &runState{
		id:     rec.Run.ID,
		tenant: rec.Run.Tenant,
		order:  rec.Order,
		req:    rec.Request,
		mask:   secret.NewMasker(rec.Request.Secrets),
		snap:   ownMembers(rec.Run),
		index:  indexMembers(rec.Run),
		subs:   map[*subscriber]struct{}{},

		released: make(chan struct{}),
	}
	rs.cond = sync.NewCond(&rs.mu)
	return rs
}

// markReleased closes released; safe to call more than once.
func (rs *runState) markReleased() { rs.releaseOnce.Do(func() { close(rs.released) }) }

// finished reports whether the run's terminal status is stored.
func (rs *runState) finished() bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.done
}

// snapshot is a copy of the whole run: O(members), so for once-per-run
// decisions only; member reads one member.
func (rs *runState) snapshot() *api.Run {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return copyRun(rs.snap)
}

// ownMembers is a copy of r with a member array of its own, sharing each
// member's steps and failed attempts with r: the run state's snapshot, which
// replaces a member whole (install) and never changes a member's slices in
// place (a fold copies them before it applies an event; member relies on
// the same), so neither side changes what they share.
func ownMembers(r *api.Run) *api.Run {
	c := *r
	c.Members = slices.Clone(r.Members)
	return &c
}

// copyRun is api.Run.Clone in three allocations instead of one per member:
// every member's steps share one array, and their failed attempts another,
// each member's slice capped at its length so that an append (a retry's
// failed attempt) reallocates rather than write into the next member's. The
// copy shares no memory that anyone changes with r: its members, their steps
// and failed attempts are its own (the head's fields are copied as Clone
// copies them; a step's Failure is replaced, never changed).
func copyRun(r *api.Run) *api.Run {
	c := *r
	c.Members = copyMembers(r.Members)
	return &c
}

// copyMembers copies ms as copyRun does.
func copyMembers(ms []api.Member) []api.Member {
	if ms == nil {
		return nil
	}
	ns, nf := 0, 0
	for i := range ms {
		ns += len(ms[i].Steps)
		nf += len(ms[i].FailedAttempts)
	}
	out := make([]api.Member, len(ms))
	steps := make([]api.StepResult, 0, ns)
	var failed []string
	if nf > 0 {
		failed = make([]string, 0, nf)
	}
	for i := range ms {
		m := ms[i]
		m.Steps, m.FailedAttempts = nil, nil // as Clone: empty becomes nil
		if s := ms[i].Steps; len(s) > 0 {
			k := len(steps)
			steps = append(steps, s...)
			m.Steps = steps[k:len(steps):len(steps)]
		}
		if f := ms[i].FailedAttempts; len(f) > 0 {
			k := len(failed)
			failed = append(failed, f...)
			m.FailedAttempts = failed[k:len(failed):len(failed)]
		}
		out[i] = m
	}
	return out
}

// member is one member as it is now, found through the index, for reading:
// its slices are shared. That is safe because a member's slices are never
// changed once installed (a fold copies a member before it applies an event,
// and install replaces the whole member), so the copy cannot change under
// its reader; the reader must not change them either.
func (rs *runState) member(id string) (api.Member, bool) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	i, ok := rs.index[id]
	if !ok {
		return api.Member{}, false
	}
	return rs.snap.Members[i], true
}

// indexMembers maps each member id of run to its index.
func indexMembers(run *api.Run) map[string]int {
	idx := make(map[string]int, len(run.Members))
	for i, m := range run.Members {
		idx[m.ID] = i
	}
	return idx
}

// failures is how many of m's attempts failed: its FailedAttempts less those
// a restart interrupted.
func (rs *runState) failures(m *api.Member) int {
	return len(m.FailedAttempts) - rs.interrupted[m.ID]
}

// head is the run's status and the seq of its last stored event.
func (rs *runState) head() (api.Status, int64, error) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.snap.Status, rs.snap.LastSeq, nil
}

func (rs *runState) status() (api.Status, int) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.snap.Status, rs.snap.Position
}

func (rs *runState) exclusiveKey() (exKey, bool) {
	return exKey{rs.tenant, rs.req.Project, rs.req.Environment.Name}, rs.req.Environment.Exclusive
}
