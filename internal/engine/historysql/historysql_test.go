package historysql

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/api"
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

// recordingDB answers every query with no rows and records each statement.
type recordingDB struct{ execs []recordedExec }

type recordedExec struct {
	sql  string
	args int
}

type noRows struct{}

func (noRows) Next() bool        { return false }
func (noRows) Scan(...any) error { return nil }
func (noRows) Err() error        { return nil }
func (noRows) Close()            {}

func (d *recordingDB) Query(context.Context, string, ...any) (Rows, error) { return noRows{}, nil }
func (d *recordingDB) Exec(_ context.Context, q string, args ...any) error {
	d.execs = append(d.execs, recordedExec{q, len(args)})
	return nil
}

// A large run's summaries are written in statements of at most
// maxBoundParams parameters, every row in one of them, and SQLite's bind
// its parameters in order ("?"), not by number: the SQLite driver's binding
// costs a statement's parameters squared (a 2,000-member run took ~20 s).
func TestSummarizeBindsBoundedStatements(t *testing.T) {
	at := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	var recs []engine.HistoryRecord
	for i := range 1000 {
		recs = append(recs, engine.HistoryRecord{Tenant: "t", Project: "p", Environment: "e", Case: fmt.Sprintf("c%04d", i),
			Status: api.StatusPassed, Attempts: 1, RunID: "r", FinishedAt: at})
	}
	for _, d := range []struct {
		name string
		d    Dialect
	}{{"sqlite", SQLite}, {"postgres", Postgres}} {
		t.Run(d.name, func(t *testing.T) {
			db := &recordingDB{}
			if err := Summarize(context.Background(), db, d.d, "test", recs); err != nil {
				t.Fatal(err)
			}
			rows := map[string]int{}
			for _, x := range db.execs {
				if x.args > maxBoundParams {
					t.Errorf("a statement binds %d parameters, more than %d", x.args, maxBoundParams)
				}
				if d.d.InOrder != "" && strings.Contains(x.sql, "?1") {
					t.Errorf("a SQLite statement numbers its parameters: %.80s", x.sql)
				}
				switch {
				case strings.HasPrefix(x.sql, "INSERT INTO history_totals"):
					rows["totals"] += x.args / TotalsColumns
				case strings.HasPrefix(x.sql, "INSERT INTO history_last"):
					rows["last"] += x.args / LastColumns
				}
			}
			if rows["totals"] != len(recs) || rows["last"] != len(recs) {
				t.Errorf("rows written: %v, want %d of each", rows, len(recs))
			}
		})
	}
}
