// Package gitlab reads the GitLab CI side of a job: which pipeline it is
// (merge request, merged results, branch), the change's two sides from the
// predefined variables, and a merge request's changed files from the REST API
// as a diff.Source (docs/ci.md).
package gitlab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	gl "gitlab.com/gitlab-org/api/client-go"

	"github.com/zof-ai/zof-ci/internal/retry"
)

// PipelineKind is what started a pipeline.
type PipelineKind string

// Pipeline kinds (https://docs.gitlab.com/ci/pipelines/merge_request_pipelines/,
// https://docs.gitlab.com/ci/pipelines/merged_results_pipelines/).
const (
	// MergeRequest: a merge request pipeline runs on the source branch's head.
	MergeRequest PipelineKind = "merge_request"
	// MergedResults: runs on a temporary merge of source into target (also merge trains).
	MergedResults PipelineKind = "merged_results"
	// Branch: a push to a branch.
	Branch PipelineKind = "branch"
	// Tag: a tag pipeline (no change to compute: scope all).
	Tag PipelineKind = "tag"
	// Other: schedules, API triggers, web runs without a merge request.
	Other PipelineKind = "other"
)

// ZeroSHA is CI_COMMIT_BEFORE_SHA on a branch's first pipeline and on merge request pipelines.
const ZeroSHA = "0000000000000000000000000000000000000000"

// Pipeline is the GitLab CI context zof needs, from predefined variables
// (https://docs.gitlab.com/ci/variables/predefined_variables/).
type Pipeline struct {
	Kind PipelineKind
	// ProjectID is CI_PROJECT_ID (the API's :id); ProjectPath is CI_PROJECT_PATH.
	ProjectID   string
	ProjectPath string
	// MRIID is CI_MERGE_REQUEST_IID, 0 outside merge request pipelines.
	MRIID int64
	// PipelineID is CI_PIPELINE_ID, for the commit status.
	PipelineID int64
	// CommitSHA is CI_COMMIT_SHA: what the pipeline runs (in a merged results
	// pipeline, the temporary merge commit).
	CommitSHA string
	// DiffBaseSHA is CI_MERGE_REQUEST_DIFF_BASE_SHA: the merge request diff's base.
	DiffBaseSHA string
	// TargetBranchSHA is CI_MERGE_REQUEST_TARGET_BRANCH_SHA (merged results only).
	TargetBranchSHA string
	// SourceBranchSHA is CI_MERGE_REQUEST_SOURCE_BRANCH_SHA (merged results
	// only): the merge request's head.
	SourceBranchSHA string
	TargetBranch    string
	SourceBranch    string
	// Branch is CI_COMMIT_BRANCH (branch pipelines); BeforeSHA is CI_COMMIT_BEFORE_SHA.
	Branch        string
	BeforeSHA     string
	DefaultBranch string
	// Fork is true when the merge request comes from another project.
	Fork bool
	// APIURL is CI_API_V4_URL; ServerURL is CI_SERVER_URL.
	APIURL    string
	ServerURL string
	JobURL    string
}

// FromEnv reads the pipeline from GitLab's predefined variables (lookup is
// os.LookupEnv in main). It errors only when GITLAB_CI is not "true" or the
// project is unknown; the kind decides what else is needed.
func FromEnv(lookup func(string) (string, bool)) (*Pipeline, error) {
	get := func(k string) string {
		v, _ := lookup(k)
		return strings.TrimSpace(v)
	}
	if get("GITLAB_CI") != "true" {
		return nil, errors.New("not a GitLab CI job (GITLAB_CI is not true)")
	}
	p := &Pipeline{
		ProjectID:       get("CI_PROJECT_ID"),
		ProjectPath:     get("CI_PROJECT_PATH"),
		CommitSHA:       get("CI_COMMIT_SHA"),
		DiffBaseSHA:     get("CI_MERGE_REQUEST_DIFF_BASE_SHA"),
		TargetBranchSHA: get("CI_MERGE_REQUEST_TARGET_BRANCH_SHA"),
		SourceBranchSHA: get("CI_MERGE_REQUEST_SOURCE_BRANCH_SHA"),
		TargetBranch:    get("CI_MERGE_REQUEST_TARGET_BRANCH_NAME"),
		SourceBranch:    get("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME"),
		Branch:          get("CI_COMMIT_BRANCH"),
		BeforeSHA:       get("CI_COMMIT_BEFORE_SHA"),
		DefaultBranch:   get("CI_DEFAULT_BRANCH"),
		APIURL:          get("CI_API_V4_URL"),
		ServerURL:       get("CI_SERVER_URL"),
		JobURL:          get("CI_JOB_URL"),
	}
	if p.ProjectID == "" && p.ProjectPath == "" {
		return nil, errors.New("CI_PROJECT_ID is not set: cannot tell which GitLab project this job belongs to")
	}
	p.MRIID, _ = strconv.ParseInt(get("CI_MERGE_REQUEST_IID"), 10, 64)
	p.PipelineID, _ = strconv.ParseInt(get("CI_PIPELINE_ID"), 10, 64)
	if src, dst := get("CI_MERGE_REQUEST_SOURCE_PROJECT_ID"), get("CI_MERGE_REQUEST_PROJECT_ID"); src != "" && dst != "" && src != dst {
		p.Fork = true
	}
	eventType := get("CI_MERGE_REQUEST_EVENT_TYPE") // detached | merged_result | merge_train
	switch {
	case p.MRIID > 0 && (eventType == "merged_result" || eventType == "merge_train"):
		p.Kind = MergedResults
	case p.MRIID > 0:
		p.Kind = MergeRequest
	case get("CI_COMMIT_TAG") != "":
		p.Kind = Tag
	case p.Branch != "":
		p.Kind = Branch
	default:
		p.Kind = Other
	}
	return p, nil
}

// ProjectRef is the project for API calls: the numeric id, else the path.
func (p *Pipeline) ProjectRef() string {
	if p.ProjectID != "" {
		return p.ProjectID
	}
	return p.ProjectPath
}

// StatusSHA is the commit a commit status goes on, with PipelineID:
// CI_COMMIT_SHA, the commit the pipeline runs. In a merged results pipeline
// that is the temporary merge commit: GitLab attaches a status to the
// pipeline only when sha and pipeline_id match, and that pipeline is the one
// the merge request shows. (A status on the source branch's head with another
// pipeline's id would start an external pipeline instead.)
func (p *Pipeline) StatusSHA() string { return p.CommitSHA }

// GitRange is the base and head for a three-dot git diff (diff.Git):
//   - merge request: CI_MERGE_REQUEST_DIFF_BASE_SHA .. CI_COMMIT_SHA;
//   - merged results: CI_MERGE_REQUEST_TARGET_BRANCH_SHA .. CI_COMMIT_SHA
//     (the merge commit against the target it was made on: exactly the merge
//     request's changes);
//   - branch: CI_COMMIT_BEFORE_SHA .. CI_COMMIT_SHA, or the default branch
//     (origin/<default>) when before is all zeros (a new branch);
//
// ok is false for tags and other pipelines, and when a needed sha is missing.
func (p *Pipeline) GitRange() (base, head string, ok bool) {
	head = p.CommitSHA
	switch p.Kind {
	case MergeRequest:
		base = p.DiffBaseSHA
	case MergedResults:
		base = p.TargetBranchSHA
		if base == "" {
			base = p.DiffBaseSHA
		}
	case Branch:
		base = p.BeforeSHA
		if base == "" || strings.Trim(base, "0") == "" {
			if p.DefaultBranch == "" || p.DefaultBranch == p.Branch {
				return "", head, false
			}
			base = "origin/" + p.DefaultBranch
		}
	default:
		return "", head, false
	}
	return base, head, base != "" && head != ""
}

// requestTimeout bounds one API request.
const requestTimeout = 30 * time.Second

// Retry tunes how the client retries a 429, a 5xx or a refused connection. Every request
// goes through internal/retry, the one policy of all of zof's HTTP calls: full-jitter
// backoff, GitLab's Retry-After / RateLimit-Reset honoured, until the context's deadline or,
// without one, MaxWait. A rate limit that resets later than that is not waited for.
type Retry struct {
	// MaxWait bounds the retrying when the context has no deadline (0:
	// DefaultMaxRateLimitWait).
	MaxWait time.Duration
	// Delay, when set, is both the base and the cap of the backoff (tests pass a
	// nanosecond; 0: the policy's defaults).
	Delay time.Duration
	// Sleep waits d or until ctx is done (nil: a timer); with Now nil, the policy's clock
	// then moves by what was slept (see retry.Policy.Now).
	Sleep func(ctx context.Context, d time.Duration) error
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// DefaultMaxRateLimitWait bounds the retrying of a request whose context has no deadline.
const DefaultMaxRateLimitWait = 60 * time.Second

// NewClient returns a client-go client for a token with `api` scope (a
// personal, project or group access token, sent as PRIVATE-TOKEN) against
// baseURL (CI_API_V4_URL; client-go adds /api/v4 when missing). Retrying is
// done below client-go by retry.Transport, client-go's own (go-retryablehttp's
// count of five) is off, so there is one policy.
func NewClient(token, baseURL string, httpClient *http.Client, r Retry) (*gl.Client, error) {
	if token == "" {
		return nil, errors.New("no GitLab token: set ZOF_GITLAB_TOKEN to a token with api scope (CI_JOB_TOKEN cannot read merge request diffs or post notes and statuses)")
	}
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("GitLab API URL %q is not an http(s) URL: it comes from CI_API_V4_URL, e.g. https://gitlab.com/api/v4", baseURL)
	}
	if httpClient == nil {
		httpClient = &http.Client{Timeout: requestTimeout}
	}
	budget := r.MaxWait
	if budget <= 0 {
		budget = DefaultMaxRateLimitWait
	}
	now := r.Now
	if now == nil {
		now = time.Now
	}
	hc := *httpClient
	hc.Transport = &retry.Transport{
		Base:   httpClient.Transport,
		Policy: retry.Policy{Base: r.Delay, Cap: r.Delay, Budget: budget, Sleep: r.Sleep, Now: r.Now},
		Classify: func(req *http.Request, resp *http.Response, err error) retry.Decision {
			return classify(req, resp, err, now())
		},
	}
	never := func(context.Context, *http.Response, error) (bool, error) { return false, nil }
	return gl.NewClient(token,
		gl.WithBaseURL(baseURL),
		gl.WithHTTPClient(&hc),
		gl.WithCustomRetryMax(0),
		gl.WithCustomRetry(never),
	)
}

// classify says whether a GitLab answer may pass when tried again: a 429 (after GitLab's
// wait), a 5xx other than 501, or no answer at all; a request that may have done its work
// (a POST that got no answer) only when the connection was refused.
func classify(req *http.Request, resp *http.Response, err error, now time.Time) retry.Decision {
	if err != nil {
		if req.Context().Err() != nil {
			return retry.Decision{}
		}
		var op *net.OpError
		refused := errors.As(err, &op) && op.Op == "dial"
		idempotent := req.Method == http.MethodGet || req.Method == http.MethodHead || req.Method == http.MethodPut || req.Method == http.MethodDelete
		return retry.Decision{Retry: refused || idempotent}
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		w, _ := rateLimitWait(resp, now)
		return retry.Decision{Retry: true, After: w}
	}
	return retry.Decision{Retry: resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented}
}

// rateLimitWait reads Retry-After (seconds) or RateLimit-Reset (epoch
// seconds), GitLab's rate limit headers
// (https://docs.gitlab.com/security/rate_limits/#headers).
func rateLimitWait(resp *http.Response, now time.Time) (time.Duration, bool) {
	if v := resp.Header.Get("Retry-After"); v != "" {
		return retry.RetryAfter(v, now), true
	}
	if v := resp.Header.Get("RateLimit-Reset"); v != "" {
		if s, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
			return max(time.Unix(s, 0).Sub(now), 0), true
		}
	}
	return 0, false
}

// StatusCode is the HTTP status of a failed client-go request, 0 without an answer.
func StatusCode(err error) int {
	var er *gl.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		return er.Response.StatusCode
	}
	return 0
}

// IsPermissionDenied reports whether GitLab refused the token: 401 (invalid
// or expired) or 403 (no api scope, or no access to the project).
func IsPermissionDenied(err error) bool {
	s := StatusCode(err)
	return s == http.StatusUnauthorized || s == http.StatusForbidden
}
