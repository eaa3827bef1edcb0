package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/secret"
	"github.com/zof-ai/zof-ci/internal/step"
	"github.com/zof-ai/zof-ci/internal/suite"
)

// runSuite runs every case and variant of ../zof.yaml against baseURL the
// way the engine does (steps in order, captures carried, first failure
// stops the member) and returns each member's first failure ("" = passed).
func runSuite(t *testing.T, baseURL string) map[string]string {
	t.Helper()
	s, err := suite.Load("../zof.yaml", suite.Options{Lookup: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatalf("the example suite does not load: %v", err)
	}
	var ids []string
	for _, c := range s.Cases {
		ids = append(ids, c.ID)
	}
	req, err := s.Request("local", ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(req.Cases) < 15 {
		t.Errorf("the example has %d cases, want at least 15", len(req.Cases))
	}
	dir, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	ex := step.NewExecutor(step.ExecutorOptions{})
	defer ex.Close()
	out := map[string]string{}
	for _, c := range req.Cases {
		variants := c.Variants
		if len(variants) == 0 {
			variants = []api.Variant{{}}
		}
		for _, v := range variants {
			in := step.Input{
				BaseURL: baseURL, Headers: req.Environment.Headers, Vars: v.Vars,
				Captures: map[string]string{}, Dir: dir, Env: os.Environ(), Mask: secret.NewMasker(req.Secrets),
			}
			id := api.MemberID(c.ID, v.Name)
			out[id] = ""
			for i, st := range c.Steps {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				o := ex.Run(ctx, st, in)
				cancel()
				if o.Status != api.StepPassed {
					out[id] = fmt.Sprintf("step %d (%s): %s\n%s", i+1, st.Title(), o.Failure, o.Output)
					break
				}
				for k, val := range o.Captures {
					in.Captures[k] = val
				}
			}
		}
	}
	return out
}

func TestExampleSuitePasses(t *testing.T) {
	srv := httptest.NewServer(newStore("").routes())
	defer srv.Close()
	for id, fail := range runSuite(t, srv.URL) {
		if fail != "" {
			t.Errorf("%s failed: %s", id, fail)
		}
	}
}

func TestExampleSuiteCatchesPriceBug(t *testing.T) {
	srv := httptest.NewServer(newStore("price").routes())
	defer srv.Close()
	got := runSuite(t, srv.URL)
	t.Logf("cart-totals/eur: %s", got["cart-totals/eur"])
	want := map[string]string{
		"cart-totals/eur": `json $.total: expected "12.50", got "12.62"`,
		"cart-totals/usd": `json $.total: expected "14.00", got "14.14"`,
		"cart-totals/gbp": `json $.total: expected "11.00", got "11.11"`,
	}
	for id, fail := range got {
		w, expectFail := want[id]
		switch {
		case expectFail && !strings.Contains(fail, w):
			t.Errorf("%s: failure %q does not contain %q", id, fail, w)
		case !expectFail && fail != "":
			t.Errorf("%s should pass with the price bug, failed: %s", id, fail)
		}
	}
}

// TestServeRealProcess builds the app, starts it as the suite's serve would,
// runs a few steps against it and checks that Stop leaves nothing behind.
func TestServeRealProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the app")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go toolchain on PATH")
	}
	bin := filepath.Join(t.TempDir(), "checkout")
	if out, err := exec.Command(goBin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	addr := freeAddr(t)
	var log strings.Builder
	svc, err := step.StartService(context.Background(), api.Serve{
		Command: bin + " -addr " + addr,
		Ready:   "/healthz",
		Timeout: api.Duration(10 * time.Second),
	}, "http://"+addr, step.ServiceOptions{Log: &log, Env: []string{"CHECKOUT_BUG="}})
	if err != nil {
		t.Fatal(err)
	}
	ex := step.NewExecutor(step.ExecutorOptions{})
	in := step.Input{BaseURL: "http://" + addr, Captures: map[string]string{}}
	steps := []api.Step{
		{HTTP: &api.HTTPRequest{Method: "POST", Path: "/api/login", JSON: []byte(`{"user":"demo","password":"demo"}`)}, Capture: map[string]string{"token": "$.token"}},
		{HTTP: &api.HTTPRequest{Path: "/api/me", Headers: map[string]string{"Authorization": "Bearer ${capture.token}"}},
			Expect: &api.Expect{JSON: []api.JSONAssert{{Path: "$.user", Equals: []byte(`"demo"`)}}}},
	}
	for _, st := range steps {
		o := ex.Run(context.Background(), st, in)
		if o.Status != api.StepPassed {
			t.Fatalf("%s: %s: %s", st.Title(), o.Failure, o.Output)
		}
		for k, v := range o.Captures {
			in.Captures[k] = v
		}
	}
	if err := svc.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("something still listens on %s after Stop", addr)
	}
	text := log.String()
	for _, want := range []string{"listening on " + addr, "POST /api/login 200", "shut down"} {
		if !strings.Contains(text, want) {
			t.Errorf("service log lacks %q:\n%s", want, text)
		}
	}
}

// TestListeningLine checks the line scripts read to learn the port of -addr :0.
func TestListeningLine(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the app")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go toolchain on PATH")
	}
	bin := filepath.Join(t.TempDir(), "checkout")
	if out, err := exec.Command(goBin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on ")
	if !ok {
		t.Fatalf("first line %q, want \"listening on ADDR\"", line)
	}
	o := step.NewExecutor(step.ExecutorOptions{}).Run(context.Background(), api.Step{
		HTTP:   &api.HTTPRequest{Path: "/api/version"},
		Expect: &api.Expect{JSON: []api.JSONAssert{{Path: "$.version", Equals: []byte(`"` + Version + `"`)}}},
	}, step.Input{BaseURL: "http://" + addr})
	if o.Status != api.StepPassed {
		t.Fatalf("%s\n%s", o.Failure, o.Output)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
