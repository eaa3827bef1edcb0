package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Session cookie and CSRF field names.
const (
	SessionCookie = "zof_session"
	csrfField     = "csrf"
	// SessionTTL is how long a console login lasts.
	SessionTTL = 12 * time.Hour
)

// sessions signs and checks console sessions. A session cookie holds the
// SHA-256 of the token the person logged in with and an expiry, signed with
// HMAC-SHA-256: never the token itself. Each request looks the hash up
// again, so removing a token from server.yaml ends its sessions at once.
type sessions struct {
	key []byte
	now func() time.Time
}

func newSessions(key []byte, now func() time.Time) (*sessions, error) {
	if len(key) == 0 {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
	}
	return &sessions{key: key, now: now}, nil
}

func (s *sessions) sign(msg string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(msg))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// issue is the cookie value for a login with token.
func (s *sessions) issue(token string) string {
	sum := sha256.Sum256([]byte(token))
	msg := hex.EncodeToString(sum[:]) + "." + strconv.FormatInt(s.now().Add(SessionTTL).Unix(), 10)
	return msg + "." + s.sign(msg)
}

var errSession = errors.New("no valid session: log in again")

// check returns the token hash of a valid cookie value.
func (s *sessions) check(v string) ([sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	i := strings.LastIndexByte(v, '.')
	if i < 0 {
		return sum, errSession
	}
	msg, sig := v[:i], v[i+1:]
	if !hmac.Equal([]byte(sig), []byte(s.sign(msg))) {
		return sum, errSession
	}
	hexSum, exp, ok := strings.Cut(msg, ".")
	if !ok {
		return sum, errSession
	}
	unix, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || s.now().Unix() >= unix {
		return sum, errSession
	}
	b, err := hex.DecodeString(hexSum)
	if err != nil || len(b) != sha256.Size {
		return sum, errSession
	}
	copy(sum[:], b)
	return sum, nil
}

// csrf is the form token of a session: bound to the cookie, so a page of
// another site can neither read nor forge it.
func (s *sessions) csrf(cookie string) string { return s.sign("csrf." + cookie) }

func (s *sessions) checkCSRF(r *http.Request) bool {
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		return false
	}
	return hmac.Equal([]byte(r.PostFormValue(csrfField)), []byte(s.csrf(c.Value)))
}
