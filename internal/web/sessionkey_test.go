package web

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadSessionKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, SessionKeyFile)
	first, err := LoadSessionKey("", path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file %v, %v: want it created with mode 0600", st, err)
	}
	again, err := LoadSessionKey("", path)
	if err != nil || !bytes.Equal(first, again) || len(first) < minSessionKey {
		t.Fatalf("second start: %q %v, want the same key as the first (%q)", again, err, first)
	}
	if k, err := LoadSessionKey(strings.Repeat("k", 40), path); err != nil || string(k) != strings.Repeat("k", 40) {
		t.Errorf("the environment's key must win: %q %v", k, err)
	}

	for _, tt := range []struct {
		name, env, content string
		mode               os.FileMode
		want               string
	}{
		{"short env", "short", "", 0, "at least 32"},
		{"readable by others", "", strings.Repeat("a", 64), 0o644, "readable by others"},
		{"short file", "", "abc", 0o600, "fewer than 32"},
	} {
		p := filepath.Join(t.TempDir(), SessionKeyFile)
		if tt.content != "" {
			if err := os.WriteFile(p, []byte(tt.content), tt.mode); err != nil {
				t.Fatal(err)
			}
			os.Chmod(p, tt.mode)
		}
		if _, err := LoadSessionKey(tt.env, p); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error saying %q", tt.name, err, tt.want)
		}
	}
}

// TestSessionSurvivesRestart: a cookie issued by one console is valid for a
// new console with the same key (a restarted server), and not for another key.
func TestSessionSurvivesRestart(t *testing.T) {
	now := func() time.Time { return time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC) }
	key, err := LoadSessionKey("", filepath.Join(t.TempDir(), SessionKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	before, _ := newSessions(key, now)
	cookie := before.issue("tok")
	after, _ := newSessions(key, now)
	if _, err := after.check(cookie); err != nil {
		t.Errorf("the session did not survive a restart with the same key: %v", err)
	}
	other, _ := newSessions(nil, now)
	if _, err := other.check(cookie); err == nil {
		t.Errorf("a cookie is valid under another key")
	}
}
