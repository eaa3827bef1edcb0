package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/zof-ai/zof-ci/api"
)

// HealthOptions select the test health to read (GET /v1/health).
type HealthOptions struct {
	// Project is required.
	Project string
	// Environment narrows it to one environment ("" : all).
	Environment string
	// Since is the window, "30d" or "12h" ("": the server's default, 30d).
	Since string
}

// Health returns per-case test health of one project of the caller's tenant
// (docs/health.md).
func (c *Client) Health(ctx context.Context, o HealthOptions) (*api.Health, error) {
	q, err := o.query()
	if err != nil {
		return nil, err
	}
	var out api.Health
	if _, err := c.do(ctx, call{op: "read test health", method: http.MethodGet, path: "/v1/health", query: q, safe: true, want: []int{http.StatusOK}}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func (o HealthOptions) query() (url.Values, error) {
	if o.Project == "" {
		return nil, invalidf("test health needs a project: set HealthOptions.Project")
	}
	q := url.Values{"project": {o.Project}}
	if o.Environment != "" {
		q.Set("environment", o.Environment)
	}
	if o.Since != "" {
		q.Set("since", o.Since)
	}
	return q, nil
}

// SelectionHealth returns how safe change-aware selection was for one
// project of the caller's tenant, from its shadow runs (GET
// /v1/health/selection, docs/health.md "Selection safety").
func (c *Client) SelectionHealth(ctx context.Context, o HealthOptions) (*api.SelectionHealth, error) {
	q, err := o.query()
	if err != nil {
		return nil, err
	}
	var out api.SelectionHealth
	if _, err := c.do(ctx, call{op: "read selection safety", method: http.MethodGet, path: "/v1/health/selection", query: q, safe: true, want: []int{http.StatusOK}}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
