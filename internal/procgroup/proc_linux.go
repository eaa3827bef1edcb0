//go:build linux

package procgroup

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// bootIDFile changes at every boot (random(4)): records from before a reboot
// name processes that no longer exist.
const bootIDFile = "/proc/sys/kernel/random/boot_id"

func bootID() string {
	b, err := os.ReadFile(bootIDFile)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// startTime is pid's start time from /proc (a zombie still has one).
func startTime(pid int) (uint64, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	st, err := parseStat(b)
	if err != nil {
		return 0, false
	}
	return st.Start, true
}

// scan maps every process group to its live members; ok is false where /proc
// cannot be read.
func scan() (map[int][]member, bool) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, false
	}
	groups := map[int][]member{}
	for _, e := range entries {
		name := e.Name()
		if name[0] < '0' || name[0] > '9' {
			continue
		}
		b, err := os.ReadFile("/proc/" + name + "/stat")
		if err != nil {
			continue // exited meanwhile
		}
		st, err := parseStat(b)
		if err != nil || st.Zombie {
			continue
		}
		groups[st.PGRP] = append(groups[st.PGRP], member{PID: st.PID, Start: st.Start})
	}
	return groups, true
}

func groupExists(pgid int) bool {
	return !errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH)
}

func killGroup(pgid int) { _ = syscall.Kill(-pgid, syscall.SIGKILL) }
