//go:build !unix

package suite_test

import "time"

// cpuTime is not measured here; benchmarks then report no cpu-ns/op.
func cpuTime() time.Duration { return 0 }
