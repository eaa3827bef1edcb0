package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/client"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/reporters/report"
	"github.com/zof-ai/zof-ci/internal/secret"
)

// artifactsWait bounds reading a finished run's artifacts (a list and one
// download per artifact) before the reports are written without them.
const artifactsWait = 30 * time.Second

// artifactSource reads a run's artifacts: the in-process engine's store or
// the server's API.
type artifactSource interface {
	list(ctx context.Context, runID string) ([]api.Artifact, error)
	content(ctx context.Context, runID, name string) ([]byte, error)
	// url is where a person downloads one ("" for an embedded run).
	url(runID, name string) string
}

// engineArtifacts reads them from the embedded engine (its memstore).
type engineArtifacts struct{ eng *engine.Engine }

func (s engineArtifacts) list(ctx context.Context, id string) ([]api.Artifact, error) {
	return s.eng.Artifacts(ctx, localTenant, id)
}

func (s engineArtifacts) content(ctx context.Context, id, name string) ([]byte, error) {
	a, err := s.eng.Artifact(ctx, localTenant, id, name)
	if err != nil {
		return nil, err
	}
	return a.Content, nil
}

func (engineArtifacts) url(string, string) string { return "" }

// serverArtifacts reads them from zof serve.
type serverArtifacts struct{ c *client.Client }

func (s serverArtifacts) list(ctx context.Context, id string) ([]api.Artifact, error) {
	return s.c.ListArtifacts(ctx, id)
}

func (s serverArtifacts) content(ctx context.Context, id, name string) ([]byte, error) {
	a, err := s.c.GetArtifact(ctx, id, name)
	if err != nil {
		return nil, err
	}
	return a.Data, nil
}

func (s serverArtifacts) url(id, name string) string { return s.c.ArtifactURL(id, name) }

// collectArtifacts lists the artifacts of run (the evidence of its failed
// steps) for the reports, with their download URLs, and with `--artifacts
// DIR` writes each to DIR/NAME so the JUnit report's attachment lines name
// files that exist. A run in which nothing failed has none and costs no
// request. A failure is said on Stderr and never changes the gate: the
// reports are written with what was read.
func collectArtifacts(ctx context.Context, o RunOptions, src artifactSource, run *api.Run, mask *secret.Masker) []report.Artifact {
	if run == nil || run.ID == "" || !anyFailure(run) {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), artifactsWait)
	defer cancel()
	list, err := src.list(ctx, run.ID)
	if err != nil {
		fmt.Fprintf(o.Stderr, "zof: could not list the artifacts of run %s: %v (the reports are written without them; the gate's exit code is unchanged)\n", run.ID, err)
		return nil
	}
	out := make([]report.Artifact, len(list))
	for i, a := range list {
		out[i] = report.Artifact{Artifact: a, URL: src.url(run.ID, a.Name)}
	}
	if o.Artifacts == "" || len(out) == 0 {
		return out
	}
	var errs []error
	written := 0
	for i := range out {
		a := &out[i]
		data, err := src.content(ctx, run.ID, a.Name)
		if err == nil {
			// The name is the server's: a file name must not leave DIR.
			if a.Name != filepath.Base(a.Name) || a.Name == "." || a.Name == ".." {
				err = fmt.Errorf("artifact name %q is not a plain file name", a.Name)
			}
		}
		if err == nil {
			p := filepath.Join(o.Artifacts, a.Name)
			err = report.WriteFileAtomic(p, func(w io.Writer) error {
				_, err := io.WriteString(w, mask.String(string(data)))
				return err
			})
			if err == nil {
				a.Path = p
				written++
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", a.Name, err))
		}
	}
	if written > 0 {
		fmt.Fprintf(o.Stdout, "Wrote %d %s of failed steps to %s\n", written, plural(written, "artifact", "artifacts"), o.Artifacts)
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintf(o.Stderr, "zof: could not write every artifact to %s: %v (the gate's exit code is unchanged)\n", o.Artifacts, err)
	}
	return out
}

// anyFailure: some member failed an attempt (failed, or passed on a retry):
// only then can the run have artifacts.
func anyFailure(run *api.Run) bool {
	for i := range run.Members {
		if m := &run.Members[i]; m.Status == api.StatusFailed || m.Flaky || len(m.FailedAttempts) > 0 {
			return true
		}
	}
	return false
}
