package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/retry"
	"github.com/zof-ai/zof-ci/internal/secret"
)

// errRunClosed: an append to a run whose terminal event is already stored.
var errRunClosed = errors.New("the run is finished; its event log is closed")

// errFrozen: an append to a run the engine left for its next start to resume
// (it stopped with LeaveQueuedOnStop). Nothing more is recorded, so the store
// holds the run exactly as a crash at that moment would have left it.
var errFrozen = fmt.Errorf("the run is left for the next start to resume: %w", ErrStopped)

// commit appends events to the run's log. It masks their text, stamps seq,
// time and run id, checks every event against the lifecycle by folding it into
// a copy of the run's head and of the members it touches (checkedApply),
// stores the batch with that head and those members in one Store.Append, and
// only then publishes them. A refused batch changes nothing anywhere. Its
// cost is the events' and the touched members', never the whole run's.
//
// Commits of one run are grouped when the store's appends are slow (see
// groupCommitAfter): while one is being stored (the run's lock is released
// during the store's append), the commits that arrive wait in the run's
// queue, and the next of them to run stores all of them in one append
// (group commit: one store write for what several members committed at the
// same moment). Each commit is still checked on its own: one that does not
// fit the lifecycle is refused alone, the others of its group are stored. It
// returns once its events are stored and published, as before.
func (e *Engine) commit(rs *runState, evs ...api.Event) error {
	if len(evs) == 0 {
		return nil
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if !rs.committing && len(rs.queue) == 0 {
		// Nobody is storing: this commit stores itself (the common case, no
		// allocation for the queue).
		return e.storeGroup(rs, evs)
	}
	w := &commitWaiter{evs: evs}
	rs.queue = append(rs.queue, w)
	for !w.done {
		if !rs.committing {
			// The group before is stored and nobody leads: this commit
			// stores the queue, itself in it.
			_ = e.storeGroup(rs, nil)
			continue
		}
		rs.cond.Wait()
	}
	return w.err
}

// groupCommitAfter is the store append time from which a committer releases
// the run's lock while the store appends, so that the commits arriving
// meanwhile queue and go to the store together. A faster store keeps the lock
// held through its append, as a mutex's brief wait costs less than a queue's
// sleep and wake-up: on the embedded engine (memstore, ~1 µs an append)
// grouping cost ~2 % of its CPU, on SQLite (~0.3 ms an append) it made a
// run's members 1.5× as fast (docs/benchmarks.md).
const groupCommitAfter = 50 * time.Microsecond

// noteAppend adds an append's duration to the engine's moving average (an
// eighth of the new one): a store that slows down starts grouping within a
// few appends.
func (e *Engine) noteAppend(d time.Duration) {
	for {
		old := e.appendCost.Load()
		if e.appendCost.CompareAndSwap(old, old+(int64(d)-old)/8) {
			return
		}
	}
}

// commitWaiter is a commit waiting in its run's queue for the group that
// stores it.
type commitWaiter struct {
	evs  []api.Event
	err  error
	done bool
}

// storeGroup stores own (nil: none) and every commit queued now, as one
// append. It returns own's outcome and marks each queued commit done with
// its own. Caller holds rs.mu and is not committing; storeGroup releases the
// lock while the store appends, and wakes the queue when it is done so that
// the commits queued meanwhile store themselves.
func (e *Engine) storeGroup(rs *runState, own []api.Event) (ownErr error) {
	ws := rs.queue
	rs.queue = nil
	rs.committing = true
	defer func() {
		rs.committing = false
		if len(ws) > 0 || len(rs.queue) > 0 {
			rs.cond.Broadcast()
		}
	}()
	// parts are the group's commits, own first; a refused one is taken out
	// and the rest checked again.
	type part struct {
		evs []api.Event
		w   *commitWaiter // nil: own
	}
	parts := make([]part, 0, len(ws)+1)
	if own != nil {
		parts = append(parts, part{evs: own})
	}
	for _, w := range ws {
		parts = append(parts, part{evs: w.evs, w: w})
	}
	settle := func(pt part, err error) {
		if pt.w == nil {
			ownErr = err
			return
		}
		pt.w.err, pt.w.done = err, true
	}
	for len(parts) > 0 {
		evs := parts[0].evs
		if len(parts) > 1 {
			// One slice for the group: it is what the store keeps and the
			// subscribers get. The commits' own slices stay unchanged, so a
			// group checked again after a refusal starts from them.
			n := 0
			for _, pt := range parts {
				n += len(pt.evs)
			}
			evs = make([]api.Event, 0, n)
			for _, pt := range parts {
				evs = append(evs, pt.evs...)
			}
		}
		var p prepared
		if err := e.prepare(&p, rs, evs); err != nil {
			if p.rs == nil {
				// The run is closed or frozen: no commit of the group fits.
				for _, pt := range parts {
					settle(pt, err)
				}
				return ownErr
			}
			// The event at the fold's length failed: its commit is refused.
			at, k := int(p.f.head.LastSeq-p.base), 0
			for ; at >= len(parts[k].evs); k++ {
				at -= len(parts[k].evs)
			}
			settle(parts[k], err)
			parts = append(parts[:k], parts[k+1:]...)
			continue
		}
		// Store writes are not tied to any caller's context: an event that
		// happened must be recorded even while the engine is shutting down.
		// The lock is released meanwhile so that other commits can queue;
		// only this committer changes the snapshot and the scratch until
		// committing is cleared.
		slow := e.appendCost.Load() >= int64(groupCommitAfter)
		if slow {
			rs.mu.Unlock()
		}
		start := time.Now()
		err := e.appendRetrying(p.append(&rs.scratch))
		e.noteAppend(time.Since(start))
		if slow {
			rs.mu.Lock()
		}
		if err != nil {
			if errors.Is(err, ErrLeaseLost) && rs.lease != "" {
				// Another replica holds the run now: record nothing more.
				e.leaseLost(rs)
				err = fmt.Errorf("storing events of run %s: %w: %w", rs.id, errFrozen, err)
			} else {
				err = fmt.Errorf("storing events of run %s: %w", rs.id, err)
			}
		} else {
			p.install(e)
		}
		for _, pt := range parts {
			settle(pt, err)
		}
		return ownErr
	}
	return ownErr
}

// Retrying an append the store could not take because it was unreachable (a
// database restarting: ErrUnavailable). An event that happened is not dropped:
// dropping a step's result would make the run's next owner run it again. The
// budget outlasts a restart of about 10 s (issue 12); past the run's lease another
// replica may own the run, and the store's fencing refuses the late append
// (ErrLeaseLost) once it answers again.
const (
	appendRetryBase = 100 * time.Millisecond
	appendRetryCap  = time.Second
)

// appendRetrying stores a while the store is unreachable, for up to twice the
// lease (LeaseTTL without one).
func (e *Engine) appendRetrying(a Append) error {
	// The first try is the hot path of every commit: no policy, no closure.
	err := e.cfg.Store.Append(context.Background(), a)
	if err == nil || !errors.Is(err, ErrUnavailable) {
		return err
	}
	budget := e.cfg.LeaseTTL
	if budget <= 0 {
		budget = LeaseTTL
	}
	p := retry.Policy{Base: appendRetryBase, Cap: appendRetryCap, Budget: 2 * budget}
	_, err = p.Do(context.Background(), func(ctx context.Context) (retry.Decision, error) {
		err := e.cfg.Store.Append(ctx, a)
		return retry.Decision{Retry: errors.Is(err, ErrUnavailable)}, err
	})
	return err
}

// prepared is a commit checked and folded but not yet stored. Caller holds
// rs.mu. It is a value (its fold too), so a commit allocates only what the
// store keeps: the head, the touched members and the events.
type prepared struct {
	rs       *runState
	base     int64 // the log's last seq the events follow
	f        fold
	evs      []api.Event
	terminal bool
}

// prepare stamps, masks and checks evs against a fold over rs's snapshot,
// into p. Caller holds rs.mu.
func (e *Engine) prepare(p *prepared, rs *runState, evs []api.Event) error {
	if rs.done {
		return errRunClosed
	}
	if rs.frozen {
		return errFrozen
	}
	*p = prepared{rs: rs, base: rs.snap.LastSeq, f: fold{head: *rs.snap, index: rs.index}, evs: evs}
	f := &p.f
	now := e.cfg.Now()
	for i := range evs {
		ev := &evs[i]
		ev.Seq = f.head.LastSeq + 1
		ev.At = now
		ev.RunID = rs.id
		maskEvent(rs.mask, ev)
		if err := checkedApply(f, ev); err != nil {
			return fmt.Errorf("run %s: %w", rs.id, err)
		}
		p.terminal = p.terminal || (ev.Type == api.EventRunStatus && ev.Status.Terminal())
	}
	return nil
}

// appendScratch holds the head and the member list of a run's appends, for
// the next one to reuse: a store copies what it keeps of them (Store.Append),
// so a commit allocates only the members it changed, which the store keeps.
type appendScratch struct {
	head    api.Run
	members []MemberUpdate
}

// append is what the store records for p: the events, the new head and the
// members they changed. With a scratch (the run's, under its lock until the
// store returns) the head and the member list are written there; nil
// allocates them.
func (p *prepared) append(sc *appendScratch) Append {
	if sc == nil {
		sc = new(appendScratch)
	}
	sc.head = p.f.head
	sc.head.Members = nil
	ms := sc.members[:0]
	for k := range p.f.touched {
		ms = append(ms, MemberUpdate{Index: p.f.indexOf(k), Member: &p.f.touched[k]})
	}
	sc.members = ms
	return Append{RunID: p.rs.id, Run: &sc.head, Events: p.evs, Members: ms, Lease: p.rs.lease}
}

// install makes a stored commit part of the run's snapshot and publishes
// its events. Caller holds rs.mu.
func (p *prepared) install(e *Engine) {
	rs := p.rs
	p.f.into(rs.snap)
	rs.publish(p.evs)
	if len(e.observers) > 0 {
		head := p.f.head
		head.Members = nil
		for _, fn := range e.observers {
			fn(rs.tenant, &head, p.evs)
		}
	}
	if p.terminal {
		rs.done = true
		rs.closeSubs(nil)
	}
}

// fold is a run's snapshot with a batch of events applied to copies of its
// head and of the members they touch; the snapshot itself is unchanged
// until install.
type fold struct {
	head  api.Run // Members is the snapshot's: read it through member
	index map[string]int
	// touched are the fold's copies of the members the events touch, first
	// touch first; indexOf(k) is touched[k]'s index in the run, kept in
	// order for the first foldScan (no allocation: a batch touches one
	// member or a few, found by a scan) and in more after them. at is the
	// index → k map of a batch that touches more (finish cancelling every
	// member).
	touched []api.Member
	order   [foldScan]int
	more    []int
	at      map[int]int
}

// indexOf is touched[k]'s index in the run.
func (f *fold) indexOf(k int) int {
	if k < foldScan {
		return f.order[k]
	}
	return f.more[k-foldScan]
}

// foldScan is how many touched members a fold scans before it keeps a map.
const foldScan = 8

func newFold(snap *api.Run, index map[string]int) *fold {
	return &fold{head: *snap, index: index}
}

// into writes the fold into the snapshot it was made from: the head, and
// each touched member at its index.
func (f *fold) into(snap *api.Run) {
	members := snap.Members
	*snap = f.head
	snap.Members = members
	for k := range f.touched {
		// The touched copy is the store's now too: neither side changes it
		// (a later fold copies a member before changing it).
		members[f.indexOf(k)] = f.touched[k]
	}
}

// find is the position of member i in touched, or -1.
func (f *fold) find(i int) int {
	if f.at != nil {
		if k, ok := f.at[i]; ok {
			return k
		}
		return -1
	}
	for k := range min(len(f.touched), foldScan) {
		if f.order[k] == i {
			return k
		}
	}
	return -1
}

// member is member i as the fold has it (read-only, valid until the next
// mutable).
func (f *fold) member(i int) *api.Member {
	if k := f.find(i); k >= 0 {
		return &f.touched[k]
	}
	return &f.head.Members[i]
}

// mutable is the position in touched of the fold's own copy of member i,
// made on first use.
func (f *fold) mutable(i int) int {
	if k := f.find(i); k >= 0 {
		return k
	}
	k := len(f.touched)
	f.touched = append(f.touched, cloneMember(f.head.Members[i]))
	if k < foldScan {
		f.order[k] = i
	} else {
		f.more = append(f.more, i)
	}
	switch {
	case f.at != nil:
		f.at[i] = k
	case len(f.touched) > foldScan:
		f.at = make(map[int]int, 2*len(f.touched))
		for k := range f.touched {
			f.at[f.indexOf(k)] = k
		}
	}
	return k
}

// cloneMember copies what api.Run.Apply changes in place.
func cloneMember(m api.Member) api.Member {
	m.Steps = slices.Clone(m.Steps)
	m.FailedAttempts = slices.Clone(m.FailedAttempts)
	return m
}

// applyToMember folds a member event into the fold's copy of that member
// with api.Run.Apply, on a run of that one member, so the rules stay Apply's
// and the cost stays the member's.
func (f *fold) applyToMember(i int, ev *api.Event) error {
	k := f.mutable(i)
	// A run whose one member is the fold's copy itself: Apply changes it in place.
	one := api.Run{LastSeq: f.head.LastSeq, Members: f.touched[k : k+1 : k+1]}
	if err := one.Apply(*ev); err != nil {
		return err
	}
	f.head.LastSeq = one.LastSeq
	return nil
}

// runEvents are events for one run, for commitAll.
type runEvents struct {
	rs  *runState
	evs []api.Event
}

// commitAll commits events of several runs. When the store can append to many
// runs at once (BatchAppender) it is one store operation: a finished run moves
// the queue position of every queued run of its tenant, and one transaction
// for a thousand queued runs instead of a thousand keeps the scheduler (and
// every Create waiting on it) fast. Otherwise, or if the batch is refused, each
// run is committed on its own. Errors are logged: a queue position is not
// worth failing the pass over.
func (e *Engine) commitAll(items []runEvents) {
	ba, ok := e.cfg.Store.(BatchAppender)
	if !ok || len(items) < 2 {
		e.commitEach(items)
		return
	}
	var (
		ps      []*prepared
		batch   []Append
		pending []runEvents // items to retry one by one if the batch fails
	)
	var busy []runEvents // runs a commit is storing right now: committed on their own
	for _, it := range items {
		p := new(prepared)
		it.rs.mu.Lock()
		if it.rs.committing || len(it.rs.queue) > 0 {
			it.rs.mu.Unlock()
			busy = append(busy, it)
			continue
		}
		err := e.prepare(p, it.rs, slices.Clone(it.evs))
		it.rs.mu.Unlock()
		if err != nil {
			e.cfg.Logger.Error("queueing run", "run", it.rs.id, "err", err)
			continue
		}
		ps = append(ps, p)
		// Stored after the runs' locks are released: no shared scratch.
		batch = append(batch, p.append(nil))
		pending = append(pending, it)
	}
	if err := ba.AppendBatch(context.Background(), batch); err != nil {
		if e.raced(err) {
			e.cfg.Logger.Debug("appending to queued runs in one batch: one changed on another replica; one by one instead", "runs", len(batch), "err", err)
		} else {
			e.cfg.Logger.Warn("appending to queued runs in one batch failed; one by one instead", "runs", len(batch), "err", err)
		}
		e.commitEach(append(pending, busy...))
		return
	}
	defer e.commitEach(busy)
	for _, p := range ps {
		p.rs.mu.Lock()
		if p.rs.snap.LastSeq == p.base {
			p.install(e)
		} else {
			// Only the scheduler (holding e.mu) appends to waiting runs, so this
			// cannot happen; if it did, the store refused the later append.
			e.cfg.Logger.Error("a queued run changed during a batch append", "run", p.rs.id)
		}
		p.rs.mu.Unlock()
	}
}

func (e *Engine) commitEach(items []runEvents) {
	for _, it := range items {
		if err := e.commit(it.rs, it.evs...); err != nil {
			if e.raced(err) {
				// Claimed or changed by another replica since the leader read
				// it: its next pass reads it again.
				e.cfg.Logger.Debug("queueing run: changed by another replica", "run", it.rs.id, "err", err)
				continue
			}
			e.cfg.Logger.Error("queueing run", "run", it.rs.id, "err", err)
		}
	}
}

// raced reports whether err is another replica's write winning over this
// one's to a waiting run (Cluster stores only): expected, not a fault.
func (e *Engine) raced(err error) bool {
	return e.cl != nil && (errors.Is(err, ErrLeaseLost) || errors.Is(err, ErrSeqConflict))
}

// freeze stops all recording for rs and ends its subscriptions with
// ErrStopped (their readers resume against the next start).
func (rs *runState) freeze() {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.done {
		return
	}
	rs.frozen = true
	rs.closeSubs(ErrStopped)
}

// maskEvent masks every free text of an event with the run's secrets.
func maskEvent(m *secret.Masker, ev *api.Event) {
	ev.Reason = m.String(ev.Reason)
	ev.Message = m.String(ev.Message)
	ev.Output = m.String(ev.Output)
	if f := ev.Failure; f != nil {
		ev.Failure = &api.Failure{Message: m.String(f.Message), Expected: m.String(f.Expected), Actual: m.String(f.Actual)}
	}
}

// transition is the one gate every status change of a run or member passes:
// only the lifecycle graph's edges (api.CanTransition) are allowed, so a
// status never changes to itself nor leaves a terminal status.
func transition(from, to api.Status) error {
	if !api.CanTransition(from, to) {
		return &api.TransitionError{From: from, To: to}
	}
	return nil
}

// checkedApply folds ev into f after checking the rules Apply does not
// enforce: statuses change only along transition; a member runs only while
// the run runs and keeps running across retries (a new Attempt); steps change
// only in a running member; a run ends only when every member has, with the
// aggregate of its members when it ran; nothing follows the run's end.
func checkedApply(f *fold, ev *api.Event) error {
	run := &f.head
	if run.LastSeq > 0 && run.Status.Terminal() {
		return errRunClosed
	}
	switch ev.Type {
	case api.EventRunCreated:
		return errors.New("run.created after the start of the log")
	case api.EventRunStatus:
		if err := transition(run.Status, ev.Status); err != nil {
			return err
		}
		if ev.Status.Terminal() {
			statuses := make([]api.Status, len(run.Members))
			for i := range run.Members {
				m := f.member(i)
				if !m.Status.Terminal() {
					return fmt.Errorf("run cannot become %s while member %s is %s", ev.Status, m.ID, m.Status)
				}
				statuses[i] = m.Status
			}
			if agg := api.Aggregate(statuses); run.Status == api.StatusRunning && ev.Status != agg {
				return fmt.Errorf("run cannot become %s: its members make it %s", ev.Status, agg)
			}
		}
	case api.EventMemberStatus, api.EventMemberSubstate, api.EventStepStatus:
		i, ok := f.index[ev.Member]
		if !ok {
			return fmt.Errorf("unknown member %q", ev.Member)
		}
		m := f.member(i)
		switch ev.Type {
		case api.EventMemberStatus:
			retry := m.Status == api.StatusRunning && ev.Status == api.StatusRunning && ev.Attempt > m.Attempt
			if !retry {
				if err := transition(m.Status, ev.Status); err != nil {
					return fmt.Errorf("member %s: %w", m.ID, err)
				}
			}
			if ev.Status == api.StatusRunning && run.Status != api.StatusRunning {
				return fmt.Errorf("member %s cannot run while the run is %s", m.ID, run.Status)
			}
		case api.EventMemberSubstate:
			if m.Status.Terminal() {
				return fmt.Errorf("member %s is %s; it has no substate", m.ID, m.Status)
			}
		case api.EventStepStatus:
			if m.Status != api.StatusRunning {
				return fmt.Errorf("member %s is %s; its steps cannot change", m.ID, m.Status)
			}
		}
		return f.applyToMember(i, ev)
	}
	// Run-level events (and unknown ones) change the head only.
	members := run.Members
	run.Members = nil
	err := run.Apply(*ev)
	run.Members = members
	return err
}
