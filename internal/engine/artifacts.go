package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/zof-ai/zof-ci/api"
)

// MaxRunArtifactBytes caps the content of all the artifacts of one run (the
// evidence of its failed steps), so a run of thousands of failing members
// cannot fill the store: what comes after the cap is cut, and ends with
// ArtifactCapMarker. docs/api.md states it. The number is ours: 32 full
// http responses' worth (step.MaxEvidenceBody), or hundreds of failures of
// a few KiB each, far more than a person reads before fixing something.
const MaxRunArtifactBytes = 8 << 20

// ArtifactCapMarker ends an artifact cut by MaxRunArtifactBytes. It is not
// counted against the cap, so every failure keeps at least an entry saying
// its evidence was cut.
const ArtifactCapMarker = "\n[zof: cut here: this run's artifacts reached their cap of 8 MiB (docs/api.md, Artifacts)]\n"

// Artifact is one stored piece of evidence: its description and content.
type Artifact struct {
	api.Artifact
	Content []byte
}

// ArtifactStore is the optional Store capability that keeps the evidence of
// failed steps with their run. memstore, sqlitestore and pgstore implement
// it, keep it as long as the run (a restart keeps it; deleting the run
// deletes it) and storetest.RunArtifacts is its conformance suite. A store
// without it keeps no artifacts: the lists are empty.
type ArtifactStore interface {
	// PutArtifacts stores arts with run runID, in order, after CapArtifacts
	// with what the run's artifacts already hold; an artifact whose name the
	// run already has is left as it is (a put is idempotent). A missing run
	// is ErrNotFound.
	PutArtifacts(ctx context.Context, runID string, arts []Artifact) error
	// Artifacts lists the run's artifacts in the order they were put
	// (descriptions only); none is an empty list, not an error.
	Artifacts(ctx context.Context, runID string) ([]api.Artifact, error)
	// Artifact returns one artifact with its content; an unknown name is
	// ErrArtifactNotFound.
	Artifact(ctx context.Context, runID, name string) (*Artifact, error)
}

// ErrArtifactNotFound: the run has no artifact of that name.
var ErrArtifactNotFound = errors.New("artifact not found")

// ArtifactNotFoundError: the run exists for the caller's tenant but has no
// artifact of that name. errors.Is(err, ErrArtifactNotFound) holds.
type ArtifactNotFoundError struct {
	RunID, Name string
}

func (e *ArtifactNotFoundError) Error() string {
	return fmt.Sprintf("run %s has no artifact %q; list them with GET /v1/runs/%s/artifacts", e.RunID, e.Name, e.RunID)
}

// Is makes errors.Is(err, ErrArtifactNotFound) true.
func (e *ArtifactNotFoundError) Is(target error) bool { return target == ErrArtifactNotFound }

// CapArtifacts cuts arts to what is left of MaxRunArtifactBytes when the
// run's artifacts already hold used bytes: the first artifact over the cap
// keeps what fits, it and every later one end with ArtifactCapMarker and
// are Truncated. Sizes are set to the content's. arts is not changed.
func CapArtifacts(used int64, arts []Artifact) []Artifact {
	out := make([]Artifact, len(arts))
	left := max(MaxRunArtifactBytes-used, 0)
	for i, a := range arts {
		if n := int64(len(a.Content)); n > left {
			cut := make([]byte, 0, left+int64(len(ArtifactCapMarker)))
			cut = append(cut, a.Content[:left]...)
			a.Content = append(cut, ArtifactCapMarker...)
			a.Truncated = true
			left = 0
		} else {
			left -= n
		}
		a.Size = int64(len(a.Content))
		out[i] = a
	}
	return out
}

// ContentBytes is what an artifact counts against MaxRunArtifactBytes: its
// content without a cap marker.
func ContentBytes(a api.Artifact, content []byte) int64 {
	n := int64(len(content))
	if a.Truncated && len(content) >= len(ArtifactCapMarker) && string(content[len(content)-len(ArtifactCapMarker):]) == ArtifactCapMarker {
		n -= int64(len(ArtifactCapMarker))
	}
	return n
}

// Artifacts lists the artifacts of a run of tenant (another tenant's run is
// a *NotFoundError, as for Get).
func (e *Engine) Artifacts(ctx context.Context, tenant, id string) ([]api.Artifact, error) {
	if _, err := e.getRecord(ctx, tenant, id); err != nil {
		return nil, err
	}
	as, ok := e.cfg.Store.(ArtifactStore)
	if !ok {
		return []api.Artifact{}, nil
	}
	list, err := as.Artifacts(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("listing the artifacts of run %s: %w", id, err)
	}
	if list == nil {
		list = []api.Artifact{}
	}
	return list, nil
}

// Artifact returns one artifact of a run of tenant with its content: a
// *NotFoundError for a run the tenant cannot see, an *ArtifactNotFoundError
// for a name the run does not have.
func (e *Engine) Artifact(ctx context.Context, tenant, id, name string) (*Artifact, error) {
	if _, err := e.getRecord(ctx, tenant, id); err != nil {
		return nil, err
	}
	as, ok := e.cfg.Store.(ArtifactStore)
	if !ok {
		return nil, &ArtifactNotFoundError{RunID: id, Name: name}
	}
	a, err := as.Artifact(ctx, id, name)
	switch {
	case errors.Is(err, ErrArtifactNotFound):
		return nil, &ArtifactNotFoundError{RunID: id, Name: name}
	case err != nil:
		return nil, fmt.Errorf("reading artifact %q of run %s: %w", name, id, err)
	}
	return a, nil
}

// keepEvidence stores the evidence of step (from 1) of member t, which just
// failed, as the run's artifacts, before the failure is recorded: a reader
// that sees the failed step finds its evidence. Content is masked again with
// the run's secrets (the step runner masked it; a runner that did not must
// not leak). A store without ArtifactStore keeps nothing; a failed write is
// logged and never changes the run.
func (e *Engine) keepEvidence(rs *runState, member string, step int, ev []Evidence) {
	as, ok := e.cfg.Store.(ArtifactStore)
	if !ok || len(ev) == 0 {
		return
	}
	rs.mu.Lock()
	i := rs.index[member]
	attempt := rs.snap.Members[i].Attempt
	rs.mu.Unlock()
	arts := make([]Artifact, len(ev))
	for k, x := range ev {
		content := []byte(rs.mask.String(string(x.Content)))
		ct := x.ContentType
		if ct == "" {
			ct = "text/plain; charset=utf-8"
		}
		arts[k] = Artifact{Artifact: api.Artifact{
			Name:        api.ArtifactName(i, member, attempt, step, x.Kind),
			Member:      member,
			Step:        step,
			Attempt:     attempt,
			Kind:        x.Kind,
			Size:        int64(len(content)),
			ContentType: ct,
			Truncated:   x.Truncated,
		}, Content: content}
	}
	if err := as.PutArtifacts(context.Background(), rs.id, arts); err != nil {
		e.cfg.Logger.Error("storing the evidence of a failed step", "run", rs.id, "member", member, "step", step, "err", err)
	}
}
