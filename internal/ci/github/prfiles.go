package github

import (
	"context"
	"errors"
	"fmt"

	gh "github.com/google/go-github/v62/github"

	"github.com/zof-ai/zof-ci/internal/diff"
)

// MaxPRFiles is the most files GET /repos/{owner}/{repo}/pulls/{n}/files
// returns: "Responses include a maximum of 3000 files"
// (https://docs.github.com/rest/pulls/pulls#list-pull-requests-files). The
// cap is silent: the last page simply ends there.
const MaxPRFiles = 3000

// PRFilesPerPage is the largest page the endpoint serves ("per_page ... max 100").
const PRFilesPerPage = 100

var _ diff.Source = (*PRFiles)(nil)

// PRFiles lists a pull request's changed files from the REST API. It is the
// diff source for pull_request and pull_request_target: it needs no history
// in the checkout and sees exactly what the pull request page shows.
type PRFiles struct {
	Client      *gh.Client
	Owner, Repo string
	Number      int
	// Base and Head are the pull request's shas from the event payload, so the
	// result names the commits the files were compared on.
	Base, Head string
	// ChangedFiles is the count the event reported (0: unknown); fewer files
	// listed than that marks the result incomplete.
	ChangedFiles int
	// Retry governs rate limits and server errors.
	Retry Retry
}

// NewPRFiles is the source for a pull request event.
func NewPRFiles(c *gh.Client, ev *Event) (*PRFiles, error) {
	if ev == nil || !ev.IsPullRequest() {
		return nil, errors.New("the pull request files API needs a pull_request or pull_request_target event")
	}
	return &PRFiles{Client: c, Owner: ev.Owner, Repo: ev.Repo, Number: ev.PR, Base: ev.BaseSHA, Head: ev.HeadSHA, ChangedFiles: ev.ChangedFiles}, nil
}

// Changes pages through the files, 100 at a time, until a short page or the
// API's 3000-file cap; at the cap the result is incomplete. An error means
// the change is unknown: the caller applies on_unknown_diff.
func (p *PRFiles) Changes(ctx context.Context) (*diff.Result, error) {
	if p.Client == nil {
		return nil, errors.New("no GitHub client: pass a token (github-token) to list the pull request's files")
	}
	res := &diff.Result{Base: p.Base, Head: p.Head, Source: diff.SourceAPI, Complete: true}
	for page := 1; len(res.Files) < MaxPRFiles; page++ {
		var files []*gh.CommitFile
		err := p.Retry.Do(ctx, func() (*gh.Response, error) {
			var resp *gh.Response
			var err error
			files, resp, err = p.Client.PullRequests.ListFiles(ctx, p.Owner, p.Repo, p.Number, &gh.ListOptions{Page: page, PerPage: PRFilesPerPage})
			return resp, err
		})
		if err != nil {
			return nil, p.explain(err)
		}
		for _, f := range files {
			if f.GetFilename() == "" {
				continue
			}
			res.Files = append(res.Files, change(f))
		}
		if len(files) < PRFilesPerPage {
			break
		}
	}
	switch n := len(res.Files); {
	case n >= MaxPRFiles:
		res.Files = res.Files[:MaxPRFiles]
		res.Complete = false
		res.Reason = fmt.Sprintf("pull request #%d lists %d files, the most GitHub's pull request files API returns: more may have changed", p.Number, MaxPRFiles)
	case p.ChangedFiles > n:
		res.Complete = false
		res.Reason = fmt.Sprintf("GitHub listed %d files for pull request #%d but the event says %d changed", n, p.Number, p.ChangedFiles)
	}
	return res, nil
}

func (p *PRFiles) explain(err error) error {
	what := fmt.Sprintf("list the files of pull request #%d in %s/%s", p.Number, p.Owner, p.Repo)
	switch {
	case IsRateLimited(err):
		return fmt.Errorf("%s: GitHub's API rate limit was hit and does not reset soon: %w", what, err)
	case IsPermissionDenied(err):
		return fmt.Errorf("%s: the token may not read pull requests (give the workflow `permissions: pull-requests: read`): %w", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// change maps a file entry; statuses are those the API documents: added,
// removed, modified, renamed, copied, changed (mode only), unchanged.
func change(f *gh.CommitFile) diff.Change {
	c := diff.Change{Path: f.GetFilename()}
	switch f.GetStatus() {
	case "added":
		c.Status = diff.Added
	case "removed":
		c.Status = diff.Deleted
	case "modified", "changed", "unchanged":
		c.Status = diff.Modified
	case "renamed":
		c.Status = diff.Renamed
		c.OldPath = f.GetPreviousFilename()
	case "copied":
		c.Status = diff.Copied
		c.OldPath = f.GetPreviousFilename()
	default:
		c.Status = diff.Unknown
	}
	return c
}
