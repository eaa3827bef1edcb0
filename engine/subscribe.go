package engine

import (
	"context"
	"fmt"

	"github.com/zof-ai/zof-ci/api"
)

// subscriber is a live follower of a run. The engine never waits for it: an
// event that does not fit in live drops the subscriber.
type subscriber struct {
	live    chan api.Event
	dropped bool // guarded by runState.mu
}

// publish hands events to the run's subscribers. Caller holds rs.mu.
func (rs *runState) publish(evs []api.Event) {
	for s := range rs.subs {
		for _, ev := range evs {
			if !s.offer(ev) {
				s.dropped = true
				close(s.live)
				delete(rs.subs, s)
				break
			}
		}
	}
}

func (s *subscriber) offer(ev api.Event) bool {
	select {
	case s.live <- ev:
		return true
	default:
		return false
	}
}

// Subscription delivers a run's events in order, each once. C is closed
// after the run's terminal run.status event has been delivered, or earlier
// when the subscriber was dropped for falling behind, its context ended or the
// store failed; Err tells which.
type Subscription struct {
	C   <-chan api.Event
	err error
}

// Err is valid once C is closed: nil when the terminal event was delivered
// (or had been seen before `after`), ErrDropped when the reader fell more
// than Config.SubscriberBuffer events behind (subscribe again with the last
// seq received), the context's error, or a store error.
func (s *Subscription) Err() error { return s.err }

// Subscribe follows a run from after (0: from the start): every later event
// exactly once, in order, first those already stored, then live ones. A
// slow reader never blocks the engine or other subscribers.
func (e *Engine) Subscribe(ctx context.Context, tenant, id string, after int64) (*Subscription, error) {
	if _, err := e.getRecord(ctx, tenant, id); err != nil {
		return nil, err
	}
	out := make(chan api.Event)
	sub := &Subscription{C: out}
	p := &pump{e: e, id: id, out: out, last: after, upto: -1}

	e.mu.Lock()
	rs := e.active[id]
	e.mu.Unlock()
	if rs != nil {
		rs.mu.Lock()
		if !rs.done {
			// Registered under the run's lock: everything up to upto is in the
			// store, everything after it will arrive on live.
			p.rs = rs
			p.s = &subscriber{live: make(chan api.Event, e.cfg.SubscriberBuffer)}
			rs.subs[p.s] = struct{}{}
			p.upto = rs.snap.LastSeq
		}
		rs.mu.Unlock()
	}
	go func() {
		defer close(out)
		sub.err = p.run(ctx)
	}()
	return sub, nil
}

type pump struct {
	e    *Engine
	id   string
	out  chan<- api.Event
	last int64
	upto int64 // last stored seq to read before live; -1: read the store to its end
	rs   *runState
	s    *subscriber
}

func (p *pump) run(ctx context.Context) error {
	defer p.unregister()
	for p.upto < 0 || p.last < p.upto {
		evs, err := p.e.cfg.Store.Events(ctx, p.id, p.last, eventPage)
		if err != nil {
			return fmt.Errorf("reading events of run %s: %w", p.id, err)
		}
		if len(evs) == 0 {
			break
		}
		for _, ev := range evs {
			if p.upto >= 0 && ev.Seq > p.upto {
				break
			}
			if err := p.send(ctx, ev); err != nil {
				return err
			}
		}
	}
	if p.s == nil {
		return nil // the run had ended: the store held everything
	}
	for {
		select {
		case ev, ok := <-p.s.live:
			if !ok {
				p.rs.mu.Lock()
				dropped := p.s.dropped
				p.rs.mu.Unlock()
				if dropped {
					return ErrDropped
				}
				return nil
			}
			if ev.Seq <= p.last {
				continue
			}
			if err := p.send(ctx, ev); err != nil {
				return err
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
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// unregister stops live delivery to a pump that ended early.
func (p *pump) unregister() {
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
