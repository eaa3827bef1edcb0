package step

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/procgroup"
)

// drainWait bounds reading the rest of a command's output once its process
// group is gone; only a process that left the group (setsid) can hold the
// pipe open longer, and it must not hold the step.
const drainWait = 500 * time.Millisecond

// GroupRecorder keeps a durable note of every process group a step or a
// service starts until the group is gone, so that the next start of the
// process can kill what a crash left running (procgroup.Journal in zof serve).
type GroupRecorder interface {
	// Record is called once the group's leader is started and before it is
	// waited for; release is called once no member of the group is left.
	Record(pgid int) (release func(), err error)
}

func (e *Executor) runCommand(ctx context.Context, s api.Step, in Input, sub *substituter) result {
	c := s.Run
	command := sub.str(c.Command)
	dir := sub.str(c.Dir)
	stepEnv := sub.strMap(c.Env)
	if sub.err != nil {
		return failed(sub.err.Error())
	}
	if strings.TrimSpace(command) == "" {
		return failed("the run step has an empty command")
	}
	wd, err := workDir(in.Dir, dir)
	if err != nil {
		return failed(err.Error())
	}
	cmd := exec.Command(shell, "-c", command)
	cmd.Dir = wd
	// Never nil: a nil Env would silently hand the command zof's own
	// environment (and, in `zof serve`, the server's secrets).
	cmd.Env = append(make([]string, 0, len(in.Env)+len(stepEnv)), in.Env...)
	for _, k := range sortedKeys(stepEnv) {
		cmd.Env = append(cmd.Env, k+"="+stepEnv[k])
	}

	log := "$ " + firstLine(command) + "\n"
	p, err := startGrouped(cmd, e.opts.Groups)
	if err != nil {
		return failed(fmt.Sprintf("could not start the command with %s: %v", shell, err))
	}
	tail := newTailBuffer(e.opts.MaxOutput)
	go p.copyTo(tail)

	start := time.Now()
	var waitErr error
	interrupted := false
	select {
	case waitErr = <-p.exited:
		// Whatever it left running in the background goes with it.
		terminateGroup(p.pgid, e.opts.KillGrace)
	case <-ctx.Done():
		select {
		case waitErr = <-p.exited:
			terminateGroup(p.pgid, e.opts.KillGrace)
		default:
			interrupted = true
			terminateGroup(p.pgid, e.opts.KillGrace)
			_ = cmd.Process.Kill() // only matters where there are no process groups
			waitErr = <-p.exited
		}
	}
	p.drain()
	p.forget()
	took := time.Since(start)
	log += tail.String(in.Mask)
	if !strings.HasSuffix(log, "\n") {
		log += "\n"
	}

	if interrupted {
		return result{interrupted: true, log: log + fmt.Sprintf("(stopped after %s)\n", roundDur(took)), doing: fmt.Sprintf("the command was still running after %s and was stopped", roundDur(took)), command: true, outputCut: tail.cut()}
	}
	code, how := exitStatus(waitErr)
	log += fmt.Sprintf("%s (%s)\n", how, roundDur(took))
	if code == c.ExitCode && code >= 0 {
		return result{log: log}
	}
	msg := fmt.Sprintf("exit code: expected %d, got %d", c.ExitCode, code)
	if code < 0 {
		msg = fmt.Sprintf("exit code: expected %d, got %s", c.ExitCode, how)
	}
	return result{log: log, failure: &api.Failure{Message: msg, Expected: strconv.Itoa(c.ExitCode), Actual: strings.TrimPrefix(how, "exit code ")}, command: true, outputCut: tail.cut()}
}

// workDir is dir relative to base (absolute dirs as they are); it must exist.
func workDir(base, dir string) (string, error) {
	wd := base
	if dir != "" {
		if filepath.IsAbs(dir) || base == "" {
			wd = dir
		} else {
			wd = filepath.Join(base, dir)
		}
	}
	if wd == "" {
		return "", nil
	}
	st, err := os.Stat(wd)
	switch {
	case err != nil:
		return "", fmt.Errorf("working directory %s does not exist (dir: is relative to the suite file's directory)", wd)
	case !st.IsDir():
		return "", fmt.Errorf("working directory %s is not a directory", wd)
	}
	return wd, nil
}

// exitStatus is the exit code (-1 when killed by a signal) and how to say it.
func exitStatus(err error) (int, string) {
	if err == nil {
		return 0, "exit code 0"
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if code := ee.ExitCode(); code >= 0 {
			return code, "exit code " + strconv.Itoa(code)
		}
		return -1, ee.ProcessState.String() // "signal: killed"
	}
	return -1, "wait failed: " + err.Error()
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

// grouped is a started command in its own process group whose combined
// output goes through a pipe we own: grandchildren that keep the pipe open
// cannot block Wait, and the output can be drained on our terms.
type grouped struct {
	cmd     *exec.Cmd
	pgid    int
	r       *os.File
	exited  chan error // receives cmd.Wait's result once
	copied  chan struct{}
	release func() // removes the group's record; nil when not recorded
}

// startGrouped starts cmd as the leader of its own process group, which on
// Linux dies with this process (procgroup.Start), and records the group with
// rec (if any) before anything waits on it. A group that cannot be recorded
// is killed at once: it could not be found again after a crash.
func startGrouped(cmd *exec.Cmd, rec GroupRecorder) (*grouped, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := procgroup.Start(cmd); err != nil {
		r.Close()
		w.Close()
		return nil, err
	}
	w.Close() // the child has its copy; EOF comes when every holder is gone
	p := &grouped{cmd: cmd, pgid: cmd.Process.Pid, r: r, exited: make(chan error, 1), copied: make(chan struct{})}
	if rec != nil {
		// Not yet waited for: the leader, even if it already exited, is still
		// there (a zombie) for the record to read its start time.
		release, err := rec.Record(p.pgid)
		if err != nil {
			killGroup(p.pgid)
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			r.Close()
			return nil, fmt.Errorf("%w; the command was stopped before it could do anything lasting", err)
		}
		p.release = release
	}
	go func() { p.exited <- cmd.Wait() }()
	return p, nil
}

// forget removes the group's record once the whole group is gone (call it
// after the group was terminated and the leader reaped). A group that
// outlived its kill keeps its record, for the next start to kill.
func (p *grouped) forget() {
	if p.release != nil && !groupAlive(p.pgid) {
		p.release()
	}
}

// copyTo copies the output until EOF or until drain closes the pipe.
func (p *grouped) copyTo(w io.Writer) {
	defer close(p.copied)
	_, _ = io.Copy(w, p.r)
}

// drain waits for the output to end, briefly, then stops reading.
func (p *grouped) drain() {
	select {
	case <-p.copied:
	case <-time.After(drainWait):
	}
	p.r.Close()
	<-p.copied
}
