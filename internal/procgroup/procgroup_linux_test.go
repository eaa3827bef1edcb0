//go:build linux

package procgroup

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain doubles as the helper process: with PROCGROUP_TEST_PIDS set, the
// test binary plays a zof serve that starts a step which forks, records its
// group in PROCGROUP_TEST_JOURNAL, and then waits to be killed.
func TestMain(m *testing.M) {
	if pids := os.Getenv("PROCGROUP_TEST_PIDS"); pids != "" {
		helper(pids, os.Getenv("PROCGROUP_TEST_JOURNAL"))
		return
	}
	os.Exit(m.Run())
}

func helper(pidFile, journal string) {
	j, err := Open(journal)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	// The step: a shell that forks a grandchild, then reports both pids.
	cmd := exec.Command("/bin/sh", "-c", `sleep 300 & echo $$ $! > "$0.tmp" && mv "$0.tmp" "$0"; wait`, pidFile)
	if err := Start(cmd); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if _, err := j.Record(cmd.Process.Pid); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	time.Sleep(time.Hour) // until SIGKILL (a bare select{} would be a detected deadlock)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(d); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("%s: not within %s", what, d)
		}
	}
}

// alive: the process exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	st, err := parseStat(b)
	return err == nil && !st.Zombie
}

// TestKilledParentLeavesNothingAfterSweep is issue 9 item 2 in small: the
// process that started a step is SIGKILLed. Its step's shell dies with it
// (parent-death signal); the grandchild, which no kernel mechanism reaches,
// is killed by the next process's Sweep of the journal.
func TestKilledParentLeavesNothingAfterSweep(t *testing.T) {
	dir := t.TempDir()
	pidFile, journal := filepath.Join(dir, "pids"), filepath.Join(dir, "journal")
	h := exec.Command(os.Args[0], "-test.run=^$")
	h.Env = append(os.Environ(), "PROCGROUP_TEST_PIDS="+pidFile, "PROCGROUP_TEST_JOURNAL="+journal)
	h.Stderr = os.Stderr
	if err := h.Start(); err != nil {
		t.Fatal(err)
	}
	var shell, grandchild int
	t.Cleanup(func() {
		_ = h.Process.Kill()
		if grandchild > 0 {
			_ = syscall.Kill(grandchild, syscall.SIGKILL)
		}
	})
	waitFor(t, "the step reports its pids", 30*time.Second, func() bool {
		b, err := os.ReadFile(pidFile)
		if err != nil {
			return false
		}
		_, err = fmt.Sscan(strings.TrimSpace(string(b)), &shell, &grandchild)
		return err == nil
	})
	if _, err := os.Stat(filepath.Join(journal, strconv.Itoa(shell))); err != nil {
		t.Fatalf("the group is not recorded: %v", err)
	}

	if err := h.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = h.Wait()
	waitFor(t, "the step's shell dies with its parent", 10*time.Second, func() bool { return !alive(shell) })
	if !alive(grandchild) {
		t.Fatal("the grandchild died too: then the sweep below proves nothing")
	}

	j, err := Open(journal) // the killed helper's lock went with it
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	s, err := j.Sweep(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Killed) != 1 || s.Killed[0] != shell || len(s.Stuck)+len(s.Unverified) != 0 {
		t.Fatalf("swept %+v, want group %d killed", s, shell)
	}
	if alive(grandchild) {
		t.Error("the grandchild survived the sweep")
	}
	if _, err := os.Stat(filepath.Join(journal, strconv.Itoa(shell))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the record is still there after the kill: %v", err)
	}
}

// TestSweepSparesReusedIDs: a record whose group id now belongs to another
// process (a different start time) is dropped, and that process lives.
func TestSweepSparesReusedIDs(t *testing.T) {
	dir := t.TempDir()
	other := exec.Command("sleep", "300")
	if err := Start(other); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = other.Process.Kill(); _ = other.Wait() }()
	start, ok := startTime(other.Process.Pid)
	if !ok {
		t.Fatal("no start time in /proc")
	}
	// What an earlier process with the same id would have recorded.
	stale := record{PGID: other.Process.Pid, Start: start - 1, Boot: bootID()}
	if err := os.WriteFile(filepath.Join(dir, strconv.Itoa(stale.PGID)), []byte(stale.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	j, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	s, err := j.Sweep(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if s.Stale != 1 || len(s.Killed) != 0 {
		t.Errorf("swept %+v, want one stale record and nothing killed", s)
	}
	if !alive(other.Process.Pid) {
		t.Error("the unrelated process was killed")
	}
}

// TestReleaseRemovesTheRecord: a group that ended normally leaves nothing
// for the next start.
func TestReleaseRemovesTheRecord(t *testing.T) {
	dir := t.TempDir()
	j, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	cmd := exec.Command("true")
	if err := Start(cmd); err != nil {
		t.Fatal(err)
	}
	release, err := j.Record(cmd.Process.Pid) // before Wait: the zombie still has its start time
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, strconv.Itoa(cmd.Process.Pid)))
	if err != nil {
		t.Fatal(err)
	}
	if r, err := parseRecord(b); err != nil || r.Start == 0 || r.Boot == "" {
		t.Errorf("record %+v, %v: want the leader's start time and the boot id", r, err)
	}
	_ = cmd.Wait()
	release()
	release() // idempotent
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != lockName {
		t.Errorf("left %v", entries)
	}
}
