package github

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	gh "github.com/google/go-github/v62/github"

	"github.com/zof-ai/zof-ci/internal/ci/github/githubtest"
)

// clock is a fake clock shared by the App and the fake API.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var epoch = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// appFake is the fake with App authentication: App 42 installed on
// acme/shop as installation 7.
func appFake(t *testing.T) (*githubtest.Fake, *clock) {
	clk := &clock{t: epoch}
	fake := githubtest.New(t)
	app := fake.EnableApp(42)
	app.Now = clk.Now
	app.Install("acme/shop", 7)
	fake.Files[1] = githubtest.Files(2)
	return fake, clk
}

func newApp(t *testing.T, fake *githubtest.Fake, clk *clock, key *rsa.PrivateKey) *App {
	t.Helper()
	a, err := NewApp(AppOptions{ID: 42, Key: key, BaseURL: fake.URL, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func listFiles(t *testing.T, c *gh.Client) error {
	t.Helper()
	_, _, err := c.PullRequests.ListFiles(context.Background(), "acme", "shop", 1, nil)
	return err
}

func TestAppJWTClaims(t *testing.T) {
	fake, clk := appFake(t)
	a := newApp(t, fake, clk, githubtest.TestKey())
	tok, err := a.JWT()
	if err != nil {
		t.Fatal(err)
	}
	var claims jwt.RegisteredClaims
	parsed, err := jwt.ParseWithClaims(tok, &claims, func(*jwt.Token) (any, error) { return &githubtest.TestKey().PublicKey, nil },
		jwt.WithValidMethods([]string{"RS256"}), jwt.WithTimeFunc(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	if parsed.Header["alg"] != "RS256" || claims.Issuer != "42" {
		t.Errorf("alg %v iss %q", parsed.Header["alg"], claims.Issuer)
	}
	if got := claims.IssuedAt.Time; !got.Equal(epoch.Add(-60 * time.Second)) {
		t.Errorf("iat %v, want 60 s before now", got)
	}
	if got := claims.ExpiresAt.Time; !got.Equal(epoch.Add(9*time.Minute)) || got.Sub(epoch) > JWTMaxLifetime {
		t.Errorf("exp %v, want 9 minutes ahead (within GitHub's 10)", got)
	}
	if strings.Contains(tok, "PRIVATE") {
		t.Error("the JWT carries key material")
	}
}

// TestAppTokenCachedAndRefreshed: one exchange serves many requests; the
// token is replaced TokenRefreshMargin before it expires, not after.
func TestAppTokenCachedAndRefreshed(t *testing.T) {
	fake, clk := appFake(t)
	a := newApp(t, fake, clk, githubtest.TestKey())
	c, err := a.Client("acme", "shop", 7)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		advance   time.Duration
		exchanges int
	}{
		{0, 1},
		{0, 1},
		{30 * time.Minute, 1},
		{24 * time.Minute, 1}, // 54 min: 6 min left, more than the margin
		{2 * time.Minute, 2},  // 56 min: within the margin, a new token
		{time.Minute, 2},
		{2 * time.Hour, 3}, // long expired: a new one
	}
	for i, s := range steps {
		clk.Add(s.advance)
		if err := listFiles(t, c); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if got := fake.App.Exchanges(); got != s.exchanges {
			t.Errorf("step %d (+%v): %d exchanges, want %d", i, s.advance, got, s.exchanges)
		}
	}
	toks := fake.App.Tokens()
	for i, r := range fake.Requests {
		if !strings.HasPrefix(r.Path, "/repos/") {
			continue
		}
		if !strings.HasPrefix(r.Auth, "Bearer ghs_fake") {
			t.Errorf("request %d %s: Authorization %q", i, r.Path, r.Auth)
		}
	}
	if len(toks) != 3 || toks[0].Installation != 7 || len(toks[0].Repositories) != 1 || toks[0].Repositories[0] != "shop" {
		t.Errorf("tokens %+v: want 3, for installation 7, scoped to shop", toks)
	}
	if r := fake.App.Refused(); len(r) != 0 {
		t.Errorf("the fake refused JWTs: %q", r)
	}
}

func TestAppConcurrentRequestsShareOneExchange(t *testing.T) {
	fake, clk := appFake(t)
	a := newApp(t, fake, clk, githubtest.TestKey())
	c, _ := a.Client("acme", "shop", 7)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := c.PullRequests.ListFiles(context.Background(), "acme", "shop", 1, nil)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if n := fake.App.Exchanges(); n != 1 {
		t.Errorf("%d exchanges, want 1", n)
	}
}

// TestAppInstallationLookup: without an installation id the App finds it
// once (GET /repos/{o}/{r}/installation) and remembers it.
func TestAppInstallationLookup(t *testing.T) {
	fake, clk := appFake(t)
	a := newApp(t, fake, clk, githubtest.TestKey())
	c, _ := a.Client("acme", "shop", 0)
	for range 3 {
		if err := listFiles(t, c); err != nil {
			t.Fatal(err)
		}
	}
	if l, e := fake.App.Lookups(), fake.App.Exchanges(); l != 1 || e != 1 {
		t.Errorf("lookups %d exchanges %d, want 1 and 1", l, e)
	}
	if toks := fake.App.Tokens(); len(toks) != 1 || toks[0].Installation != 7 {
		t.Errorf("tokens %+v", toks)
	}
}

func TestAppErrors(t *testing.T) {
	otherKey, err := rsa.GenerateKey(rand.Reader, 1024) // small: only its signature must differ
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name         string
		key          *rsa.PrivateKey
		repo         string
		installation int64
		status       int
		want         string
	}{
		{"another App's key", otherKey, "shop", 7, 401, "refused the App's JWT"},
		{"not installed", githubtest.TestKey(), "elsewhere", 0, 404, "not installed on acme/elsewhere"},
		{"unknown installation", githubtest.TestKey(), "shop", 99, 404, "installation 99 does not exist"},
		{"repository outside the installation", githubtest.TestKey(), "elsewhere", 7, 422, "add the repository to the App's installation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake, clk := appFake(t)
			a := newApp(t, fake, clk, tt.key)
			c, _ := a.Client("acme", tt.repo, tt.installation)
			_, _, err := c.PullRequests.ListFiles(context.Background(), "acme", tt.repo, 1, nil)
			var ae *AppError
			if !errors.As(err, &ae) || !strings.Contains(err.Error(), tt.want) || StatusCode(err) != tt.status {
				t.Fatalf("err = %v (status %d), want an *AppError with %d containing %q", err, StatusCode(err), tt.status, tt.want)
			}
			if strings.Contains(err.Error(), "PRIVATE KEY") || strings.Contains(err.Error(), "ghs_") {
				t.Errorf("the error shows a credential: %v", err)
			}
			if n := fake.Calls("GET", `/repos/acme/.*/pulls/1/files`); n != 0 {
				t.Errorf("the request went out without a token (%d calls)", n)
			}
		})
	}
}

// TestAppJWTClockDrift: the fake checks iat and exp as GitHub does; the
// App's margins absorb a clock that runs behind.
func TestAppJWTClockDrift(t *testing.T) {
	fake, clk := appFake(t)
	a := newApp(t, fake, clk, githubtest.TestKey())
	// The App's clock runs 2 minutes behind GitHub's: its exp (9 minutes
	// ahead of its own now) is still inside GitHub's window ...
	a.now = func() time.Time { return clk.Now().Add(-2 * time.Minute) }
	c, _ := a.Client("acme", "shop", 7)
	if err := listFiles(t, c); err != nil {
		t.Fatalf("2 minutes behind: %v", err)
	}
	// ... and 2 minutes ahead, its iat is in GitHub's future (and its exp 11
	// minutes ahead): refused.
	b := newApp(t, fake, clk, githubtest.TestKey())
	b.now = func() time.Time { return clk.Now().Add(2 * time.Minute) }
	c, _ = b.Client("acme", "shop", 7)
	if err := listFiles(t, c); err == nil || StatusCode(err) != 401 {
		t.Fatalf("2 minutes ahead: err = %v, want GitHub's 401", err)
	}
	if r := fake.App.Refused(); len(r) != 1 || !strings.Contains(r[0], "before issued") {
		t.Errorf("refusals %q", r)
	}
	// A JWT whose exp is beyond GitHub's 10 minutes is refused outright.
	long, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.RegisteredClaims{Issuer: "42",
		IssuedAt: jwt.NewNumericDate(clk.Now().Add(-time.Minute)), ExpiresAt: jwt.NewNumericDate(clk.Now().Add(JWTMaxLifetime + time.Minute))}).
		SignedString(githubtest.TestKey())
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, fake.URL+"/app/installations/7/access_tokens", nil)
	req.Header.Set("Authorization", "Bearer "+long)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if r := fake.App.Refused(); resp.StatusCode != 401 || len(r) != 2 || !strings.Contains(r[1], "too far in the future") {
		t.Errorf("an 11-minute JWT: %d, refusals %q", resp.StatusCode, r)
	}
}

// TestAppRefusedTokenIsReplaced: a token GitHub stops accepting (revoked)
// is dropped, so the next request exchanges again.
func TestAppRefusedTokenIsReplaced(t *testing.T) {
	fake, clk := appFake(t)
	a := newApp(t, fake, clk, githubtest.TestKey())
	c, _ := a.Client("acme", "shop", 7)
	if err := listFiles(t, c); err != nil {
		t.Fatal(err)
	}
	fake.Fail("GET", `/repos/acme/shop/pulls/1/files`, githubtest.Fault{Status: 401, Body: `{"message":"Bad credentials"}`}, false)
	if err := listFiles(t, c); StatusCode(err) != 401 {
		t.Fatalf("err = %v, want the 401", err)
	}
	if err := listFiles(t, c); err != nil {
		t.Fatal(err)
	}
	if n := fake.App.Exchanges(); n != 2 {
		t.Errorf("%d exchanges, want 2 (the refused token replaced)", n)
	}
}

// TestAppTokenStaysOnItsHost: a request to another host (a redirect, say)
// carries no token.
func TestAppTokenStaysOnItsHost(t *testing.T) {
	fake, clk := appFake(t)
	var got string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Get("Authorization") }))
	defer other.Close()
	a := newApp(t, fake, clk, githubtest.TestKey())
	c, _ := a.Client("acme", "shop", 7)
	resp, err := c.Client().Get(other.URL + "/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got != "" {
		t.Errorf("another host got Authorization %q", got)
	}
	if n := fake.App.Exchanges(); n != 0 {
		t.Errorf("%d exchanges for a request that needs no token", n)
	}
}

func TestNewAppNeedsIDAndKey(t *testing.T) {
	if _, err := NewApp(AppOptions{Key: githubtest.TestKey()}); err == nil || !strings.Contains(err.Error(), "app_id") {
		t.Errorf("no id: %v", err)
	}
	if _, err := NewApp(AppOptions{ID: 1}); err == nil || !strings.Contains(err.Error(), "private key") {
		t.Errorf("no key: %v", err)
	}
	if _, err := NewApp(AppOptions{ID: 1, Key: githubtest.TestKey(), BaseURL: "ftp://x"}); err == nil {
		t.Error("a non-http base URL was accepted")
	}
}
