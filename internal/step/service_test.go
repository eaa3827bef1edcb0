//go:build unix

package step

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/secret"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func listening(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// syncBuffer is a log writer the test reads after Stop.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// helperServe is a serve block that starts the test binary as a service
// (see TestMain), plus a `sleep` in the same group whose pid goes to pidFile.
func helperServe(t *testing.T, mode, addr, pidFile string) (api.Serve, []string) {
	t.Helper()
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return api.Serve{
			Command: fmt.Sprintf("sleep 1000 & echo $! > %s; exec %q", pidFile, bin),
			Ready:   "/healthz",
			Timeout: api.Duration(5 * time.Second),
		}, []string{
			"STEP_TEST_HELPER=" + mode, "STEP_TEST_ADDR=" + addr, "PATH=" + os.Getenv("PATH"),
		}
}

func TestServiceReadyAndStop(t *testing.T) {
	addr := freeAddr(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	serve, env := helperServe(t, "healthy", addr, pidFile)
	var log syncBuffer
	groups := &fakeGroups{}
	svc, err := StartService(context.Background(), serve, "http://"+addr, ServiceOptions{
		Env: env, Log: &log, Mask: secret.NewMasker([]string{"SECRET-TOKEN-1"}), KillGrace: time.Second, Groups: groups,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !listening(addr) {
		t.Fatal("ready returned but nothing listens")
	}
	out := NewExecutor(ExecutorOptions{}).Run(context.Background(), get("/anything", nil), Input{BaseURL: "http://" + addr})
	if out.Status != api.StepPassed {
		t.Errorf("step against the service: %v", out.Failure)
	}
	pids := readPIDs(t, pidFile)
	pids = append(pids, svc.p.pgid)
	if err := svc.Stop(context.Background()); err != nil {
		t.Errorf("Stop: %v", err)
	}
	if listening(addr) {
		t.Error("the service still listens after Stop")
	}
	assertGone(t, pids)
	// Recorded while it ran, released once the whole group was gone.
	if want := []int{svc.p.pgid}; !slices.Equal(groups.recorded, want) || !slices.Equal(groups.released, want) {
		t.Errorf("recorded %v, released %v; want %v both", groups.recorded, groups.released, want)
	}
	if got := log.String(); got != "helper up, token=***\n" {
		t.Errorf("log %q", got)
	}
	// Idempotent, and quick the second time.
	start := time.Now()
	if err := svc.Stop(context.Background()); err != nil || time.Since(start) > 100*time.Millisecond {
		t.Errorf("second Stop: %v after %s", err, time.Since(start))
	}
}

func TestServiceTCPReadiness(t *testing.T) {
	addr := freeAddr(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	serve, env := helperServe(t, "unhealthy", addr, pidFile)
	serve.Ready = "" // a TCP connect is enough, whatever /healthz says
	svc, err := StartService(context.Background(), serve, "http://"+addr+"/prefix", ServiceOptions{Env: env})
	if err != nil {
		t.Fatal(err)
	}
	svc.Stop(context.Background())
	assertGone(t, readPIDs(t, pidFile))
}

func TestServiceExitsBeforeReady(t *testing.T) {
	addr := freeAddr(t)
	start := time.Now()
	_, err := StartService(context.Background(), api.Serve{
		Command: "echo starting; echo 'fatal: bad config token=SECRET-TOKEN-1' >&2; exit 3",
		Ready:   "/healthz",
		Timeout: api.Duration(time.Minute),
	}, "http://"+addr, ServiceOptions{Mask: secret.NewMasker([]string{"SECRET-TOKEN-1"})})
	want := "serve command exited with status 3 before it was ready: \nstarting\nfatal: bad config token=***"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("took %s; an exited service must fail at once", took)
	}
}

func TestServiceNeverReady(t *testing.T) {
	addr := freeAddr(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	serve, env := helperServe(t, "unhealthy", addr, pidFile)
	// Long enough for the helper to be up and answering 503 on a loaded
	// machine (300ms was not), so the last probe is always the 503.
	serve.Timeout = api.Duration(3 * time.Second)
	_, err := StartService(context.Background(), serve, "http://"+addr, ServiceOptions{Env: env, KillGrace: 200 * time.Millisecond})
	wantPrefix := fmt.Sprintf("serve: GET http://%s/healthz was not ready after 3s (last: GET http://%[1]s/healthz answered 503 Service Unavailable); the service was stopped — raise serve.timeout or check serve.ready. Output: \nhelper up", addr)
	if err == nil || !strings.HasPrefix(err.Error(), wantPrefix) {
		t.Errorf("err = %v\nwant prefix %s", err, wantPrefix)
	}
	if listening(addr) {
		t.Error("the service still listens")
	}
	assertGone(t, readPIDs(t, pidFile))
}

func TestServiceIgnoringTermIsKilled(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pids")
	addr := freeAddr(t)
	start := time.Now()
	_, err := StartService(context.Background(), api.Serve{
		Command: stubborn(pidFile),
		Timeout: api.Duration(300 * time.Millisecond),
	}, "http://"+addr, ServiceOptions{Env: []string{"PATH=" + os.Getenv("PATH")}, KillGrace: 100 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "was not ready after 300ms (last: tcp "+addr+": dial tcp "+addr+": connect: connection refused)") {
		t.Errorf("err = %v", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("took %s", took)
	}
	assertGone(t, readPIDs(t, pidFile))
}

func TestServiceStartCancelled(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pids")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := StartService(ctx, api.Serve{Command: "echo $$ > " + pidFile + "; exec sleep 1000", Ready: "/x"}, "http://"+freeAddr(t), ServiceOptions{KillGrace: 100 * time.Millisecond})
	if err == nil || !strings.HasPrefix(err.Error(), "serve: cancelled while waiting for GET http://") {
		t.Errorf("err = %v", err)
	}
	assertGone(t, readPIDs(t, pidFile))
}

func TestServiceCrashedBeforeStop(t *testing.T) {
	addr := freeAddr(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	serve, env := helperServe(t, "healthy", addr, pidFile)
	svc, err := StartService(context.Background(), serve, "http://"+addr, ServiceOptions{Env: env})
	if err != nil {
		t.Fatal(err)
	}
	svc.p.cmd.Process.Kill() // the service dies on its own (its sleep lives on in the group)
	<-svc.done
	err = svc.Stop(context.Background())
	if err == nil || !strings.HasPrefix(err.Error(), "serve command had already exited (signal: killed) before it was stopped: \nhelper up") {
		t.Errorf("err = %v", err)
	}
	assertGone(t, readPIDs(t, pidFile))
}

func TestServiceConfigErrors(t *testing.T) {
	tests := []struct {
		serve api.Serve
		base  string
		want  string
	}{
		{api.Serve{Command: " "}, "http://x", "serve: the command is empty; set serve.command, or remove serve from the environment"},
		{api.Serve{Command: "true"}, "", `serve: no ready check and no usable environment url ("") to wait on; set serve.ready (e.g. /healthz) or the environment url`},
		{api.Serve{Command: "true", Ready: "/h"}, "", `serve: ready "/h" is a path but the environment has no url; set the environment's url, or make ready a full URL`},
		{api.Serve{Command: "true", Dir: "/nonexistent-dir"}, "http://x", "serve: working directory /nonexistent-dir does not exist (dir: is relative to the suite file's directory)"},
	}
	for _, tt := range tests {
		_, err := StartService(context.Background(), tt.serve, tt.base, ServiceOptions{})
		if err == nil || err.Error() != tt.want {
			t.Errorf("%+v: err = %v\nwant %s", tt.serve, err, tt.want)
		}
	}
}

// TestServicePortAlreadyTaken: a stale copy answering on the port would pass the
// readiness check, so the start is refused before the command runs.
func TestServicePortAlreadyTaken(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	marker := filepath.Join(t.TempDir(), "ran")
	_, err = StartService(context.Background(), api.Serve{Command: "touch " + marker, Ready: "/healthz"}, "http://"+l.Addr().String(), ServiceOptions{})
	if err == nil || !strings.Contains(err.Error(), "something already listens on "+l.Addr().String()) {
		t.Fatalf("err = %v, want a refusal naming the address", err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the serve command ran although the port was taken")
	}
}

func TestListenAddr(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:8089/base": "127.0.0.1:8089",
		"http://localhost":           "localhost:80",
		"https://[::1]":              "[::1]:443",
		"unix:///tmp/x":              "",
		"::bad":                      "",
	} {
		if got := listenAddr(in); got != want {
			t.Errorf("listenAddr(%q) = %q, want %q", in, got, want)
		}
	}
}
