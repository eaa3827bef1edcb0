package engine

import "testing"

// TestFarBehind: beyond farPositions a queued run hears its new position
// only once its place has halved, so a deep queue costs each run
// log2(position/farPositions) updates, not one per second.
func TestFarBehind(t *testing.T) {
	tests := []struct {
		p, before int
		want      bool
	}{
		{p: 12, before: 14, want: false},     // within farPositions: the once-a-second rule decides
		{p: 100, before: 2000, want: false},  // at farPositions: told
		{p: 1999, before: 2000, want: true},  // moved up by one of 2,000
		{p: 1800, before: 2000, want: true},  // a tenth is not enough
		{p: 1001, before: 2000, want: true},  // not quite half
		{p: 1000, before: 2000, want: false}, // halved: told
		{p: 101, before: 201, want: true},    // 101 is more than half of 201
		{p: 101, before: 202, want: false},   // halved: told
		{p: 150, before: 120, want: false},   // moved back (never in FIFO): told
		{p: 500, before: 500, want: false},   // unchanged: nothing to tell anyway
	}
	for _, tt := range tests {
		if got := farBehind(tt.p, tt.before); got != tt.want {
			t.Errorf("farBehind(%d, %d) = %v, want %v", tt.p, tt.before, got, tt.want)
		}
	}
}
