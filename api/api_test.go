package api

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestCanTransitionEveryPair walks every pair of statuses: exactly the edges of
// lifecycle.md are allowed, and nothing leaves a terminal status.
func TestCanTransitionEveryPair(t *testing.T) {
	allowed := map[[2]Status]bool{
		{StatusInitial, StatusQueued}: true, {StatusInitial, StatusRunning}: true,
		{StatusInitial, StatusCancelled}: true, {StatusInitial, StatusBlocked}: true,
		{StatusQueued, StatusRunning}: true, {StatusQueued, StatusCancelled}: true, {StatusQueued, StatusBlocked}: true,
		{StatusRunning, StatusPassed}: true, {StatusRunning, StatusFailed}: true, {StatusRunning, StatusCancelled}: true,
	}
	n := 0
	for _, from := range Statuses {
		for _, to := range Statuses {
			want := allowed[[2]Status{from, to}]
			if got := CanTransition(from, to); got != want {
				t.Errorf("CanTransition(%s, %s) = %v, want %v", from, to, got, want)
			}
			if want {
				n++
			}
			if from.Terminal() && CanTransition(from, to) {
				t.Errorf("terminal %s may change to %s", from, to)
			}
		}
	}
	if n != len(allowed) {
		t.Errorf("walked %d allowed edges, want %d", n, len(allowed))
	}
}

func TestAggregate(t *testing.T) {
	tests := []struct {
		in   []Status
		want Status
	}{
		{[]Status{StatusPassed, StatusPassed}, StatusPassed},
		{[]Status{StatusPassed, StatusCancelled}, StatusCancelled},
		{[]Status{StatusCancelled, StatusFailed}, StatusFailed},
		{[]Status{StatusBlocked, StatusPassed}, StatusFailed},
		{nil, StatusPassed},
	}
	for _, tt := range tests {
		if got := Aggregate(tt.in); got != tt.want {
			t.Errorf("Aggregate(%v) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func request() *RunRequest {
	return &RunRequest{
		Project:     "p",
		Environment: Environment{Name: "local"},
		Cases: []Case{
			{ID: "login", Steps: []Step{{Name: "page"}, {HTTP: &HTTPRequest{Method: "POST", Path: "/api/login"}}}},
			{ID: "cart", Variants: []Variant{{Name: "eur"}, {Name: "usd"}}, Steps: []Step{{Run: &Command{Command: "true"}}}},
		},
		Sets: []Set{{Name: "release", Cases: []string{"cart"}, Sequential: true}},
	}
}

// TestApplyFoldsTheLog folds a realistic log, including a retry, and checks the snapshot.
func TestApplyFoldsTheLog(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	initial := NewRun("r1", request(), t0)
	if got := []string{initial.Members[0].ID, initial.Members[1].ID, initial.Members[2].ID}; !cmp.Equal(got, []string{"login", "cart/eur", "cart/usd"}) {
		t.Fatalf("members = %v", got)
	}
	if initial.Members[1].Set != "release" || initial.Members[0].Steps[1].Name != "POST /api/login" {
		t.Fatalf("initial snapshot wrong: %+v", initial.Members)
	}
	log := []Event{
		{Seq: 1, At: at(0), Type: EventRunCreated, Run: initial},
		{Seq: 2, At: at(1), Type: EventRunSubstate, Substate: SubstateQueuePosition, Position: 2},
		{Seq: 3, At: at(2), Type: EventRunStatus, Status: StatusRunning},
		{Seq: 4, At: at(2), Type: EventMemberStatus, Member: "login", Status: StatusRunning, Attempt: 1},
		{Seq: 5, At: at(3), Type: EventStepStatus, Member: "login", Step: 1, StepStatus: StepFailed, Failure: &Failure{Message: "status: expected 200, got 500"}},
		{Seq: 6, At: at(3), Type: EventMemberStatus, Member: "login", Status: StatusRunning, Attempt: 2},
		{Seq: 7, At: at(4), Type: EventStepStatus, Member: "login", Step: 1, StepStatus: StepPassed, Duration: Duration(time.Second)},
		{Seq: 8, At: at(4), Type: EventStepStatus, Member: "login", Step: 2, StepStatus: StepPassed},
		{Seq: 9, At: at(5), Type: EventMemberStatus, Member: "login", Status: StatusPassed, Flaky: true},
		{Seq: 10, At: at(5), Type: EventMemberStatus, Member: "cart/eur", Status: StatusCancelled},
		{Seq: 11, At: at(5), Type: EventMemberStatus, Member: "cart/usd", Status: StatusCancelled},
		{Seq: 12, At: at(6), Type: EventRunStatus, Status: StatusCancelled, Reason: "cancelled by alice"},
	}
	var r Run
	for _, e := range log {
		if err := r.Apply(e); err != nil {
			t.Fatalf("Apply(%d): %v", e.Seq, err)
		}
	}
	// A repeated event (a resumed stream) is ignored.
	if err := r.Apply(log[5]); err != nil {
		t.Fatalf("duplicate: %v", err)
	}
	login := r.Member("login")
	if login.Status != StatusPassed || !login.Flaky || login.Attempt != 2 {
		t.Errorf("login = %s flaky=%v attempt=%d", login.Status, login.Flaky, login.Attempt)
	}
	if diff := cmp.Diff([]string{"page: status: expected 200, got 500"}, login.FailedAttempts); diff != "" {
		t.Errorf("failed attempts (-want +got):\n%s", diff)
	}
	if login.Steps[0].Failure != nil || login.Steps[0].Status != StepPassed {
		t.Errorf("retry did not reset step 1: %+v", login.Steps[0])
	}
	if r.Status != StatusCancelled || r.Reason != "cancelled by alice" || r.LastSeq != 12 || !r.FinishedAt.Equal(at(6)) || !r.StartedAt.Equal(at(2)) {
		t.Errorf("run = %s %q seq %d", r.Status, r.Reason, r.LastSeq)
	}
	c := r.Count()
	if want := (Counts{Total: 3, Passed: 1, Cancelled: 2, Skipped: 2, Flaky: 1}); c != want {
		t.Errorf("Count = %+v, want %+v", c, want)
	}
	// The snapshot survives the wire.
	b, err := json.Marshal(&r)
	if err != nil {
		t.Fatal(err)
	}
	var back Run
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, back); diff != "" {
		t.Errorf("JSON round trip (-want +got):\n%s", diff)
	}
}

func TestApplyRefuses(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	base := func() *Run {
		r := &Run{}
		if err := r.Apply(Event{Seq: 1, At: t0, Type: EventRunCreated, Run: NewRun("r1", request(), t0)}); err != nil {
			t.Fatal(err)
		}
		return r
	}
	tests := []struct {
		name string
		e    Event
	}{
		{"gap in seq", Event{Seq: 3, Type: EventLog}},
		{"forbidden run transition", Event{Seq: 2, Type: EventRunStatus, Status: StatusPassed}},
		{"unknown member", Event{Seq: 2, Type: EventMemberStatus, Member: "nope", Status: StatusRunning}},
		{"step out of range", Event{Seq: 2, Type: EventStepStatus, Member: "login", Step: 3, StepStatus: StepPassed}},
		{"created without run", Event{Seq: 2, Type: EventRunCreated}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := base().Apply(tt.e); err == nil {
				t.Errorf("Apply(%+v) accepted", tt.e)
			}
		})
	}
}

func TestDurationJSON(t *testing.T) {
	var d Duration
	if err := json.Unmarshal([]byte(`"1m30s"`), &d); err != nil || d.D() != 90*time.Second {
		t.Fatalf("got %v, %v", d, err)
	}
	if err := json.Unmarshal([]byte(`"soon"`), &d); err == nil {
		t.Error("accepted a bad duration")
	}
	if b, _ := json.Marshal(Duration(1500 * time.Millisecond)); string(b) != `"1.5s"` {
		t.Errorf("marshal = %s", b)
	}
}
