package config_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/zof-ai/zof-ci/server/config"
)

var withTriggers = `
tenants:
  payments:
    tokens: [{name: ci, role: runner, env: TOK_A}]
    repositories:
      - provider: github
        repo: Acme/Checkout
        webhook_secret_env: HOOK
        token_env: GH_TOKEN
        suite: ci/zof.yaml
        vars: {STAGING_URL: "https://staging.example.com"}
        vars_env: {STAGING_TOKEN: STAGING_TOKEN}
        events:
          pull_request: {environment: staging, scope: changed}
          push: {environment: staging}
      - provider: gitlab
        repo: group/sub/checkout
        api_url: https://gitlab.example.com/api/v4
        webhook_secret_env: HOOK
        token_env: GL_TOKEN
        events:
          merge_request: {scope: smoke}
    schedules:
      - name: nightly
        cron: "0  2 * * *"
        timezone: Europe/Berlin
        repository: acme/checkout
        ref: main
        environment: staging
      - name: hourly-smoke
        cron: "0 * * * *"
        suite_file: /etc/zof/smoke.yaml
        scope: smoke
`

func triggerLookup(name string) (string, bool) {
	extra := map[string]string{"HOOK": "hook-secret-0123456789", "GH_TOKEN": "ghs_token", "GL_TOKEN": "glpat-api", "STAGING_TOKEN": "s3cr3t", "SHORTHOOK": "abc"}
	if v, ok := extra[name]; ok {
		return v, true
	}
	return lookup(name)
}

func TestParseRepositoriesAndSchedules(t *testing.T) {
	c, err := config.Parse([]byte(withTriggers), "server.yaml", triggerLookup)
	if err != nil {
		t.Fatal(err)
	}
	gh := c.FindRepository(config.ProviderGitHub, "acme/checkout")
	if gh == nil || gh.Tenant != "payments" || gh.Suite != "ci/zof.yaml" || gh.WebhookSecret.Value() != "hook-secret-0123456789" || gh.Token.Value() != "ghs_token" {
		t.Fatalf("github repository %+v", gh)
	}
	if got := gh.Events; !cmp.Equal(got, map[string]config.EventRule{"pull_request": {Environment: "staging", Scope: "changed"}, "push": {Environment: "staging", Scope: "all"}}) {
		t.Errorf("events %v", got)
	}
	if v, ok := gh.Lookup("STAGING_TOKEN"); !ok || v != "s3cr3t" {
		t.Errorf("vars_env lookup %q %v", v, ok)
	}
	if _, ok := gh.Lookup("HOME"); ok {
		t.Error("Lookup resolved a name that is not in vars")
	}
	gl := c.FindRepository(config.ProviderGitLab, "group/sub/checkout")
	if gl == nil || gl.Suite != config.DefaultSuitePath || gl.APIURL != "https://gitlab.example.com/api/v4" {
		t.Fatalf("gitlab repository %+v", gl)
	}
	if c.FindRepository(config.ProviderGitLab, "acme/checkout") != nil {
		t.Error("found a github repository as gitlab")
	}
	if n := len(c.WebhookRepositories(config.ProviderGitHub)); n != 1 {
		t.Errorf("github webhook repositories: %d", n)
	}
	scheds := c.AllSchedules()
	if len(scheds) != 2 {
		t.Fatalf("schedules %d", len(scheds))
	}
	n := scheds[0]
	if n.Cron != "0 2 * * *" || n.Location.String() != "Europe/Berlin" || n.Repository != gh || n.Ref != "main" || n.Scope != "all" || n.Tenant != "payments" {
		t.Errorf("nightly %+v", n)
	}
	if h := scheds[1]; h.SuiteFile != "/etc/zof/smoke.yaml" || h.Location.String() != "UTC" || h.Scope != "smoke" {
		t.Errorf("hourly %+v", h)
	}
	env := c.TokenEnv()
	for _, want := range []string{"HOOK", "GH_TOKEN", "GL_TOKEN", "STAGING_TOKEN"} {
		if !strings.Contains(strings.Join(env, ","), want) {
			t.Errorf("TokenEnv %v lacks %s", env, want)
		}
	}
	// Secrets never print.
	for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
		if s := fmt.Sprintf(f, gh); strings.Contains(s, "hook-secret") || strings.Contains(s, "ghs_token") || strings.Contains(s, "s3cr3t") {
			t.Errorf("%s prints a secret: %s", f, s)
		}
	}
}

func TestParseTriggerErrors(t *testing.T) {
	head := "tenants:\n  a:\n    tokens: [{name: x, role: runner, env: TOK_A}]\n"
	repo := func(extra string) string {
		return head + "    repositories:\n      - {provider: github, repo: acme/shop, webhook_secret_env: HOOK" + extra + "}\n"
	}
	sched := func(s string) string {
		return repo("") + "    schedules:\n      - {" + s + "}\n"
	}
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown field", repo(", secret: x"), []string{"unknown field secret"}},
		{"bad provider", head + "    repositories: [{provider: bitbucket, repo: a/b}]\n", []string{`provider "bitbucket"`}},
		{"bad github repo", head + "    repositories: [{provider: github, repo: a/b/c}]\n", []string{"repo must be owner/name"}},
		{"gitlab needs a token", head + "    repositories: [{provider: gitlab, repo: g/p}]\n", []string{"token_env is required for GitLab"}},
		{"short secret", head + "    repositories: [{provider: github, repo: a/b, webhook_secret_env: SHORTHOOK}]\n", []string{"has 3 characters"}},
		{"unset secret", head + "    repositories: [{provider: github, repo: a/b, webhook_secret_env: NOPE}]\n", []string{"NOPE is not set"}},
		{"bad event", repo(", events: {merge_request: {}}"), []string{`event "merge_request" is not one of pull_request, push, merge_group`}},
		{"bad scope", repo(", events: {push: {scope: everything}}"), []string{`scope "everything"`}},
		{"events without secret", head + "    repositories: [{provider: github, repo: a/b, events: {push: {}}}]\n", []string{"no webhook_secret_env"}},
		{"suite outside", repo(", suite: ../x.yaml"), []string{"must be a path inside the repository"}},
		{"bad api url", repo(", api_url: github.example.com"), []string{"api_url"}},
		{"twice in a tenant", head + "    repositories:\n      - {provider: github, repo: a/b}\n      - {provider: github, repo: A/B}\n", []string{"listed twice"}},
		{"shared between tenants", repo("") + "  b:\n    tokens: [{name: y, role: runner, env: TOK_B}]\n    repositories: [{provider: github, repo: ACME/shop}]\n",
			[]string{"already configured for tenant a"}},
		{"bad cron", sched("name: n, cron: '0 2 * *', suite_file: /x"), []string{"cron"}},
		{"six fields", sched("name: n, cron: '0 0 2 * * *', suite_file: /x"), []string{"cron"}},
		{"bad zone", sched("name: n, cron: '0 2 * * *', timezone: Mars/Base, suite_file: /x"), []string{"timezone"}},
		{"no suite", sched("name: n, cron: '0 2 * * *'"), []string{"say where the suite is"}},
		{"unknown repository", sched("name: n, cron: '0 2 * * *', repository: other/repo"), []string{"not one of tenant a's repositories"}},
		{"both", sched("name: n, cron: '0 2 * * *', repository: acme/shop, suite_file: /x"), []string{"either repository"}},
		{"changed", sched("name: n, cron: '0 2 * * *', suite_file: /x, scope: changed"), []string{"scope changed needs a change"}},
		{"bad name", sched("name: Nightly Run, cron: '0 2 * * *', suite_file: /x"), []string{"name \"Nightly Run\""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tt.yaml), "server.yaml", triggerLookup)
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want *config.Error", err)
			}
			if len(ce.Problems) != len(tt.want) {
				t.Fatalf("problems %q, want %d", ce.Problems, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.Contains(ce.Problems[i], w) {
					t.Errorf("problem %d = %q, want %q", i, ce.Problems[i], w)
				}
			}
			if strings.Contains(err.Error(), "hook-secret") {
				t.Error("the error prints a secret")
			}
		})
	}
}
