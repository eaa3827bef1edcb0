package historysql

import (
	"testing"

	"github.com/zof-ai/zof-ci/internal/engine"
)

func TestDurationsRoundTrip(t *testing.T) {
	var h [engine.DurationBuckets]int64
	for i := range h {
		h[i] = int64(i * i * 1000)
	}
	var got [engine.DurationBuckets]int64
	if err := DecodeDurations(EncodeDurations(&h), &got); err != nil || got != h {
		t.Fatalf("round trip: %v, %v", got, err)
	}
	for _, bad := range []string{"1,2", "x", "1,,2", EncodeDurations(&h) + ",7"} {
		if err := DecodeDurations(bad, &got); err == nil {
			t.Errorf("DecodeDurations(%q) accepted", bad)
		}
	}
}

func TestSnapshotText(t *testing.T) {
	var runs, fails int64
	var hist [engine.DurationBuckets]int64
	hist[3] = 9
	if err := (snapshotText{ints: []*int64{&runs, &fails}}).Scan("12,3"); err != nil || runs != 12 || fails != 3 {
		t.Fatalf("Scan: %d %d %v", runs, fails, err)
	}
	var got [engine.DurationBuckets]int64
	if err := (snapshotText{ints: []*int64{&runs}, hist: &got}).Scan("5," + EncodeDurations(&hist)); err != nil || runs != 5 || got != hist {
		t.Fatalf("Scan with histogram: %d %v %v", runs, got, err)
	}
	runs = 0
	if err := (snapshotText{ints: []*int64{&runs}}).Scan(nil); err != nil || runs != 0 {
		t.Fatalf("NULL: %d %v", runs, err)
	}
}

// FuzzDecode: the stored texts are decoded without panicking, and what
// decodes re-encodes to the same text.
func FuzzDecode(f *testing.F) {
	var h [engine.DurationBuckets]int64
	h[1] = 7
	f.Add(EncodeDurations(&h))
	f.Add("1,2,3")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		var got [engine.DurationBuckets]int64
		if err := DecodeDurations(s, &got); err == nil && s != "" && EncodeDurations(&got) != s {
			// Leading zeros or '+' signs decode too; the numbers must agree.
			var again [engine.DurationBuckets]int64
			if DecodeDurations(EncodeDurations(&got), &again) != nil || again != got {
				t.Fatalf("%q decodes to %v, which does not round-trip", s, got)
			}
		}
		var a, b int64
		_ = (snapshotText{ints: []*int64{&a, &b}, hist: &got}).Scan(s)
	})
}
