package githubtest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// GitHub App limits the fake enforces, as GitHub documents them
// (https://docs.github.com/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-json-web-token-jwt-for-a-github-app).
const (
	// MaxJWTLifetime: exp "must be no more than 10 minutes into the future".
	MaxJWTLifetime = 10 * time.Minute
	// InstallationTokenLifetime: "The installation access token will expire after 1 hour".
	InstallationTokenLifetime = time.Hour
)

// AppRequired is GitHub's answer to a check run written with a personal
// access token: the Checks API is for GitHub Apps only.
var AppRequired = Fault{Status: 403, Body: `{"message":"You must authenticate via a GitHub App.","documentation_url":"https://docs.github.com/rest/checks/runs#create-a-check-run"}`}

var (
	testKeyOnce sync.Once
	testKey     *rsa.PrivateKey
)

// TestKey is a 2048-bit RSA key (GitHub's App keys are 2048-bit), made once
// per test process.
func TestKey() *rsa.PrivateKey {
	testKeyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic("githubtest: generating the test key: " + err.Error())
		}
		testKey = k
	})
	return testKey
}

// KeyPEM is key as GitHub hands out an App's private key: PKCS#1 PEM
// ("-----BEGIN RSA PRIVATE KEY-----").
func KeyPEM(key *rsa.PrivateKey) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
}

// App is the GitHub App side of the fake: with it enabled (Fake.EnableApp),
// POST /app/installations/{id}/access_tokens and GET
// /repos/{owner}/{repo}/installation answer to a JWT signed with Key (RS256,
// iss the App's ID, exp in the future and at most MaxJWTLifetime ahead, iat
// in the past), and every other endpoint wants an installation token the fake
// issued (unexpired, for that repository) or one of PATs (which GitHub
// refuses for check runs: AppRequired). Set fields before the first request.
type App struct {
	ID  int64
	Key *rsa.PrivateKey
	// PATs are personal access tokens the fake accepts.
	PATs map[string]bool
	// Now is the fake's clock for JWTs and token expiry (nil: time.Now).
	Now func() time.Time

	mu            sync.Mutex
	installations map[string]int64 // "owner/repo" (lower case) → installation id
	issued        map[string]*Issued
	exchanges     int
	lookups       int
	refused       []string
}

// Issued is an installation token the fake handed out.
type Issued struct {
	Token        string
	Installation int64
	// Repositories the token was scoped to (names, as requested); empty: all of the installation's.
	Repositories []string
	ExpiresAt    time.Time
}

// EnableApp turns on App authentication with the App id and TestKey.
func (f *Fake) EnableApp(id int64) *App {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.App = &App{ID: id, Key: TestKey(), PATs: map[string]bool{}, installations: map[string]int64{}, issued: map[string]*Issued{}}
	return f.App
}

// Install installs the App on repo ("owner/name") as installation id.
func (a *App) Install(repo string, id int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.installations[strings.ToLower(repo)] = id
}

// Uninstall removes the App from repo; its tokens stop working for it.
func (a *App) Uninstall(repo string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.installations, strings.ToLower(repo))
}

// Exchanges counts the installation tokens issued.
func (a *App) Exchanges() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.exchanges
}

// Lookups counts GET /repos/{owner}/{repo}/installation calls answered.
func (a *App) Lookups() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.lookups
}

// Refused lists why App requests were refused (bad or expired JWTs, ...), in order.
func (a *App) Refused() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.refused...)
}

// Tokens lists the tokens issued, in order.
func (a *App) Tokens() []Issued {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]Issued, 0, len(a.issued))
	for _, is := range a.issued {
		out = append(out, *is)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Token < out[j].Token })
	return out
}

// Valid reports whether an Authorization header may read repo ("owner/name"):
// an unexpired installation token scoped to it, or a PAT.
func (a *App) Valid(auth, repo string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	tok := bearer(auth)
	return a.PATs[tok] || a.validToken(tok, repo)
}

func (a *App) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func bearer(auth string) string {
	if t, ok := strings.CutPrefix(auth, "Bearer "); ok {
		return t
	}
	t, _ := strings.CutPrefix(auth, "token ")
	return t
}

func (a *App) validToken(tok, repo string) bool {
	is := a.issued[tok]
	if is == nil || !a.now().Before(is.ExpiresAt) {
		return false
	}
	owner, name, _ := strings.Cut(strings.ToLower(repo), "/")
	if a.installations[owner+"/"+name] != is.Installation {
		return false
	}
	if len(is.Repositories) == 0 {
		return true
	}
	for _, r := range is.Repositories {
		if strings.EqualFold(r, name) {
			return true
		}
	}
	return false
}

var (
	tokensPath  = regexp.MustCompile(`^/app/installations/(\d+)/access_tokens$`)
	installPath = regexp.MustCompile(`^/repos/([^/]+)/([^/]+)/installation$`)
	repoPath    = regexp.MustCompile(`^/repos/([^/]+)/([^/]+)(/.*)?$`)
)

// serve answers the App endpoints; it reports whether it did.
func (a *App) serve(w http.ResponseWriter, r *http.Request, body []byte) bool {
	switch {
	case r.Method == http.MethodPost && tokensPath.MatchString(r.URL.Path):
		id, _ := strconv.ParseInt(tokensPath.FindStringSubmatch(r.URL.Path)[1], 10, 64)
		if a.checkJWT(w, r) {
			a.createToken(w, id, body)
		}
		return true
	case r.Method == http.MethodGet && installPath.MatchString(r.URL.Path):
		m := installPath.FindStringSubmatch(r.URL.Path)
		if a.checkJWT(w, r) {
			a.findInstallation(w, m[1], m[2])
		}
		return true
	case strings.HasPrefix(r.URL.Path, "/app/"):
		writeJSONRaw(w, 404, `{"message":"Not Found"}`)
		return true
	}
	return false
}

// authorize checks a repository endpoint's token; it answers and returns
// false when the token may not.
func (a *App) authorize(w http.ResponseWriter, r *http.Request) bool {
	m := repoPath.FindStringSubmatch(r.URL.Path)
	if m == nil {
		return true
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	tok := bearer(r.Header.Get("Authorization"))
	switch {
	case a.PATs[tok] && strings.Contains(m[3], "check-runs"):
		writeJSONRaw(w, AppRequired.Status, AppRequired.Body)
		return false
	case a.PATs[tok] || a.validToken(tok, m[1]+"/"+m[2]):
		return true
	}
	writeJSONRaw(w, 401, `{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest"}`)
	return false
}

// checkJWT verifies the App's JWT as GitHub does; it answers 401 and returns false when it is not valid.
func (a *App) checkJWT(w http.ResponseWriter, r *http.Request) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	refuse := func(why string) bool {
		a.refused = append(a.refused, why)
		writeJSON(w, 401, map[string]string{"message": why, "documentation_url": "https://docs.github.com/rest"})
		return false
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		return refuse("A JSON web token could not be decoded (no Authorization: Bearer)")
	}
	var claims jwt.RegisteredClaims
	_, err := jwt.ParseWithClaims(tok, &claims, func(*jwt.Token) (any, error) { return &a.Key.PublicKey, nil },
		jwt.WithValidMethods([]string{"RS256"}), jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithIssuer(strconv.FormatInt(a.ID, 10)), jwt.WithExpirationRequired(), jwt.WithIssuedAt())
	switch {
	case err != nil:
		return refuse("A JSON web token could not be decoded: " + err.Error())
	case claims.IssuedAt == nil:
		return refuse("'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued")
	case claims.ExpiresAt.Sub(now) > MaxJWTLifetime:
		return refuse("'Expiration time' claim ('exp') is too far in the future")
	}
	return true
}

func (a *App) createToken(w http.ResponseWriter, id int64, body []byte) {
	var req struct {
		Repositories []string `json:"repositories"`
	}
	if len(body) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			writeJSONRaw(w, 400, `{"message":"Problems parsing JSON"}`)
			return
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	var repos []string
	for r, inst := range a.installations {
		if inst == id {
			repos = append(repos, r)
		}
	}
	if len(repos) == 0 {
		writeJSONRaw(w, 404, `{"message":"Not Found","documentation_url":"https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app"}`)
		return
	}
	for _, want := range req.Repositories {
		found := false
		for _, r := range repos {
			_, name, _ := strings.Cut(r, "/")
			found = found || strings.EqualFold(name, want)
		}
		if !found {
			writeJSONRaw(w, 422, `{"message":"There is at least one repository that does not exist or is not accessible to the parent installation.","documentation_url":"https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app"}`)
			return
		}
	}
	a.exchanges++
	is := &Issued{Token: fmt.Sprintf("ghs_fake%06d", a.exchanges), Installation: id, Repositories: req.Repositories,
		ExpiresAt: a.now().Add(InstallationTokenLifetime).UTC().Truncate(time.Second)}
	a.issued[is.Token] = is
	writeJSON(w, 201, map[string]any{
		"token":                is.Token,
		"expires_at":           is.ExpiresAt.Format(time.RFC3339),
		"permissions":          map[string]string{"checks": "write", "contents": "read", "metadata": "read", "pull_requests": "read"},
		"repository_selection": "selected",
	})
}

func (a *App) findInstallation(w http.ResponseWriter, owner, repo string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	id, ok := a.installations[strings.ToLower(owner+"/"+repo)]
	if !ok {
		writeJSONRaw(w, 404, `{"message":"Not Found","documentation_url":"https://docs.github.com/rest/apps/apps#get-a-repository-installation-for-the-authenticated-app"}`)
		return
	}
	a.lookups++
	writeJSON(w, 200, map[string]any{"id": id, "app_id": a.ID, "account": map[string]string{"login": owner}, "target_type": "Organization"})
}
