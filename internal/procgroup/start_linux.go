//go:build linux

package procgroup

import (
	"os/exec"
	"runtime"
	"sync"
	"syscall"
)

// DiesWithParent says whether Start ties the group's leader to this process.
const DiesWithParent = true

// starter forks every group from one goroutine locked to its OS thread for
// the life of the process: Linux delivers the parent-death signal when the
// forking *thread* exits, and a locked thread that never unlocks exits only
// with the process.
var starter struct {
	once sync.Once
	reqs chan startReq
}

type startReq struct {
	cmd  *exec.Cmd
	done chan error
}

// Start starts cmd as the leader of a new process group that receives
// SIGKILL if this process dies first (prctl PR_SET_PDEATHSIG; Go's fork
// also checks that the parent did not die before the call took effect).
func Start(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	starter.once.Do(func() {
		starter.reqs = make(chan startReq)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread lives as long as the process
			for r := range starter.reqs {
				r.done <- r.cmd.Start()
			}
		}()
	})
	done := make(chan error, 1)
	starter.reqs <- startReq{cmd: cmd, done: done}
	return <-done
}
