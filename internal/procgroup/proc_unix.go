//go:build unix && !linux

package procgroup

import (
	"errors"
	"syscall"
)

// Without /proc there is no portable start time to tell a recorded group
// from a reused id, so Sweep reports such groups instead of killing them.
func bootID() string                 { return "" }
func startTime(int) (uint64, bool)   { return 0, false }
func scan() (map[int][]member, bool) { return nil, false }
func killGroup(pgid int)             { _ = syscall.Kill(-pgid, syscall.SIGKILL) }
func groupExists(pgid int) bool      { return !errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH) }
