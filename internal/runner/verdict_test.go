package runner

import (
	"strings"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/exitcode"
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

// TestVerdict walks every outcome against fail_on: each status maps to its
// code when listed, and to 0 with a notice when not.
func TestVerdict(t *testing.T) {
	all := []string{OutcomeFailed, OutcomeBlocked, OutcomeCancelled, OutcomeTimeout}
	tests := []struct {
		name       string
		out        Outcome
		failOn     []string
		want       exitcode.Code
		verdict    string
		wantNotice bool
	}{
		{"passed", Outcome{Run: runWith(api.StatusPassed, api.StatusPassed, api.StatusPassed)}, all, exitcode.OK, "gate passed: 2 of 2 members passed", false},
		{"failed", Outcome{Run: runWith(api.StatusFailed, api.StatusPassed, api.StatusFailed)}, all, exitcode.Failed, "gate failed: 1 of 2 members failed: b", false},
		{"failed not in fail_on", Outcome{Run: runWith(api.StatusFailed, api.StatusFailed)}, []string{OutcomeBlocked}, exitcode.OK, "gate passed with notice: 1 of 1 member failed: a", true},
		{"blocked", Outcome{Run: runWith(api.StatusBlocked, api.StatusBlocked)}, all, exitcode.Blocked, "gate failed: run was Failed (Blocked): because", false},
		{"blocked not in fail_on", Outcome{Run: runWith(api.StatusBlocked, api.StatusBlocked)}, []string{OutcomeFailed}, exitcode.OK, "gate passed with notice: run was Failed (Blocked): because", true},
		{"cancelled", Outcome{Run: runWith(api.StatusCancelled, api.StatusCancelled)}, all, exitcode.Cancelled, "gate failed: run was cancelled: because", false},
		{"timeout", Outcome{Run: runWith(api.StatusRunning, api.StatusRunning), TimedOut: true, Timeout: time.Minute}, all, exitcode.Timeout, "gate failed: no verdict within 1m0s; run r1 was running (0 of 1 cases finished)", false},
		{"timeout not in fail_on", Outcome{Run: runWith(api.StatusRunning), TimedOut: true, Timeout: time.Minute}, []string{OutcomeFailed}, exitcode.OK, "gate passed with notice: no verdict within 1m0s; run r1 was running (0 of 0 cases finished)", true},
		{"interrupted wins", Outcome{Run: runWith(api.StatusCancelled, api.StatusCancelled), Interrupted: true, TimedOut: true}, all, exitcode.Interrupted, "interrupted: run r1 was cancelled; reports hold what finished", false},
		{"lost", Outcome{Run: runWith(api.StatusRunning)}, all, exitcode.Unavailable, "run r1 ended without a verdict (last status Running)", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, verdict, notices := Verdict(tt.out, tt.failOn)
			if code != tt.want || verdict != tt.verdict {
				t.Errorf("Verdict = %d %q, want %d %q", code, verdict, tt.want, tt.verdict)
			}
			if got := len(notices) > 0; got != tt.wantNotice {
				t.Errorf("notices = %q, want notice %v", notices, tt.wantNotice)
			}
		})
	}
}

func TestVerdictNamesAtMostFiveFailures(t *testing.T) {
	r := runWith(api.StatusFailed, api.StatusFailed, api.StatusFailed, api.StatusFailed, api.StatusFailed, api.StatusFailed, api.StatusFailed, api.StatusFailed)
	_, verdict, _ := Verdict(Outcome{Run: r}, []string{OutcomeFailed})
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
	if exitcode.Of(err) != exitcode.Usage || !strings.Contains(err.Error(), "failed, blocked, cancelled, timeout") {
		t.Errorf("bad outcome: %v (code %d)", err, exitcode.Of(err))
	}
}
