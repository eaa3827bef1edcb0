package gate

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/api"
)

func runWith(status api.Status, members ...api.Status) *api.Run {
	r := &api.Run{ID: "r1", Status: status, Reason: "because"}
	for i, s := range members {
		m := api.Member{ID: string(rune('a' + i)), Status: s}
		if s != api.StatusCancelled {
			m.StartedAt = time.Unix(1, 0)
		}
		r.Members = append(r.Members, m)
	}
	return r
}

// quarantine marks members idx of r quarantined.
func quarantine(r *api.Run, idx ...int) *api.Run {
	for _, i := range idx {
		r.Members[i].Quarantined = true
	}
	return r
}

// TestVerdict walks every outcome against fail_on: each status maps to its
// code when listed, and to 0 with a notice when not.
func TestVerdict(t *testing.T) {
	all := []string{OutcomeFailed, OutcomeBlocked, OutcomeCancelled, OutcomeTimeout}
	tests := []struct {
		name       string
		out        Outcome
		failOn     []string
		want       Kind
		verdict    string
		wantNotice bool
	}{
		{"passed", Outcome{Run: runWith(api.StatusPassed, api.StatusPassed, api.StatusPassed)}, all, Passed, "gate passed: 2 of 2 members passed", false},
		{"failed", Outcome{Run: runWith(api.StatusFailed, api.StatusPassed, api.StatusFailed)}, all, Failed, "gate failed: 1 of 2 members failed: b", false},
		{"failed not in fail_on", Outcome{Run: runWith(api.StatusFailed, api.StatusFailed)}, []string{OutcomeBlocked}, Passed, "gate passed with notice: 1 of 1 member failed: a", true},
		{"blocked", Outcome{Run: runWith(api.StatusBlocked, api.StatusBlocked)}, all, Blocked, "gate failed: run was Failed (Blocked): because", false},
		{"blocked not in fail_on", Outcome{Run: runWith(api.StatusBlocked, api.StatusBlocked)}, []string{OutcomeFailed}, Passed, "gate passed with notice: run was Failed (Blocked): because", true},
		{"cancelled", Outcome{Run: runWith(api.StatusCancelled, api.StatusCancelled)}, all, Cancelled, "gate failed: run was cancelled: because", false},
		{"timeout", Outcome{Run: runWith(api.StatusRunning, api.StatusRunning), TimedOut: true, Timeout: time.Minute}, all, TimedOut, "gate failed: no verdict within 1m0s; run r1 was running (0 of 1 cases finished)", false},
		{"timeout not in fail_on", Outcome{Run: runWith(api.StatusRunning), TimedOut: true, Timeout: time.Minute}, []string{OutcomeFailed}, Passed, "gate passed with notice: no verdict within 1m0s; run r1 was running (0 of 0 cases finished)", true},
		{"interrupted wins", Outcome{Run: runWith(api.StatusCancelled, api.StatusCancelled), Interrupted: true, TimedOut: true}, all, Interrupted, "interrupted: run r1 was cancelled; reports hold what finished", false},
		{"timeout before the server accepted the run", Outcome{Run: &api.Run{}, TimedOut: true, Timeout: 15 * time.Second}, all, TimedOut, "gate failed: no verdict within 15s; the run was not yet accepted by the server (0 of 0 cases finished)", false},
		{"lost before the server accepted the run", Outcome{Run: &api.Run{ID: "r1"}, Lost: errors.New("connection refused")}, all, NoVerdict, "gate failed: lost run r1 (last status not yet accepted by the server): connection refused", false},
		{"only quarantined members failed", Outcome{Run: quarantine(runWith(api.StatusFailed, api.StatusPassed, api.StatusFailed), 1)}, all, Passed, "gate passed: 1 of 2 members passed; 1 quarantined member failed and does not fail the gate: b", true},
		{"a quarantined and a normal member failed", Outcome{Run: quarantine(runWith(api.StatusFailed, api.StatusFailed, api.StatusFailed), 1)}, all, Failed, "gate failed: 2 of 2 members failed: a, b", false},
		{"a quarantined member that passes changes nothing", Outcome{Run: quarantine(runWith(api.StatusPassed, api.StatusPassed), 0)}, all, Passed, "gate passed: 1 of 1 member passed", false},
		{"quarantine does not hide a cancelled run", Outcome{Run: quarantine(runWith(api.StatusCancelled, api.StatusCancelled), 0)}, all, Cancelled, "gate failed: run was cancelled: because", false},
		{"lost", Outcome{Run: runWith(api.StatusRunning)}, all, NoVerdict, "run r1 ended without a verdict (last status Running)", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := Judge(tt.out, tt.failOn)
			if v.Kind != tt.want || v.Line != tt.verdict {
				t.Errorf("Judge = %s %q, want %s %q", v.Kind, v.Line, tt.want, tt.verdict)
			}
			if got := len(v.Notices) > 0; got != tt.wantNotice {
				t.Errorf("notices = %q, want notice %v", v.Notices, tt.wantNotice)
			}
		})
	}
}

func TestVerdictNamesAtMostFiveFailures(t *testing.T) {
	r := runWith(api.StatusFailed, api.StatusFailed, api.StatusFailed, api.StatusFailed, api.StatusFailed, api.StatusFailed, api.StatusFailed, api.StatusFailed)
	verdict := Judge(Outcome{Run: r}, []string{OutcomeFailed}).Line
	if !strings.HasSuffix(verdict, "failed: a, b, c, d, e and 2 more") {
		t.Errorf("verdict = %q", verdict)
	}
}

func TestParseFailOn(t *testing.T) {
	got, err := ParseFailOn([]string{" Failed", "timeout"})
	if err != nil || strings.Join(got, ",") != "failed,timeout" {
		t.Errorf("ParseFailOn = %v, %v", got, err)
	}
	if got, _ := ParseFailOn(nil); len(got) != 4 {
		t.Errorf("default fail_on = %v, want all four", got)
	}
	_, err = ParseFailOn([]string{"sometimes"})
	if !IsUsage(err) || !strings.Contains(err.Error(), "failed, blocked, cancelled, timeout") {
		t.Errorf("bad outcome: %v (usage error %v)", err, IsUsage(err))
	}
}

// FuzzParseFailOn: any list either parses to known outcomes only or is a
// usage error naming the choices; it never panics.
func FuzzParseFailOn(f *testing.F) {
	for _, s := range []string{"", "failed", " Failed,timeout", "sometimes", "blocked,,cancelled", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var list []string
		if s != "" {
			list = strings.Split(s, ",")
		}
		got, err := ParseFailOn(list)
		if err != nil {
			if !IsUsage(err) || !strings.Contains(err.Error(), "failed, blocked, cancelled, timeout") {
				t.Fatalf("ParseFailOn(%q): %v is not a usage error naming the choices", s, err)
			}
			return
		}
		for _, o := range got {
			if !slices.Contains(AllOutcomes, o) {
				t.Fatalf("ParseFailOn(%q) = %q: %q is not an outcome", s, got, o)
			}
		}
	})
}
