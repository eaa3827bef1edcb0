package web

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
)

// ArtifactLister lists a run's artifacts, the evidence of its failed steps
// (docs/api.md, Artifacts). The console links them when its Runs has it
// (the engine does); it is optional so a Runs without artifacts still works.
type ArtifactLister interface {
	Artifacts(ctx context.Context, tenant, id string) ([]api.Artifact, error)
}

var _ ArtifactLister = (*engine.Engine)(nil)

// ArtifactLink is a link from the Results tab to one artifact.
type ArtifactLink struct {
	Text string // "response", or "response (attempt 1)" after a retry
	URL  string
	Cut  bool // truncated
}

// evidenceKey is the key of a step's links in RunView.Evidence: the step's
// LogID ("m{member}-s{step}", both from 0).
func evidenceKey(member, step int) string { return fmt.Sprintf("m%d-s%d", member, step) }

// AddEvidence links each artifact to its failed step in the Results tab;
// href is where one is downloaded (the console: the API's address, which
// the session opens; the static report: the file --artifacts wrote, or ""
// for none, which leaves it unlinked).
func (v *RunView) AddEvidence(arts []api.Artifact, href func(api.Artifact) string) {
	index := make(map[string]int, len(v.Run.Members))
	for i := range v.Run.Members {
		index[v.Run.Members[i].ID] = i
	}
	for _, a := range arts {
		i, ok := index[a.Member]
		if !ok || a.Step < 1 {
			continue
		}
		u := href(a)
		if u == "" {
			continue
		}
		text := string(a.Kind)
		if m := &v.Run.Members[i]; m.Attempt > 1 || a.Attempt > 1 {
			text += fmt.Sprintf(" (attempt %d)", a.Attempt)
		}
		if v.Evidence == nil {
			v.Evidence = map[string][]ArtifactLink{}
		}
		k := evidenceKey(i, a.Step-1)
		v.Evidence[k] = append(v.Evidence[k], ArtifactLink{Text: text, URL: u, Cut: a.Truncated})
	}
}

// consoleEvidence links the run's artifacts on the console's run page:
// each downloads from the API with the page's session. A failure to list
// them is logged; the page is shown without the links.
func (c *Console) consoleEvidence(ctx context.Context, tenant string, v *RunView) {
	al, ok := c.o.Runs.(ArtifactLister)
	if !ok || len(v.Failures) == 0 {
		return
	}
	arts, err := al.Artifacts(ctx, tenant, v.Run.ID)
	if err != nil {
		c.o.Logger.Warn("console: listing the artifacts of a run; the page has no links to them", "run", v.Run.ID, "err", err)
		return
	}
	v.AddEvidence(arts, func(a api.Artifact) string { return v.Base + api.ArtifactPath(v.Run.ID, a.Name) })
}

// WriteReportWithEvidence is WriteReport whose Results link each failed
// step's artifact to href(a) (the files `zof run --artifacts DIR` wrote,
// relative to the report; "" leaves one unlinked).
func WriteReportWithEvidence(w io.Writer, run *api.Run, now time.Time, arts []api.Artifact, href func(api.Artifact) string) error {
	return writeReport(w, run, now, func(v *RunView) { v.AddEvidence(arts, href) })
}
