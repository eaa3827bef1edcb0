package trigger_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/internal/trigger"
)

// oneProcess is a Store without leases: only PendingTriggers is used.
type oneProcess struct {
	trigger.Store
	pending []*trigger.Record
}

func (o *oneProcess) PendingTriggers(context.Context, time.Time) ([]*trigger.Record, error) {
	return o.pending, nil
}

// shared is a Store with leases: claims return claim, renewals keep keep.
type shared struct {
	oneProcess
	claim    []*trigger.Record
	keep     []string
	renewed  []string
	released string
	fail     error
}

func (s *shared) ClaimTriggers(_ context.Context, _ time.Time, owner string, _ []string, _ time.Duration) ([]*trigger.Record, error) {
	out := make([]*trigger.Record, 0, len(s.claim))
	for _, r := range s.claim {
		c := r.Clone()
		c.Owner = owner
		out = append(out, c)
	}
	return out, nil
}

func (s *shared) RenewTriggers(_ context.Context, _ string, ids []string, _ time.Duration) ([]string, error) {
	s.renewed = append([]string(nil), ids...)
	slices.Sort(s.renewed)
	if s.fail != nil {
		return nil, s.fail
	}
	return s.keep, nil
}

func (s *shared) ReleaseTriggers(_ context.Context, owner string) error {
	s.released = owner
	return nil
}

func rec(id, source string) *trigger.Record {
	return trigger.New("t", "webhook", source, id, time.Now())
}

func recIDs(rs []*trigger.Record) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

// Without leases (one process) a keeper takes up every pending trigger of
// its sources and holds nothing.
func TestKeeperWithoutLeases(t *testing.T) {
	gh, sched := rec("a", trigger.SourceGitHub), rec("b", trigger.SourceSchedule)
	k := trigger.NewKeeper(&oneProcess{pending: []*trigger.Record{gh, sched}}, trigger.SourceGitHub, trigger.SourceGitLab)
	if k.Owner() != "" {
		t.Errorf("Owner = %q without leases; want none", k.Owner())
	}
	got, err := k.Pending(context.Background(), time.Now())
	if err != nil || !slices.Equal(recIDs(got), []string{gh.ID}) {
		t.Fatalf("Pending = %v, %v; want [%s]", recIDs(got), err, gh.ID)
	}
	if err := k.Renew(context.Background()); err != nil {
		t.Error(err)
	}
	if err := k.Release(); err != nil {
		t.Error(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		k.Run(context.Background(), time.Now, func(*trigger.Record) { t.Error("took a trigger") }, func(err error) { t.Error(err) })
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run without leases did not return at once")
	}
}

// With leases a keeper renews what it holds, stops the work on a trigger
// whose lease was lost, leaves out of Pending what it works on already,
// and releases by its owner.
func TestKeeperWithLeases(t *testing.T) {
	a, b := rec("a", trigger.SourceGitHub), rec("b", trigger.SourceGitHub)
	s := &shared{claim: []*trigger.Record{a, b}, keep: []string{a.ID}}
	k := trigger.NewKeeper(s, trigger.SourceGitHub)
	if k.Owner() == "" {
		t.Fatal("no Owner with leases")
	}
	ctxA, doneA := k.Hold(context.Background(), a.ID)
	defer doneA()
	ctxB, doneB := k.Hold(context.Background(), b.ID)
	defer doneB()
	got, err := k.Pending(context.Background(), time.Now())
	if err != nil || len(got) != 0 {
		t.Fatalf("Pending = %v, %v; want nothing: both are worked on here", recIDs(got), err)
	}
	if err := k.Renew(context.Background()); !errors.Is(err, trigger.ErrFenced) || !strings.Contains(err.Error(), b.ID) || strings.Contains(err.Error(), a.ID) {
		t.Fatalf("Renew with b's lease lost: %v; want ErrFenced naming b only", err)
	}
	want := []string{a.ID, b.ID}
	slices.Sort(want)
	if !slices.Equal(s.renewed, want) {
		t.Errorf("renewed %v; want %v", s.renewed, want)
	}
	if ctxA.Err() != nil {
		t.Error("the work on a kept lease was stopped")
	}
	if ctxB.Err() == nil {
		t.Error("the work on a lost lease goes on; it must stop before it reports")
	}
	doneB()
	got, err = k.Pending(context.Background(), time.Now())
	if err != nil || !slices.Equal(recIDs(got), []string{b.ID}) || got[0].Owner != k.Owner() {
		t.Fatalf("Pending = %v, %v; want [%s] (no longer worked on here)", recIDs(got), err, b.ID)
	}
	if err := k.Release(); err != nil || s.released != k.Owner() {
		t.Errorf("Release released %q (err %v); want %q", s.released, err, k.Owner())
	}
}

// A keeper whose renewals fail (the store is unreachable) keeps working
// within LeaseTTL of its last renewal, and stops the work on every trigger
// it holds past it: another process may have taken them over meanwhile.
func TestKeeperStopsWhenItCannotRenew(t *testing.T) {
	a := rec("a", trigger.SourceSchedule)
	s := &shared{keep: []string{a.ID}}
	k := trigger.NewKeeper(s, trigger.SourceSchedule)
	ctxA, doneA := k.Hold(context.Background(), a.ID)
	defer doneA()
	if err := k.Renew(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.fail = errors.New("connection refused")
	if err := k.Renew(context.Background()); err == nil || ctxA.Err() != nil {
		t.Fatalf("a failed renewal within the lease: err %v, work stopped %v; want the error and the work going on", err, ctxA.Err() != nil)
	}
	trigger.SetRenewedAt(k, time.Now().Add(-trigger.LeaseTTL))
	if err := k.Renew(context.Background()); err == nil || ctxA.Err() == nil {
		t.Fatalf("a failed renewal past the lease: err %v, work stopped %v; want the work stopped", err, ctxA.Err() != nil)
	}
}
