//go:build unix

package step

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/eventually"
	"github.com/zof-ai/zof-ci/internal/procgroup"
	"github.com/zof-ai/zof-ci/internal/secret"
)

// TestMain doubles as a helper process for the service tests: with
// STEP_TEST_HELPER set, the test binary is a tiny service instead.
func TestMain(m *testing.M) {
	if mode := os.Getenv("STEP_TEST_HELPER"); mode != "" {
		helper(mode, os.Getenv("STEP_TEST_ADDR"))
		return
	}
	os.Exit(m.Run())
}

func helper(mode, addr string) {
	status := http.StatusOK
	if mode == "unhealthy" {
		status = http.StatusServiceUnavailable
	}
	fmt.Println("helper up, token=SECRET-TOKEN-1")
	l, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(status) }))
}

func cmdStep(command string) api.Step {
	return api.Step{Run: &api.Command{Command: command}}
}

func TestRunSteps(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("ZOF_STEP_TEST_LEAK", "leaked")
	ex := NewExecutor(ExecutorOptions{MaxOutput: 1000})
	in := Input{Dir: dir, Env: []string{"A=base", "B=base", "PATH=" + os.Getenv("PATH")}, Vars: map[string]string{"v": "V"}, Mask: secret.NewMasker([]string{"hunter2"})}
	tests := []struct {
		name    string
		step    api.Step
		failure *api.Failure
		output  []string // substrings of the output
	}{
		{"exit 0", cmdStep("echo hello"), nil, []string{"$ echo hello\nhello\nexit code 0 ("}},
		{"stdout and stderr combined", cmdStep("echo out; echo err >&2"), nil, []string{"out\nerr\n"}},
		{"exit 1 fails", cmdStep("echo nope; exit 1"), &api.Failure{Message: "exit code: expected 0, got 1", Expected: "0", Actual: "1"}, []string{"nope\nexit code 1 ("}},
		{"expected exit code", api.Step{Run: &api.Command{Command: "exit 3", ExitCode: 3}}, nil, nil},
		{"unexpected zero", api.Step{Run: &api.Command{Command: "true", ExitCode: 3}}, &api.Failure{Message: "exit code: expected 3, got 0", Expected: "3", Actual: "0"}, nil},
		{"killed by a signal", cmdStep("kill -9 $$"), &api.Failure{Message: "exit code: expected 0, got signal: killed", Expected: "0", Actual: "signal: killed"}, nil},
		{"env: base plus step, substituted", api.Step{Run: &api.Command{Command: `echo "$A $B $C"`, Env: map[string]string{"B": "step-${vars.v}", "C": "c"}}}, nil, []string{"base step-V c\n"}},
		{"zof's own environment is not inherited", cmdStep(`echo "[$ZOF_STEP_TEST_LEAK]"`), nil, []string{"[]\n"}},
		{"vars in the command", cmdStep("echo ${vars.v} ${HOME:-nohome}"), nil, []string{"\nV nohome\n"}},
		{"dir relative to the input dir", api.Step{Run: &api.Command{Command: "pwd", Dir: "sub"}}, nil, []string{filepath.Join(dir, "sub") + "\n"}},
		{"missing dir", api.Step{Run: &api.Command{Command: "pwd", Dir: "nope"}}, &api.Failure{
			Message: "working directory " + filepath.Join(dir, "nope") + " does not exist (dir: is relative to the suite file's directory)"}, nil},
		{"empty command", cmdStep("  "), &api.Failure{Message: "the run step has an empty command"}, nil},
		{"masked", cmdStep("echo pass=hunter2; exit 4"), &api.Failure{Message: "exit code: expected 0, got 4", Expected: "0", Actual: "4"}, []string{"pass=***"}},
		{"tail truncated", cmdStep(`i=0; while [ $i -lt 100 ]; do echo "line $i ........................................"; i=$((i+1)); done; echo END`), nil,
			[]string{"… (", " bytes truncated)\n", "line 99 ....", "END\nexit code 0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := ex.Run(context.Background(), tt.step, in)
			want := api.StepPassed
			if tt.failure != nil {
				want = api.StepFailed
			}
			if out.Status != want {
				t.Errorf("status %s, want %s (%v)\n%s", out.Status, want, out.Failure, out.Output)
			}
			if diff := cmp.Diff(tt.failure, out.Failure); diff != "" {
				t.Errorf("failure (-want +got):\n%s", diff)
			}
			for _, s := range tt.output {
				if !strings.Contains(out.Output, s) {
					t.Errorf("output lacks %q:\n%s", s, out.Output)
				}
			}
			if strings.Contains(out.Output, "hunter2") || strings.Contains(out.Output, "line 1 ...") {
				t.Errorf("output holds what it must not:\n%s", out.Output)
			}
			if len(out.Output) > 1200 {
				t.Errorf("output is %d bytes, limit 1000 plus notes", len(out.Output))
			}
		})
	}
}

// alive reports whether pid is a running process (zombies are dead: where
// PID 1 does not reap orphans they linger without running).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return syscall.Kill(pid, 0) == nil && !os.IsNotExist(err) && !strings.Contains(err.Error(), "no such")
	}
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	return f[0] != "Z" && f[0] != "X"
}

func readPIDs(t *testing.T, file string) []int {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		n, err := strconv.Atoi(f)
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, n)
	}
	return pids
}

func assertGone(t *testing.T, pids []int) {
	t.Helper()
	for _, p := range pids {
		if alive(p) {
			t.Errorf("process %d is still running", p)
			syscall.Kill(p, syscall.SIGKILL)
		}
	}
}

// stubborn ignores SIGTERM, forks children (which inherit the ignored
// TERM) and a grandchild, writes their pids, and waits forever.
func stubborn(pidFile string) string {
	return fmt.Sprintf(`trap '' TERM
echo $$ >> %[1]s
sleep 1000 & echo $! >> %[1]s
sh -c 'sleep 1000 & echo $! >> %[1]s; echo $$ >> %[1]s; wait' &
echo started
while [ $(wc -l < %[1]s) -lt 4 ]; do sleep 0.01; done
echo ready
wait`, pidFile)
}

func TestRunTimeoutLeavesNoProcess(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pids")
	ex := NewExecutor(ExecutorOptions{KillGrace: 100 * time.Millisecond})
	// 2s: on a loaded machine the four processes need well over 500ms to start
	// and write their pids, and the test is about what the timeout leaves.
	st := api.Step{Run: &api.Command{Command: stubborn(pidFile)}, Timeout: api.Duration(2 * time.Second)}
	start := time.Now()
	out := ex.Run(context.Background(), st, Input{Env: []string{"PATH=" + os.Getenv("PATH")}})
	took := time.Since(start)
	if out.Status != api.StepFailed || !strings.HasPrefix(out.Failure.Message, "timed out after 2s (the step's timeout)") ||
		!strings.Contains(out.Failure.Message, "the command was still running after") {
		t.Errorf("got %s %v", out.Status, out.Failure)
	}
	if !strings.Contains(out.Output, "started\nready\n") || !strings.Contains(out.Output, "(stopped after ") {
		t.Errorf("output:\n%s", out.Output)
	}
	if took > 5*time.Second {
		t.Errorf("Run took %s after a 2s timeout and 100ms grace", took)
	}
	pids := readPIDs(t, pidFile)
	if len(pids) != 4 {
		t.Fatalf("pids %v, want 4", pids)
	}
	assertGone(t, pids)
}

func TestRunCancelLeavesNoProcess(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pids")
	ex := NewExecutor(ExecutorOptions{KillGrace: 100 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		// Cancel once the four processes run (or the wait gave up: the test fails).
		eventually.Wait(t, 10*time.Second, func() bool {
			b, _ := os.ReadFile(pidFile)
			return strings.Count(string(b), "\n") >= 4
		}, "the four processes to write their pids")
		cancel()
	}()
	out := ex.Run(ctx, cmdStep(stubborn(pidFile)), Input{Env: []string{"PATH=" + os.Getenv("PATH")}})
	if out.Status != api.StepCancelled || out.Failure.Message != "cancelled" || out.Captures != nil {
		t.Errorf("got %s %v", out.Status, out.Failure)
	}
	assertGone(t, readPIDs(t, pidFile))
}

func TestRunBackgroundChildDoesNotHoldTheStep(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pids")
	ex := NewExecutor(ExecutorOptions{KillGrace: 100 * time.Millisecond})
	start := time.Now()
	// The background sleep keeps the output pipe open; the step ends with its shell anyway.
	out := ex.Run(context.Background(), cmdStep("sleep 1000 & echo $! > "+pidFile+"; echo done"), Input{Env: []string{"PATH=" + os.Getenv("PATH")}})
	if out.Status != api.StepPassed || !strings.Contains(out.Output, "done\nexit code 0") {
		t.Errorf("got %s %v\n%s", out.Status, out.Failure, out.Output)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("took %s", took)
	}
	assertGone(t, readPIDs(t, pidFile))
}

func TestRunEscapedChildCannotHoldTheStep(t *testing.T) {
	if _, err := os.Stat("/usr/bin/setsid"); err != nil {
		t.Skip("no setsid")
	}
	pidFile := filepath.Join(t.TempDir(), "pids")
	ex := NewExecutor(ExecutorOptions{KillGrace: 100 * time.Millisecond})
	start := time.Now()
	out := ex.Run(context.Background(), cmdStep("setsid sleep 1000 & echo $! > "+pidFile+"; echo done"), Input{Env: []string{"PATH=" + os.Getenv("PATH")}})
	for _, p := range readPIDs(t, pidFile) {
		syscall.Kill(p, syscall.SIGKILL) // it left the group; zof cannot see it, the test cleans up
	}
	if out.Status != api.StepPassed {
		t.Errorf("got %s %v", out.Status, out.Failure)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("took %s: a process outside the group held the step", took)
	}
}

func TestTailBuffer(t *testing.T) {
	tb := newTailBuffer(10)
	for _, s := range []string{"0123456789", "abcdefghij", "XY"} {
		tb.Write([]byte(s))
	}
	if got, want := tb.String(nil), "… (12 bytes truncated)\ncdefghijXY"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	small := newTailBuffer(100)
	small.Write([]byte("short"))
	if got := small.String(nil); got != "short" {
		t.Errorf("got %q", got)
	}
	// A secret straddling the cut is masked before the cut, not half-shown.
	m := secret.NewMasker([]string{"SECRET"})
	sb := newTailBuffer(8)
	sb.Write([]byte("xxxxSECRETyyyyy"))
	if got := sb.String(m); strings.Contains(got, "RET") || !strings.HasSuffix(got, "**yyyyy") {
		t.Errorf("got %q", got)
	}
}

// BenchmarkRunStep is a trivial command: the cost of a shell, a process
// group and the group clean-up per run step.
func BenchmarkRunStep(b *testing.B) {
	ex := NewExecutor(ExecutorOptions{})
	in := Input{Env: []string{"PATH=" + os.Getenv("PATH")}}
	for b.Loop() {
		if out := ex.Run(context.Background(), cmdStep("echo hi"), in); out.Status != api.StepPassed {
			b.Fatal(out.Failure)
		}
	}
}

// fakeGroups is a GroupRecorder that remembers what it was told.
type fakeGroups struct {
	mu       sync.Mutex
	recorded []int
	released []int
	err      error
}

var _ GroupRecorder = (*fakeGroups)(nil)

func (f *fakeGroups) Record(pgid int) (func(), error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.recorded = append(f.recorded, pgid)
	if f.err != nil {
		return nil, f.err
	}
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if groupAlive(pgid) {
			panic(fmt.Sprintf("group %d released while alive", pgid))
		}
		f.released = append(f.released, pgid)
	}, nil
}

func TestRunStepGroupIsRecordedUntilGone(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pids")
	groups := &fakeGroups{}
	ex := NewExecutor(ExecutorOptions{KillGrace: 100 * time.Millisecond, Groups: groups})
	// The shell's own pid is its group id; its background child outlives it until the clean-up.
	out := ex.Run(context.Background(), cmdStep("echo $$ > "+pidFile+"; sleep 1000 & echo ok"), Input{Env: []string{"PATH=" + os.Getenv("PATH")}})
	if out.Status != api.StepPassed {
		t.Fatalf("got %s %v\n%s", out.Status, out.Failure, out.Output)
	}
	pids := readPIDs(t, pidFile)
	if len(pids) != 1 {
		t.Fatalf("pids %v", pids)
	}
	if diff := cmp.Diff([]int{pids[0]}, groups.recorded); diff != "" {
		t.Errorf("recorded (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int{pids[0]}, groups.released); diff != "" {
		t.Errorf("released (-want +got):\n%s", diff)
	}
}

func TestRunStepUnrecordableGroupIsStopped(t *testing.T) {
	dir := t.TempDir()
	groups := &fakeGroups{err: fmt.Errorf("recording process group: disk full")}
	ex := NewExecutor(ExecutorOptions{Groups: groups})
	out := ex.Run(context.Background(), cmdStep("sleep 1000 & sleep 1000"), Input{Dir: dir, Env: []string{"PATH=" + os.Getenv("PATH")}})
	if out.Status != api.StepFailed || !strings.Contains(out.Failure.Message, "disk full; the command was stopped") {
		t.Fatalf("got %s %v", out.Status, out.Failure)
	}
	if len(groups.recorded) != 1 {
		t.Fatalf("recorded %v", groups.recorded)
	}
	// A group nobody could find after a crash must not run on.
	if pgid := groups.recorded[0]; groupAlive(pgid) {
		signalGroup(pgid, syscall.SIGKILL)
		t.Errorf("group %d still runs", pgid)
	}
}

// BenchmarkRunStepRecorded is BenchmarkRunStep with zof serve's journal: the
// extra cost of recording the group in a file and removing the record.
func BenchmarkRunStepRecorded(b *testing.B) {
	j, err := procgroup.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	ex := NewExecutor(ExecutorOptions{Groups: j})
	in := Input{Env: []string{"PATH=" + os.Getenv("PATH")}}
	for b.Loop() {
		if out := ex.Run(context.Background(), cmdStep("echo hi"), in); out.Status != api.StepPassed {
			b.Fatal(out.Failure)
		}
	}
}
