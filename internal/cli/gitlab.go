package cli

import (
	"context"
	"fmt"
	"io"

	gl "gitlab.com/gitlab-org/api/client-go"

	cigitlab "github.com/zof-ai/zof-ci/internal/ci/gitlab"
	"github.com/zof-ai/zof-ci/internal/diff"
	"github.com/zof-ai/zof-ci/internal/gate"
	"github.com/zof-ai/zof-ci/internal/reporters"
	glreport "github.com/zof-ai/zof-ci/internal/reporters/gitlab"
	"github.com/zof-ai/zof-ci/internal/secret"
)

// GitLabTokenVar holds a GitLab token with api scope (a masked CI/CD variable): with it,
// `zof run` in a GitLab CI job posts the merge request note and the commit status, and can
// read the merge request's diffs when git cannot compute the change. There is no flag on
// purpose: a token on a command line ends up in job logs and process lists.
const GitLabTokenVar = "ZOF_GITLAB_TOKEN"

// gitlabJob is what `zof run` adds in a GitLab CI job (docs/ci.md "GitLab CI").
type gitlabJob struct {
	pipeline *cigitlab.Pipeline
	token    string
	client   *gl.Client // nil without a token (or when it cannot be made)
	log      io.Writer
}

// detectGitLab returns the GitLab CI job zof runs in, or nil outside GitLab CI (or when
// the job's project is unknown, which is said on log).
func detectGitLab(env Env, log io.Writer) *gitlabJob {
	if env.Get("GITLAB_CI") != "true" {
		return nil
	}
	p, err := cigitlab.FromEnv(env.Lookup)
	if err != nil {
		fmt.Fprintf(log, "zof: GitLab CI: %v: no merge request note or commit status\n", err)
		return nil
	}
	j := &gitlabJob{pipeline: p, token: env.Get(GitLabTokenVar), log: log}
	if j.token != "" {
		if j.client, err = cigitlab.NewClient(j.token, p.APIURL, nil, cigitlab.Retry{}); err != nil {
			j.client = nil
		}
	}
	return j
}

// diffSource is the change of the pipeline for scope changed: git on the pipeline's range
// first, the merge request diffs API when git cannot compute it (ci.md "Diff
// acquisition" 4). nil when the pipeline has no range (tags, schedules): zof run's own
// git default then applies.
func (j *gitlabJob) diffSource(dir string, environ []string) diff.Source {
	base, head, ok := j.pipeline.GitRange()
	if !ok {
		return nil
	}
	f := &fallbackDiff{
		primary: &diff.Git{Dir: dir, Base: base, Head: head, Env: environ, Deepen: true},
		log:     j.log,
	}
	if j.pipeline.MRIID > 0 && j.client != nil {
		if mr, err := cigitlab.NewMRDiffs(j.client, j.pipeline); err == nil {
			f.fallback = mr
			f.what = fmt.Sprintf("merge request !%d's diffs from the API", j.pipeline.MRIID)
		}
	}
	return f
}

// reporters builds the merge request note (merge request pipelines only) and the commit
// status; without a token reporters/gitlab says once why they are skipped.
func (j *gitlabJob) reporters(p *gate.Plan, mask *secret.Masker) []reporters.Reporter {
	note, status := glreport.New(j.pipeline, j.token, j.log, mask, cigitlab.Retry{})
	var out []reporters.Reporter
	if status != nil {
		out = append(out, status)
	}
	if note != nil {
		out = append(out, note)
	}
	return out
}

// fallbackDiff asks primary (git) first and fallback (an API) when git fails or leaves
// the change incomplete; when both fail, git's answer stands (the change is unknown and
// on_unknown_diff applies).
type fallbackDiff struct {
	primary, fallback diff.Source
	what              string
	log               io.Writer
}

var _ diff.Source = (*fallbackDiff)(nil)

func (f *fallbackDiff) Changes(ctx context.Context) (*diff.Result, error) {
	r, err := f.primary.Changes(ctx)
	if err == nil && r.Complete {
		return r, nil
	}
	if f.fallback == nil {
		return r, err
	}
	why := ""
	if err != nil {
		why = err.Error()
	} else {
		why = r.Reason
	}
	fr, ferr := f.fallback.Changes(ctx)
	if ferr != nil {
		fmt.Fprintf(f.log, "zof: git could not compute the change (%s), and neither could %s: %v\n", why, f.what, ferr)
		return r, err
	}
	fmt.Fprintf(f.log, "zof: git could not compute the change (%s): using %s\n", why, f.what)
	return fr, nil
}
