package engine

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/zof-ai/zof-ci/api"
)

// subscriber is a live follower of a run. The engine never waits for it: a
// commit's events that do not fit in live drop the subscriber.
//
// live carries each commit's events as one batch (the slice the commit
// stored, which nobody changes): one hand-over per commit, not per event.
// queued counts the events handed over and not yet taken by the pump; the
// subscriber may lag at most limit events behind, as when each event was
// handed over alone.
type subscriber struct {
	live   chan []api.Event
	queued atomic.Int64
	limit  int64
	end    error // why live was closed: nil (the run ended), ErrDropped or ErrStopped; guarded by runState.mu
}

func newSubscriber(limit int) *subscriber {
	return &subscriber{live: make(chan []api.Event, limit), limit: int64(limit)}
}

// publish hands events to the run's subscribers. Caller holds rs.mu.
func (rs *runState) publish(evs []api.Event) {
	for s := range rs.subs {
		if !s.offer(evs) {
			s.end = ErrDropped
			close(s.live)
			delete(rs.subs, s)
		}
	}
}

// closeSubs ends every live delivery with end. Caller holds rs.mu.
func (rs *runState) closeSubs(end error) {
	for s := range rs.subs {
		s.end = end
		close(s.live)
		delete(rs.subs, s)
	}
}

func (s *subscriber) offer(evs []api.Event) bool {
	n := int64(len(evs))
	if s.queued.Add(n) > s.limit {
		return false
	}
	select {
	case s.live <- evs:
		return true
	default:
		return false
	}
}

// took records that the pump took a batch of n events from live.
func (s *subscriber) took(n int) { s.queued.Add(-int64(n)) }

// Subscription delivers a run's events in order, each once. C is closed
// after the run's terminal run.status event has been delivered, or earlier
// when the subscriber was dropped for falling behind, the engine stopped, its
// context ended or the store failed; Err tells which.
type Subscription struct {
	C   <-chan api.Event
	err error
}

// Err is valid once C is closed: nil when the terminal event was delivered
// (or had been seen before `after`), ErrDropped when the reader fell more
// than Config.SubscriberBuffer events behind (subscribe again with the last
// seq received), ErrStopped when the engine stopped before the run ended (a
// server closes the stream without its end; the client resumes with the last
// seq against the restarted server), the context's error, or a store error.
func (s *Subscription) Err() error { return s.err }

// subscriptionBuffer is how many events Subscription.C holds for its reader:
// the pump hands over a commit's events without a switch to the reader and
// back for each one (an unbuffered C cost the engine ~3 µs of CPU per
// member, docs/benchmarks.md). It is never more than Config.SubscriberBuffer:
// a reader that stops is dropped once it lags that many events in the queue,
// with at most as many again already handed over, whatever the timing of the
// pump (TestSubscribeSlowFollowerIsDropped).
const subscriptionBuffer = 64

// attachPoll is how often a subscription to an unfinished run the engine is
// not executing looks again (a create registering it, a restart loading it).
const attachPoll = 20 * time.Millisecond

// Subscribe follows a run from after (0: from the start): every later event
// exactly once, in order, first those already stored, then live ones. A
// slow reader never blocks the engine or other subscribers. Subscribing to an
// unfinished run before Run has loaded it from the store (just after a
// restart) waits for Run to load it.
func (e *Engine) Subscribe(ctx context.Context, tenant, id string, after int64) (*Subscription, error) {
	status, lastSeq, err := e.runHead(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	out := make(chan api.Event, min(subscriptionBuffer, e.cfg.SubscriberBuffer))
	sub := &Subscription{C: out}
	p := &pump{e: e, id: id, out: out, last: after, upto: -1,
		ended: status.Terminal() && after >= lastSeq}
	if e.cl != nil {
		// Registered before the first read of the store, so no note of a
		// later append is missed.
		p.wake, p.unwait = e.cl.wait(id)
	}
	// Attach before returning, so every event after this call reaches the
	// subscriber through live (or, if it falls behind, drops it).
	p.tryAttach()
	go func() {
		defer close(out)
		sub.err = p.run(ctx)
	}()
	return sub, nil
}

// runHead is the run's status and last seq: from the engine's own state
// while it executes the run (no read of the whole run from the store, which
// a server does for every watcher that connects), else from the store. A
// run of another tenant is not found, as in the store.
func (e *Engine) runHead(ctx context.Context, tenant, id string) (api.Status, int64, error) {
	e.mu.Lock()
	rs := e.active[id]
	e.mu.Unlock()
	if rs != nil && rs.tenant == tenant {
		return rs.head()
	}
	rec, err := e.getRecord(ctx, tenant, id)
	if err != nil {
		return "", 0, err
	}
	return rec.Run.Status, rec.Run.LastSeq, nil
}

type pump struct {
	e     *Engine
	id    string
	out   chan<- api.Event
	last  int64
	upto  int64 // last stored seq to read before live; -1: read the store to its end
	ended bool  // the run's terminal event was delivered or lies at or before last
	// stopped: the engine will record nothing more for this run (it stopped).
	stopped bool
	rs      *runState
	s       *subscriber
	// wake (Cluster stores) is signalled when another replica appends to
	// the run; unwait unregisters it.
	wake   <-chan struct{}
	unwait func()
}

// tryAttach registers p for live events when the engine is executing the
// run. Without it p reads only the store.
func (p *pump) tryAttach() {
	p.e.mu.Lock()
	rs := p.e.active[p.id]
	stopped := p.e.stopped
	p.e.mu.Unlock()
	if rs == nil {
		p.stopped = stopped
		return
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	switch {
	case rs.frozen:
		// Left for the next start; with a Cluster store another replica
		// takes it over, so a running engine reads on from the store.
		p.stopped = p.e.cl == nil || stopped
	case !rs.done:
		// Registered under the run's lock: everything up to upto is in the
		// store, everything after it will arrive on live.
		p.rs = rs
		p.s = newSubscriber(p.e.cfg.SubscriberBuffer)
		rs.subs[p.s] = struct{}{}
		p.upto = rs.snap.LastSeq
	}
}

func (p *pump) run(ctx context.Context) error {
	defer p.unregister()
	first := true
	for {
		if err := p.drain(ctx); err != nil {
			return err
		}
		switch {
		case p.s != nil:
			err := p.follow(ctx)
			if errors.Is(err, ErrStopped) && p.e.cl != nil && !p.e.isStopped() {
				// This replica lost the run to another: read on from the store.
				p.rs, p.s, p.upto = nil, nil, -1
				continue
			}
			return err
		case p.ended:
			return nil
		case p.stopped:
			return ErrStopped
		}
		// An unfinished run nobody executes yet: wait for Run to load what
		// the store holds, then look again now and then.
		if err := p.pause(ctx, first); err != nil {
			return err
		}
		first = false
		p.tryAttach()
	}
}

// pause waits for the engine's resume the first time, attachPoll after.
// With a Cluster store it waits for the store's note of an append to the
// run, or ClusterPoll.
func (p *pump) pause(ctx context.Context, first bool) error {
	if p.wake != nil {
		t := time.NewTimer(ClusterPoll)
		defer t.Stop()
		select {
		case <-p.wake:
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
		return nil
	}
	if first {
		select {
		case <-p.e.resumed:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	t := time.NewTimer(attachPoll)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// drain sends the stored events after last, up to upto (or to the end).
func (p *pump) drain(ctx context.Context) error {
	for p.upto < 0 || p.last < p.upto {
		evs, err := p.e.cfg.Store.Events(ctx, p.id, p.last, eventPage)
		if err != nil {
			return fmt.Errorf("reading events of run %s: %w", p.id, err)
		}
		if len(evs) == 0 {
			return nil
		}
		for _, ev := range evs {
			if p.upto >= 0 && ev.Seq > p.upto {
				return nil
			}
			if err := p.send(ctx, ev); err != nil {
				return err
			}
		}
	}
	return nil
}

// follow delivers live events until the run ends or delivery stops.
func (p *pump) follow(ctx context.Context) error {
	for {
		select {
		case evs, ok := <-p.s.live:
			if !ok {
				p.rs.mu.Lock()
				end := p.s.end
				p.rs.mu.Unlock()
				return end
			}
			p.s.took(len(evs))
			for _, ev := range evs {
				if ev.Seq <= p.last {
					continue
				}
				if err := p.send(ctx, ev); err != nil {
					return err
				}
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (p *pump) send(ctx context.Context, ev api.Event) error {
	select {
	case p.out <- ev:
		p.last = ev.Seq
		if ev.Type == api.EventRunStatus && ev.Status.Terminal() {
			p.ended = true
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// unregister stops live delivery to a pump that ended early.
func (p *pump) unregister() {
	if p.unwait != nil {
		p.unwait()
	}
	if p.s == nil {
		return
	}
	p.rs.mu.Lock()
	defer p.rs.mu.Unlock()
	if _, ok := p.rs.subs[p.s]; ok {
		delete(p.rs.subs, p.s)
		close(p.s.live)
	}
}
