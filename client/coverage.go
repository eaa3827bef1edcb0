package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/zof-ai/zof-ci/api"
)

// Coverage returns the latest coverage summary of one project of the
// caller's tenant (GET /v1/coverage, docs/coverage.md): what the newest run
// sent from a git checkout carried. A project with none is an *Error of
// KindInvalid with Status 404 whose message says how to get one.
func (c *Client) Coverage(ctx context.Context, project string) (*api.ProjectCoverage, error) {
	if project == "" {
		return nil, invalidf("coverage needs a project")
	}
	var out api.ProjectCoverage
	q := url.Values{"project": {project}}
	if _, err := c.do(ctx, call{op: "read coverage", method: http.MethodGet, path: "/v1/coverage", query: q, safe: true, want: []int{http.StatusOK}}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
