package webhook

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	gl "gitlab.com/gitlab-org/api/client-go"

	"github.com/zof-ai/zof-ci/api"
	cigitlab "github.com/zof-ai/zof-ci/internal/ci/gitlab"
	"github.com/zof-ai/zof-ci/internal/diff"
	glreport "github.com/zof-ai/zof-ci/internal/reporters/gitlab"
	"github.com/zof-ai/zof-ci/internal/reporters/report"
	"github.com/zof-ai/zof-ci/internal/secret"
	"github.com/zof-ai/zof-ci/internal/server/config"
	"github.com/zof-ai/zof-ci/internal/trigger"
)

// GitLab's webhook headers (https://docs.gitlab.com/user/project/integrations/webhooks/).
const (
	HeaderGitLabToken = "X-Gitlab-Token"
	HeaderGitLabEvent = "X-Gitlab-Event"
	// HeaderGitLabIdempotencyKey is "a unique ID that remains consistent
	// across webhook retries" (GitLab 17.4+): the delivery id when present.
	HeaderGitLabIdempotencyKey = "Idempotency-Key"
	// HeaderGitLabEventUUID identifies the event; the delivery id on older GitLab.
	HeaderGitLabEventUUID = "X-Gitlab-Event-UUID"
)

// GitLab event header values of the events zof acts on.
const (
	gitlabMergeRequestHook = "Merge Request Hook"
	gitlabPushHook         = "Push Hook"
)

// VerifyGitLab compares an X-Gitlab-Token with the secret in constant time
// (over SHA-256 digests, so not even the length is revealed).
func VerifyGitLab(token, secret string) bool {
	if token == "" || secret == "" {
		return false
	}
	a, b := sha256.Sum256([]byte(token)), sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// ServeGitLab is POST /v1/webhooks/gitlab: the secret token
// (X-Gitlab-Token) must equal a project's webhook secret.
func (r *Receiver) ServeGitLab(w http.ResponseWriter, req *http.Request) {
	r.serve(w, req, gitlabEndpoint)
}

var gitlabEndpoint = &endpoint{
	provider: config.ProviderGitLab,
	verify: func(req *http.Request, _ []byte, secret string) bool {
		return VerifyGitLab(req.Header.Get(HeaderGitLabToken), secret)
	},
	credentialHeader: HeaderGitLabToken,
	refusedTitle:     "Bad token",
	refusedLog:       "gitlab webhook refused: bad token",
	refusedAttrs:     func(*http.Request) []any { return nil },
	noCredential:     "no X-Gitlab-Token: set a Secret token on the GitLab webhook (the value of the project's webhook_secret_env in server.yaml)",
	badCredential:    "X-Gitlab-Token matches no configured webhook secret; set the webhook's Secret token to the value of the project's webhook_secret_env",
	otherRepo:        "the delivery carries another project's secret token; set this webhook's Secret token to the value of its own webhook_secret_env",
	headers: func(req *http.Request) (event, delivery string) {
		// GitLab 17.4+ sends Idempotency-Key; older versions only the event UUID.
		return req.Header.Get(HeaderGitLabEvent), cmp.Or(req.Header.Get(HeaderGitLabIdempotencyKey), req.Header.Get(HeaderGitLabEventUUID))
	},
	missingTitle:  "Missing GitLab headers",
	missingDetail: "X-Gitlab-Event and Idempotency-Key or X-Gitlab-Event-UUID (at most 200 printable characters) are required; is this a GitLab webhook?",
	decode:        decodeGitLab,
	repoWord:      "project",
}

// gitlabPayload is what zof reads of merge request and push events
// (https://docs.gitlab.com/user/project/integrations/webhook_events/).
type gitlabPayload struct {
	ObjectKind   string `json:"object_kind"`
	Before       string `json:"before"`
	After        string `json:"after"`
	Ref          string `json:"ref"`
	UserUsername string `json:"user_username"`
	User         *struct {
		Username string `json:"username"`
	} `json:"user"`
	Project *struct {
		ID                int64  `json:"id"`
		PathWithNamespace string `json:"path_with_namespace"`
	} `json:"project"`
	ObjectAttributes *struct {
		IID          int64  `json:"iid"`
		Action       string `json:"action"`
		SourceBranch string `json:"source_branch"`
		OldRev       string `json:"oldrev"`
		LastCommit   *struct {
			ID string `json:"id"`
		} `json:"last_commit"`
	} `json:"object_attributes"`
}

// decodeGitLab reads a delivery's payload: the job, or why it creates no run
// (reason), or why it is malformed (err).
func decodeGitLab(event string, body []byte) (j *job, reason string, err error) {
	var kind string
	switch event {
	case gitlabMergeRequestHook:
		kind = "merge_request"
	case gitlabPushHook:
		kind = "push"
	default:
		return nil, fmt.Sprintf("event %q creates no run (zof acts on Merge Request Hook and Push Hook)", event), nil
	}
	var p gitlabPayload
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, "", fmt.Errorf("the %s payload is not valid JSON: %w", event, err)
	}
	if p.ObjectKind != kind {
		return nil, "", fmt.Errorf("the %s payload has object_kind %q, want %q", event, p.ObjectKind, kind)
	}
	if p.Project == nil || p.Project.PathWithNamespace == "" {
		return nil, "", fmt.Errorf("the %s payload has no project.path_with_namespace", event)
	}
	j = &job{Provider: config.ProviderGitLab, Event: kind, Repo: p.Project.PathWithNamespace, ProjectID: p.Project.ID}
	switch kind {
	case "merge_request":
		a := p.ObjectAttributes
		if a == nil || a.IID <= 0 {
			return nil, "", fmt.Errorf("the %s payload has no object_attributes.iid", event)
		}
		if p.User != nil {
			j.Actor = p.User.Username
		}
		j.Action, j.PR, j.Ref = a.Action, int(a.IID), a.SourceBranch
		switch {
		case a.Action == "open" || a.Action == "reopen":
		case a.Action == "update" && a.OldRev != "":
			j.BaseSHA = a.OldRev
		case a.Action == "update":
			return nil, "merge request update without new commits (no oldrev) creates no run", nil
		default:
			return nil, fmt.Sprintf("merge request action %q creates no run (only open, reopen and update with new commits do)", a.Action), nil
		}
		if a.LastCommit != nil {
			j.HeadSHA = a.LastCommit.ID
		}
	case "push":
		j.Actor = p.UserUsername
		branch, ok := strings.CutPrefix(p.Ref, "refs/heads/")
		switch {
		case !ok || branch == "":
			return nil, "", fmt.Errorf("the %s payload's ref %q is not a branch", event, p.Ref)
		case strings.Trim(p.After, "0") == "" && p.After != "":
			return nil, "the push deleted " + p.Ref + ": nothing to test", nil
		}
		j.Ref, j.BaseSHA, j.HeadSHA = branch, p.Before, p.After
	}
	if !validSHA(j.HeadSHA) {
		return nil, "", fmt.Errorf("the %s payload's head commit %q is not a commit sha", event, j.HeadSHA)
	}
	return j, "", nil
}

// gitlabProvider reads and reports through GitLab's REST API.
type gitlabProvider struct {
	r       *Receiver
	c       *gl.Client
	project string
	j       *job
	repo    *config.Repository
	status  *glreport.Status
	note    *glreport.Note
}

func (r *Receiver) gitlabProvider(repo *config.Repository, j *job, mask *secret.Masker) (*gitlabProvider, error) {
	c, err := r.repos.gitlab(repo)
	if err != nil {
		return nil, err
	}
	project := j.Repo
	if j.ProjectID > 0 {
		project = strconv.FormatInt(j.ProjectID, 10)
	}
	log := logWriter{log: r.log, what: "gitlab report", repo: j.Repo}
	p := &gitlabProvider{r: r, c: c, project: project, j: j, repo: repo,
		status: &glreport.Status{Client: c, Project: project, SHA: j.HeadSHA, Mask: mask, Log: log}}
	if j.Event == "merge_request" {
		p.note = &glreport.Note{Client: c, Project: project, MRIID: int64(j.PR), Mask: mask, Log: log}
	}
	return p, nil
}

func (p *gitlabProvider) readSuite(ctx context.Context) ([]byte, error) {
	return readGitLab(ctx, p.c, p.project, p.repo.Suite, p.j.HeadSHA)
}

func (p *gitlabProvider) changes(ctx context.Context) (*diff.Result, error) {
	if p.j.Event != "merge_request" {
		return nil, &trigger.Permanent{Err: fmt.Errorf("%w (only merge requests have one on GitLab): configure scope all or smoke for %s", errNoChange, p.j.Event)}
	}
	src := &cigitlab.MRDiffs{Client: p.c, Project: p.project, MRIID: int64(p.j.PR), Head: p.j.HeadSHA}
	return src.Changes(ctx)
}

func (p *gitlabProvider) start(ctx context.Context, run *api.Run) {
	_ = p.status.Start(ctx, run) // it logs its own failures
}

func (p *gitlabProvider) report(ctx context.Context, res *report.Result) {
	_ = p.status.Report(ctx, res)
	if p.note != nil {
		_ = p.note.Report(ctx, res)
	}
}

func (p *gitlabProvider) failed(ctx context.Context, triggerID, reason string) {
	desc := truncate("zof could not start a run (trigger "+triggerID+"): "+reason, 255)
	_, _, err := p.c.Commits.SetCommitStatus(p.project, p.j.HeadSHA, &gl.SetCommitStatusOptions{
		State: gl.Failed, Name: gl.Ptr("zof: webhook"), Description: gl.Ptr(desc),
	}, gl.WithContext(ctx))
	if err != nil {
		p.r.log.Warn("the failed trigger could not be posted as a commit status", "repo", p.j.Repo, "trigger", triggerID, "err", err)
	}
}
