//go:build unix

package step

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"syscall"
	"time"
)

// shell runs the user's command; /bin/sh -c is the contract of a run step.
const shell = "/bin/sh"

// groupPoll is how often a terminating process group is checked for exit.
const groupPoll = 10 * time.Millisecond

func signalGroup(pgid int, sig syscall.Signal) {
	if pgid > 0 {
		_ = syscall.Kill(-pgid, sig)
	}
}

// terminateGroup sends SIGTERM to the group, waits up to grace for every
// member to exit, then sends SIGKILL. It returns once the group is gone (or
// after a short wait past SIGKILL, for members stuck in the kernel).
func terminateGroup(pgid int, grace time.Duration) {
	if pgid <= 0 || !groupAlive(pgid) {
		return
	}
	signalGroup(pgid, syscall.SIGTERM)
	if waitGroup(pgid, grace) {
		return
	}
	signalGroup(pgid, syscall.SIGKILL)
	waitGroup(pgid, time.Second)
}

// killGroup sends SIGKILL at once (a command that already ended: its
// leftovers get no grace) and waits briefly for the group to go.
func killGroup(pgid int) {
	if pgid <= 0 || !groupAlive(pgid) {
		return
	}
	signalGroup(pgid, syscall.SIGKILL)
	waitGroup(pgid, time.Second)
}

func waitGroup(pgid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for groupAlive(pgid) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(groupPoll)
	}
	return true
}

// groupAlive reports whether a process of the group is still running.
// Zombies do not count: where PID 1 does not reap orphans (containers
// without an init), they would otherwise keep a dead group "alive".
func groupAlive(pgid int) bool {
	err := syscall.Kill(-pgid, 0)
	if errors.Is(err, syscall.ESRCH) {
		return false
	}
	alive, ok := procGroupAlive(pgid)
	if !ok {
		return true
	}
	return alive
}

// procGroupAlive scans /proc (Linux) for a non-zombie member of the group;
// ok is false where /proc is not available.
func procGroupAlive(pgid int) (alive, ok bool) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return false, false
	}
	want := []byte(strconv.Itoa(pgid))
	seen := false
	for _, e := range entries {
		name := e.Name()
		if name[0] < '0' || name[0] > '9' {
			continue
		}
		b, err := os.ReadFile("/proc/" + name + "/stat")
		if err != nil {
			continue
		}
		seen = true
		// pid (comm) state ppid pgrp ...; comm may hold spaces and parens.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := bytes.Fields(b[i+1:])
		if len(f) < 3 {
			continue
		}
		if bytes.Equal(f[2], want) && f[0][0] != 'Z' && f[0][0] != 'X' {
			return true, true
		}
	}
	return false, seen
}
