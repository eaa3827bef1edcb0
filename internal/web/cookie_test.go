package web

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/zof-ai/zof-ci/internal/server/config"
)

// TestSessionCookieAttributes: HttpOnly and SameSite=Strict always, Secure
// when the console is reached over https (zof serve sets Options.Secure from
// public_url), and the cookie never holds the token.
func TestSessionCookieAttributes(t *testing.T) {
	const token = "tok-pay-0123456789"
	auth := fakeAuth{token: {Tenant: "payments", Name: "ci", Role: config.RoleRunner}}
	for _, secure := range []bool{false, true} {
		c, err := New(Options{Runs: &fakeRuns{}, Actions: &fakeRuns{}, Auth: auth, Secure: secure})
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range []string{"/login", "/logout"} {
			r := httptest.NewRequest("POST", path, strings.NewReader(url.Values{"token": {token}}.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			w := httptest.NewRecorder()
			c.ServeHTTP(w, r)
			cookies := w.Result().Cookies()
			if len(cookies) != 1 || cookies[0].Name != SessionCookie {
				t.Fatalf("POST %s (secure %v): cookies %v", path, secure, cookies)
			}
			ck := cookies[0]
			if ck.Secure != secure || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" {
				t.Errorf("POST %s (secure %v): cookie %s", path, secure, ck)
			}
			if strings.Contains(ck.Value, token) {
				t.Errorf("POST %s: the cookie holds the token", path)
			}
		}
	}
}
