package runner

import (
	"context"
	"errors"
	"io"
	"net/url"
	"path/filepath"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/reporters/report"
	"github.com/zof-ai/zof-ci/internal/secret"
	"github.com/zof-ai/zof-ci/internal/web"
)

// htmlName names the HTML report in "Wrote … report to PATH".
const htmlName = "HTML"

// htmlReport writes `--html PATH`: the self-contained page of the final run
// (web.WriteReport: the console's templates, CSS inline, no script, no
// fetch), masked like every other report.
type htmlReport struct {
	path string
	mask *secret.Masker
	now  func() time.Time
}

var _ report.Reporter = (*htmlReport)(nil)

func newHTMLReport(o report.Options) (report.Reporter, error) {
	if o.Path == "" {
		return nil, errors.New("html reporter needs a file path: pass --html PATH")
	}
	return &htmlReport{path: o.Path, mask: o.Mask, now: o.Clock}, nil
}

// Report writes the run of res to the reporter's path, atomically.
func (r *htmlReport) Report(ctx context.Context, res *report.Result) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if res.Run == nil {
		return errors.New("no run to report: nothing was selected")
	}
	run := report.CleanRun(r.mask, res.Run)
	now := r.now()
	arts, href := reportEvidence(r.path, res.Artifacts)
	return report.WriteFileAtomic(r.path, func(w io.Writer) error { return web.WriteReportWithEvidence(w, run, now, arts, href) })
}

// reportEvidence is what the report links each failed step's artifact to:
// the file --artifacts wrote, relative to the report (it opens from
// file:// beside it), else its download URL on the server, else nothing.
func reportEvidence(reportPath string, arts []report.Artifact) ([]api.Artifact, func(api.Artifact) string) {
	list := make([]api.Artifact, len(arts))
	links := make(map[string]string, len(arts))
	for i, a := range arts {
		list[i] = a.Artifact
		switch {
		case a.Path != "":
			if rel, err := relTo(filepath.Dir(reportPath), a.Path); err == nil {
				links[a.Name] = (&url.URL{Path: filepath.ToSlash(rel)}).String()
			}
		case a.URL != "":
			links[a.Name] = a.URL
		}
	}
	return list, func(a api.Artifact) string { return links[a.Name] }
}

// relTo is target relative to dir, either of them relative to the working directory.
func relTo(dir, target string) (string, error) {
	d, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	t, err := filepath.Abs(target)
	if err != nil {
		return "", err
	}
	return filepath.Rel(d, t)
}
