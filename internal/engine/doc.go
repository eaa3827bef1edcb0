// Package engine schedules and executes runs and keeps their event logs.
//
// Every change to a run is an api.Event appended to the run's log (seq 1 is
// run.created with the initial snapshot); the snapshot is the fold of the log.
// An event is folded into the member it touches (found by id through an
// index) and one Store.Append stores a batch of events with the run's head
// and the members they changed, so an event costs the same in a run of 10
// members as in one of 50,000. Every status
// change passes one gate (transition / checkedApply), so only the lifecycle's
// edges ever happen. Free text (outputs, failures, reasons, log lines) is
// masked with the run's secrets before it enters an event.
//
// Choices the run lifecycle leaves open:
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
//   - When Run's context ends, running runs are cancelled (services stopped)
//     and initial and queued runs are cancelled too, unless LeaveQueuedOnStop
//     (zof serve): then nothing more is recorded for any unfinished run (the
//     in-flight steps are stopped, the services stopped, followers end with
//     ErrStopped) and the next Run on the store takes them all up again.
//
// Restart (a new process on the same store, after a stop or a crash):
//
//   - Initial and queued runs are queued again in their creation order (the
//     store's Order), ahead of anything created later.
//   - A run found running is resumed, not repeated: finished members keep
//     their results and are never run again; unfinished ones run again from
//     their first step, as a new attempt. A member whose interrupted attempt
//     had already completed gets that outcome without running (every step
//     passed: passed; a step failed: retried within the case's retries, else
//     failed). Otherwise the in-flight step is marked cancelled ("interrupted:
//     the run engine restarted during this step"), the steps not reached
//     skipped, and the member runs from step 1 with Attempt+1; members not
//     started yet start at attempt 1. An interrupted attempt is not a failure:
//     it does not count against retries nor make the member flaky (the
//     engine counts interruptions from the log; api.Run.Apply still lists the
//     attempt in FailedAttempts, as "attempt N failed"). The environment's serve is started again (unless no member is left to
//     run), the run keeps its tenant slot and exclusive environment, and its
//     log carries a line saying what resumes; the engine logs it too (slog,
//     with members_rerun and members_kept). Steps therefore have
//     at-least-once semantics across a crash: a step in flight when the
//     process died runs again.
//   - Unless a cancel had been requested (Cancel of a running run records a
//     "cancel requested" log line first): then the cancel is finished instead
//     — in-flight steps cancelled, steps not reached skipped, unfinished
//     members cancelled, the run ends with its members' aggregate and the
//     cancel's reason — and nothing runs.
//   - A follower resumes with Subscribe(after = the last seq it saw) and
//     gets exactly the later events; subscribing before Run has loaded the
//     run waits for it.
//
// More than one engine on one store: with a store that is a Cluster
// (PostgreSQL) no engine starts a run from memory. A run starts by a claim
// in the store, one transaction that keeps the tenant limit, exclusive
// environments and FIFO order exact across engines; the claiming engine
// holds the run under a lease it renews, and every append it makes is
// fenced by that lease. A run whose lease expired is taken over by another
// engine and resumed under the Restart rules above. One engine at a time
// (the leader lease) writes the waiting runs' queue positions and blocks,
// and reports stuck runs. Followers and cancels work from any engine: the
// store's log is the truth and its notifications wake them (cluster.go;
// docs/design-postgres.md).
package engine
