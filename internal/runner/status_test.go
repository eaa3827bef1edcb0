package runner

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/gate"
	"github.com/zof-ai/zof-ci/internal/reporters/reporttest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s (-want +got):\n%s", path, diff)
	}
}

func TestWriteStatus(t *testing.T) {
	finished := failingLog(t).Run
	finished.Source = api.Source{Provider: "github", Repo: "acme/shop", SHA: "0123456789abcdef0123", Ref: "refs/pull/7/merge", PR: 7, CIRunID: "99", Attempt: 2, Actor: "octo"}
	finished.RerunOf = "run_earlier"

	b := reporttest.NewBuilder(t, testRequest())
	b.RunStatus(api.StatusQueued, "").RunSubstate(api.SubstateQueuePosition, 3)
	queued := b.Run
	queued.Wait = &api.WaitReason{Kind: "tenant_limit", Message: "tenant payments at 2 of 2 running (run_a, run_b)", Since: reporttest.Now().Add(-time.Minute)}

	b = reporttest.NewBuilder(t, testRequest())
	b.RunStatus(api.StatusRunning, "").Pass("login", time.Second).Member("cart", api.StatusRunning, 1, "").Step("cart", 1, api.StepPassed, time.Second, "", nil)
	b.MemberSubstate("health", api.SubstateWaitingForPreceding)
	running := b.Run

	var out bytes.Buffer
	for _, r := range []*api.Run{finished, queued, running} {
		if err := WriteStatus(&out, r, reporttest.Now()); err != nil {
			t.Fatal(err)
		}
		out.WriteString("---\n")
	}
	golden(t, "status.golden", out.Bytes())

	for _, tt := range []struct {
		run  *api.Run
		want gate.Kind
	}{{finished, gate.Failed}, {queued, gate.TimedOut}, {running, gate.TimedOut}, {passingLog(t).Run, gate.Passed}} {
		if got := StatusKind(tt.run); got != tt.want {
			t.Errorf("StatusKind(%s) = %s, want %s", tt.run.Status, got, tt.want)
		}
	}
}

// TestStuckInitialWarning: a run still initial after the limit gets one warning.
func TestStuckInitialWarning(t *testing.T) {
	b := reporttest.NewBuilder(t, testRequest())
	rec := newRecording(t, b.Events, len(b.Events))
	h := newHarness(t, rec, time.Second)
	h.opts.StuckAfter = 30 * time.Millisecond
	h.opts.Timeout = 200 * time.Millisecond
	out := h.follow(t.Context())
	if !out.TimedOut {
		t.Error("not timed out")
	}
	if got := bytes.Count([]byte(h.output()), []byte("is still Initial after 30ms: the scheduler has not picked it up")); got != 1 {
		t.Errorf("%d warnings, want 1:\n%s", got, h.output())
	}
}
