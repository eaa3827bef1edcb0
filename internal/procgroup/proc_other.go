//go:build !unix

package procgroup

// No process groups on this OS: nothing is recorded that Sweep could act on.
func bootID() string                 { return "" }
func startTime(int) (uint64, bool)   { return 0, false }
func scan() (map[int][]member, bool) { return nil, false }
func killGroup(int)                  {}
func groupExists(int) bool           { return false }
