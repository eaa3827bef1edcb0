package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	gh "github.com/google/go-github/v62/github"

	"github.com/zof-ai/zof-ci/api"
	cigithub "github.com/zof-ai/zof-ci/internal/ci/github"
	"github.com/zof-ai/zof-ci/internal/diff"
	ghreport "github.com/zof-ai/zof-ci/internal/reporters/github"
	"github.com/zof-ai/zof-ci/internal/reporters/report"
	"github.com/zof-ai/zof-ci/internal/secret"
	"github.com/zof-ai/zof-ci/internal/server/config"
	"github.com/zof-ai/zof-ci/internal/trigger"
)

// GitHub's webhook headers
// (https://docs.github.com/webhooks/webhook-events-and-payloads#delivery-headers).
const (
	HeaderGitHubSignature = "X-Hub-Signature-256"
	HeaderGitHubEvent     = "X-GitHub-Event"
	HeaderGitHubDelivery  = "X-GitHub-Delivery"
)

// githubActions are the pull_request actions that put new code on the pull
// request (or make it ready); the rest (closed, labeled, edited, ...) create no run.
var githubActions = []string{"opened", "synchronize", "reopened", "ready_for_review"}

// SignGitHub is the X-Hub-Signature-256 value GitHub sends for body.
func SignGitHub(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// VerifyGitHub checks an X-Hub-Signature-256 value against body in constant
// time ("Validating webhook deliveries",
// https://docs.github.com/webhooks/using-webhooks/validating-webhook-deliveries).
func VerifyGitHub(header string, body []byte, secret string) bool {
	hexSig, ok := strings.CutPrefix(strings.TrimSpace(header), "sha256=")
	if !ok || secret == "" {
		return false
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil || len(got) != sha256.Size {
		return false
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

// ServeGitHub is POST /v1/webhooks/github: the body's HMAC-SHA256 signature
// (X-Hub-Signature-256) must match a repository's webhook secret.
func (r *Receiver) ServeGitHub(w http.ResponseWriter, req *http.Request) {
	r.serve(w, req, githubEndpoint)
}

var githubEndpoint = &endpoint{
	provider: config.ProviderGitHub,
	verify: func(req *http.Request, body []byte, secret string) bool {
		return VerifyGitHub(req.Header.Get(HeaderGitHubSignature), body, secret)
	},
	credentialHeader: HeaderGitHubSignature,
	refusedTitle:     "Bad signature",
	refusedLog:       "github webhook refused: bad signature",
	refusedAttrs:     func(req *http.Request) []any { return []any{"delivery", req.Header.Get(HeaderGitHubDelivery)} },
	noCredential:     "no X-Hub-Signature-256: set a Secret on the GitHub webhook (the value of the repository's webhook_secret_env in server.yaml)",
	badCredential:    "X-Hub-Signature-256 does not match the body with any configured webhook secret; set the webhook's Secret to the value of the repository's webhook_secret_env",
	otherRepo:        "the delivery is signed with another repository's webhook secret; set this webhook's Secret to the value of its own webhook_secret_env",
	headers: func(req *http.Request) (event, delivery string) {
		return req.Header.Get(HeaderGitHubEvent), req.Header.Get(HeaderGitHubDelivery)
	},
	missingTitle:  "Missing GitHub headers",
	missingDetail: "X-GitHub-Event and X-GitHub-Delivery (at most 200 printable characters) are required; is this a GitHub webhook?",
	decode:        decodeGitHub,
	repoWord:      "repository",
}

func findMatched(repos []*config.Repository, name string) *config.Repository {
	for _, repo := range repos {
		if strings.EqualFold(repo.Repo, name) {
			return repo
		}
	}
	return nil
}

// decodeGitHub reads a delivery's payload: the job, or why it creates no run
// (reason), or why it is malformed (err).
func decodeGitHub(event string, body []byte) (j *job, reason string, err error) {
	switch cigithub.Kind(event) {
	case cigithub.KindPullRequest, cigithub.KindPush, cigithub.KindMergeGroup:
	default:
		return nil, fmt.Sprintf("event %q creates no run (zof acts on pull_request, push and merge_group)", event), nil
	}
	ev, err := cigithub.ParseEvent(event, body)
	if err != nil {
		return nil, "", err
	}
	var extra struct {
		Sender *struct {
			Login string `json:"login"`
		} `json:"sender"`
		// Installation is sent with the deliveries of a GitHub App's webhook.
		Installation *struct {
			ID int64 `json:"id"`
		} `json:"installation"`
	}
	_ = json.Unmarshal(body, &extra) // it parsed above; sender and installation are optional
	j = &job{Provider: config.ProviderGitHub, Event: event, Action: ev.Action, Repo: ev.Owner + "/" + ev.Repo,
		PR: ev.PR, BaseSHA: ev.BaseSHA, HeadSHA: ev.HeadSHA, ChangedFiles: ev.ChangedFiles}
	if extra.Sender != nil {
		j.Actor = extra.Sender.Login
	}
	if extra.Installation != nil && extra.Installation.ID > 0 {
		j.InstallationID = extra.Installation.ID
	}
	switch ev.Kind {
	case cigithub.KindPullRequest:
		if !slices.Contains(githubActions, ev.Action) {
			return nil, fmt.Sprintf("pull_request action %q creates no run (only %s do)", ev.Action, strings.Join(githubActions, ", ")), nil
		}
		j.Ref = ev.HeadRef
	case cigithub.KindMergeGroup:
		if ev.Action != "checks_requested" {
			return nil, fmt.Sprintf("merge_group action %q creates no run (only checks_requested does)", ev.Action), nil
		}
		j.Ref = strings.TrimPrefix(ev.HeadRef, "refs/heads/")
	case cigithub.KindPush:
		branch, ok := strings.CutPrefix(ev.Ref, "refs/heads/")
		switch {
		case ev.Deleted:
			return nil, "the push deleted " + ev.Ref + ": nothing to test", nil
		case !ok:
			return nil, "push to " + ev.Ref + " is not a branch: only branch pushes create runs", nil
		case branch == "":
			return nil, "", fmt.Errorf("the push payload's ref %q names no branch", ev.Ref)
		}
		j.Ref = branch
	}
	if !validSHA(j.HeadSHA) {
		return nil, "", fmt.Errorf("the %s payload's head commit %q is not a commit sha", event, j.HeadSHA)
	}
	if ev.Kind != cigithub.KindPullRequest {
		// What scope changed compares (the compare API), decided now while
		// the payload is at hand; why not, when there is nothing to compare.
		if base, _, err := ev.CompareRange(); err != nil {
			j.NoCompare = err.Error()
		} else {
			j.CompareBase = base
		}
	}
	return j, "", nil
}

func validSHA(s string) bool {
	if len(s) < 7 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
			return false
		}
	}
	return true
}

// githubProvider reads and reports through GitHub's REST API.
type githubProvider struct {
	r           *Receiver
	c           *gh.Client
	owner, name string
	j           *job
	repo        *config.Repository
	check       *ghreport.CheckRun
}

// patCheckHint is logged with a refused check run of a repository that
// authenticates with token_env: GitHub creates check runs only for Apps.
const patCheckHint = "GitHub lets only GitHub Apps create check runs (a personal access token gets 403): configure app_id and private_key_env for this repository in server.yaml (see docs/triggers.md)"

func (r *Receiver) githubProvider(repo *config.Repository, j *job, mask *secret.Masker) (*githubProvider, error) {
	c, err := r.repos.github(repo, j.InstallationID)
	if err != nil {
		return nil, err
	}
	owner, name, _ := strings.Cut(j.Repo, "/")
	p := &githubProvider{r: r, c: c, owner: owner, name: name, j: j, repo: repo}
	// A server log takes slog lines: the check run's notices come as plain
	// sentences (Notice), and without a Log it writes no workflow commands.
	notice := func(msg string) { r.log.Warn("github check run: "+msg, "repo", j.Repo) }
	if repo.App == nil {
		notice = func(msg string) { r.log.Warn("github check run: "+msg, "repo", j.Repo, "hint", patCheckHint) }
	}
	p.check = &ghreport.CheckRun{Client: c, Owner: owner, Repo: name, HeadSHA: j.HeadSHA, SuiteFile: repo.Suite, Mask: mask,
		Notice: notice, Retry: r.opts.GitHubRetry}
	return p, nil
}

func (p *githubProvider) readSuite(ctx context.Context) ([]byte, error) {
	return p.r.repos.readGitHub(ctx, p.c, p.repo, p.owner, p.name, p.j.HeadSHA)
}

// changes reads the change: a pull request's files (PRFiles), or for a push
// or merge group the comparison of the range decided from the payload
// (cigithub.Compare). Errors retrying cannot fix are *trigger.Permanent.
func (p *githubProvider) changes(ctx context.Context) (*diff.Result, error) {
	var src diff.Source
	switch {
	case p.j.Event == string(cigithub.KindPullRequest):
		src = &cigithub.PRFiles{Client: p.c, Owner: p.owner, Repo: p.name, Number: p.j.PR, Base: p.j.BaseSHA, Head: p.j.HeadSHA,
			ChangedFiles: p.j.ChangedFiles, Retry: p.r.opts.GitHubRetry}
	case p.j.CompareBase == "":
		why := p.j.NoCompare
		if why == "" {
			why = "the delivery names no commit to compare with"
		}
		return nil, &trigger.Permanent{Err: fmt.Errorf("%w: %s", errNoChange, why)}
	default:
		src = &cigithub.Compare{Client: p.c, Owner: p.owner, Repo: p.name, Base: p.j.CompareBase, Head: p.j.HeadSHA, Retry: p.r.opts.GitHubRetry}
	}
	d, err := src.Changes(ctx)
	if err != nil && permanentGitHub(err) {
		return nil, &trigger.Permanent{Err: err}
	}
	return d, err
}

func (p *githubProvider) start(ctx context.Context, run *api.Run) {
	if err := p.check.Start(ctx, run); err != nil {
		p.r.log.Warn("github check run not started", "repo", p.j.Repo, "run", run.ID, "err", err)
	}
}

func (p *githubProvider) report(ctx context.Context, res *report.Result) {
	if err := p.check.Report(ctx, res); err != nil {
		p.r.log.Warn("github check run not completed", "repo", p.j.Repo, "run", res.Run.ID, "err", err)
	}
}

// failedCheckName names the check run of a delivery that made no run.
const failedCheckName = "Zof · webhook"

func (p *githubProvider) failed(ctx context.Context, triggerID, reason string) {
	summary := ghreport.FitOutput("Zof received this push but could not start a run:\n\n" + reason +
		"\n\nThe trigger is " + triggerID + " (GET /v1/triggers on the Zof server).")
	_, _, err := p.c.Checks.CreateCheckRun(ctx, p.owner, p.name, gh.CreateCheckRunOptions{
		Name: failedCheckName, HeadSHA: p.j.HeadSHA, Status: gh.String("completed"), Conclusion: gh.String("failure"),
		ExternalID: gh.String(triggerID),
		Output:     &gh.CheckRunOutput{Title: gh.String("Zof could not start a run"), Summary: gh.String(summary)},
	})
	if err != nil {
		if p.repo.App == nil && cigithub.IsPermissionDenied(err) {
			p.r.log.Warn("the failed trigger could not be posted as a check run", "repo", p.j.Repo, "trigger", triggerID, "err", err, "hint", patCheckHint)
			return
		}
		p.r.log.Warn("the failed trigger could not be posted as a check run", "repo", p.j.Repo, "trigger", triggerID, "err", err)
	}
}

// permanentGitHub reports whether a GitHub API error cannot be fixed by retrying.
func permanentGitHub(err error) bool {
	if cigithub.IsRateLimited(err) {
		return false
	}
	s := cigithub.StatusCode(err)
	return s == http.StatusNotFound || s == http.StatusUnauthorized || s == http.StatusForbidden || s == http.StatusUnprocessableEntity
}

var errTooLarge = errors.New("larger than a suite file may be")
