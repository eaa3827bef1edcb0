//go:build unix && !linux

package procgroup

import (
	"os/exec"
	"syscall"
)

// DiesWithParent says whether Start ties the group's leader to this process:
// not on this OS, where only the journal's sweep at the next start helps.
const DiesWithParent = false

// Start starts cmd as the leader of a new process group.
func Start(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	return cmd.Start()
}
