// Package engine schedules and executes runs and keeps their event logs (shared/spec/lifecycle.md).
//
// Every change to a run is an api.Event appended to the run's log (seq 1 is
// run.created with the initial snapshot); the snapshot is the fold of the log
// and is stored with each batch of events in one Store.Append. Every status
// change passes one gate (transition / checkedApply), so only the lifecycle's
// edges ever happen. Free text (outputs, failures, reasons, log lines) is
// masked with the run's secrets before it enters an event.
//
// Choices where lifecycle.md is silent:
//
//   - Scheduling: waiting runs are considered oldest first (store Order). A run
//     starts when its tenant is under max_concurrent_runs and its environment,
//     if exclusive, is free (held only by a running run of the same tenant,
//     project and environment). A run that cannot start keeps its place and
//     does not hold back later runs that can: FIFO applies among eligible runs.
//     Queue positions count the tenant's waiting runs, 1-based, in creation order.
//   - block_after counts from when the run first found its environment held and
//     resets only when the environment is free for it; the reason names the
//     holder at the moment of blocking. A blocked run's members are blocked.
//   - Supersede cancels older non-terminal runs of the same tenant and group; a
//     rerun never supersedes.
//   - A failing serve start fails every member (each goes running → failed with
//     the reason, steps skipped), so the run is failed; nothing is executed and
//     there is nothing to stop. The service is stopped after the last member
//     whatever the outcome, before the run's terminal event.
//   - Members of a sequential set form one unit that takes one parallel slot and
//     runs its members in set order; the unit is placed where its first member
//     is declared. A failing member does not stop the ones after it.
//   - The case timeout bounds each attempt; a retry gets a fresh one. A step
//     ended by a case or step timeout is failed with a message naming it.
//     Steps after a failed or cancelled step are skipped.
//   - A cancelled run takes its members' aggregate like any other: it ends
//     failed when a member had already failed, else cancelled; the reason keeps
//     the cancel reason. A step that ignores its cancelled context is abandoned
//     after Config.CancelGrace so the run still ends within CancelWithin.
//   - When Run's context ends, running runs are cancelled (services stopped);
//     initial and queued runs are cancelled too unless LeaveQueuedOnStop, in
//     which case the next Run resumes them. A run found running at start (the
//     process died) is ended as cancelled: its steps and service died with the
//     old process and executing it again could repeat side effects.
package engine
