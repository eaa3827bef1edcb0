package report_test

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/reporters/report"
	"github.com/zof-ai/zof-ci/internal/secret"
)

func TestCleanMasksSplitSecrets(t *testing.T) {
	m := secret.NewMasker([]string{"hunter2"})
	for _, in := range []string{"pw hunter2", "pw hun\x1b[0mter2", "pw hunter\x002"} {
		if got := report.Clean(m, in); strings.Contains(got, "hunter2") || !strings.Contains(got, secret.Mask) {
			t.Errorf("Clean(%q) = %q, want the secret masked", in, got)
		}
	}
	if got := report.Line(m, "a\nb\tc  d"); got != "a b c d" {
		t.Errorf("Line = %q, want one line", got)
	}
}

func TestTail(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
		cut  int
	}{
		{"", 3, "", 0},
		{"a\nb\n", 3, "a\nb", 0},
		{"a\nb\nc\nd", 2, "c\nd", 2},
	}
	for _, tt := range tests {
		got, cut := report.Tail(tt.in, tt.n)
		if got != tt.want || cut != tt.cut {
			t.Errorf("Tail(%q, %d) = %q, %d; want %q, %d", tt.in, tt.n, got, cut, tt.want, tt.cut)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	tests := map[time.Duration]string{
		-time.Second: "0s", 0: "0s", 1234567 * time.Nanosecond: "1ms", 85 * time.Millisecond: "85ms",
		1234 * time.Millisecond: "1.2s", 75*time.Second + 600*time.Millisecond: "1m16s",
	}
	for d, want := range tests {
		if got := report.FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestOutcomeOf(t *testing.T) {
	started := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		m    api.Member
		want report.Outcome
	}{
		{api.Member{Status: api.StatusPassed, StartedAt: started}, report.OutcomePassed},
		{api.Member{Status: api.StatusFailed, StartedAt: started}, report.OutcomeFailed},
		{api.Member{Status: api.StatusBlocked}, report.OutcomeBlocked},
		{api.Member{Status: api.StatusCancelled, StartedAt: started}, report.OutcomeCancelled},
		{api.Member{Status: api.StatusCancelled}, report.OutcomeSkipped},
		{api.Member{Status: api.StatusQueued}, report.OutcomeSkipped},
		{api.Member{Status: api.StatusRunning, StartedAt: started}, report.OutcomeUnfinished},
	}
	for _, tt := range tests {
		if got := report.OutcomeOf(&tt.m); got != tt.want {
			t.Errorf("OutcomeOf(%s, started %v) = %s, want %s", tt.m.Status, !tt.m.StartedAt.IsZero(), got, tt.want)
		}
	}
}

func TestCleanRunTouchesEveryText(t *testing.T) {
	const s = "leak"
	r := &api.Run{
		ID: s, Tenant: s, Project: s, Environment: s, Reason: s, URL: s, SuiteFile: s,
		IdempotencyKey: s, ConcurrencyGroup: s, RerunOf: s, Labels: map[string]string{s: s},
		Members: []api.Member{{ID: s, Case: s, Name: s, Variant: s, Set: s, Reason: s, FailedAttempts: []string{s},
			Steps: []api.StepResult{{Name: s, Kind: s, Output: s, Failure: &api.Failure{Message: s, Expected: s, Actual: s}}}}},
		Selection: api.Selection{Scope: s, Effective: s, Widened: &api.Reason{Kind: s, File: s, Pattern: s, Detail: s},
			Cases:    []api.SelectedCase{{ID: s, Reasons: []api.Reason{{Kind: s, File: s, Pattern: s, Detail: s}}}},
			Unmapped: []string{s}, Ignored: []string{s}, Warnings: []string{s},
			Diff: &api.DiffSummary{Source: s, Base: s, Head: s, Reason: s}},
		Source: api.Source{Provider: s, Repo: s, SHA: s, Ref: s, CIRunID: s, Actor: s, URL: s, Trigger: s},
	}
	orig := r.Clone()
	origFailure := *r.Members[0].Steps[0].Failure
	got := report.CleanRun(secret.NewMasker([]string{s}), r)
	if diff := cmp.Diff(orig, r); diff != "" || *r.Members[0].Steps[0].Failure != origFailure {
		t.Errorf("CleanRun changed its input:\n%s", diff)
	}
	// Every string field of the copy must be masked: walk it through MapRun.
	var unmasked int
	report.MapRun(got, func(v string) string {
		if v != "" && v != secret.Mask {
			unmasked++
		}
		return v
	})
	if unmasked > 0 {
		t.Errorf("%d string fields were not masked", unmasked)
	}
	if got.Labels[secret.Mask] != secret.Mask {
		t.Errorf("labels = %v, want masked", got.Labels)
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x", "y", "r.txt")
	if err := report.WriteFileAtomic(path, func(w io.Writer) error { _, err := io.WriteString(w, "one"); return err }); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := report.WriteFileAtomic(path, func(w io.Writer) error { io.WriteString(w, "half"); return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the writer's error", err)
	}
	b, _ := os.ReadFile(path)
	if string(b) != "one" {
		t.Errorf("a failed write changed the file to %q", b)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
	if err := report.WriteFileAtomic("", nil); err == nil {
		t.Error("empty path accepted")
	}
}
