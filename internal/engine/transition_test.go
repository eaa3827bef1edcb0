package engine

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/zof-ai/zof-ci/api"
)

// allowed is lifecycle.md's graph written out independently of api, so the
// test fails if either drifts.
var allowed = map[[2]api.Status]bool{
	{api.StatusInitial, api.StatusQueued}:    true,
	{api.StatusInitial, api.StatusRunning}:   true,
	{api.StatusInitial, api.StatusCancelled}: true,
	{api.StatusInitial, api.StatusBlocked}:   true,
	{api.StatusQueued, api.StatusRunning}:    true,
	{api.StatusQueued, api.StatusCancelled}:  true,
	{api.StatusQueued, api.StatusBlocked}:    true,
	{api.StatusRunning, api.StatusPassed}:    true,
	{api.StatusRunning, api.StatusFailed}:    true,
	{api.StatusRunning, api.StatusCancelled}: true,
}

func TestTransitionEveryPair(t *testing.T) {
	for _, from := range api.Statuses {
		for _, to := range api.Statuses {
			err := transition(from, to)
			if want := allowed[[2]api.Status{from, to}]; (err == nil) != want {
				t.Errorf("transition(%s, %s) = %v, want allowed=%v", from, to, err, want)
			}
			var te *api.TransitionError
			if err != nil && !errors.As(err, &te) {
				t.Errorf("transition(%s, %s): error %T is not *api.TransitionError", from, to, err)
			}
		}
	}
}

// applyChecked is checkedApply on a fold of snap, written into snap when the
// event passes, as a stored commit is.
func applyChecked(snap *api.Run, ev api.Event) error {
	f := newFold(snap, indexMembers(snap))
	if err := checkedApply(f, &ev); err != nil {
		return err
	}
	f.into(snap)
	return nil
}

// TestRunStatusEventEveryPair drives checkedApply, the gate of every event
// the engine appends, with a run.status event for every pair of statuses.
// The run's one member already has the status the run moves to (when that
// is terminal) so that only the transition rule decides.
func TestRunStatusEventEveryPair(t *testing.T) {
	for _, from := range api.Statuses {
		for _, to := range api.Statuses {
			m := api.StatusInitial
			switch {
			case to.Terminal():
				m = to
			case to == api.StatusRunning || from == api.StatusRunning:
				m = api.StatusRunning
			}
			snap := &api.Run{ID: "r", Status: from, LastSeq: 3, Members: []api.Member{{ID: "a", Status: m}}}
			before := snap.Clone()
			err := applyChecked(snap, api.Event{Seq: 4, Type: api.EventRunStatus, Status: to})
			want := allowed[[2]api.Status{from, to}]
			if (err == nil) != want {
				t.Errorf("run %s -> %s: err = %v, want allowed=%v", from, to, err, want)
			}
			if err != nil {
				if diff := cmp.Diff(before, snap); diff != "" {
					t.Errorf("run %s -> %s was refused but changed the snapshot:\n%s", from, to, diff)
				}
			} else if snap.Status != to || snap.LastSeq != 4 {
				t.Errorf("run %s -> %s: snapshot is %s at seq %d", from, to, snap.Status, snap.LastSeq)
			}
		}
	}
}

func TestMemberStatusEventEveryPair(t *testing.T) {
	for _, from := range api.Statuses {
		for _, to := range api.Statuses {
			snap := &api.Run{ID: "r", Status: api.StatusRunning, LastSeq: 3, Members: []api.Member{{ID: "a", Status: from, Attempt: 1}}}
			before := snap.Clone()
			err := applyChecked(snap, api.Event{Seq: 4, Type: api.EventMemberStatus, Member: "a", Status: to, Attempt: 1})
			want := allowed[[2]api.Status{from, to}]
			if (err == nil) != want {
				t.Errorf("member %s -> %s: err = %v, want allowed=%v", from, to, err, want)
			}
			if err != nil {
				if diff := cmp.Diff(before, snap); diff != "" {
					t.Errorf("member %s -> %s was refused but changed the snapshot:\n%s", from, to, diff)
				}
			}
		}
	}
}

func TestCheckedApplyRules(t *testing.T) {
	member := func(s api.Status, attempt int) []api.Member {
		return []api.Member{{ID: "a", Status: s, Attempt: attempt, Steps: []api.StepResult{{Name: "s", Status: api.StepPending}}}}
	}
	tests := []struct {
		name string
		run  api.Status
		mem  []api.Member
		ev   api.Event
		ok   bool
	}{
		{"retry is a new attempt of a running member", api.StatusRunning, member(api.StatusRunning, 1),
			api.Event{Type: api.EventMemberStatus, Member: "a", Status: api.StatusRunning, Attempt: 2}, true},
		{"running again without a new attempt", api.StatusRunning, member(api.StatusRunning, 2),
			api.Event{Type: api.EventMemberStatus, Member: "a", Status: api.StatusRunning, Attempt: 2}, false},
		{"a failed member is not retried", api.StatusRunning, member(api.StatusFailed, 1),
			api.Event{Type: api.EventMemberStatus, Member: "a", Status: api.StatusRunning, Attempt: 2}, false},
		{"member cannot run in a queued run", api.StatusQueued, member(api.StatusInitial, 0),
			api.Event{Type: api.EventMemberStatus, Member: "a", Status: api.StatusRunning, Attempt: 1}, false},
		{"steps change only in a running member", api.StatusRunning, member(api.StatusInitial, 0),
			api.Event{Type: api.EventStepStatus, Member: "a", Step: 1, StepStatus: api.StepRunning}, false},
		{"unknown member", api.StatusRunning, member(api.StatusRunning, 1),
			api.Event{Type: api.EventMemberStatus, Member: "zz", Status: api.StatusPassed}, false},
		{"run ends only after its members", api.StatusRunning, member(api.StatusRunning, 1),
			api.Event{Type: api.EventRunStatus, Status: api.StatusCancelled}, false},
		{"run ends with its members' aggregate", api.StatusRunning, member(api.StatusFailed, 1),
			api.Event{Type: api.EventRunStatus, Status: api.StatusPassed}, false},
		{"a queued run is blocked whole", api.StatusQueued, member(api.StatusBlocked, 0),
			api.Event{Type: api.EventRunStatus, Status: api.StatusBlocked}, true},
		{"nothing after the end", api.StatusPassed, member(api.StatusPassed, 1),
			api.Event{Type: api.EventLog, Message: "late"}, false},
		{"no substate for a finished member", api.StatusRunning, member(api.StatusPassed, 1),
			api.Event{Type: api.EventMemberSubstate, Member: "a", Substate: api.SubstateWaitingForPreceding}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := &api.Run{ID: "r", Status: tt.run, LastSeq: 5, Members: tt.mem}
			tt.ev.Seq = 6
			err := applyChecked(snap, tt.ev)
			if (err == nil) != tt.ok {
				t.Fatalf("checkedApply = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestUnits(t *testing.T) {
	mk := func(id string, variants ...string) api.Case {
		c := api.Case{ID: id, Steps: []api.Step{{Name: "s", Run: &api.Command{Command: "true"}}}}
		for _, v := range variants {
			c.Variants = append(c.Variants, api.Variant{Name: v})
		}
		return c
	}
	req := &api.RunRequest{
		Cases: []api.Case{mk("a"), mk("login", "eu", "us"), mk("b"), mk("create"), mk("c"), mk("delete")},
		Sets: []api.Set{
			{Name: "loose", Cases: []string{"a", "b"}},
			{Name: "flow", Sequential: true, Cases: []string{"create", "login", "delete"}},
		},
	}
	var got [][]string
	for _, u := range units(req, targets(req)) {
		var ids []string
		for _, tg := range u {
			ids = append(ids, tg.member)
		}
		got = append(got, ids)
	}
	want := [][]string{{"a"}, {"create", "login/eu", "login/us", "delete"}, {"b"}, {"c"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("units (-want +got):\n%s", diff)
	}
	// targets follow api.NewRun's member order.
	run := api.NewRun("r", req, time.Time{})
	ts := targets(req)
	for i, m := range run.Members {
		if ts[i].member != m.ID {
			t.Errorf("target %d is %s, member is %s", i, ts[i].member, m.ID)
		}
	}
}

// TestFoldManyMembers: one batch touching many members (finish cancelling
// every member) folds each into its own copy, whether the fold finds its
// copies by a scan (up to foldScan) or through its map, and leaves the
// snapshot alone until into. The run ends in the same batch, so the check
// that every member is terminal reads the copies.
func TestFoldManyMembers(t *testing.T) {
	for _, n := range []int{1, foldScan, foldScan + 1, 3 * foldScan} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			snap := &api.Run{ID: "r", Status: api.StatusRunning, LastSeq: 1}
			for i := range n {
				snap.Members = append(snap.Members, api.Member{ID: fmt.Sprintf("m%d", i), Status: api.StatusInitial,
					Steps: []api.StepResult{{Name: "s", Status: api.StepPending}}})
			}
			before := snap.Clone()
			f := newFold(snap, indexMembers(snap))
			var evs []api.Event
			// Every member twice, the second time in reverse, so lookups hit
			// copies made earlier in the batch.
			for i := range n {
				evs = append(evs, api.Event{Type: api.EventMemberStatus, Member: fmt.Sprintf("m%d", i), Status: api.StatusRunning, Attempt: 1})
			}
			for i := n - 1; i >= 0; i-- {
				evs = append(evs, api.Event{Type: api.EventMemberStatus, Member: fmt.Sprintf("m%d", i), Status: api.StatusCancelled, Reason: "stop"})
			}
			evs = append(evs, api.Event{Type: api.EventRunStatus, Status: api.StatusCancelled})
			for i := range evs {
				evs[i].Seq = int64(i + 2)
				if err := checkedApply(f, &evs[i]); err != nil {
					t.Fatalf("event %d: %v", i, err)
				}
			}
			if diff := cmp.Diff(before, snap); diff != "" {
				t.Fatalf("the fold changed the snapshot before into:\n%s", diff)
			}
			if len(f.touched) != n {
				t.Errorf("%d copies for %d members", len(f.touched), n)
			}
			f.into(snap)
			if snap.Status != api.StatusCancelled || snap.LastSeq != int64(len(evs)+1) {
				t.Errorf("run %s at seq %d", snap.Status, snap.LastSeq)
			}
			for _, m := range snap.Members {
				if m.Status != api.StatusCancelled || m.Attempt != 1 || m.Reason != "stop" {
					t.Errorf("member %s: %s attempt %d reason %q", m.ID, m.Status, m.Attempt, m.Reason)
				}
			}
		})
	}
}
