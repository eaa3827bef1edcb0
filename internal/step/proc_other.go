//go:build !unix

package step

import "time"

// shell: run steps and services need a POSIX shell; on other systems the
// command fails to start with a clear error.
const shell = "/bin/sh"

// Without process groups only the leader can be stopped; the caller kills it
// through exec.Cmd.
func terminateGroup(pid int, grace time.Duration) {}

func killGroup(pid int) {}

// groupAlive: without process groups nothing outlives the leader we reaped.
func groupAlive(pgid int) bool { return false }
