package cli

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/internal/cli/iostreams"
	"github.com/zof-ai/zof-ci/internal/web"
)

// TestConsoleSessionSurvivesRestart: a person logged in to the console of a
// zof serve stays logged in after it restarts on the same data directory
// (the session key is DATA/session.key, 0600), and a server refuses to start
// with a key file others can read.
func TestConsoleSessionSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := "tenants:\n  team:\n    tokens:\n      - {name: ci, role: runner, env: TOK}\n"
	if err := os.WriteFile(filepath.Join(dir, "server.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	start := func() (base string, stop func() error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		ios, _, _, _ := iostreams.Test()
		o := &serveOptions{IO: ios, Env: Env{"TOK": browserRunner}, Data: data, Config: filepath.Join(dir, "server.yaml"), Listen: addr, MetricsListen: "off"}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- serve(ctx, o, slog.New(slog.DiscardHandler)) }()
		base = "http://" + addr
		deadline := time.Now().Add(browserWait)
		for {
			if res, err := http.Get(base + "/readyz"); err == nil {
				res.Body.Close()
				if res.StatusCode == http.StatusOK {
					break
				}
			}
			select {
			case err := <-done:
				cancel()
				t.Fatalf("zof serve ended: %v", err)
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				cancel()
				t.Fatalf("zof serve not ready within %s", browserWait)
			}
		}
		return base, func() error { cancel(); return <-done }
	}

	base, stop := start()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.PostForm(base+"/login", url.Values{"token": {browserRunner}, "next": {"/runs"}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d", res.StatusCode)
	}
	u, _ := url.Parse(base)
	cookies := jar.Cookies(u)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(data, web.SessionKeyFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("session key file: %v %v, want it with mode 0600", st, err)
	}

	base, stop = start() // a new address: carry the cookie over
	u2, _ := url.Parse(base)
	jar.SetCookies(u2, cookies)
	res, err = c.Get(base + "/runs")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("GET /runs with the session of before the restart: %d, want 200 (still logged in)", res.StatusCode)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	if err := os.Chmod(filepath.Join(data, web.SessionKeyFile), 0o644); err != nil {
		t.Fatal(err)
	}
	ios, _, _, _ := iostreams.Test()
	o := &serveOptions{IO: ios, Env: Env{"TOK": browserRunner}, Data: data, Config: filepath.Join(dir, "server.yaml"), Listen: "127.0.0.1:0", MetricsListen: "off"}
	err = serve(context.Background(), o, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "readable by others") {
		t.Errorf("serve with a world-readable session key: %v, want a refusal saying why", err)
	}
}
