package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/zof-ai/zof-ci/api"
)

// ListAgents lists the endpoint agents of the caller's tenant (GET
// /v1/agents, docs/agents.md), of one pool when pool is not "".
func (c *Client) ListAgents(ctx context.Context, pool string) (*api.AgentList, error) {
	q := url.Values{}
	if pool != "" {
		q.Set("pool", pool)
	}
	var out api.AgentList
	if _, err := c.do(ctx, call{op: "list agents", method: http.MethodGet, path: "/v1/agents", query: q, safe: true, want: []int{http.StatusOK}}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
