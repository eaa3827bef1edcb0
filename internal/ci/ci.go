// Package ci detects the CI system a command runs in and the identity of the job, from the
// standard environment variables of GitHub Actions and GitLab CI (docs/ci.md).
package ci

import (
	"strconv"
	"strings"
)

// Provider names the CI system.
type Provider string

// Providers. Generic is any CI that sets CI=true but is not recognised; Local is a
// developer's machine.
const (
	GitHub  Provider = "github"
	GitLab  Provider = "gitlab"
	Generic Provider = "ci"
	Local   Provider = "local"
)

// Context is what the CI system says about the job. Empty fields are unknown.
type Context struct {
	Provider Provider
	// Repo is "owner/name" (GitHub) or the project path "group/sub/name" (GitLab).
	Repo string
	SHA  string
	// Ref is the full ref on GitHub ("refs/heads/main", "refs/pull/7/merge") and the
	// branch or tag name on GitLab.
	Ref string
	// PR is the pull request (GitHub) or merge request IID (GitLab), 0 when none.
	PR int
	// RunID is the workflow run (GitHub) or pipeline (GitLab).
	RunID string
	// Attempt is GitHub's run attempt (a "re-run jobs" increments it); 0 elsewhere.
	Attempt int
	// Job is the job name; JobID the job's own id (GitLab: a retried job gets a new one).
	Job   string
	JobID string
	// Shard is ZOF_SHARD, set by a matrix that splits one suite over several jobs.
	Shard string
	Actor string
	// URL links to the CI run (GitHub) or job (GitLab).
	URL string
}

// Detect reads the CI context from the environment (lookup is os.LookupEnv in main).
func Detect(lookup func(string) (string, bool)) Context {
	get := func(k string) string {
		v, _ := lookup(k)
		return strings.TrimSpace(v)
	}
	var c Context
	switch {
	case get("GITHUB_ACTIONS") == "true":
		c = Context{
			Provider: GitHub,
			Repo:     get("GITHUB_REPOSITORY"),
			SHA:      get("GITHUB_SHA"),
			Ref:      get("GITHUB_REF"),
			RunID:    get("GITHUB_RUN_ID"),
			Attempt:  atoi(get("GITHUB_RUN_ATTEMPT")),
			Job:      get("GITHUB_JOB"),
			Actor:    get("GITHUB_ACTOR"),
		}
		c.PR = githubPR(c.Ref)
		if server := strings.TrimRight(get("GITHUB_SERVER_URL"), "/"); server != "" && c.Repo != "" && c.RunID != "" {
			c.URL = server + "/" + c.Repo + "/actions/runs/" + c.RunID
			if c.Attempt > 0 {
				c.URL += "/attempts/" + strconv.Itoa(c.Attempt)
			}
		}
	case get("GITLAB_CI") == "true":
		c = Context{
			Provider: GitLab,
			Repo:     get("CI_PROJECT_PATH"),
			SHA:      get("CI_COMMIT_SHA"),
			Ref:      get("CI_COMMIT_REF_NAME"),
			PR:       atoi(get("CI_MERGE_REQUEST_IID")),
			RunID:    get("CI_PIPELINE_ID"),
			Job:      get("CI_JOB_NAME"),
			JobID:    get("CI_JOB_ID"),
			Actor:    get("GITLAB_USER_LOGIN"),
			URL:      get("CI_JOB_URL"),
		}
	case isTrue(get("CI")):
		c = Context{Provider: Generic}
	default:
		c = Context{Provider: Local}
	}
	c.Shard = get("ZOF_SHARD")
	return c
}

// HasIdentity reports whether the context names one CI job execution, so that a retried
// step can be told apart from a new job: a known provider with a run id.
func (c Context) HasIdentity() bool {
	return (c.Provider == GitHub || c.Provider == GitLab) && c.RunID != ""
}

// Branch is the branch name from Ref ("" for tags, pull request refs and unknown refs on
// GitHub; GitLab's ref name is used as is).
func (c Context) Branch() string {
	switch {
	case c.Provider == GitLab:
		return c.Ref
	case strings.HasPrefix(c.Ref, "refs/heads/"):
		return strings.TrimPrefix(c.Ref, "refs/heads/")
	case strings.HasPrefix(c.Ref, "refs/"):
		return ""
	}
	return c.Ref
}

// githubPR is N from "refs/pull/N/merge" (or /head), else 0.
func githubPR(ref string) int {
	rest, ok := strings.CutPrefix(ref, "refs/pull/")
	if !ok {
		return 0
	}
	n, _, _ := strings.Cut(rest, "/")
	return atoi(n)
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

func isTrue(s string) bool {
	switch strings.ToLower(s) {
	case "true", "1", "yes":
		return true
	}
	return false
}
