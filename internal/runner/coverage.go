package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/client"
	"github.com/zof-ai/zof-ci/internal/coverage"
	"github.com/zof-ai/zof-ci/internal/gate"
	"github.com/zof-ai/zof-ci/internal/sanitize"
	"github.com/zof-ai/zof-ci/internal/secret"
)

// coverageTimeout bounds computing the coverage summary a server run
// carries (git ls-files and the classification: well under a second at
// 100,000 files, docs/benchmarks.md): past it the run goes on without one.
const coverageTimeout = 10 * time.Second

// coverageSummary is the coverage map of the checkout that holds the suite,
// summed up for the run request (docs/coverage.md, "On the server"). Outside
// a checkout, or when it cannot be computed, it is nil and one line on info
// says why: coverage never stops a run. Texts that hold one of the run's
// secrets are left out of it.
func coverageSummary(ctx context.Context, o RunOptions, plan *gate.Plan, mask *secret.Masker, info io.Writer, off string) *api.CoverageSummary {
	cctx, cancel := context.WithTimeout(ctx, coverageTimeout)
	defer cancel()
	r, err := coverage.Of(cctx, plan.Suite, filepath.Dir(o.Select.SuitePath), o.Select.Environ)
	switch {
	case err != nil && ctx.Err() != nil:
		return nil // interrupted: the submit that follows says so
	case err != nil && cctx.Err() != nil:
		fmt.Fprintf(info, "coverage: not sent: computing it took longer than %s (%s skips this)\n", coverageTimeout, off)
		return nil
	case errors.Is(err, coverage.ErrNotCheckout):
		fmt.Fprintf(info, "coverage: not sent: the suite is not inside a git checkout (%s skips this)\n", off)
		return nil
	case errors.Is(err, coverage.ErrIndexUnreadable):
		fmt.Fprintf(info, "coverage: not sent: %s (%s skips this)\n", sanitize.Line(mask.String(err.Error())), off)
		return nil
	case err != nil:
		fmt.Fprintf(info, "coverage: not sent: %s\n", sanitize.Line(mask.String(err.Error())))
		return nil
	}
	return coverage.Summary(r, func(s string) bool { return mask.String(s) != s })
}

// coverageRefused reports whether the server refused a run request for its
// coverage summary alone (400): a zof serve older than the field answers
// "unknown field \"coverage\"", one with other bounds a detail that starts
// with "coverage: ". Nothing was created; the request may go again without it.
func coverageRefused(err error) bool {
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != http.StatusBadRequest || ce.Problem == nil {
		return false
	}
	d := ce.Problem.Detail
	return strings.HasPrefix(d, "coverage: ") || strings.Contains(d, `unknown field "coverage"`)
}
