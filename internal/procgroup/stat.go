package procgroup

import (
	"bytes"
	"errors"
	"strconv"
)

// procStat is what Sweep needs from /proc/PID/stat (proc(5)).
type procStat struct {
	PID    int
	State  byte
	PGRP   int
	Start  uint64 // field 22, starttime: clock ticks after boot
	Zombie bool
}

var errStat = errors.New("not a /proc/PID/stat line")

// parseStat reads "pid (comm) state ppid pgrp ... starttime ..."; comm may
// hold spaces and parentheses, so the fields start after the last ')'.
func parseStat(b []byte) (procStat, error) {
	open := bytes.IndexByte(b, '(')
	end := bytes.LastIndexByte(b, ')')
	if open < 1 || end < open {
		return procStat{}, errStat
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b[:open])))
	if err != nil || pid <= 0 {
		return procStat{}, errStat
	}
	f := bytes.Fields(b[end+1:])
	// f[0] is field 3 (state), so field n is f[n-3].
	if len(f) < 20 || len(f[0]) != 1 {
		return procStat{}, errStat
	}
	pgrp, err := strconv.Atoi(string(f[2]))
	if err != nil {
		return procStat{}, errStat
	}
	start, err := strconv.ParseUint(string(f[19]), 10, 64)
	if err != nil {
		return procStat{}, errStat
	}
	st := f[0][0]
	return procStat{PID: pid, State: st, PGRP: pgrp, Start: start, Zombie: st == 'Z' || st == 'X'}, nil
}
