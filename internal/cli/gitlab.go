package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"

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
	pipeline  *cigitlab.Pipeline
	token     string
	client    *gl.Client // nil without a token (or when it cannot be made: clientErr)
	clientErr error
	log       io.Writer
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
		if j.client, j.clientErr = cigitlab.NewClient(j.token, p.APIURL, nil, cigitlab.Retry{}); j.clientErr != nil {
			j.client = nil
		}
	}
	return j
}

// diffSource is the change of the pipeline for scope changed: git on the pipeline's range
// first, the merge request diffs API when git cannot compute it (ci.md "Diff
// acquisition" 4). nil when the pipeline has no range (tags, schedules): zof run's own
// git default then applies. zof's image has no git: there merge request pipelines read
// their change from the API, which needs ZOF_GITLAB_TOKEN.
func (j *gitlabJob) diffSource(dir string, environ []string) diff.Source {
	base, head, ok := j.pipeline.GitRange()
	if !ok {
		return nil
	}
	f := &fallbackDiff{
		primary:     &diff.Git{Dir: dir, Base: base, Head: head, Env: environ, Deepen: true},
		primaryWhat: "git",
		say:         func(msg string) { fmt.Fprintf(j.log, "zof: %s\n", msg) },
	}
	iid := j.pipeline.MRIID
	switch {
	case iid == 0:
		f.noFallback = "a branch pipeline has no merge request whose diffs the API could list instead"
	case j.token == "":
		f.noFallback = fmt.Sprintf("without %s merge request !%d's diffs cannot be read from the API instead: set it (docs/ci.md, GitLab CI)", GitLabTokenVar, iid)
	case j.client == nil:
		f.noFallback = fmt.Sprintf("merge request !%d's diffs cannot be read from the API: %v", iid, j.clientErr)
	default:
		mr, err := cigitlab.NewMRDiffs(j.client, j.pipeline)
		if err != nil {
			f.noFallback = fmt.Sprintf("merge request !%d's diffs cannot be read from the API: %v", iid, err)
			break
		}
		f.fallback = mr
		f.fallbackWhat = fmt.Sprintf("merge request !%d's diffs from the API", iid)
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

// fallbackDiff asks primary first and fallback when primary fails or leaves the change
// incomplete: in GitLab CI git, then the merge request's diffs from the API; in the GitHub
// Action the compare API, then git. When neither can, the change is unknown (the suite's
// on_unknown_diff applies) and the reason names both: primary's incomplete answer with that
// reason (the files it did list are kept), or an error when it had no answer.
type fallbackDiff struct {
	primary  diff.Source
	fallback diff.Source // nil: there is none, and noFallback says why
	// primaryWhat and fallbackWhat name the sources in messages ("git", "the compare API").
	primaryWhat, fallbackWhat string
	// noFallback is why there is no fallback; "" leaves primary's failure as it is.
	noFallback string
	// say tells the log that fallback answered instead of primary, and why.
	say func(string)
}

var _ diff.Source = (*fallbackDiff)(nil)

func (f *fallbackDiff) Changes(ctx context.Context) (*diff.Result, error) {
	r, err := f.primary.Changes(ctx)
	if err == nil && r.Complete || ctx.Err() != nil {
		return r, err
	}
	why := failure(r, err)
	if f.fallback == nil {
		if f.noFallback == "" {
			return r, err
		}
		return unknownChange(r, err, fmt.Sprintf("%s: %s; %s", f.primaryWhat, why, f.noFallback))
	}
	fr, ferr := f.fallback.Changes(ctx)
	if ferr == nil && fr.Complete {
		f.say(fmt.Sprintf("%s could not compute the change (%s): using %s", f.primaryWhat, why, f.fallbackWhat))
		return fr, nil
	}
	return unknownChange(r, err, fmt.Sprintf("%s: %s; %s: %s", f.primaryWhat, why, f.fallbackWhat, failure(fr, ferr)))
}

// failure says why a source did not give the whole change. Git that is not installed (as in
// zof's image) is said in those words rather than as the exec error.
func failure(r *diff.Result, err error) string {
	switch {
	case errors.Is(err, exec.ErrNotFound):
		return "git is not installed"
	case err != nil:
		return err.Error()
	case r != nil && r.Reason != "":
		return r.Reason
	}
	return "the change is incomplete"
}

// unknownChange is a failed answer (r, err) given reason instead of its own: a copy of the
// incomplete result r, else an error wrapping err.
func unknownChange(r *diff.Result, err error, reason string) (*diff.Result, error) {
	if err != nil || r == nil {
		return nil, &changeError{reason: reason, err: err}
	}
	out := *r
	out.Complete = false
	out.Reason = reason
	return &out, nil
}

// changeError is an unknown change whose reason names every source tried.
type changeError struct {
	reason string
	err    error // the first source's error (nil when it answered incompletely)
}

func (e *changeError) Error() string { return e.reason }
func (e *changeError) Unwrap() error { return e.err }
