package console_test

import (
	"context"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/reporters/console"
	"github.com/zof-ai/zof-ci/internal/reporters/report"
	"github.com/zof-ai/zof-ci/internal/reporters/reporttest"
)

// TestLargeRunIsCapped: hundreds of members keep the summary and the TTY block bounded.
func TestLargeRunIsCapped(t *testing.T) {
	res := reporttest.Large(t, 300)
	// One case selected for its own reason, so the reasons are listed per case.
	res.Run.Selection.Cases[0].Reasons = []api.Reason{{Kind: api.ReasonCovers, File: "a/b.go", Pattern: "a/**"}}
	got := follow(t, report.Options{}, res)
	_, sum, _ := strings.Cut(got, "\nRun r-0001")
	if n := strings.Count(sum, "\n    failure:  "); n != 20 {
		t.Errorf("%d detailed failures, want 20 (the rest one line each)", n)
	}
	if !strings.Contains(sum, "Failed (30):") || !strings.Contains(sum, "✗ case-299 failed: step 1 \"probe\": status: expected 200, got 503\n") {
		t.Errorf("summary lacks the failed count or the one-line failures:\n%s", sum)
	}
	if !strings.Contains(sum, "  … and 280 more cases (zof plan explains every one)\n") {
		t.Error("selection reasons are not capped")
	}

	// A TTY block never grows past the cap, whatever the run's size.
	run := &api.Run{}
	var sb strings.Builder
	r, _ := console.NewConsole(report.Options{Out: &sb, TTY: true, Width: 40})
	for _, e := range res.Events[:1] {
		_ = run.Apply(e)
		r.Event(run, e)
	}
	lines := strings.Count(sb.String(), "\n") - 1 // minus the "created" line
	if lines != 1+12+1 {
		t.Errorf("TTY block has %d lines, want header + 12 members + \"and N more\"", lines)
	}
	for _, l := range strings.Split(sb.String(), "\n") {
		if n := len([]rune(l)); n > 39 && !strings.Contains(l, "created") {
			t.Errorf("block line of %d columns exceeds width-1: %q", n, l)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	res := reporttest.Failures(t)
	r, _ := console.NewConsole(report.Options{Out: io.Discard, TTY: true})
	run := &api.Run{}
	snaps := make([]*api.Run, len(res.Events))
	for i, e := range res.Events {
		_ = run.Apply(e)
		snaps[i] = run.Clone()
	}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, e := range res.Events {
				r.Event(snaps[i], e)
			}
			r.Notice(reporttest.T0, "note")
		}()
	}
	wg.Wait()
	if err := r.Report(context.Background(), res); err != nil {
		t.Fatal(err)
	}
}

func benchFollow(b *testing.B, o report.Options) {
	res := reporttest.Large(b, 500)
	snaps := make([]*api.Run, len(res.Events))
	run := &api.Run{}
	for i, e := range res.Events {
		_ = run.Apply(e)
		snaps[i] = run.Clone()
	}
	o.Out, o.Now = io.Discard, reporttest.Now
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r, _ := console.NewConsole(o)
		for i, e := range res.Events {
			r.Event(snaps[i], e)
		}
		if err := r.Report(context.Background(), res); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFollowPlain500 follows a 500-member run (2,002 events) in plain mode and prints the summary.
func BenchmarkFollowPlain500(b *testing.B) { benchFollow(b, report.Options{}) }

// BenchmarkFollowTTY500 is the same with the redrawn TTY block.
func BenchmarkFollowTTY500(b *testing.B) { benchFollow(b, report.Options{TTY: true, Color: true}) }

// TestSameReasonsCollapse: an explicit scope gives every case the same reason,
// said once instead of once per case.
func TestSameReasonsCollapse(t *testing.T) {
	got := follow(t, report.Options{}, reporttest.Large(t, 5))
	if !strings.Contains(got, "\n  all 5 cases: scope all\n") || strings.Contains(got, "\n  case-1: ") {
		t.Errorf("reasons not collapsed:\n%s", got)
	}
}
