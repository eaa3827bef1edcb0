package web

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/api"
)

// artifactRuns is fakeRuns with the engine's artifact list, tenant-scoped.
type artifactRuns struct {
	*fakeRuns
	arts []api.Artifact
}

func (a artifactRuns) Artifacts(ctx context.Context, tenant, id string) ([]api.Artifact, error) {
	if _, err := a.Get(ctx, tenant, id); err != nil {
		return nil, err
	}
	return a.arts, nil
}

// evidenceOf is fixtureRun's failed step's artifacts (member 1, step 1).
func evidenceOf(run *api.Run) []api.Artifact {
	m := run.Members[1].ID
	return []api.Artifact{
		{Name: api.ArtifactName(1, m, 1, 1, api.ArtifactOutput), Member: m, Step: 1, Attempt: 1, Kind: api.ArtifactOutput, Truncated: true},
		{Name: "ignored", Member: "no-such-member", Step: 1, Attempt: 1, Kind: api.ArtifactOutput},
	}
}

// TestRunPageLinksEvidence: the Results tab links a failed step's artifacts
// to their download under the API (the session opens it), as downloads;
// the hostile member id is part of no link text or markup.
func TestRunPageLinksEvidence(t *testing.T) {
	f := newConsole(t)
	run := fixtureRun()
	run.Tenant = "payments"
	f.runs.runs[run.ID] = run
	c, err := New(Options{Runs: artifactRuns{f.runs, evidenceOf(run)}, Actions: f.runs, Auth: f.auth, Now: func() time.Time { return run.FinishedAt }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c)
	defer srv.Close()
	res, body := do(t, http.DefaultClient, "GET", srv.URL+"/runs/"+run.ID, nil, "Authorization", "Bearer tok-pay")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET the run page: %d", res.StatusCode)
	}
	want := `<span class="evidence">evidence: <a href="/v1/runs/run_01/artifacts/` + evidenceOf(run)[0].Name + `" download rel="nofollow">output</a> <span class="muted">(cut)</span></span>`
	if !strings.Contains(body, want) {
		t.Errorf("the run page lacks the evidence link %s", want)
	}
	if strings.Count(body, `class="evidence"`) != 1 {
		t.Errorf("evidence links: %d, want 1 (the unknown member's artifact is not linked)", strings.Count(body, `class="evidence"`))
	}
	// Without the capability the page is the same, minus the links.
	res, body = do(t, http.DefaultClient, "GET", f.srv.URL+"/runs/"+run.ID, nil, "Authorization", "Bearer tok-pay")
	if res.StatusCode != http.StatusOK || strings.Contains(body, `class="evidence"`) {
		t.Errorf("a console whose Runs lists no artifacts: %d, evidence shown: %v", res.StatusCode, strings.Contains(body, `class="evidence"`))
	}
}

// TestReportLinksEvidenceFiles: the static report links the files zof run
// --artifacts wrote (relative to the report) and leaves the rest unlinked.
func TestReportLinksEvidenceFiles(t *testing.T) {
	run := fixtureRun()
	var b bytes.Buffer
	err := WriteReportWithEvidence(&b, run, run.FinishedAt, evidenceOf(run), func(a api.Artifact) string { return "zof-artifacts/" + a.Name })
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `<a href="zof-artifacts/2-_script_alert`) {
		t.Errorf("the report does not link the written file")
	}
	if strings.Contains(strings.ToLower(b.String()), "<script") {
		t.Error("hostile text became markup")
	}
}
