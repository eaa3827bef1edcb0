package gitlab

import (
	"context"
	"errors"
	"fmt"

	gl "gitlab.com/gitlab-org/api/client-go"

	"github.com/zof-ai/zof-ci/internal/diff"
)

// DefaultMaxDiffFiles is GitLab's default "Maximum diff files" (1000; an
// administrator may raise it to 3000): "These limits apply to both the GitLab
// UI and API endpoints that return diff information"
// (https://docs.gitlab.com/administration/diff_limits/). A listing that
// reaches the limit may be cut short, so it counts as incomplete.
const DefaultMaxDiffFiles = 1000

// DiffsPerPage is the largest page GitLab's offset pagination serves
// ("per_page ... maximum 100", https://docs.gitlab.com/api/rest/#offset-based-pagination).
const DiffsPerPage = 100

var _ diff.Source = (*MRDiffs)(nil)

// MRDiffs lists a merge request's changed files from
// GET /projects/:id/merge_requests/:iid/diffs. ci.md makes it the fallback
// when git cannot compute the change (no history in the checkout).
type MRDiffs struct {
	Client  *gl.Client
	Project string // CI_PROJECT_ID or the project path
	MRIID   int64
	// Base and Head name the two sides in the result.
	Base, Head string
	// MaxFiles is the instance's "Maximum diff files" (0: DefaultMaxDiffFiles).
	MaxFiles int
}

// NewMRDiffs is the source for a merge request pipeline.
func NewMRDiffs(c *gl.Client, p *Pipeline) (*MRDiffs, error) {
	if p == nil || p.MRIID <= 0 {
		return nil, errors.New("the merge request diffs API needs a merge request pipeline (CI_MERGE_REQUEST_IID is not set)")
	}
	base, head, _ := p.GitRange()
	return &MRDiffs{Client: c, Project: p.ProjectRef(), MRIID: p.MRIID, Base: base, Head: head}, nil
}

// Changes pages through the diffs until the last page or the file limit.
func (m *MRDiffs) Changes(ctx context.Context) (*diff.Result, error) {
	if m.Client == nil {
		return nil, errors.New("no GitLab client: set ZOF_GITLAB_TOKEN to a token with api scope to read the merge request's diffs")
	}
	limit := m.MaxFiles
	if limit <= 0 {
		limit = DefaultMaxDiffFiles
	}
	res := &diff.Result{Base: m.Base, Head: m.Head, Source: diff.SourceAPI, Complete: true}
	// The page count is bounded too, in case a server keeps answering full pages.
	for page := int64(1); len(res.Files) < limit && page <= int64(limit/DiffsPerPage)+1; page++ {
		diffs, resp, err := m.Client.MergeRequests.ListMergeRequestDiffs(m.Project, m.MRIID,
			&gl.ListMergeRequestDiffsOptions{ListOptions: gl.ListOptions{Page: page, PerPage: DiffsPerPage}}, gl.WithContext(ctx))
		if err != nil {
			what := fmt.Sprintf("list the diffs of merge request !%d in project %s", m.MRIID, m.Project)
			if IsPermissionDenied(err) {
				return nil, fmt.Errorf("%s: the token was refused (it needs read_api or api scope): %w", what, err)
			}
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		for _, d := range diffs {
			if c, ok := change(d); ok {
				res.Files = append(res.Files, c)
			}
		}
		if len(diffs) < DiffsPerPage || lastPage(resp) {
			break
		}
	}
	if len(res.Files) >= limit {
		res.Complete = false
		res.Reason = fmt.Sprintf("merge request !%d lists %d files, GitLab's maximum diff files: more may have changed", m.MRIID, len(res.Files))
	}
	return res, nil
}

func change(d *gl.MergeRequestDiff) (diff.Change, bool) {
	switch {
	case d.NewPath == "" && d.OldPath == "":
		return diff.Change{}, false
	case d.DeletedFile:
		p := d.OldPath
		if p == "" {
			p = d.NewPath
		}
		return diff.Change{Status: diff.Deleted, Path: p}, true
	case d.NewFile:
		return diff.Change{Status: diff.Added, Path: d.NewPath}, true
	case d.RenamedFile:
		return diff.Change{Status: diff.Renamed, Path: d.NewPath, OldPath: d.OldPath}, true
	}
	p := d.NewPath
	if p == "" {
		p = d.OldPath
	}
	return diff.Change{Status: diff.Modified, Path: p}, true
}

// lastPage reports whether GitLab said there is no next page (an empty
// X-Next-Page header); without the header, a full page asks for the next one.
func lastPage(resp *gl.Response) bool {
	if resp == nil || resp.Response == nil {
		return false
	}
	_, has := resp.Header["X-Next-Page"]
	return has && resp.NextPage == 0
}
