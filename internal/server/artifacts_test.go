package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/step"
)

// hostileBody is a failed response an attacker controls: served as a page
// it would run script in the server's origin.
const hostileBody = "HTTP/1.1 500 Internal Server Error\nContent-Type: text/html\n\n<script>alert(document.cookie)</script>"

// failingSteps fails every step with an http step's evidence, the
// response's content type as the evidence says.
type failingSteps struct{ contentType string }

func (f failingSteps) Run(context.Context, api.Step, step.Input) step.Output {
	return step.Output{Status: api.StepFailed, Failure: &api.Failure{Message: "status: expected 200, got 500"}, Evidence: []engine.Evidence{
		{Kind: api.ArtifactRequest, ContentType: "text/plain; charset=utf-8", Content: []byte("GET /health HTTP/1.1\nAuthorization: ***\n")},
		{Kind: api.ArtifactResponse, ContentType: f.contentType, Content: []byte(hostileBody)},
	}}
}

func TestArtifactsAPI(t *testing.T) {
	for _, tc := range []struct{ stored, served string }{
		{"text/plain; charset=utf-8", "text/plain; charset=utf-8"},
		{"text/html", "application/octet-stream"},
		{"image/svg+xml", "application/octet-stream"},
		{"application/json", "application/json"},
		{"", "text/plain; charset=utf-8"}, // the engine stores evidence without a type as text
	} {
		t.Run(tc.stored, func(t *testing.T) {
			h := newHarness(t, harnessOpts{steps: failingSteps{contentType: tc.stored}})
			run := h.create(tokAlphaRunner, runReq("shop", "staging", []api.Step{httpStep("check")}))
			h.waitStatus(tokAlphaRunner, run.ID, api.StatusFailed)
			path := "/v1/runs/" + run.ID + "/artifacts"

			// A viewer reads the list.
			r := h.do("GET", path, tokAlphaViewer, nil)
			if r.status != http.StatusOK {
				t.Fatalf("list as viewer: %d %s", r.status, r.body)
			}
			var list api.ArtifactList
			if err := json.Unmarshal(r.body, &list); err != nil {
				t.Fatal(err)
			}
			if len(list.Artifacts) != 2 || list.Artifacts[1].Kind != api.ArtifactResponse || list.Artifacts[1].Member != "case-1" ||
				list.Artifacts[1].Step != 1 || list.Artifacts[1].Attempt != 1 || list.Artifacts[1].Size != int64(len(hostileBody)) {
				t.Fatalf("list = %+v", list.Artifacts)
			}
			name := list.Artifacts[1].Name

			// A viewer downloads it: an attachment, never sniffed, never a page.
			r = h.do("GET", api.ArtifactPath(run.ID, name), tokAlphaViewer, nil)
			if r.status != http.StatusOK || string(r.body) != hostileBody {
				t.Fatalf("download: %d %q", r.status, r.body)
			}
			for k, want := range map[string]string{
				"Content-Type":            tc.served,
				"Content-Disposition":     "attachment; filename=" + name,
				"X-Content-Type-Options":  "nosniff",
				"Content-Security-Policy": "default-src 'none'; sandbox",
			} {
				if got := r.header.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}

			// Another tenant's run is 404, listed or downloaded, like a missing run.
			for _, p := range []string{path, api.ArtifactPath(run.ID, name), "/v1/runs/nope/artifacts"} {
				if r := h.do("GET", p, tokBetaRunner, nil); r.status != http.StatusNotFound {
					t.Errorf("GET %s as another tenant: %d, want 404", p, r.status)
				} else {
					r.problem(t)
				}
			}
			// An unknown name is 404 naming the list.
			r = h.do("GET", api.ArtifactPath(run.ID, "nope.txt"), tokAlphaViewer, nil)
			if r.status != http.StatusNotFound || r.problem(t).Title != "Artifact not found" {
				t.Errorf("unknown artifact: %d %s", r.status, r.body)
			}
			// No token: 401.
			if r := h.do("GET", path, "", nil); r.status != http.StatusUnauthorized {
				t.Errorf("no token: %d", r.status)
			}
		})
	}
}

// TestArtifactsOfPassingRun: a run with nothing failed lists none (an
// empty list, not null).
func TestArtifactsOfPassingRun(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	run := h.create(tokAlphaRunner, runReq("shop", "staging", []api.Step{httpStep("ok")}))
	h.waitStatus(tokAlphaRunner, run.ID, api.StatusPassed)
	r := h.do("GET", "/v1/runs/"+run.ID+"/artifacts", tokAlphaViewer, nil)
	if r.status != http.StatusOK || string(r.body) != "{\"artifacts\":[]}\n" {
		t.Fatalf("list of a passing run: %d %s", r.status, r.body)
	}
}
