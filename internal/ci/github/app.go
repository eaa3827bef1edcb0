package github

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	gh "github.com/google/go-github/v62/github"
)

// GitHub App authentication
// (https://docs.github.com/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-json-web-token-jwt-for-a-github-app,
// https://docs.github.com/apps/creating-github-apps/authenticating-with-a-github-app/generating-an-installation-access-token-for-a-github-app).
const (
	// JWTMaxLifetime: the JWT's exp "must be no more than 10 minutes into the future".
	JWTMaxLifetime = 10 * time.Minute
	// JWTClockDrift: iat "To protect against clock drift, we recommend that
	// you set this 60 seconds in the past". exp is set the same margin short
	// of JWTMaxLifetime, so a clock up to a minute ahead of GitHub's still
	// gives an exp within the maximum.
	JWTClockDrift = 60 * time.Second
	// InstallationTokenLifetime is how long an installation access token
	// lives ("The installation access token will expire after 1 hour"); used
	// only when a response lacks expires_at.
	InstallationTokenLifetime = time.Hour
	// TokenRefreshMargin: a cached installation token is replaced this long
	// before its expires_at, so no request carries a token that expires on
	// the way, and a few minutes of clock difference do not matter.
	TokenRefreshMargin = 5 * time.Minute
)

// App is a GitHub App: it signs JWTs with the App's private key, exchanges
// them for installation access tokens (POST
// /app/installations/{id}/access_tokens) and caches each token until
// TokenRefreshMargin before it expires, so many requests cost one exchange.
// It is safe for concurrent use; the private key and the tokens are never
// part of an error or a log line.
type App struct {
	id   int64
	key  *rsa.PrivateKey
	base *url.URL
	hc   *http.Client
	api  *gh.Client // authenticated as the App (a fresh JWT per request)
	now  func() time.Time

	mu       sync.Mutex
	tokens   map[tokenKey]*cachedToken
	installs map[string]int64 // "owner/repo" (lower case) → installation id
}

// AppOptions configure NewApp. ID and Key are required.
type AppOptions struct {
	// ID is the App's numeric ID (its settings page: "App ID").
	ID  int64
	Key *rsa.PrivateKey
	// BaseURL is the REST API ("" : DefaultBaseURL; GitHub Enterprise: https://HOST/api/v3).
	BaseURL string
	// HTTPClient makes the requests (nil: one with a per-request timeout).
	// Its Transport carries every request, the App's own and the
	// installation's; its Timeout bounds each.
	HTTPClient *http.Client
	// Now is the clock of JWTs and token expiry (nil: time.Now); tests move it.
	Now func() time.Time
}

type tokenKey struct {
	installation int64
	repo         string // the repository the token is scoped to (name only, lower case)
}

type cachedToken struct {
	mu      sync.Mutex // held during an exchange: concurrent callers wait for one
	token   string
	expires time.Time
}

// NewApp returns an App for the REST API at o.BaseURL.
func NewApp(o AppOptions) (*App, error) {
	if o.ID <= 0 {
		return nil, errors.New("a GitHub App needs its numeric ID (app_id, on the App's settings page)")
	}
	if o.Key == nil {
		return nil, errors.New("a GitHub App needs its private key (the .pem file generated on the App's settings page)")
	}
	hc := o.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: requestTimeout}
	}
	a := &App{id: o.ID, key: o.Key, hc: hc, now: o.Now, tokens: map[tokenKey]*cachedToken{}, installs: map[string]int64{}}
	if a.now == nil {
		a.now = time.Now
	}
	api, err := NewClient("", o.BaseURL, &http.Client{Timeout: hc.Timeout, Transport: &jwtTransport{app: a, base: transport(hc)}})
	if err != nil {
		return nil, err
	}
	a.api, a.base = api, api.BaseURL
	return a, nil
}

// ID is the App's numeric ID.
func (a *App) ID() int64 { return a.id }

func transport(hc *http.Client) http.RoundTripper {
	if hc.Transport != nil {
		return hc.Transport
	}
	return http.DefaultTransport
}

// JWT is a token that authenticates as the App: RS256, iss the App's ID,
// iat JWTClockDrift in the past, exp JWTMaxLifetime-JWTClockDrift ahead.
func (a *App) JWT() (string, error) {
	now := a.now()
	claims := jwt.RegisteredClaims{
		Issuer:    strconv.FormatInt(a.id, 10),
		IssuedAt:  jwt.NewNumericDate(now.Add(-JWTClockDrift)),
		ExpiresAt: jwt.NewNumericDate(now.Add(JWTMaxLifetime - JWTClockDrift)),
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodRS256, claims).SignedString(a.key)
	if err != nil {
		// The error names no part of the key.
		return "", fmt.Errorf("signing the GitHub App %d JWT: %w", a.id, err)
	}
	return s, nil
}

// AppError is a failure to act as an App installation: finding the
// installation or creating its token. GitHub's answer is in its chain, so
// StatusCode and IsRateLimited see it.
type AppError struct {
	AppID        int64
	Installation int64
	// Repo is owner/name.
	Repo string
	// Op is what failed: "find the App's installation", "create an installation token".
	Op  string
	Err error
}

func (e *AppError) Error() string {
	var hint string
	switch s := StatusCode(e.Err); {
	case IsRateLimited(e.Err):
		hint = "GitHub's rate limit was hit; it is retried"
	case s == http.StatusUnauthorized:
		hint = "GitHub refused the App's JWT: check app_id and that the private key is this App's (and that the server's clock is right: the JWT is valid for minutes)"
	case s == http.StatusNotFound && e.Installation == 0:
		hint = "the App is not installed on " + e.Repo + ": install it (the App's page → Install App) and give it access to the repository"
	case s == http.StatusNotFound:
		hint = fmt.Sprintf("installation %d does not exist or is not this App's: fix installation_id in server.yaml or leave it out so it is looked up", e.Installation)
	case s == http.StatusUnprocessableEntity:
		hint = "the installation has no access to " + e.Repo + ": add the repository to the App's installation (Settings → GitHub Apps → Configure)"
	case s == http.StatusForbidden:
		hint = "GitHub refused: is the installation suspended?"
	}
	msg := fmt.Sprintf("GitHub App %d: %s for %s", e.AppID, e.Op, e.Repo)
	if e.Installation != 0 {
		msg += fmt.Sprintf(" (installation %d)", e.Installation)
	}
	msg += ": " + e.Err.Error()
	if hint != "" {
		msg += ": " + hint
	}
	return msg
}

func (e *AppError) Unwrap() error { return e.Err }

// InstallationID finds the App's installation on owner/repo (GET
// /repos/{owner}/{repo}/installation, authenticated with the JWT) and
// remembers it.
func (a *App) InstallationID(ctx context.Context, owner, repo string) (int64, error) {
	k := strings.ToLower(owner + "/" + repo)
	a.mu.Lock()
	id, ok := a.installs[k]
	a.mu.Unlock()
	if ok {
		return id, nil
	}
	inst, _, err := a.api.Apps.FindRepositoryInstallation(ctx, owner, repo)
	if err != nil {
		return 0, &AppError{AppID: a.id, Repo: owner + "/" + repo, Op: "find the App's installation", Err: err}
	}
	if inst.GetID() <= 0 {
		return 0, &AppError{AppID: a.id, Repo: owner + "/" + repo, Op: "find the App's installation", Err: errors.New("GitHub's answer has no installation id")}
	}
	a.mu.Lock()
	a.installs[k] = inst.GetID()
	a.mu.Unlock()
	return inst.GetID(), nil
}

// Token is an installation access token for owner/repo, scoped to that
// repository: the cached one while it has more than TokenRefreshMargin to
// live, else a new one. installation 0 looks the installation up.
func (a *App) Token(ctx context.Context, owner, repo string, installation int64) (string, error) {
	looked := installation == 0
	if looked {
		id, err := a.InstallationID(ctx, owner, repo)
		if err != nil {
			return "", err
		}
		installation = id
	}
	k := tokenKey{installation: installation, repo: strings.ToLower(repo)}
	a.mu.Lock()
	e := a.tokens[k]
	if e == nil {
		e = &cachedToken{}
		a.tokens[k] = e
	}
	a.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.token != "" && a.now().Add(TokenRefreshMargin).Before(e.expires) {
		return e.token, nil
	}
	t, _, err := a.api.Apps.CreateInstallationToken(ctx, installation, &gh.InstallationTokenOptions{Repositories: []string{repo}})
	if err != nil {
		if looked && StatusCode(err) == http.StatusNotFound {
			a.forgetInstallation(owner, repo) // reinstalled: look it up again next time
		}
		return "", &AppError{AppID: a.id, Installation: installation, Repo: owner + "/" + repo, Op: "create an installation token", Err: err}
	}
	if t.GetToken() == "" {
		return "", &AppError{AppID: a.id, Installation: installation, Repo: owner + "/" + repo, Op: "create an installation token", Err: errors.New("GitHub's answer has no token")}
	}
	e.token = t.GetToken()
	e.expires = t.GetExpiresAt().Time
	if e.expires.IsZero() {
		e.expires = a.now().Add(InstallationTokenLifetime)
	}
	return e.token, nil
}

// forget drops a cached token GitHub refused (revoked, or the App was
// reinstalled), so the next request gets a new one.
func (a *App) forget(owner, repo string, installation int64, token string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, e := range a.tokens {
		if k.repo != strings.ToLower(repo) || (installation != 0 && k.installation != installation) {
			continue
		}
		if e.mu.TryLock() {
			if e.token == token {
				e.token = ""
			}
			e.mu.Unlock()
		}
	}
	if installation == 0 {
		delete(a.installs, strings.ToLower(owner+"/"+repo))
	}
}

func (a *App) forgetInstallation(owner, repo string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.installs, strings.ToLower(owner+"/"+repo))
}

// Client is a go-github client acting as the App's installation on
// owner/repo: each request carries an installation token (Token), so a
// client kept for longer than a token lives (a report at the end of a long
// run) still works. installation 0 looks the installation up on first use.
// The token goes only to the API's own host.
func (a *App) Client(owner, repo string, installation int64) (*gh.Client, error) {
	t := &installationTransport{app: a, owner: owner, repo: repo, installation: installation, host: a.base.Host, base: transport(a.hc)}
	return NewClient("", a.base.String(), &http.Client{Timeout: a.hc.Timeout, Transport: t})
}

// jwtTransport authenticates the App's own requests with a fresh JWT.
type jwtTransport struct {
	app  *App
	base http.RoundTripper
}

func (t *jwtTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host != t.app.base.Host {
		return t.base.RoundTrip(req)
	}
	tok, err := t.app.JWT()
	if err != nil {
		closeBody(req)
		return nil, err
	}
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", "Bearer "+tok)
	return t.base.RoundTrip(r)
}

// installationTransport authenticates with the installation's token.
type installationTransport struct {
	app          *App
	owner, repo  string
	installation int64
	host         string
	base         http.RoundTripper
}

func (t *installationTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host != t.host {
		return t.base.RoundTrip(req) // never hand the token to another host (a redirect)
	}
	tok, err := t.app.Token(req.Context(), t.owner, t.repo, t.installation)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", "Bearer "+tok)
	resp, err := t.base.RoundTrip(r)
	if err == nil && resp.StatusCode == http.StatusUnauthorized {
		t.app.forget(t.owner, t.repo, t.installation, tok)
	}
	return resp, err
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}
