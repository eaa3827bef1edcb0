//go:build !unix

package procgroup

import "os"

// lockFile: no advisory lock here; Sweep has nothing to kill on this OS anyway.
func lockFile(*os.File) error { return nil }
