package config_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/zof-ai/zof-ci/internal/ci/github/githubtest"
	"github.com/zof-ai/zof-ci/internal/server/config"
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
          pull_request: {environment: staging, scope: changed, shadow: "sample:4"}
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
        shadow: true
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
	if got := gh.Events; !cmp.Equal(got, map[string]config.EventRule{"pull_request": {Environment: "staging", Scope: "changed", Shadow: config.ShadowOption{On: true, Sample: 4}}, "push": {Environment: "staging", Scope: "all"}}) {
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
	if h := scheds[1]; h.SuiteFile != "/etc/zof/smoke.yaml" || h.Location.String() != "UTC" || h.Scope != "smoke" || h.Shadow != (config.ShadowOption{On: true}) {
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
		{"shadow of all", repo(", events: {push: {scope: all, shadow: true}}"), []string{`shadow applies to scope changed or smoke, not "all"`}},
		{"shadow sample 0", repo(", events: {push: {scope: changed, shadow: 'sample:0'}}"), []string{"sample:N needs a whole number N ≥ 1"}},
		{"shadow word", repo(", events: {push: {scope: changed, shadow: sometimes}}"), []string{`use true, false or sample:N, not "sometimes"`}},
		{"shadow schedule of all", sched("name: n, cron: '0 2 * * *', suite_file: /x, shadow: true"), []string{`shadow applies to scope changed or smoke, not "all"`}},
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

// appPEM is a GitHub App key as GitHub hands it out (PKCS#1 PEM).
func appPEM() string { return string(githubtest.KeyPEM(githubtest.TestKey())) }

func appLookup(extra map[string]string) config.Lookup {
	return func(name string) (string, bool) {
		if v, ok := extra[name]; ok {
			return v, true
		}
		return triggerLookup(name)
	}
}

func TestParseGitHubApp(t *testing.T) {
	pkcs8, err := x509.MarshalPKCS8PrivateKey(githubtest.TestKey())
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "app.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), 0o600); err != nil {
		t.Fatal(err)
	}
	oneLine := strings.ReplaceAll(strings.TrimSpace(appPEM()), "\n", `\n`)
	yaml := `
tenants:
  a:
    tokens: [{name: x, role: runner, env: TOK_A}]
    repositories:
      - {provider: github, repo: acme/env, webhook_secret_env: HOOK, app_id: 101, private_key_env: APP_KEY, installation_id: 7}
      - {provider: github, repo: acme/file, app_id: 102, private_key_file: ` + file + `}
      - {provider: github, repo: acme/oneline, app_id: 103, private_key_env: APP_KEY_ONE_LINE}
      - {provider: github, repo: acme/pat, token_env: GH_TOKEN}
`
	c, err := config.Parse([]byte(yaml), "server.yaml", appLookup(map[string]string{"APP_KEY": appPEM(), "APP_KEY_ONE_LINE": oneLine}))
	if err != nil {
		t.Fatal(err)
	}
	want := githubtest.TestKey()
	tests := []struct {
		repo         string
		id, inst     int64
		source       string
		tokenEnvHas  string
		tokenEnvLack string
	}{
		{"acme/env", 101, 7, "env APP_KEY", "APP_KEY", ""},
		{"acme/file", 102, 0, "file " + file, "", ""},
		{"acme/oneline", 103, 0, "env APP_KEY_ONE_LINE", "APP_KEY_ONE_LINE", ""},
	}
	for _, tt := range tests {
		r := c.FindRepository(config.ProviderGitHub, tt.repo)
		if r == nil || r.App == nil {
			t.Fatalf("%s: %+v", tt.repo, r)
		}
		if r.App.ID != tt.id || r.App.InstallationID != tt.inst || r.App.KeySource != tt.source || !r.App.Key.Equal(want) || r.Token != "" {
			t.Errorf("%s: app %d inst %d source %q key equal %v token %q", tt.repo, r.App.ID, r.App.InstallationID, r.App.KeySource, r.App.Key.Equal(want), r.Token.Value())
		}
		if tt.tokenEnvHas != "" && !slices.Contains(c.TokenEnv(), tt.tokenEnvHas) {
			t.Errorf("TokenEnv %v lacks %s: runs would inherit the App's key", c.TokenEnv(), tt.tokenEnvHas)
		}
		// Neither the key nor its numbers ever print.
		for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
			s := fmt.Sprintf(f, r) + fmt.Sprintf(f, r.App) + fmt.Sprintf(f, *r)
			if strings.Contains(s, "PRIVATE KEY") || strings.Contains(s, want.D.String()[:20]) || strings.Contains(s, want.N.String()[:20]) {
				t.Errorf("%s prints the key: %s", f, s)
			}
		}
	}
	if pat := c.FindRepository(config.ProviderGitHub, "acme/pat"); pat.App != nil || pat.Token.Value() != "ghs_token" {
		t.Errorf("PAT repository: %+v", pat)
	}
}

func TestParseGitHubAppErrors(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ec)
	pubDER, _ := x509.MarshalPKIXPublicKey(&githubtest.TestKey().PublicKey)
	keys := map[string]string{
		"GOOD":      appPEM(),
		"GARBAGE":   "not a key at all",
		"EC":        string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER})),
		"PUBLIC":    string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})),
		"TRUNCATED": appPEM()[:200] + "\n-----END RSA PRIVATE KEY-----\n",
		"BROKEN":    "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n",
		"ENCRYPTED": "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
		"TWO":       appPEM() + appPEM(),
	}
	head := "tenants:\n  a:\n    tokens: [{name: x, role: runner, env: TOK_A}]\n    repositories:\n      - provider: github\n        repo: acme/shop\n"
	tests := []struct {
		name, fields string
		line         int
		want         string
	}{
		{"garbage", "        app_id: 1\n        private_key_env: GARBAGE\n", 8, "private key from env GARBAGE is not an RSA private key: it is not PEM"},
		{"EC key", "        app_id: 1\n        private_key_env: EC\n", 8, "GitHub Apps sign with RSA"},
		{"public key", "        app_id: 1\n        private_key_env: PUBLIC\n", 8, `PEM "PUBLIC KEY", not a private key`},
		{"truncated", "        app_id: 1\n        private_key_env: TRUNCATED\n", 8, "not an RSA private key"},
		{"broken", "        app_id: 1\n        private_key_env: BROKEN\n", 8, "does not hold a readable key"},
		{"encrypted", "        app_id: 1\n        private_key_env: ENCRYPTED\n", 8, "encrypted"},
		{"two keys", "        app_id: 1\n        private_key_env: TWO\n", 8, "more than one PEM block"},
		{"unset env", "        app_id: 1\n        private_key_env: NOPE\n", 8, "NOPE is not set"},
		{"missing file", "        app_id: 1\n        private_key_file: /nonexistent/app.pem\n", 8, "/nonexistent/app.pem"},
		{"no key", "        app_id: 1\n", 7, "needs the App's private key"},
		{"key without app_id", "        private_key_env: GOOD\n", 5, "give the GitHub App's numeric ID"},
		{"both key sources", "        app_id: 1\n        private_key_env: GOOD\n        private_key_file: /x.pem\n", 9, "either private_key_env or private_key_file"},
		{"token and app", "        token_env: GH_TOKEN\n        app_id: 1\n        private_key_env: GOOD\n", 7, "either token_env"},
		{"negative installation", "        app_id: 1\n        private_key_env: GOOD\n        installation_id: -3\n", 9, "installation_id must be a positive number"},
		{"not a number", "        app_id: abc\n        private_key_env: GOOD\n", 7, "abc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse([]byte(head+tt.fields), "server.yaml", appLookup(keys))
			var ce *config.Error
			if !errors.As(err, &ce) || len(ce.Problems) != 1 {
				t.Fatalf("err = %v, want one problem", err)
			}
			p := ce.Problems[0]
			if !strings.HasPrefix(p, fmt.Sprintf("line %d: ", tt.line)) || !strings.Contains(p, tt.want) {
				t.Errorf("problem %q, want line %d and %q", p, tt.line, tt.want)
			}
			if strings.Contains(err.Error(), "MII") || strings.Contains(err.Error(), "AAAA") {
				t.Errorf("the error quotes the key: %v", err)
			}
		})
	}
	gitlab := "tenants:\n  a:\n    tokens: [{name: x, role: runner, env: TOK_A}]\n    repositories:\n      - {provider: gitlab, repo: g/p, token_env: GL_TOKEN, app_id: 1, private_key_env: GOOD}\n"
	if _, err := config.Parse([]byte(gitlab), "server.yaml", appLookup(keys)); err == nil || !strings.Contains(err.Error(), "are for GitHub repositories") {
		t.Errorf("gitlab with an App: %v", err)
	}
}

// FuzzParsePrivateKey: no input panics the key parser, and an accepted key is a usable RSA key.
func FuzzParsePrivateKey(f *testing.F) {
	f.Add([]byte(appPEM()))
	f.Add([]byte(strings.ReplaceAll(appPEM(), "\n", `\n`)))
	f.Add([]byte("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n"))
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := config.ParsePrivateKey(data)
		if err == nil && (k == nil || k.Validate() != nil) {
			t.Fatalf("accepted an unusable key")
		}
		// The error never quotes the key material (the PEM body).
		if block, _ := pem.Decode(data); err != nil && block != nil && len(block.Bytes) >= 12 {
			if body := base64.StdEncoding.EncodeToString(block.Bytes[:12]); strings.Contains(err.Error(), body) {
				t.Fatalf("the error quotes the key: %v", err)
			}
		}
	})
}
