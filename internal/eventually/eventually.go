// Package eventually is the one way tests wait for a condition that no event
// announces: poll it, boundedly. A test that can wait on a channel or a
// returned value should; this is for state seen only from outside (a file
// growing, a log line, a server's status).
package eventually

import (
	"fmt"
	"time"
)

// Polling intervals: the first check is immediate, then the pause doubles
// from minPause to maxPause, so a condition that holds soon is seen soon and
// one that takes a while costs few checks.
const (
	minPause = time.Millisecond
	maxPause = 50 * time.Millisecond
)

// T is what Wait needs of a *testing.T (or testing.TB).
type T interface {
	Helper()
	Errorf(format string, args ...any)
}

// Wait calls cond until it returns true, or until timeout has passed. On
// timeout it reports `waiting for WHAT: not within TIMEOUT` with t.Errorf and
// returns false. It never calls t.FailNow, so it is safe in goroutines other
// than the test's: a waiting goroutine gives up and the test fails at its end.
// The test's own goroutine stops with `if !eventually.Wait(...) { t.FailNow() }`
// (or use Must).
func Wait(t T, timeout time.Duration, cond func() bool, what string) bool {
	t.Helper()
	deadline := time.Now().Add(timeout)
	pause := minPause
	for !cond() {
		left := time.Until(deadline)
		if left <= 0 {
			t.Errorf("%s", timeoutMessage(what, timeout))
			return false
		}
		time.Sleep(min(pause, left))
		pause = min(2*pause, maxPause)
	}
	return true
}

// FatalT is a T that can stop the test (a *testing.T or testing.TB).
type FatalT interface {
	T
	FailNow()
}

// Must is Wait that stops the test on timeout; call it only from the test's
// own goroutine (t.FailNow's rule).
func Must(t FatalT, timeout time.Duration, cond func() bool, what string) {
	t.Helper()
	if !Wait(t, timeout, cond, what) {
		t.FailNow()
	}
}

func timeoutMessage(what string, timeout time.Duration) string {
	return fmt.Sprintf("waiting for %s: not within %s", what, timeout)
}
