package runner

import (
	"context"
	"errors"
	"io"
	"time"

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
	return report.WriteFileAtomic(r.path, func(w io.Writer) error { return web.WriteReport(w, run, now) })
}
