package reporttest

import (
	"github.com/zof-ai/zof-ci/api"
)

// Request is a realistic resolved run definition: project checkout-service on
// staging; case login (2 steps, retries 1), case checkout with variants eur and
// usd (3 steps), case contract-tests (a run step); set release = login, checkout
// (sequential). The selection is scope changed with covers reasons.
func Request() *api.RunRequest {
	return &api.RunRequest{
		Project: "checkout-service",
		Environment: api.Environment{
			Name: "staging", URL: "https://staging.example.test", Exclusive: true,
		},
		Cases: []api.Case{
			{
				ID: "login", Name: "User can log in", Tags: []string{"smoke", "auth"}, Retries: 1, Line: 30,
				Steps: []api.Step{
					{Name: "login page renders", HTTP: &api.HTTPRequest{Method: "GET", Path: "/login"}, Line: 33},
					{Name: "token issued", HTTP: &api.HTTPRequest{Method: "POST", Path: "/api/login"}, Line: 40},
				},
			},
			{
				ID: "checkout", Name: "Checkout in every currency", Line: 52,
				Variants: []api.Variant{{Name: "eur", Vars: map[string]string{"currency": "EUR"}}, {Name: "usd", Vars: map[string]string{"currency": "USD"}}},
				Steps: []api.Step{
					{Name: "add item", HTTP: &api.HTTPRequest{Method: "POST", Path: "/api/items"}, Line: 57},
					{Name: "create cart", HTTP: &api.HTTPRequest{Method: "POST", Path: "/api/cart"}, Line: 62},
					{Name: "pay", HTTP: &api.HTTPRequest{Method: "POST", Path: "/api/pay"}, Line: 68},
				},
			},
			{
				ID: "contract-tests", Line: 75,
				Steps: []api.Step{{Run: &api.Command{Command: "go test ./api/..."}, Line: 77}},
			},
		},
		Sets: []api.Set{{Name: "release", Cases: []string{"login", "checkout"}, Sequential: true}},
		Selection: api.Selection{
			Scope: "changed", Effective: "changed",
			Cases: []api.SelectedCase{
				{ID: "login", Reasons: []api.Reason{{Kind: api.ReasonCovers, File: "services/auth/token.go", Pattern: "services/auth/**"}}},
				{ID: "checkout", Reasons: []api.Reason{{Kind: api.ReasonCovers, File: "services/checkout/cart.go", Pattern: "services/checkout/**"}}},
				{ID: "contract-tests", Reasons: []api.Reason{{Kind: api.ReasonAlways}}},
			},
			Diff: &api.DiffSummary{Source: "git", Base: "main", Head: "HEAD", Files: 2, Complete: true},
		},
		Source: api.Source{
			Provider: "github", Repo: "zof-ai/checkout-service", SHA: "0123456789abcdef0123456789abcdef01234567",
			Ref: "refs/pull/42/merge", PR: 42, CIRunID: "9001", Attempt: 1, Trigger: "ci",
		},
		SuiteFile: "zof.yaml",
	}
}
