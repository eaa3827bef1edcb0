package webhook

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	gh "github.com/google/go-github/v62/github"
	gl "gitlab.com/gitlab-org/api/client-go"

	cigithub "github.com/zof-ai/zof-ci/internal/ci/github"
	cigitlab "github.com/zof-ai/zof-ci/internal/ci/gitlab"
	"github.com/zof-ai/zof-ci/internal/server/config"
	"github.com/zof-ai/zof-ci/internal/suite"
	"github.com/zof-ai/zof-ci/internal/trigger"
)

// Repos reads repositories through their APIs with the credentials of
// server.yaml: token_env's token, or a GitHub App's installation tokens,
// which it mints and caches (one exchange per installation and repository
// for as long as a token lives). The webhook receiver and the scheduler
// share one (Receiver.Repos), so they share the tokens too. Set the fields
// before first use; the zero value works.
type Repos struct {
	// GitHubAPIURL and GitLabAPIURL apply to repositories without api_url.
	GitHubAPIURL string
	GitLabAPIURL string
	HTTPClient   *http.Client
	GitHubRetry  cigithub.Retry
	GitLabRetry  cigitlab.Retry
	// Now is the clock of GitHub App tokens (nil: time.Now); tests move it.
	Now func() time.Time

	mu   sync.Mutex
	apps map[string]*cigithub.App // by API URL, App ID and key
}

// Repos is the receiver's repository access, to share with the scheduler
// (schedule.Options.Repos), so both use the same GitHub App tokens.
func (r *Receiver) Repos() *Repos { return r.repos }

// github is a client for repo: its GitHub App's installation (the
// configured installation_id, else installation, the webhook's, else looked
// up), or its token.
func (rs *Repos) github(repo *config.Repository, installation int64) (*gh.Client, error) {
	base := repo.APIURL
	if base == "" {
		base = rs.GitHubAPIURL
	}
	var c *gh.Client
	var err error
	if repo.App != nil {
		var app *cigithub.App
		if app, err = rs.app(repo.App, base); err == nil {
			if repo.App.InstallationID != 0 {
				installation = repo.App.InstallationID
			}
			owner, name, _ := strings.Cut(repo.Repo, "/")
			c, err = app.Client(owner, name, installation)
		}
	} else {
		c, err = cigithub.NewClient(repo.Token.Value(), base, rs.HTTPClient)
	}
	if err != nil {
		return nil, &trigger.Permanent{Err: fmt.Errorf("repository %s: %w (api_url in server.yaml)", repo.Repo, err)}
	}
	return c, nil
}

// app is the cigithub.App of a repository's credentials, one per API URL,
// App ID and key, so repositories reached through the same App share its
// tokens.
func (rs *Repos) app(a *config.GitHubApp, base string) (*cigithub.App, error) {
	der := x509.MarshalPKCS1PublicKey(&a.Key.PublicKey)
	fp := sha256.Sum256(der)
	k := base + "\x00" + strconv.FormatInt(a.ID, 10) + "\x00" + hex.EncodeToString(fp[:])
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if app := rs.apps[k]; app != nil {
		return app, nil
	}
	app, err := cigithub.NewApp(cigithub.AppOptions{ID: a.ID, Key: a.Key, BaseURL: base, HTTPClient: rs.HTTPClient, Now: rs.Now})
	if err != nil {
		return nil, err
	}
	if rs.apps == nil {
		rs.apps = map[string]*cigithub.App{}
	}
	rs.apps[k] = app
	return app, nil
}

// credential names what a GitHub repository authenticates with, for hints:
// "the GitHub App" or "token_env's token".
func credential(repo *config.Repository) string {
	if repo.App != nil {
		return fmt.Sprintf("GitHub App %d", repo.App.ID)
	}
	return "token_env's token"
}

// grantHint says how to grant a GitHub permission ("contents: read") to
// the repository's credential.
func grantHint(repo *config.Repository, permission string) string {
	if repo.App != nil {
		return fmt.Sprintf("give GitHub App %d the repository permission %s (its settings → Permissions), then accept the new permissions on the installation", repo.App.ID, permission)
	}
	return "token_env in server.yaml needs " + permission
}

func (rs *Repos) gitlab(repo *config.Repository) (*gl.Client, error) {
	base := repo.APIURL
	if base == "" {
		base = rs.GitLabAPIURL
	}
	if base == "" {
		base = DefaultGitLabAPIURL
	}
	c, err := cigitlab.NewClient(repo.Token.Value(), base, rs.HTTPClient, rs.GitLabRetry)
	if err != nil {
		return nil, &trigger.Permanent{Err: fmt.Errorf("repository %s: %w (api_url and token_env in server.yaml)", repo.Repo, err)}
	}
	return c, nil
}

// ReadSuite reads the repository's suite file at ref (a commit, branch or
// tag; "" is the default branch) through the provider's API. A missing file
// or a refused token is a *trigger.Permanent error.
func (rs *Repos) ReadSuite(ctx context.Context, repo *config.Repository, ref string) ([]byte, error) {
	switch repo.Provider {
	case config.ProviderGitHub:
		c, err := rs.github(repo, 0)
		if err != nil {
			return nil, err
		}
		owner, name, _ := strings.Cut(repo.Repo, "/")
		return rs.readGitHub(ctx, c, repo, owner, name, ref)
	case config.ProviderGitLab:
		c, err := rs.gitlab(repo)
		if err != nil {
			return nil, err
		}
		return readGitLab(ctx, c, repo.Repo, repo.Suite, ref)
	}
	return nil, &trigger.Permanent{Err: fmt.Errorf("repository %s: unknown provider %q", repo.Repo, repo.Provider)}
}

// readGitHub is GET /repos/{owner}/{repo}/contents/{path}?ref= with the raw
// media type (https://docs.github.com/rest/repos/contents#get-repository-content:
// "application/vnd.github.raw+json: Returns the raw file contents", up to
// 100 MB, where the default JSON form carries content only up to 1 MB).
func (rs *Repos) readGitHub(ctx context.Context, c *gh.Client, repo *config.Repository, owner, name, ref string) ([]byte, error) {
	path := repo.Suite
	u := "repos/" + url.PathEscape(owner) + "/" + url.PathEscape(name) + "/contents/" + escapePath(path)
	if ref != "" {
		u += "?ref=" + url.QueryEscape(ref)
	}
	var data []byte
	err := rs.GitHubRetry.Do(ctx, func() (*gh.Response, error) {
		req, err := c.NewRequest(http.MethodGet, u, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept", "application/vnd.github.raw+json")
		buf := &limitBuffer{max: suite.MaxFileSize}
		resp, err := c.Do(ctx, req, buf)
		data = buf.b.Bytes()
		return resp, err
	})
	where := fmt.Sprintf("%s in %s/%s at %s", path, owner, name, orDefault(ref))
	var appErr *cigithub.AppError
	switch {
	case err == nil:
		return data, nil
	case errors.As(err, &appErr):
		// The App could not get a token: its error says why.
		if permanentGitHub(err) {
			return nil, &trigger.Permanent{Err: fmt.Errorf("reading suite file %s: %w", where, appErr)}
		}
		return nil, fmt.Errorf("reading suite file %s: %w", where, appErr)
	case cigithub.StatusCode(err) == http.StatusNotFound:
		return nil, &trigger.Permanent{Err: fmt.Errorf("suite file %s not found (GitHub answered 404): add it, fix `suite:` in server.yaml, or %s", where, grantHint(repo, "contents: read"))}
	case permanentGitHub(err):
		return nil, &trigger.Permanent{Err: fmt.Errorf("reading suite file %s: GitHub refused %s (%s): %w", where, credential(repo), grantHint(repo, "contents: read"), err)}
	case strings.Contains(err.Error(), errTooLarge.Error()):
		return nil, &trigger.Permanent{Err: fmt.Errorf("suite file %s is larger than %d MiB", where, suite.MaxFileSize>>20)}
	}
	return nil, fmt.Errorf("reading suite file %s: %w", where, err)
}

// readGitLab is GET /projects/:id/repository/files/:path/raw?ref=
// (https://docs.gitlab.com/api/repository_files/#get-raw-file-from-repository).
func readGitLab(ctx context.Context, c *gl.Client, project, path, ref string) ([]byte, error) {
	if ref == "" {
		ref = "HEAD" // the API requires a ref; HEAD is the default branch
	}
	data, _, err := c.RepositoryFiles.GetRawFile(project, path, &gl.GetRawFileOptions{Ref: gl.Ptr(ref)}, gl.WithContext(ctx))
	where := fmt.Sprintf("%s in %s at %s", path, project, ref)
	switch s := cigitlab.StatusCode(err); {
	case err == nil:
		if len(data) > suite.MaxFileSize {
			return nil, &trigger.Permanent{Err: fmt.Errorf("suite file %s is larger than %d MiB", where, suite.MaxFileSize>>20)}
		}
		return data, nil
	case s == http.StatusNotFound || errors.Is(err, gl.ErrNotFound):
		return nil, &trigger.Permanent{Err: fmt.Errorf("suite file %s not found (GitLab answered 404): add it, fix `suite:` in server.yaml, or give the token read_repository access", where)}
	case s == http.StatusUnauthorized || s == http.StatusForbidden:
		return nil, &trigger.Permanent{Err: fmt.Errorf("reading suite file %s: GitLab refused the token (token_env in server.yaml needs api or read_repository scope): %w", where, err)}
	}
	return nil, fmt.Errorf("reading suite file %s: %w", where, err)
}

func orDefault(ref string) string {
	if ref == "" {
		return "the default branch"
	}
	return ref
}

// escapePath escapes each segment of a repository path.
func escapePath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.Join(parts, "/")
}

// limitBuffer is an io.Writer that refuses more than max bytes.
type limitBuffer struct {
	b   bytes.Buffer
	max int
}

func (l *limitBuffer) Write(p []byte) (int, error) {
	if l.b.Len()+len(p) > l.max {
		return 0, errTooLarge
	}
	return l.b.Write(p)
}

// logWriter turns the GitLab reporters' notices (plain lines) into log lines.
type logWriter struct {
	log        *slog.Logger
	what, repo string
}

func (w logWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimSpace(string(p)), "\n") {
		if line != "" {
			w.log.Info(w.what+": "+line, "repo", w.repo)
		}
	}
	return len(p), nil
}

func truncate(s string, max int) string {
	r := []rune(s)
	if len(r) <= max {
		return s
	}
	return string(r[:max-1]) + "…"
}
