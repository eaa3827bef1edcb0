package procgroup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	// lockName is the file a live Journal holds an exclusive lock on: a second
	// process on the same directory would otherwise take the first one's live
	// groups for leftovers and kill them.
	lockName = ".lock"
	// tmpSuffix marks a record being written; renamed into place when whole.
	tmpSuffix = ".tmp"
	// recordVersion starts every record, so a later format can tell old ones.
	recordVersion = "zof-procgroup-v1"
	// sweepPoll is how often Sweep checks that killed groups are gone.
	sweepPoll = 10 * time.Millisecond
)

// ErrInUse: another live process holds the journal.
var ErrInUse = errors.New("another live process holds the process-group journal")

// Journal records the process groups this process started, one file per
// group in its directory. Records are not fsynced: they only matter while the
// machine keeps running (after a reboot every recorded process is gone, which
// the boot id tells), and the page cache outlives a killed process.
type Journal struct {
	dir  string
	lock *os.File
	boot string
}

// Open creates dir if needed and takes the journal for this process; it fails
// with ErrInUse while another process has it open.
func Open(dir string) (*Journal, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("process-group journal %s: %w", dir, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("process-group journal %s: %w", dir, err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("process-group journal %s: %w", dir, err)
	}
	return &Journal{dir: dir, lock: f, boot: bootID()}, nil
}

// Close releases the journal (its records stay for the next Open's Sweep).
func (j *Journal) Close() error { return j.lock.Close() }

// Record notes that the group pgid was started. Call it after the leader is
// started and before it is waited for (the leader, even exited, is then still
// in /proc with its start time). release removes the record; call it once
// the whole group is gone, and not before.
func (j *Journal) Record(pgid int) (release func(), err error) {
	if pgid <= 0 {
		return nil, fmt.Errorf("recording process group %d: not a process group id", pgid)
	}
	start, _ := startTime(pgid)
	r := record{PGID: pgid, Start: start, Boot: j.boot}
	name := filepath.Join(j.dir, strconv.Itoa(pgid))
	if err := os.WriteFile(name+tmpSuffix, []byte(r.String()), 0o600); err != nil {
		return nil, fmt.Errorf("recording process group %d in %s: %w; check the data directory is writable", pgid, j.dir, err)
	}
	if err := os.Rename(name+tmpSuffix, name); err != nil {
		_ = os.Remove(name + tmpSuffix)
		return nil, fmt.Errorf("recording process group %d in %s: %w; check the data directory is writable", pgid, j.dir, err)
	}
	return sync.OnceFunc(func() { _ = os.Remove(name) }), nil
}

// Swept is what Sweep found.
type Swept struct {
	Killed     []int // groups a previous process left running, killed now
	Unverified []int // groups that exist but cannot be confirmed as the recorded ones on this OS: left alone
	Stuck      []int // killed, but a member was still there after the wait; their records are kept
	Stale      int   // records of groups already gone (or reused ids, or another boot), removed
}

// Sweep kills, with SIGKILL, every recorded group that still has a live
// member and is verifiably the recorded one: the leader, if still there, has
// the recorded start time, and otherwise no member started before it. It
// waits up to wait for them to go, then removes their records. Call it right
// after Open, before anything is started.
func (j *Journal) Sweep(wait time.Duration) (Swept, error) {
	var s Swept
	entries, err := os.ReadDir(j.dir)
	if err != nil {
		return s, fmt.Errorf("reading the process-group journal %s: %w", j.dir, err)
	}
	var recs []record
	for _, e := range entries {
		name := e.Name()
		path := filepath.Join(j.dir, name)
		switch {
		case name == lockName:
			continue
		case strings.HasSuffix(name, tmpSuffix):
			// Never renamed into place: the writer died mid-record.
			_ = os.Remove(path)
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return s, fmt.Errorf("reading the process-group journal: %w", err)
		}
		r, err := parseRecord(b)
		if err != nil || strconv.Itoa(r.PGID) != name {
			_ = os.Remove(path) // not ours to act on
			s.Stale++
			continue
		}
		recs = append(recs, r)
	}
	if len(recs) == 0 {
		return s, nil
	}
	groups, verifiable := scan()
	var killed []record
	for _, r := range recs {
		switch verdict(r, j.boot, groups, verifiable) {
		case gone:
			s.Stale++
			_ = os.Remove(filepath.Join(j.dir, strconv.Itoa(r.PGID)))
		case unverified:
			s.Unverified = append(s.Unverified, r.PGID)
			_ = os.Remove(filepath.Join(j.dir, strconv.Itoa(r.PGID)))
		case ours:
			killGroup(r.PGID)
			killed = append(killed, r)
		}
	}
	deadline := time.Now().Add(wait)
	for len(killed) > 0 {
		groups, _ = scan()
		left := killed[:0]
		for _, r := range killed {
			if len(groups[r.PGID]) == 0 {
				s.Killed = append(s.Killed, r.PGID)
				_ = os.Remove(filepath.Join(j.dir, strconv.Itoa(r.PGID)))
			} else {
				left = append(left, r)
			}
		}
		killed = left
		if len(killed) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(sweepPoll)
	}
	for _, r := range killed {
		s.Stuck = append(s.Stuck, r.PGID)
	}
	slices.Sort(s.Killed)
	slices.Sort(s.Unverified)
	slices.Sort(s.Stuck)
	return s, nil
}

type judgement int

const (
	gone judgement = iota
	unverified
	ours
)

// verdict decides what a record's group is now. groups holds the live (not
// zombie) members of every process group; verifiable is false where the OS
// gives no start times, and then only existence is known.
func verdict(r record, boot string, groups map[int][]member, verifiable bool) judgement {
	if r.Boot != "" && boot != "" && r.Boot != boot {
		return gone // recorded before a reboot
	}
	if !verifiable {
		if groupExists(r.PGID) {
			return unverified
		}
		return gone
	}
	members := groups[r.PGID]
	if len(members) == 0 {
		return gone
	}
	if r.Start == 0 {
		return unverified
	}
	for _, m := range members {
		if m.PID == r.PGID {
			if m.Start == r.Start {
				return ours
			}
			return gone // the id now leads another group
		}
	}
	// The leader is gone (on Linux it got SIGKILL with its parent); the id
	// cannot be reused while members remain, and the group's members all
	// started after its leader.
	for _, m := range members {
		if m.Start < r.Start {
			return gone
		}
	}
	return ours
}

// member is a live process of a group and its start time (clock ticks since boot).
type member struct {
	PID   int
	Start uint64
}

// record is one journal file: "zof-procgroup-v1 PGID START BOOTID\n"; START
// is 0 and BOOTID "-" where the OS does not give them.
type record struct {
	PGID  int
	Start uint64
	Boot  string
}

func (r record) String() string {
	boot := r.Boot
	if boot == "" {
		boot = "-"
	}
	return fmt.Sprintf("%s %d %d %s\n", recordVersion, r.PGID, r.Start, boot)
}

func parseRecord(b []byte) (record, error) {
	f := strings.Fields(string(b))
	if len(f) != 4 || f[0] != recordVersion || !strings.HasSuffix(string(b), "\n") {
		return record{}, fmt.Errorf("not a %s record: %q", recordVersion, b)
	}
	pgid, err := strconv.Atoi(f[1])
	if err != nil || pgid <= 0 {
		return record{}, fmt.Errorf("bad process group id %q", f[1])
	}
	start, err := strconv.ParseUint(f[2], 10, 64)
	if err != nil {
		return record{}, fmt.Errorf("bad start time %q", f[2])
	}
	boot := f[3]
	if boot == "-" {
		boot = ""
	}
	return record{PGID: pgid, Start: start, Boot: boot}, nil
}
