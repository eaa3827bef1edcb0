package step

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/secret"
)

const (
	// DefaultServeTimeout is how long a service may take to become ready
	// when serve.timeout is not set (suite.md's example uses 60s).
	DefaultServeTimeout = 60 * time.Second
	// ReadyPollInterval is the pause between readiness probes.
	ReadyPollInterval = 100 * time.Millisecond
	// readyProbeTimeout bounds one probe, so a hanging health check is retried.
	readyProbeTimeout = 2 * time.Second
	// serviceTailLines is how much of a failed service's output an error quotes.
	serviceTailLines = 20
	serviceTailBytes = 4 << 10
	// maxLogLine bounds a line buffered for masking before it is written anyway.
	maxLogLine = 64 << 10
)

// ServiceOptions says where and how to start a service.
type ServiceOptions struct {
	Dir       string         // working directory; serve.dir is relative to it
	Env       []string       // base environment (serve.env is added); nil is an empty environment
	Log       io.Writer      // receives the service's output, line by line, masked with Mask; nil discards it
	Mask      *secret.Masker // masks the output and error messages
	Client    *http.Client   // probes readiness; nil uses a client of its own
	KillGrace time.Duration  // SIGTERM → SIGKILL grace (DefaultServiceKillGrace)
	Groups    GroupRecorder  // records the service's process group while it runs (zof serve); nil records nothing
}

// Service is a started system under test: a process group that Stop ends.
type Service struct {
	p        *grouped
	grace    time.Duration
	mask     *secret.Masker
	tail     *tailBuffer
	log      *lineWriter
	done     chan struct{} // closed when the leader has exited
	exitErr  error         // cmd.Wait's result, valid after done
	stopOnce sync.Once
	stopErr  error
}

// StartService starts serve.Command with /bin/sh -c in its own process group
// (which on Linux dies with this process) and returns once it is ready: Ready (a path joined to baseURL, or a full
// URL) answers 2xx, or, without Ready, baseURL's host:port accepts a TCP
// connection. It fails at once if the command exits first, and after
// serve.Timeout (DefaultServeTimeout) if it never gets ready; either way no
// process is left behind. ctx bounds the wait only; the service runs until Stop.
func StartService(ctx context.Context, s api.Serve, baseURL string, opts ServiceOptions) (*Service, error) {
	if strings.TrimSpace(s.Command) == "" {
		return nil, errors.New("serve: the command is empty; set serve.command, or remove serve from the environment")
	}
	probe, what, err := readinessProbe(s.Ready, baseURL, opts.Client)
	if err != nil {
		return nil, err
	}
	wd, err := workDir(opts.Dir, s.Dir)
	if err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	timeout := s.Timeout.D()
	if timeout <= 0 {
		timeout = DefaultServeTimeout
	}
	grace := opts.KillGrace
	if grace <= 0 {
		grace = DefaultServiceKillGrace
	}
	if addr := listenAddr(baseURL); addr != "" {
		// A stale copy of the service (or anything else) already answering on the
		// port would pass the readiness check and be tested instead of ours.
		if c, err := net.DialTimeout("tcp", addr, portCheckTimeout); err == nil {
			c.Close()
			return nil, fmt.Errorf("serve: something already listens on %s before the serve command started; stop it (a copy left running?) or point the environment url at another port, or zof would test the wrong service", addr)
		}
	}
	cmd := exec.Command(shell, "-c", s.Command)
	cmd.Dir = wd
	cmd.Env = append(make([]string, 0, len(opts.Env)+len(s.Env)), opts.Env...)
	for _, k := range sortedKeys(s.Env) {
		cmd.Env = append(cmd.Env, k+"="+s.Env[k])
	}
	p, err := startGrouped(cmd, opts.Groups)
	if err != nil {
		return nil, fmt.Errorf("serve: could not start the command with %s: %w", shell, err)
	}
	svc := &Service{
		p:     p,
		grace: grace,
		mask:  opts.Mask,
		tail:  newTailBuffer(serviceTailBytes),
		log:   &lineWriter{w: opts.Log, mask: opts.Mask},
		done:  make(chan struct{}),
	}
	go p.copyTo(io.MultiWriter(svc.tail, svc.log))
	go func() {
		svc.exitErr = <-p.exited
		close(svc.done)
	}()

	wait, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := "no answer yet"
	tick := time.NewTicker(ReadyPollInterval)
	defer tick.Stop()
	for {
		ok, why := probe(wait)
		if ok {
			select {
			case <-svc.done:
				// Something else answered (a stale copy on the port) while ours died.
			default:
				return svc, nil
			}
		}
		if why != "" {
			last = why
		}
		select {
		case <-svc.done:
			svc.finish()
			_, how := exitStatus(svc.exitErr)
			return nil, fmt.Errorf("serve command exited with %s before it was ready: %s", strings.Replace(how, "exit code", "status", 1), svc.outputTail())
		case <-wait.Done():
			svc.finish()
			if ctx.Err() != nil {
				return nil, fmt.Errorf("serve: cancelled while waiting for %s; the service was stopped: %w", what, ctx.Err())
			}
			return nil, fmt.Errorf("serve: %s was not ready after %s (last: %s); the service was stopped — raise serve.timeout or check serve.ready. Output: %s", what, timeout, opts.Mask.String(last), svc.outputTail())
		case <-tick.C:
		}
	}
}

// readinessProbe returns a check of the service and a description of it.
func readinessProbe(ready, baseURL string, client *http.Client) (func(context.Context) (bool, string), string, error) {
	if ready == "" {
		u, err := url.Parse(baseURL)
		if err != nil || u.Host == "" {
			return nil, "", fmt.Errorf("serve: no ready check and no usable environment url (%q) to wait on; set serve.ready (e.g. /healthz) or the environment url", baseURL)
		}
		addr := u.Host
		if u.Port() == "" {
			port := "80"
			if u.Scheme == "https" {
				port = "443"
			}
			addr = net.JoinHostPort(u.Hostname(), port)
		}
		var d net.Dialer
		return func(ctx context.Context) (bool, string) {
			pctx, cancel := context.WithTimeout(ctx, readyProbeTimeout)
			defer cancel()
			c, err := d.DialContext(pctx, "tcp", addr)
			if err != nil {
				if expired(ctx) {
					return false, ""
				}
				return false, "tcp " + addr + ": " + err.Error()
			}
			c.Close()
			return true, ""
		}, "tcp " + addr, nil
	}
	absolute := strings.HasPrefix(ready, "http://") || strings.HasPrefix(ready, "https://")
	if !absolute && baseURL == "" {
		return nil, "", fmt.Errorf("serve: ready %q is a path but the environment has no url; set the environment's url, or make ready a full URL", ready)
	}
	target, err := requestURL(baseURL, ready, "", nil)
	if absolute {
		target, err = requestURL("", "", ready, nil)
	}
	if err != nil {
		return nil, "", fmt.Errorf("serve: ready %q: %w", ready, err)
	}
	if client == nil {
		client = &http.Client{Transport: newTransport(nil)}
	}
	return func(ctx context.Context) (bool, string) {
		pctx, cancel := context.WithTimeout(ctx, readyProbeTimeout)
		defer cancel()
		req, err := http.NewRequestWithContext(pctx, http.MethodGet, target, nil)
		if err != nil {
			return false, err.Error()
		}
		req.Header.Set("User-Agent", DefaultUserAgent)
		resp, err := client.Do(req)
		if err != nil {
			if expired(ctx) {
				return false, ""
			}
			return false, transportError(http.MethodGet, target, err, 0)
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if resp.StatusCode/100 == 2 {
			return true, ""
		}
		return false, "GET " + target + " answered " + resp.Status
	}, "GET " + target, nil
}

// finish ends the group and waits for the leader and the output to end.
func (s *Service) finish() {
	terminateGroup(s.p.pgid, s.grace)
	_ = s.p.cmd.Process.Kill() // only matters where there are no process groups
	<-s.done
	s.p.drain()
	s.p.forget()
	s.log.flush()
}

func (s *Service) outputTail() string {
	t := s.tail.String(s.mask)
	lines := strings.Split(strings.TrimRight(t, "\n"), "\n")
	if len(lines) > serviceTailLines {
		lines = lines[len(lines)-serviceTailLines:]
	}
	t = strings.Join(lines, "\n")
	if strings.TrimSpace(t) == "" {
		return "(no output)"
	}
	return "\n" + t
}

// Stop ends the service's whole process group: SIGTERM, then SIGKILL after
// the grace period (or at once when ctx ends). It is idempotent and returns
// when every process is gone and the output is flushed. The error is non-nil
// only when the service had already exited on its own before Stop: its
// status and the end of its output, for the run log.
func (s *Service) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() {
		select {
		case <-s.done:
			_, how := exitStatus(s.exitErr)
			s.finish()
			s.stopErr = fmt.Errorf("serve command had already exited (%s) before it was stopped: %s", how, s.outputTail())
			return
		default:
		}
		grace := s.grace
		if dl, ok := ctx.Deadline(); ok {
			grace = min(grace, max(time.Until(dl), 0))
		}
		if ctx.Err() != nil {
			grace = 0
		}
		s.grace = grace
		s.finish()
	})
	return s.stopErr
}

// lineWriter masks whole lines before writing them, so a secret is never
// split across two writes; write errors are dropped so a broken log cannot
// stall the service on a full pipe.
type lineWriter struct {
	mu   sync.Mutex
	w    io.Writer
	mask *secret.Masker
	buf  []byte
}

func (l *lineWriter) Write(p []byte) (int, error) {
	if l.w == nil {
		return len(p), nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	if i := bytes.LastIndexByte(l.buf, '\n'); i >= 0 {
		_, _ = io.WriteString(l.w, l.mask.String(string(l.buf[:i+1])))
		l.buf = append(l.buf[:0], l.buf[i+1:]...)
	}
	if len(l.buf) > maxLogLine {
		_, _ = io.WriteString(l.w, l.mask.String(string(l.buf))+"\n")
		l.buf = l.buf[:0]
	}
	return len(p), nil
}

func (l *lineWriter) flush() {
	if l.w == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		_, _ = io.WriteString(l.w, l.mask.String(string(l.buf))+"\n")
		l.buf = l.buf[:0]
	}
}

// portCheckTimeout bounds the check that nothing listens on the service's port
// yet; a loopback connect answers in microseconds, a filtered port never does.
const portCheckTimeout = 300 * time.Millisecond

// listenAddr is the host:port the service will listen on, from its base URL
// ("" when the URL has no host we can check).
func listenAddr(baseURL string) string {
	u, err := url.Parse(baseURL)
	if err != nil || u.Host == "" {
		return ""
	}
	port := u.Port()
	if port == "" {
		switch u.Scheme {
		case "http":
			port = "80"
		case "https":
			port = "443"
		default:
			return ""
		}
	}
	return net.JoinHostPort(u.Hostname(), port)
}
