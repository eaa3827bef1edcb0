package client

import (
	"context"
	"net/http"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/sanitize"
)

// rawBody receives a response that is not JSON (an artifact's content).
type rawBody struct {
	data        []byte
	contentType string
}

// ArtifactContent is an artifact's content as the server sent it.
type ArtifactContent struct {
	Data        []byte
	ContentType string
}

// ListArtifacts lists the evidence kept for a run's failed steps
// (GET /v1/runs/{id}/artifacts), in the order it was kept.
func (c *Client) ListArtifacts(ctx context.Context, runID string) ([]api.Artifact, error) {
	var out api.ArtifactList
	if _, err := c.do(ctx, call{op: "list the artifacts of run " + sanitize.Line(runID), method: http.MethodGet,
		path: runPath(runID) + "/artifacts", runID: runID, safe: true, want: []int{http.StatusOK}}, &out); err != nil {
		return nil, err
	}
	if out.Artifacts == nil {
		out.Artifacts = []api.Artifact{}
	}
	return out.Artifacts, nil
}

// GetArtifact downloads one artifact of a run (GET
// /v1/runs/{id}/artifacts/{name}); name is an api.Artifact's Name.
func (c *Client) GetArtifact(ctx context.Context, runID, name string) (*ArtifactContent, error) {
	var raw rawBody
	if _, err := c.do(ctx, call{op: "download artifact " + sanitize.Line(name) + " of run " + sanitize.Line(runID), method: http.MethodGet,
		path: api.ArtifactPath(runID, name), safe: true, want: []int{http.StatusOK}}, &raw); err != nil {
		return nil, err
	}
	return &ArtifactContent{Data: raw.data, ContentType: raw.contentType}, nil
}

// ArtifactURL is where a person downloads an artifact: the API's address of
// it under the server's URL. A browser logged in to the web console fetches
// it with its session; a script sends its token.
func (c *Client) ArtifactURL(runID, name string) string {
	return c.display + api.ArtifactPath(runID, name)
}
