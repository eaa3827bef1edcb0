package config

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
	_ "time/tzdata" // schedules name IANA time zones; the static image has no /usr/share/zoneinfo

	"github.com/adhocore/gronx"
	"go.yaml.in/yaml/v3"
)

// Providers of repositories.
const (
	ProviderGitHub = "github"
	ProviderGitLab = "gitlab"
)

// Event kinds a repository's `events:` may configure, per provider.
var repoEvents = map[string][]string{
	ProviderGitHub: {"pull_request", "push", "merge_group"},
	ProviderGitLab: {"merge_request", "push"},
}

// DefaultSuitePath is a repository's suite file when `suite:` is not given
// (docs/cli.md: --suite defaults to zof.yaml).
const DefaultSuitePath = "zof.yaml"

// MinSecretLength is the shortest webhook secret accepted: it is all that
// stands between the internet and a run, so it must not be guessable.
const MinSecretLength = MinTokenLength

// Secret is a credential read from the environment. It prints as
// "[redacted]" with any fmt verb, so a config dumped in a log leaks nothing.
type Secret string

func (Secret) String() string   { return "[redacted]" }
func (Secret) GoString() string { return "[redacted]" }

// Value is the secret itself.
func (s Secret) Value() string { return string(s) }

// Repository is a repository whose webhooks and schedules create runs:
//
//	repositories:
//	  - provider: github                  # github | gitlab
//	    repo: acme/checkout               # GitHub owner/repo; GitLab project path (group/sub/project)
//	    api_url: https://api.github.com   # optional: GitHub Enterprise https://HOST/api/v3, GitLab https://HOST/api/v4
//	    webhook_secret_env: ZOF_HOOK_SECRET  # the webhook's secret (GitHub: Secret; GitLab: Secret token)
//	    token_env: ZOF_GITHUB_TOKEN       # API token: reads the suite and the change, posts notes (GitLab) ...
//	    # ... or, GitHub, a GitHub App (needed for check runs) instead of token_env:
//	    # app_id: 123456
//	    # private_key_env: ZOF_GITHUB_APP_KEY   # the App's private key (PEM), or private_key_file: /etc/zof/app.pem
//	    # installation_id: 7890123             # optional: else the webhook's installation.id, or looked up
//	    suite: zof.yaml                   # the suite file's path in the repository
//	    vars: {STAGING_URL: https://staging.example.com}   # what ${VAR} in the suite resolves to
//	    vars_env: {STAGING_TOKEN: ZOF_STAGING_TOKEN}       # ... read from the server's environment
//	    events:                           # event kinds that create runs; others are acknowledged and ignored
//	      pull_request: {environment: staging, scope: changed, shadow: sample:4}   # shadow: true | sample:N (docs/triggers.md)
//	      push: {environment: staging, scope: smoke}
//
// A repository may belong to one tenant only: a webhook URL cannot tell two
// tenants apart, and a secret shared between them would let one start the
// other's runs.
type Repository struct {
	Provider string
	// Repo is owner/repo (GitHub) or the project path (GitLab), as configured.
	Repo   string
	APIURL string
	// WebhookSecret is empty when the repository takes no webhooks (schedules only).
	WebhookSecret Secret
	// Token is token_env's token ("" with App or without credentials).
	Token Secret
	// App is the GitHub App the server acts as for this repository (nil: Token).
	App   *GitHubApp
	Suite string
	// Vars resolve ${VAR} in the suite; nothing else does (never the server's own environment).
	Vars   map[string]Secret
	Events map[string]EventRule
	Tenant string
}

// GitHub App credentials are per repository, like token_env: each
// repository names the App it is reached through (several may name the same
// App; `zof serve` then shares its tokens).
//
// MaxPrivateKeySize bounds private_key_file: a 4096-bit RSA key in PEM is
// about 3.3 KB, so anything much larger is not a key.
const MaxPrivateKeySize = 64 << 10

// GitHubApp is a GitHub App's credentials (app_id, private_key_env or
// private_key_file, installation_id). It prints without the key.
type GitHubApp struct {
	// ID is the App's numeric ID (the App's settings page: "App ID").
	ID int64
	// InstallationID is the installation to act as; 0: the webhook
	// payload's installation.id, or else looked up from the repository.
	InstallationID int64
	// Key is the App's private key; it never leaves the process but as JWT signatures.
	Key *rsa.PrivateKey
	// KeySource says where the key came from ("env NAME", "file PATH"), for messages.
	KeySource string
}

func (a *GitHubApp) String() string {
	if a == nil {
		return "<nil>"
	}
	return fmt.Sprintf("GitHub App %d (key from %s)", a.ID, a.KeySource)
}

// GoString keeps %#v from printing the key.
func (a *GitHubApp) GoString() string { return a.String() }

// ParsePrivateKey reads a GitHub App's private key: PEM, PKCS#1 ("BEGIN RSA
// PRIVATE KEY", the .pem file GitHub generates) or PKCS#8 ("BEGIN PRIVATE
// KEY") holding an RSA key. A value whose line breaks were written as the
// two characters \n (common when a PEM is pasted into one environment
// variable) is accepted too. Errors never quote the data.
func ParsePrivateKey(data []byte) (*rsa.PrivateKey, error) {
	data = bytes.TrimSpace(data)
	if !bytes.ContainsRune(data, '\n') && bytes.Contains(data, []byte(`\n`)) {
		data = bytes.ReplaceAll(data, []byte(`\n`), []byte("\n"))
	}
	block, rest := pem.Decode(data)
	switch {
	case block == nil:
		return nil, errors.New("it is not PEM: use the .pem file GitHub generated for the App (it starts with -----BEGIN RSA PRIVATE KEY-----)")
	case len(bytes.TrimSpace(rest)) > 0:
		return nil, errors.New("it holds more than one PEM block: give the App's private key alone")
	case block.Headers["Proc-Type"] != "" || block.Type == "ENCRYPTED PRIVATE KEY":
		return nil, errors.New("it is encrypted: GitHub's App keys are not; give the key as GitHub generated it")
	}
	var key any
	var err error
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("it is a PEM %q, not a private key: use the .pem file GitHub generated for the App", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("its PEM does not hold a readable key (%v)", sanitize(err))
	}
	rk, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("it is a %T key; GitHub Apps sign with RSA (RS256)", key)
	}
	if err := rk.Validate(); err != nil {
		return nil, fmt.Errorf("it is not a valid RSA key (%v)", sanitize(err))
	}
	return rk, nil
}

// sanitize keeps an x509/rsa error's message and nothing of the input.
func sanitize(err error) string {
	return strings.TrimPrefix(err.Error(), "x509: ")
}

// EventRule is what a run from one kind of event targets.
type EventRule struct {
	// Environment is the suite's environment ("" : the suite's default).
	Environment string
	// Scope is all, smoke, changed, tag:NAME, set:NAME or id:A,B.
	Scope string
	// Shadow makes the runs shadow runs (scope changed or smoke only).
	Shadow ShadowOption
}

// Lookup resolves ${VAR} in the repository's suite from Vars only.
func (r *Repository) Lookup(name string) (string, bool) {
	v, ok := r.Vars[name]
	return string(v), ok
}

// Schedule creates a run at every tick of a cron expression:
//
//	schedules:
//	  - name: nightly
//	    cron: "0 2 * * *"            # minute hour day-of-month month day-of-week
//	    timezone: Europe/Berlin      # IANA name; default UTC
//	    repository: acme/checkout    # one of the tenant's repositories: its suite at ref, read via the API
//	    ref: main                    # default: the repository's default branch (HEAD)
//	    # or instead of repository/ref, a suite file on the server's disk:
//	    # suite_file: /etc/zof/nightly.yaml
//	    environment: staging
//	    scope: all                   # default all
//	    shadow: true                 # scope smoke only: run every case, report the smoke subset
type Schedule struct {
	Name     string
	Cron     string
	TimeZone string
	Location *time.Location
	// Repository is set for a suite read from a repository at Ref.
	Repository *Repository
	Ref        string
	// SuiteFile is a suite on the server's disk (instead of Repository).
	SuiteFile   string
	Environment string
	Scope       string
	// Shadow makes the runs shadow runs (scope smoke only: a schedule has
	// no change); sample:N picks one tick in N.
	Shadow ShadowOption
	Tenant string
}

// FindRepository finds the configured repository of a webhook, matching
// the provider and the path case-insensitively (GitHub and GitLab paths are).
func (c *Config) FindRepository(provider, repo string) *Repository {
	for _, name := range c.TenantNames() {
		for _, r := range c.Tenants[name].Repositories {
			if r.Provider == provider && strings.EqualFold(r.Repo, repo) {
				return r
			}
		}
	}
	return nil
}

// WebhookRepositories lists the repositories of provider that take webhooks.
func (c *Config) WebhookRepositories(provider string) []*Repository {
	var out []*Repository
	for _, name := range c.TenantNames() {
		for _, r := range c.Tenants[name].Repositories {
			if r.Provider == provider && r.WebhookSecret != "" {
				out = append(out, r)
			}
		}
	}
	return out
}

// AllSchedules lists every tenant's schedules, by tenant then file order.
func (c *Config) AllSchedules() []*Schedule {
	var out []*Schedule
	for _, name := range c.TenantNames() {
		out = append(out, c.Tenants[name].Schedules...)
	}
	return out
}

type rawRepo struct {
	Provider         string               `yaml:"provider"`
	Repo             string               `yaml:"repo"`
	APIURL           string               `yaml:"api_url"`
	WebhookSecretEnv string               `yaml:"webhook_secret_env"`
	TokenEnv         string               `yaml:"token_env"`
	AppID            int64                `yaml:"app_id"`
	PrivateKeyEnv    string               `yaml:"private_key_env"`
	PrivateKeyFile   string               `yaml:"private_key_file"`
	InstallationID   int64                `yaml:"installation_id"`
	Suite            string               `yaml:"suite"`
	Vars             map[string]string    `yaml:"vars"`
	VarsEnv          map[string]string    `yaml:"vars_env"`
	Events           map[string]rawEvents `yaml:"events"`
}

type rawEvents struct {
	Environment string       `yaml:"environment"`
	Scope       string       `yaml:"scope"`
	Shadow      ShadowOption `yaml:"shadow"`
}

type rawSched struct {
	Name        string       `yaml:"name"`
	Cron        string       `yaml:"cron"`
	TimeZone    string       `yaml:"timezone"`
	Repository  string       `yaml:"repository"`
	Ref         string       `yaml:"ref"`
	SuiteFile   string       `yaml:"suite_file"`
	Environment string       `yaml:"environment"`
	Scope       string       `yaml:"scope"`
	Shadow      ShadowOption `yaml:"shadow"`
}

var (
	githubRepoRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$`)
	gitlabRepoRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$`)
	varNameRE    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	scheduleRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
)

// ValidScope checks a scope as the suite's selection understands it.
func ValidScope(s string) error {
	switch {
	case s == "all" || s == "smoke" || s == "changed":
		return nil
	case strings.HasPrefix(s, "tag:") && len(s) > 4, strings.HasPrefix(s, "set:") && len(s) > 4, strings.HasPrefix(s, "id:") && len(s) > 3:
		return nil
	}
	return fmt.Errorf("scope %q: use all, smoke, changed, tag:NAME, set:NAME or id:A,B", s)
}

func buildTriggers(c *Config, t *Tenant, rt rawTenant, root *yaml.Node, lookup Lookup, at func(int, string, ...any)) {
	name := t.Name
	secretEnv := func(line int, where, env string, minLen int) Secret {
		v, ok := lookup(env)
		if !ok || v == "" {
			at(line, "%s: environment variable %s is not set; export it before starting zof serve", where, env)
			return ""
		}
		if len(v) < minLen {
			at(line, "%s: the secret in %s has %d characters; use at least %d random ones (e.g. `openssl rand -hex 32`)", where, env, len(v), minLen)
			return ""
		}
		c.tokenEnvs = append(c.tokenEnvs, env)
		return Secret(v)
	}
	byRepo := map[string]*Repository{}
	for i, rr := range rt.Repositories {
		line := lineOf(root, "tenants", name, "repositories", i)
		where := fmt.Sprintf("tenant %s repository %d", name, i+1)
		if rr.Repo != "" {
			where = fmt.Sprintf("tenant %s repository %s", name, rr.Repo)
		}
		r := &Repository{Provider: rr.Provider, Repo: rr.Repo, APIURL: rr.APIURL, Suite: rr.Suite, Tenant: name,
			Vars: map[string]Secret{}, Events: map[string]EventRule{}}
		switch rr.Provider {
		case ProviderGitHub:
			if !githubRepoRE.MatchString(rr.Repo) {
				at(line, "%s: repo must be owner/name, like acme/checkout", where)
			}
		case ProviderGitLab:
			if !gitlabRepoRE.MatchString(rr.Repo) {
				at(line, "%s: repo must be the project's path, like group/checkout or group/sub/checkout", where)
			}
		default:
			at(line, "%s: provider %q is not one of github, gitlab", where, rr.Provider)
		}
		if rr.APIURL != "" {
			u, err := url.Parse(rr.APIURL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
				at(line, "%s: api_url %q: use the API's base URL, like https://github.example.com/api/v3 or https://gitlab.example.com/api/v4", where, rr.APIURL)
			}
		}
		if r.Suite == "" {
			r.Suite = DefaultSuitePath
		} else if strings.HasPrefix(r.Suite, "/") || slices.Contains(strings.Split(r.Suite, "/"), "..") || strings.Contains(r.Suite, "\\") {
			at(line, "%s: suite %q must be a path inside the repository, like zof.yaml or ci/zof.yaml", where, r.Suite)
		}
		if rr.WebhookSecretEnv != "" {
			r.WebhookSecret = secretEnv(line, where+" webhook_secret_env", rr.WebhookSecretEnv, MinSecretLength)
		}
		if rr.TokenEnv != "" {
			r.Token = secretEnv(line, where+" token_env", rr.TokenEnv, 1)
		} else if rr.Provider == ProviderGitLab {
			at(line, "%s: token_env is required for GitLab (a token with api scope reads the suite and posts the note and commit status)", where)
		}
		r.App = buildApp(c, rr, lookup, where, func(field string) int {
			if l := lineOf(root, "tenants", name, "repositories", i, field); l > 0 {
				return l
			}
			return line
		}, at)
		for _, k := range sortedKeys(rr.Vars) {
			if !varNameRE.MatchString(k) {
				at(line, "%s: vars: %q is not a variable name", where, k)
			}
			r.Vars[k] = Secret(rr.Vars[k])
		}
		for _, k := range sortedKeys(rr.VarsEnv) {
			if !varNameRE.MatchString(k) {
				at(line, "%s: vars_env: %q is not a variable name", where, k)
			}
			if _, dup := rr.Vars[k]; dup {
				at(line, "%s: %s is in both vars and vars_env; keep one", where, k)
			}
			if v := secretEnv(line, where+" vars_env "+k, rr.VarsEnv[k], 0); v != "" {
				r.Vars[k] = v
			}
		}
		allowed := repoEvents[rr.Provider]
		for _, ev := range sortedKeys(rr.Events) {
			er := rr.Events[ev]
			eline := lineOf(root, "tenants", name, "repositories", i, "events", ev)
			if allowed != nil && !slices.Contains(allowed, ev) {
				at(eline, "%s: event %q is not one of %s", where, ev, strings.Join(allowed, ", "))
				continue
			}
			if er.Scope == "" {
				er.Scope = "all"
			}
			if err := ValidScope(er.Scope); err != nil {
				at(eline, "%s event %s: %v", where, ev, err)
			} else if err := checkShadow(er.Shadow, er.Scope); err != nil {
				at(eline, "%s event %s: %v", where, ev, err)
			}
			r.Events[ev] = EventRule(er)
		}
		if len(rr.Events) > 0 && rr.WebhookSecretEnv == "" {
			at(line, "%s: events are configured but no webhook_secret_env: every webhook must be signed", where)
		}
		key := rr.Provider + "\x00" + strings.ToLower(rr.Repo)
		if byRepo[key] != nil {
			at(line, "%s: listed twice in this tenant; merge the entries", where)
		}
		byRepo[key] = r
		t.Repositories = append(t.Repositories, r)
	}
	names := map[string]bool{}
	for i, rs := range rt.Schedules {
		line := lineOf(root, "tenants", name, "schedules", i)
		where := fmt.Sprintf("tenant %s schedule %d", name, i+1)
		if rs.Name != "" {
			where = fmt.Sprintf("tenant %s schedule %s", name, rs.Name)
		}
		sc := &Schedule{Name: rs.Name, Cron: strings.Join(strings.Fields(rs.Cron), " "), TimeZone: rs.TimeZone, Ref: rs.Ref, SuiteFile: rs.SuiteFile,
			Environment: rs.Environment, Scope: rs.Scope, Shadow: rs.Shadow, Tenant: name}
		switch {
		case !scheduleRE.MatchString(rs.Name):
			at(line, "%s: name %q: use lower-case letters, digits, '.', '_' and '-' (it names the schedule's runs)", where, rs.Name)
		case names[rs.Name]:
			at(line, "%s: the name is used twice in this tenant", where)
		}
		names[rs.Name] = true
		if n := len(strings.Fields(rs.Cron)); n != 5 || !gronx.IsValid(sc.Cron) {
			at(line, "%s: cron %q: use five fields (minute hour day-of-month month day-of-week), like \"0 2 * * *\"", where, rs.Cron)
		}
		if sc.TimeZone == "" {
			sc.TimeZone = "UTC"
		}
		loc, err := time.LoadLocation(sc.TimeZone)
		if err != nil || sc.TimeZone == "Local" {
			at(line, "%s: timezone %q is not an IANA time zone name, like Europe/Berlin or UTC", where, rs.TimeZone)
		}
		sc.Location = loc
		if sc.Scope == "" {
			sc.Scope = "all"
		}
		if err := ValidScope(sc.Scope); err != nil {
			at(line, "%s: %v", where, err)
		} else if sc.Scope == "changed" {
			at(line, "%s: scope changed needs a change, and a schedule has none; use all, smoke, tag:NAME, set:NAME or id:A,B", where)
		} else if err := checkShadow(sc.Shadow, sc.Scope); err != nil {
			at(line, "%s: %v", where, err)
		}
		switch {
		case rs.Repository != "" && rs.SuiteFile != "":
			at(line, "%s: give either repository (with ref) or suite_file, not both", where)
		case rs.Repository != "":
			for _, r := range t.Repositories {
				if strings.EqualFold(r.Repo, rs.Repository) {
					sc.Repository = r
				}
			}
			if sc.Repository == nil {
				at(line, "%s: repository %q is not one of tenant %s's repositories; add it under repositories", where, rs.Repository, name)
			}
		case rs.SuiteFile != "":
			if rs.Ref != "" {
				at(line, "%s: ref applies to a repository, not to suite_file", where)
			}
		default:
			at(line, "%s: say where the suite is: repository (one of the tenant's repositories, with ref) or suite_file (a path on this server)", where)
		}
		t.Schedules = append(t.Schedules, sc)
	}
}

// buildApp reads a repository's GitHub App credentials (nil without app_id
// and a key); lineOf gives a field's line.
func buildApp(c *Config, rr rawRepo, lookup Lookup, where string, fieldLine func(string) int, at func(int, string, ...any)) *GitHubApp {
	if rr.AppID == 0 && rr.PrivateKeyEnv == "" && rr.PrivateKeyFile == "" && rr.InstallationID == 0 {
		return nil
	}
	ok := true
	bad := func(field, format string, args ...any) {
		at(fieldLine(field), "%s: "+format, append([]any{where}, args...)...)
		ok = false
	}
	switch {
	case rr.Provider != ProviderGitHub:
		bad("app_id", "app_id, private_key_env, private_key_file and installation_id are for GitHub repositories (a GitHub App); GitLab uses token_env")
		return nil
	case rr.TokenEnv != "":
		bad("token_env", "give either token_env (a token) or app_id with a private key (a GitHub App), not both")
	}
	if rr.AppID <= 0 {
		bad("app_id", "app_id: give the GitHub App's numeric ID (its settings page: \"App ID\") with the private key")
	}
	if rr.InstallationID < 0 {
		bad("installation_id", "installation_id must be a positive number (the installation's settings URL ends with it); leave it out to use the webhook's")
	}
	var data []byte
	var source string
	switch {
	case rr.PrivateKeyEnv != "" && rr.PrivateKeyFile != "":
		bad("private_key_file", "give either private_key_env or private_key_file, not both")
	case rr.PrivateKeyEnv != "":
		source = "env " + rr.PrivateKeyEnv
		v, set := lookup(rr.PrivateKeyEnv)
		if !set || strings.TrimSpace(v) == "" {
			bad("private_key_env", "private_key_env: environment variable %s is not set; export the App's private key (the .pem file's contents) before starting zof serve", rr.PrivateKeyEnv)
			break
		}
		c.tokenEnvs = append(c.tokenEnvs, rr.PrivateKeyEnv)
		data = []byte(v)
	case rr.PrivateKeyFile != "":
		source = "file " + rr.PrivateKeyFile
		f, err := os.Open(rr.PrivateKeyFile)
		if err != nil {
			bad("private_key_file", "private_key_file: %v; give the path of the App's .pem file", err)
			break
		}
		data, err = io.ReadAll(io.LimitReader(f, MaxPrivateKeySize+1))
		f.Close()
		switch {
		case err != nil:
			bad("private_key_file", "private_key_file %s: %v", rr.PrivateKeyFile, err)
		case len(data) > MaxPrivateKeySize:
			bad("private_key_file", "private_key_file %s is larger than %d KiB: it is not a private key", rr.PrivateKeyFile, MaxPrivateKeySize>>10)
			data = nil
		}
	default:
		bad("app_id", "app_id needs the App's private key: private_key_env (an environment variable holding the PEM) or private_key_file")
	}
	var key *rsa.PrivateKey
	if len(data) > 0 {
		var err error
		key, err = ParsePrivateKey(data)
		if err != nil {
			field := "private_key_env"
			if rr.PrivateKeyFile != "" {
				field = "private_key_file"
			}
			bad(field, "the GitHub App private key from %s is not an RSA private key: %v", source, err)
		}
	}
	if !ok || key == nil {
		return nil
	}
	return &GitHubApp{ID: rr.AppID, InstallationID: rr.InstallationID, Key: key, KeySource: source}
}

// checkSharedRepos refuses a repository configured in two tenants.
func checkSharedRepos(c *Config, root *yaml.Node, at func(int, string, ...any)) {
	owner := map[string]string{}
	names := make([]string, 0, len(c.Tenants))
	for n := range c.Tenants {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		for i, r := range c.Tenants[n].Repositories {
			key := r.Provider + "\x00" + strings.ToLower(r.Repo)
			if prev, ok := owner[key]; ok && prev != n {
				at(lineOf(root, "tenants", n, "repositories", i), "tenant %s repository %s: already configured for tenant %s; a repository belongs to one tenant (its webhooks cannot tell tenants apart)", n, r.Repo, prev)
				continue
			}
			owner[key] = n
		}
	}
}
