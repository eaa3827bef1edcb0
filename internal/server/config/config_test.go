package config_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/zof-ai/zof-ci/internal/server/config"
)

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

var env = map[string]string{
	"TOK_A":   "token-of-tenant-a-0123456789",
	"TOK_B":   "token-of-tenant-b-0123456789",
	"SHORT":   "short",
	"EMPTY":   "",
	"TOK_DUP": "token-of-tenant-a-0123456789",
	"METRICS": "metrics-scraper-token-0123456789",
}

func lookup(name string) (string, bool) {
	v, ok := env[name]
	return v, ok
}

// minimal is the README's two-tenant example.
var minimal = `
listen: 127.0.0.1:8080
public_url: https://zof.example.com/
tenants:
  payments:
    max_concurrent_runs: 2
    allowed_targets: ["https://*.staging.example.com"]
    tokens:
      - {name: ci, role: runner, env: TOK_A}
      - {name: dashboard, role: viewer, sha256: ` + sum("viewer-token-0123456789") + `}
  search:
    allow_commands: true
    allowed_targets: ["http://127.0.0.1:*"]
    tokens:
      - {name: ci, role: admin, env: TOK_B}
`

func TestParseMinimal(t *testing.T) {
	c, err := config.Parse([]byte(minimal), "server.yaml", lookup)
	if err != nil {
		t.Fatal(err)
	}
	if c.MetricsListen != config.DefaultMetricsListen || c.HasMetricsToken() || c.MetricsAuthenticate("") || c.MetricsAuthenticate(env["TOK_A"]) {
		t.Errorf("metrics defaults: listen %q, token %v", c.MetricsListen, c.HasMetricsToken())
	}
	if c.Listen != "127.0.0.1:8080" || c.BlockAfter != 10*time.Minute || c.MaxBody != 5<<20 {
		t.Errorf("defaults: %+v", c)
	}
	if got := c.TenantNames(); !cmp.Equal(got, []string{"payments", "search"}) {
		t.Errorf("tenants %v", got)
	}
	if c.TenantLimit("payments") != 2 || c.TenantLimit("search") != config.DefaultMaxConcurrentRuns || c.TenantLimit("nobody") != 1 {
		t.Errorf("limits %d %d %d", c.TenantLimit("payments"), c.TenantLimit("search"), c.TenantLimit("nobody"))
	}
	if got := c.TokenEnv(); !cmp.Equal(got, []string{"TOK_A", "TOK_B"}) {
		t.Errorf("TokenEnv %v", got)
	}
	if got := c.RunURL("run_1"); got != "https://zof.example.com/runs/run_1" {
		t.Errorf("RunURL %q", got)
	}
	if !c.SecureCookies() {
		t.Error("SecureCookies false with an https public_url")
	}
	if !c.Tenants["search"].AllowCommands || c.Tenants["payments"].AllowCommands || c.Tenants["payments"].MaxStreams != config.DefaultMaxStreams {
		t.Errorf("tenant settings %+v %+v", c.Tenants["search"], c.Tenants["payments"])
	}
	tests := []struct {
		token string
		want  config.Principal
		ok    bool
	}{
		{env["TOK_A"], config.Principal{Tenant: "payments", Name: "ci", Role: config.RoleRunner}, true},
		{"viewer-token-0123456789", config.Principal{Tenant: "payments", Name: "dashboard", Role: config.RoleViewer}, true},
		{env["TOK_B"], config.Principal{Tenant: "search", Name: "ci", Role: config.RoleAdmin}, true},
		{"nope", config.Principal{}, false},
		{"", config.Principal{}, false},
		{env["TOK_A"] + " ", config.Principal{}, false},
	}
	for _, tt := range tests {
		got, ok := c.Authenticate(tt.token)
		if ok != tt.ok || got != tt.want {
			t.Errorf("Authenticate(%q) = %+v %v, want %+v %v", tt.token, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParseSettings(t *testing.T) {
	c, err := config.Parse([]byte(`
block_after: 90s
max_body: 512KiB
history_days: 365
tenants:
  a:
    max_streams: 10
    tokens: [{name: x, role: viewer, env: TOK_A}]
`), "server.yaml", lookup)
	if err != nil {
		t.Fatal(err)
	}
	if c.BlockAfter != 90*time.Second || c.MaxBody != 512<<10 || c.HistoryDays != 365 || c.Tenants["a"].MaxStreams != 10 || c.PublicURL != "" || c.RunURL("r") != "" || c.SecureCookies() {
		t.Errorf("%+v", c)
	}
	c, err = config.Parse([]byte("max_body: 2000000\ntenants: {a: {tokens: [{name: x, role: viewer, env: TOK_A}]}}\n"), "server.yaml", lookup)
	if err != nil || c.MaxBody != 2000000 || c.HistoryDays != config.DefaultHistoryDays {
		t.Fatalf("%v %+v", err, c)
	}
}

func TestParseMetrics(t *testing.T) {
	tenant := "tenants: {a: {tokens: [{name: x, role: viewer, env: TOK_A}]}}\n"
	tests := []struct {
		name, yaml, listen string
		token              string // the metrics token, "" for none
		env                []string
	}{
		{"default", tenant, config.DefaultMetricsListen, "", []string{"TOK_A"}},
		{"address", "metrics_listen: 0.0.0.0:9100\n" + tenant, "0.0.0.0:9100", "", []string{"TOK_A"}},
		{"off", "metrics_listen: off\n" + tenant, "", "", []string{"TOK_A"}},
		{"token from env", "metrics_token: {env: METRICS}\n" + tenant, config.DefaultMetricsListen, env["METRICS"], []string{"METRICS", "TOK_A"}},
		{"token by sha256", "metrics_listen: off\nmetrics_token: {sha256: " + sum("scrape-me-please-0123") + "}\n" + tenant, "", "scrape-me-please-0123", []string{"TOK_A"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Parse([]byte(tt.yaml), "server.yaml", lookup)
			if err != nil {
				t.Fatal(err)
			}
			if c.MetricsListen != tt.listen || c.HasMetricsToken() != (tt.token != "") || !cmp.Equal(c.TokenEnv(), tt.env) {
				t.Errorf("listen %q token %v env %v; want %q %v %v", c.MetricsListen, c.HasMetricsToken(), c.TokenEnv(), tt.listen, tt.token != "", tt.env)
			}
			if tt.token != "" && (!c.MetricsAuthenticate(tt.token) || c.MetricsAuthenticate(tt.token+"x") || c.MetricsAuthenticate(env["TOK_A"])) {
				t.Error("MetricsAuthenticate accepts the wrong tokens")
			}
			if _, ok := c.Authenticate(tt.token); ok && tt.token != "" {
				t.Error("the metrics token authenticates as a tenant principal")
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tok := "\n    tokens: [{name: x, role: runner, env: TOK_A}]"
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"empty", "", []string{"the file is empty"}},
		{"unknown top field", "listen: :8080\nlisten_addr: x\n", []string{"line 2: unknown field listen_addr"}},
		{"unknown tenant field", "tenants:\n  a:\n    max_concurrent: 2" + tok, []string{"line 3: unknown field max_concurrent"}},
		{"unknown token field", "tenants:\n  a:\n    tokens:\n      - {name: x, role: runner, env: TOK_A, secret: y}", []string{"line 4: unknown field secret"}},
		{"duplicate key", "tenants:\n  a:" + tok + "\n  a:" + tok, []string{`line 4: mapping key "a" already defined at line 2`}},
		{"two documents", "tenants: {}\n---\ntenants: {}\n", []string{"more than one YAML document"}},
		{"bad duration", "block_after: ten minutes\ntenants: {}", []string{"line 1: invalid duration"}},
		{"negative duration", "block_after: -1m\ntenants:\n  a:" + tok, []string{"line 1: block_after must be positive"}},
		{"bad size", "max_body: lots\ntenants: {}", []string{"line 1: invalid size"}},
		{"small size", "max_body: 10\ntenants:\n  a:" + tok, []string{"line 1: max_body must be between"}},
		{"history days zero", "history_days: 0\ntenants:\n  a:" + tok, []string{"line 1: history_days must be a whole number of days from 1 to 3660"}},
		{"history days not a number", "history_days: 90d\ntenants:\n  a:" + tok, []string{"line 1:"}},
		{"no tenants", "listen: 127.0.0.1:8080\n", []string{"no tenants"}},
		{"bad listen", "listen: localhost\ntenants:\n  a:" + tok, []string{"line 1: listen \"localhost\""}},
		{"bad metrics listen", "metrics_listen: metrics\ntenants:\n  a:" + tok, []string{`line 1: metrics_listen "metrics": use host:port`}},
		{"metrics token unset", "metrics_token: {env: NOPE}\ntenants:\n  a:" + tok, []string{"line 1: metrics_token: environment variable NOPE is not set"}},
		{"metrics token empty", "metrics_token: {}\ntenants:\n  a:" + tok, []string{"line 1: metrics_token: give the token sha256"}},
		{"metrics token field", "metrics_token: {env: METRICS, role: admin}\ntenants:\n  a:" + tok, []string{"line 1: unknown field role"}},
		{"metrics token is a tenant's", "metrics_token: {env: TOK_DUP}\ntenants:\n  a:" + tok, []string{`line 4: tenant a token "x": the same token is already configured for metrics_token`}},
		{"bad public url", "public_url: zof.example.com\ntenants:\n  a:" + tok, []string{"line 1: public_url"}},
		{"bad tenant name", "tenants:\n  'a b':" + tok, []string{"line 2: tenant name \"a b\""}},
		{"no tokens", "tenants:\n  a:\n    max_concurrent_runs: 1\n", []string{"line 2: tenant a has no tokens"}},
		{"zero limit", "tenants:\n  a:\n    max_concurrent_runs: 0" + tok, []string{"line 3: tenant a: max_concurrent_runs must be at least 1"}},
		{"bad role", "tenants:\n  a:\n    tokens:\n      - {name: x, role: root, env: TOK_A}", []string{`line 4: tenant a token "x": role "root" is not one of viewer, runner, admin`}},
		{"no name", "tenants:\n  a:\n    tokens:\n      - {role: viewer, env: TOK_A}", []string{"line 4: tenant a token 1 has no name"}},
		{"both sha and env", "tenants:\n  a:\n    tokens:\n      - {name: x, role: viewer, env: TOK_A, sha256: " + sum("x") + "}", []string{"either sha256 or env"}},
		{"neither", "tenants:\n  a:\n    tokens:\n      - {name: x, role: viewer}", []string{"give the token's sha256"}},
		{"bad hex", "tenants:\n  a:\n    tokens:\n      - {name: x, role: viewer, sha256: abc}", []string{"64 hex characters"}},
		{"env unset", "tenants:\n  a:\n    tokens:\n      - {name: x, role: viewer, env: NOPE}", []string{"environment variable NOPE is not set"}},
		{"env empty", "tenants:\n  a:\n    tokens:\n      - {name: x, role: viewer, env: EMPTY}", []string{"environment variable EMPTY is not set"}},
		{"env short", "tenants:\n  a:\n    tokens:\n      - {name: x, role: viewer, env: SHORT}", []string{"has 5 characters"}},
		{"duplicate name", "tenants:\n  a:\n    tokens:\n      - {name: x, role: viewer, env: TOK_A}\n      - {name: x, role: viewer, env: TOK_B}", []string{"line 5: tenant a token \"x\": the name is used twice"}},
		{"same token across tenants", "tenants:\n  a:" + tok + "\n  b:\n    tokens:\n      - {name: y, role: viewer, sha256: " + sum(env["TOK_A"]) + "}",
			[]string{`line 6: tenant b token "y": the same token is already configured for tenant a token "x"`}},
		{"same token via env", "tenants:\n  a:" + tok + "\n  b:\n    tokens: [{name: y, role: viewer, env: TOK_DUP}]", []string{"the same token is already configured"}},
		{"bad pattern", "tenants:\n  a:\n    allowed_targets: [\"ftp://x\"]" + tok, []string{"line 3: tenant a: allowed_targets: pattern \"ftp://x\" must start with http:// or https://"}},
		{"every problem at once", "block_after: 0s\ntenants:\n  a:\n    max_concurrent_runs: -1\n    tokens: [{name: x, role: boss, env: NOPE}]\n",
			[]string{"line 1: block_after", "line 4: tenant a: max_concurrent_runs", `line 5: tenant a token "x": role "boss"`, "line 5: tenant a token \"x\": environment variable NOPE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tt.yaml), "server.yaml", lookup)
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want *config.Error", err)
			}
			if ce.File != "server.yaml" {
				t.Errorf("file %q", ce.File)
			}
			if len(ce.Problems) != len(tt.want) {
				t.Fatalf("problems %q, want %d", ce.Problems, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.Contains(ce.Problems[i], w) {
					t.Errorf("problem %d = %q, want it to contain %q", i, ce.Problems[i], w)
				}
			}
			if strings.Contains(err.Error(), env["TOK_A"]) {
				t.Error("the error prints a token")
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "server.yaml")
	if err := os.WriteFile(p, []byte(minimal), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load(p, lookup); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load(filepath.Join(dir, "missing.yaml"), lookup); err == nil || !strings.Contains(err.Error(), "--config") {
		t.Errorf("missing file: %v", err)
	}
}

func TestPatterns(t *testing.T) {
	tests := []struct {
		pattern string
		yes     []string
		no      []string
	}{
		{"http://127.0.0.1:*", []string{"http://127.0.0.1:8080/x", "http://127.0.0.1/", "http://127.0.0.1:1"},
			[]string{"https://127.0.0.1:8080/", "http://127.0.0.2:8080/", "http://127.0.0.1.evil.com:80/", "http://user@127.0.0.1:80/"}},
		{"https://*.staging.example.com/**", []string{"https://api.staging.example.com/", "https://API.Staging.example.com/a/b", "https://api.staging.example.com:443/x", "https://api.staging.example.com./x"},
			[]string{"https://a.b.staging.example.com/", "https://staging.example.com/", "https://api.staging.example.com:8443/", "http://api.staging.example.com/", "https://api.staging.example.com.evil.com/"}},
		{"https://**.example.com", []string{"https://a.example.com", "https://a.b.example.com/x"}, []string{"https://example.com", "https://aexample.com"}},
		{"https://api.example.com/v1/**", []string{"https://api.example.com/v1", "https://api.example.com/v1/", "https://api.example.com/v1/users/7"},
			[]string{"https://api.example.com/v2/users", "https://api.example.com/v1/../admin", "https://api.example.com/v1/%2e%2e/admin", "https://api.example.com/"}},
		{"http://localhost:8080", []string{"http://localhost:8080/anything"}, []string{"http://localhost/", "http://localhost:8081/"}},
		{"http://[::1]:*", []string{"http://[::1]:9000/"}, []string{"http://[::2]:9000/", "http://127.0.0.1:9000/"}},
	}
	for _, tt := range tests {
		p, err := config.ParsePattern(tt.pattern)
		if err != nil {
			t.Fatalf("%s: %v", tt.pattern, err)
		}
		for _, u := range tt.yes {
			if !p.Match(mustURL(t, u)) {
				t.Errorf("%s should match %s", tt.pattern, u)
			}
		}
		for _, u := range tt.no {
			if p.Match(mustURL(t, u)) {
				t.Errorf("%s should not match %s", tt.pattern, u)
			}
		}
	}
	for _, bad := range []string{"", "127.0.0.1:*", "ftp://x", "http://", "http://a:b", "http://a:", "http://u@h", "http://h/p?q", "http://h/[", "http://h h", "http://***.x", "http://[::1"} {
		if _, err := config.ParsePattern(bad); err == nil {
			t.Errorf("ParsePattern(%q) accepted", bad)
		}
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(minimal))
	f.Add([]byte("tenants:\n  a:\n    tokens: [{name: x, role: runner, env: TOK_A}]\n"))
	f.Add([]byte("block_after: 1h\nmax_body: 1MiB\n"))
	f.Add([]byte("tenants: {a: {allowed_targets: ['http://[::1]:*/**'], tokens: [{name: x, role: admin, sha256: " + sum("x") + "}]}}"))
	f.Add([]byte("- [a, b]\n"))
	f.Add([]byte("metrics_listen: off\nmetrics_token: {env: METRICS}\ntenants: {a: {tokens: [{name: x, role: viewer, env: TOK_A}]}}\n"))
	f.Add([]byte("metrics_listen: '[::1]:9464'\nmetrics_token: {sha256: " + sum("y") + "}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := config.Parse(data, "fuzz.yaml", lookup)
		if err == nil {
			if len(c.Tenants) == 0 || c.MaxBody < config.MinMaxBody || c.BlockAfter <= 0 {
				t.Fatalf("accepted an invalid config: %+v", c)
			}
			if c.MetricsAuthenticate("") {
				t.Fatal("an empty metrics token is accepted")
			}
			for _, tn := range c.Tenants {
				if len(tn.Tokens) == 0 || tn.MaxConcurrentRuns < 1 {
					t.Fatalf("accepted an invalid tenant: %+v", tn)
				}
			}
		}
	})
}

func FuzzPattern(f *testing.F) {
	for _, s := range []string{"http://127.0.0.1:*", "https://*.a.com/**", "http://[::1]:80/x/*", "https://**.b/c"} {
		f.Add(s, "http://127.0.0.1:8080/x")
	}
	f.Fuzz(func(t *testing.T, pattern, target string) {
		p, err := config.ParsePattern(pattern)
		if err != nil {
			return
		}
		u, err := url.Parse(target)
		if err != nil {
			return
		}
		if p.Match(u) && (u.User != nil || (u.Scheme != "http" && u.Scheme != "https")) {
			t.Fatalf("%s matched %s", pattern, target)
		}
	})
}

func TestTargetPolicy(t *testing.T) {
	cfg, err := config.Parse([]byte(`
tenants:
  a:
    allowed_targets: ["http://127.0.0.1:*"]
    tokens: [{name: ci, role: runner, sha256: "`+strings.Repeat("ab", 32)+`"}]
`), "server.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	ok, _ := url.Parse("http://127.0.0.1:8089/x")
	bad, _ := url.Parse("http://169.254.169.254/latest/meta-data")
	if err := cfg.TargetPolicy("a")(ok); err != nil {
		t.Errorf("allowed target refused: %v", err)
	}
	if err := cfg.TargetPolicy("a")(bad); err == nil || !strings.Contains(err.Error(), "tenant a may not reach http://169.254.169.254/latest/meta-data") {
		t.Errorf("outside target: %v", err)
	}
	if err := cfg.TargetPolicy("nope")(ok); err == nil {
		t.Error("unknown tenant allowed")
	}
}
