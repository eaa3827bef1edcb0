package web

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// SessionKeyEnv names the variable that may hold the session key: replicas
// behind one address share it (each has its own data directory).
const SessionKeyEnv = "ZOF_SESSION_KEY"

// SessionKeyFile is the key's file in the data directory when SessionKeyEnv
// is not set.
const SessionKeyFile = "session.key"

// minSessionKey is the shortest key accepted, in bytes: HMAC-SHA-256's
// block of security (RFC 2104 §3 recommends at least the hash's output, 32).
const minSessionKey = 32

// LoadSessionKey returns the key that signs console sessions, so they
// survive a restart: fromEnv when it is set (at least 32 characters), else
// the file at path, created on the first start with 32 random bytes (hex)
// and mode 0600. A file that others may read is refused: whoever reads it
// can forge sessions.
func LoadSessionKey(fromEnv, path string) ([]byte, error) {
	if fromEnv != "" {
		if len(fromEnv) < minSessionKey {
			return nil, fmt.Errorf("%s is %d characters; use at least %d random ones (e.g. openssl rand -hex 32)", SessionKeyEnv, len(fromEnv), minSessionKey)
		}
		return []byte(fromEnv), nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case err == nil:
		key := make([]byte, minSessionKey)
		if _, err := rand.Read(key); err != nil {
			f.Close()
			return nil, fmt.Errorf("drawing a session key: %w", err)
		}
		text := hex.EncodeToString(key)
		if _, err := f.WriteString(text + "\n"); err != nil {
			f.Close()
			return nil, fmt.Errorf("writing the session key %s: %w; check the data directory is writable", path, err)
		}
		if err := f.Close(); err != nil {
			return nil, fmt.Errorf("writing the session key %s: %w", path, err)
		}
		return []byte(text), nil
	case !errors.Is(err, fs.ErrExist):
		return nil, fmt.Errorf("creating the session key %s: %w; check the data directory is writable", path, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("reading the session key: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("the session key %s is readable by others (mode %v): anyone who reads it can forge console sessions; chmod 600 it, or delete it to draw a new one (which logs everyone out)", path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the session key: %w", err)
	}
	key := strings.TrimSpace(string(b))
	if len(key) < minSessionKey {
		return nil, fmt.Errorf("the session key %s holds %d characters, fewer than %d: delete it and restart to draw a new one (which logs everyone out)", path, len(key), minSessionKey)
	}
	return []byte(key), nil
}
