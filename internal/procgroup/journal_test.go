package procgroup

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestRecordRoundTrip(t *testing.T) {
	for _, r := range []record{
		{PGID: 1, Start: 0, Boot: ""},
		{PGID: 4194304, Start: 123456789, Boot: "8f1c6a7e-3b2d-4c1e-9a0b-5d6e7f809a1b"},
	} {
		got, err := parseRecord([]byte(r.String()))
		if err != nil || got != r {
			t.Errorf("parseRecord(%q) = %+v, %v; want %+v", r.String(), got, err, r)
		}
	}
}

func TestParseRecordRejects(t *testing.T) {
	for _, in := range []string{
		"",
		"zof-procgroup-v1 12 34 boot",      // torn: no newline
		"zof-procgroup-v2 12 34 boot\n",    // unknown version
		"zof-procgroup-v1 0 34 boot\n",     // not a group id
		"zof-procgroup-v1 -5 34 boot\n",    // not a group id
		"zof-procgroup-v1 12 x boot\n",     // bad start time
		"zof-procgroup-v1 12 34\n",         // missing field
		"zof-procgroup-v1 12 34 b extra\n", // extra field
	} {
		if r, err := parseRecord([]byte(in)); err == nil {
			t.Errorf("parseRecord(%q) = %+v, want an error", in, r)
		}
	}
}

func FuzzParseRecord(f *testing.F) {
	f.Add([]byte("zof-procgroup-v1 12 34 boot\n"))
	f.Add([]byte("zof-procgroup-v1 12 0 -\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseRecord(b)
		if err != nil {
			return
		}
		if r.PGID <= 0 {
			t.Fatalf("accepted group id %d", r.PGID)
		}
		again, err := parseRecord([]byte(r.String()))
		if err != nil || again != r {
			t.Fatalf("%+v does not round-trip: %+v, %v", r, again, err)
		}
	})
}

func TestParseStat(t *testing.T) {
	// Fields 1-22 of proc(5); comm with spaces and parentheses.
	line := "4242 (a (b) c) S 1 4240 4240 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 100 0\n"
	got, err := parseStat([]byte(line))
	want := procStat{PID: 4242, State: 'S', PGRP: 4240, Start: 987654}
	if err != nil || got != want {
		t.Errorf("parseStat = %+v, %v; want %+v", got, err, want)
	}
	z, err := parseStat([]byte(strings.Replace(line, ") S ", ") Z ", 1)))
	if err != nil || !z.Zombie {
		t.Errorf("zombie: %+v, %v", z, err)
	}
	for _, bad := range []string{"", "4242 (x) S 1 2\n", "x (y) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20\n", "(x) S"} {
		if st, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("parseStat(%q) = %+v, want an error", bad, st)
		}
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte("4242 (a (b) c) S 1 4240 4240 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000\n"))
	f.Add([]byte("1 (init) S 0 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := parseStat(b)
		if err == nil && st.PID <= 0 {
			t.Fatalf("accepted pid %d", st.PID)
		}
	})
}

func TestVerdict(t *testing.T) {
	const boot = "boot-a"
	rec := record{PGID: 100, Start: 5000, Boot: boot}
	tests := []struct {
		name       string
		rec        record
		groups     map[int][]member
		verifiable bool
		want       judgement
	}{
		{"leader alive with the recorded start", rec, map[int][]member{100: {{100, 5000}, {101, 5001}}}, true, ours},
		{"leader gone, grandchildren started after it", rec, map[int][]member{100: {{101, 5001}, {102, 6000}}}, true, ours},
		{"no member left", rec, map[int][]member{7: {{7, 1}}}, true, gone},
		{"id reused by another leader", rec, map[int][]member{100: {{100, 9000}}}, true, gone},
		{"a member older than the recorded leader", rec, map[int][]member{100: {{101, 4000}}}, true, gone},
		{"recorded before a reboot", record{PGID: 100, Start: 5000, Boot: "boot-b"}, map[int][]member{100: {{100, 5000}}}, true, gone},
		{"no start time was recorded", record{PGID: 100, Boot: boot}, map[int][]member{100: {{100, 5000}}}, true, unverified},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := verdict(tt.rec, boot, tt.groups, tt.verifiable); got != tt.want {
				t.Errorf("verdict = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestOpenIsExclusive(t *testing.T) {
	dir := t.TempDir()
	j, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if j2, err := Open(dir); !errors.Is(err, ErrInUse) {
		if j2 != nil {
			j2.Close()
		}
		t.Fatalf("second Open: %v, want ErrInUse", err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j3, err := Open(dir)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	j3.Close()
}

func TestSweepDropsBrokenAndTornRecords(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"123.tmp": "zof-procgroup-v1 123 1 b\n", // the writer died before the rename
		"456":     "garbage",                    // not a record
		"789":     "zof-procgroup-v1 788 1 b\n", // names another group than its file
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	j, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	s, err := j.Sweep(0)
	if err != nil {
		t.Fatal(err)
	}
	if s.Stale != 2 || len(s.Killed)+len(s.Unverified)+len(s.Stuck) != 0 {
		t.Errorf("swept %+v", s)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != lockName {
		t.Errorf("left %v", entries)
	}
}

// BenchmarkRecordRelease is the journal's cost per started group: write a
// record, rename it into place, remove it.
func BenchmarkRecordRelease(b *testing.B) {
	j, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	pid := os.Getpid()
	for b.Loop() {
		release, err := j.Record(pid)
		if err != nil {
			b.Fatal(err)
		}
		release()
	}
}

// BenchmarkSweep1000 is a start after a crash that left 1,000 records whose
// groups are gone: the cost grows with records plus one /proc scan.
func BenchmarkSweep1000(b *testing.B) {
	dir := b.TempDir()
	for b.Loop() {
		b.StopTimer()
		for i := range 1000 {
			r := record{PGID: 1<<22 + i, Start: 1, Boot: bootID()} // ids above Linux's pid_max: never live
			if err := os.WriteFile(filepath.Join(dir, strconv.Itoa(r.PGID)), []byte(r.String()), 0o600); err != nil {
				b.Fatal(err)
			}
		}
		j, err := Open(dir)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		s, err := j.Sweep(time.Second)
		b.StopTimer()
		j.Close()
		if err != nil || s.Stale != 1000 {
			b.Fatalf("swept %+v, %v", s, err)
		}
		b.StartTimer()
	}
}
