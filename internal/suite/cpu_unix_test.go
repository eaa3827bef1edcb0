//go:build unix

package suite_test

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time (user + system, all threads) the process has used:
// on a shared machine it moves far less than wall time with the load of others.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
