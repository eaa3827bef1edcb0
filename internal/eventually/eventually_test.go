package eventually_test

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/internal/eventually"
)

// fakeT records what Wait reports.
type fakeT struct {
	errors []string
	failed bool
}

func (f *fakeT) Helper() {}
func (f *fakeT) Errorf(format string, args ...any) {
	f.errors = append(f.errors, fmt.Sprintf(format, args...))
}
func (f *fakeT) FailNow() { f.failed = true }

var _ eventually.FatalT = (*fakeT)(nil)

func TestWait(t *testing.T) {
	tests := []struct {
		name    string
		trueAt  int64 // the call on which cond first holds; 0: never
		timeout time.Duration
		want    bool
	}{
		{"holds at once", 1, time.Second, true},
		{"holds after a few checks", 5, 10 * time.Second, true},
		{"never holds", 0, 20 * time.Millisecond, false},
		{"no time at all, but holds at once", 1, 0, true},
		{"no time at all", 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int64
			cond := func() bool { return calls.Add(1) == tt.trueAt || (tt.trueAt > 0 && calls.Load() > tt.trueAt) }
			ft := &fakeT{}
			got := eventually.Wait(ft, tt.timeout, cond, "the thing")
			if got != tt.want {
				t.Fatalf("Wait = %v, want %v", got, tt.want)
			}
			if tt.want {
				if len(ft.errors) != 0 || calls.Load() != tt.trueAt {
					t.Errorf("errors %q after %d calls; want none after %d", ft.errors, calls.Load(), tt.trueAt)
				}
				return
			}
			want := "waiting for the thing: not within " + tt.timeout.String()
			if len(ft.errors) != 1 || ft.errors[0] != want {
				t.Errorf("errors %q, want [%q]", ft.errors, want)
			}
			if ft.failed {
				t.Error("Wait stopped the test; only Must may")
			}
		})
	}
}

func TestWaitRespectsTheDeadline(t *testing.T) {
	ft := &fakeT{}
	timeout := 30 * time.Millisecond
	start := time.Now()
	eventually.Wait(ft, timeout, func() bool { return false }, "never")
	// The bound is what matters: it must give up, not spin forever. A loaded
	// machine may return late, never early.
	if took := time.Since(start); took < timeout {
		t.Errorf("gave up after %s, before the %s timeout", took, timeout)
	}
}

func TestMust(t *testing.T) {
	ft := &fakeT{}
	eventually.Must(ft, time.Millisecond, func() bool { return false }, "never")
	if !ft.failed || len(ft.errors) != 1 || !strings.Contains(ft.errors[0], "waiting for never") {
		t.Errorf("failed %v errors %q", ft.failed, ft.errors)
	}
	ft = &fakeT{}
	eventually.Must(ft, time.Millisecond, func() bool { return true }, "now")
	if ft.failed || len(ft.errors) != 0 {
		t.Errorf("failed %v errors %q", ft.failed, ft.errors)
	}
}
