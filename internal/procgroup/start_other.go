//go:build !unix

package procgroup

import "os/exec"

// DiesWithParent says whether Start ties the group's leader to this process:
// not on this OS.
const DiesWithParent = false

// Start starts cmd; this OS has no process groups to put it in.
func Start(cmd *exec.Cmd) error { return cmd.Start() }
