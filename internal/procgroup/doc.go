// Package procgroup starts process groups that die with the zof process that
// started them, and keeps a journal of the groups a zof serve has running so
// that its next start can kill whatever a crash left behind before runs
// resume (docs/serve.md, "Queue and restarts").
//
// Two mechanisms, because neither covers everything alone:
//
//   - Start puts a command in its own process group and, on Linux, asks the
//     kernel to SIGKILL it when the thread that forked it exits. Start forks
//     from one OS thread that is locked for the life of the process, so that
//     is exactly when the process dies (SIGKILL and OOM included). Only the
//     direct child gets the signal: whatever it forked stays in the group.
//   - A Journal records each started group (process group id, the leader's
//     start time, the boot id) in a directory before the step waits on it,
//     and removes the record once the group is gone. Sweep, run when the
//     next process opens the journal, kills every recorded group that still
//     has a member, after checking that the group is the recorded one and not
//     a reused id, and so takes the grandchildren too.
package procgroup
