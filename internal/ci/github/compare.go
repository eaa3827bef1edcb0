package github

import (
	"context"
	"errors"
	"fmt"
	"strings"

	gh "github.com/google/go-github/v62/github"

	"github.com/zof-ai/zof-ci/internal/diff"
)

// MaxCompareFiles is the most files GET
// /repos/{owner}/{repo}/compare/{base}...{head} lists: "The list of changed
// files is only shown on the first page of results, and it includes up to
// 300 changed files for the entire comparison"
// (https://docs.github.com/rest/commits/commits#compare-two-commits). The cap
// is silent: a comparison that lists this many may have more.
const MaxCompareFiles = 300

// ComparePerPage is the commits page asked for. Passing per_page puts the
// endpoint in its paginated mode, where page 1 carries the files of the whole
// comparison; zof reads no commits, so one per page keeps the answer small.
const ComparePerPage = 1

var _ diff.Source = (*Compare)(nil)

// Compare lists the files changed between two commits with the compare API.
// The comparison is three-dot: GitHub diffs the merge base of Base and Head
// against Head, which is what a push or a merge group changed. It is the
// diff source of `zof serve` for push and merge_group webhooks, which have
// no checkout to run git in.
type Compare struct {
	Client      *gh.Client
	Owner, Repo string
	// Base and Head are commits or branch names (see Event.CompareRange).
	Base, Head string
	// Retry governs rate limits and server errors.
	Retry Retry
}

// Changes reads the comparison's files; at MaxCompareFiles the result is
// incomplete. An error means the change is unknown: the caller applies
// on_unknown_diff.
func (c *Compare) Changes(ctx context.Context) (*diff.Result, error) {
	if c.Client == nil {
		return nil, errors.New("no GitHub client to compare commits with")
	}
	if c.Base == "" || c.Head == "" {
		return nil, fmt.Errorf("comparing %q...%q in %s/%s: both sides are needed", c.Base, c.Head, c.Owner, c.Repo)
	}
	var cmp *gh.CommitsComparison
	err := c.Retry.Do(ctx, func() (*gh.Response, error) {
		var resp *gh.Response
		var err error
		cmp, resp, err = c.Client.Repositories.CompareCommits(ctx, c.Owner, c.Repo, c.Base, c.Head, &gh.ListOptions{Page: 1, PerPage: ComparePerPage})
		return resp, err
	})
	if err != nil {
		return nil, c.explain(err)
	}
	res := &diff.Result{Base: c.Base, Head: c.Head, Source: diff.SourceAPI, Complete: true}
	if mb := cmp.GetMergeBaseCommit().GetSHA(); mb != "" {
		res.Base = mb
	}
	for _, f := range cmp.Files {
		if f.GetFilename() == "" {
			continue
		}
		res.Files = append(res.Files, change(f))
	}
	if len(res.Files) >= MaxCompareFiles {
		res.Complete = false
		res.Reason = fmt.Sprintf("the comparison %s...%s lists %d files, the most GitHub's compare API returns: more may have changed", short(c.Base), short(c.Head), len(res.Files))
	}
	return res, nil
}

func (c *Compare) explain(err error) error {
	what := fmt.Sprintf("compare %s...%s in %s/%s", short(c.Base), short(c.Head), c.Owner, c.Repo)
	switch {
	case IsRateLimited(err):
		return fmt.Errorf("%s: GitHub's API rate limit was hit and does not reset soon: %w", what, err)
	case StatusCode(err) == 404:
		return fmt.Errorf("%s: GitHub does not know one of the commits (a force-push can drop the old one) or the token may not read the repository (give the workflow `permissions: contents: read`): %w", what, err)
	case IsPermissionDenied(err):
		return fmt.Errorf("%s: the token may not read the repository's contents (give the workflow `permissions: contents: read`): %w", what, err)
	case StatusCode(err) >= 500:
		return fmt.Errorf("%s: GitHub's API kept failing for as long as zof retries: re-run the job: %w", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func short(ref string) string {
	if len(ref) == 40 && isHex(ref) {
		return ref[:12]
	}
	return ref
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// CompareRange is what Compare compares for a push or a merge group
// (docs/ci.md, "How the change is found"):
//   - merge_group: base_sha...head_sha;
//   - push: before...after;
//   - a push that created the branch (all-zero before) or was forced: the
//     default branch...after, the three-dot comparison using their merge
//     base (before is not an ancestor of after, or there is none);
//   - a forced push to the default branch itself: before...after, whose
//     merge base is what the old and new history share (comparing the
//     branch with itself would show nothing).
//
// It is an error when there is nothing to compare with: a deleted branch,
// a created default branch (the repository's first push), or a new or
// forced branch whose payload names no default branch.
func (e *Event) CompareRange() (base, head string, err error) {
	switch e.Kind {
	case KindMergeGroup:
		if e.BaseSHA == "" || e.HeadSHA == "" {
			return "", "", errors.New("the merge_group payload has no base_sha or head_sha")
		}
		return e.BaseSHA, e.HeadSHA, nil
	case KindPush:
	default:
		return "", "", fmt.Errorf("a %s event is compared by its own files API, not the compare API", e.Kind)
	}
	branch := strings.TrimPrefix(e.Ref, "refs/heads/")
	switch {
	case e.Deleted || e.After == "" || isZeroSHA(e.After):
		return "", "", errors.New("the push deleted the branch: there is no change to compare")
	case !e.NewBranch && !e.Forced:
		return e.Before, e.After, nil
	case e.DefaultBranch == "":
		return "", "", errors.New("the push created or force-pushed a branch and the payload names no default branch to compare with")
	case branch != e.DefaultBranch:
		return e.DefaultBranch, e.After, nil
	case e.NewBranch:
		return "", "", fmt.Errorf("the push created the default branch %s (the repository's first push): there is no earlier commit to compare with", e.DefaultBranch)
	}
	return e.Before, e.After, nil // forced push to the default branch
}
