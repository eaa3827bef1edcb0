package memstore

import (
	"testing"

	"github.com/zof-ai/zof-ci/api"
)

// The log keeps the appended slices and reads any range of them in order,
// across batches of any size.
func TestEventLogRanges(t *testing.T) {
	var l eventLog
	seq := int64(0)
	for _, size := range []int{1, 3, 1, 2, 5, 1} {
		evs := make([]api.Event, size)
		for i := range evs {
			seq++
			evs[i].Seq = seq
		}
		l.append(evs)
	}
	l.append(nil)
	if l.n != int(seq) {
		t.Fatalf("n = %d, want %d", l.n, seq)
	}
	for from := 0; from <= l.n; from++ {
		for to := from; to <= l.n; to++ {
			var got []int64
			l.each(from, to, func(ev api.Event) { got = append(got, ev.Seq) })
			if len(got) != to-from {
				t.Fatalf("each(%d, %d) gave %d events, want %d", from, to, len(got), to-from)
			}
			for i, s := range got {
				if s != int64(from+i+1) {
					t.Fatalf("each(%d, %d) = %v", from, to, got)
				}
			}
		}
	}
}
