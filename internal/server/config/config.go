// Package config reads `zof serve`'s server.yaml: listen address, limits, tenants and their tokens.
//
// The file is decoded strictly (unknown fields and duplicate keys are errors
// with line numbers) and validated as a whole: every problem is reported at
// once. Tokens are never stored: the file holds the hex SHA-256 of a token, or
// the name of an environment variable holding it (looked up through the
// function the caller passes, so nothing here reads the process environment).
//
// allowed_targets patterns are described at Pattern. Webhook repositories and
// schedules (tenant `repositories:` and `schedules:`) are described at
// Repository and Schedule. A minimal config with two tenants:
//
//	listen: 127.0.0.1:8080
//	metrics_listen: 127.0.0.1:9464   # GET /metrics only; `off` for none
//	metrics_token: {env: ZOF_METRICS_TOKEN}   # optional: required to scrape, on both listeners
//	public_url: https://zof.example.com
//	tenants:
//	  payments:
//	    max_concurrent_runs: 2
//	    allowed_targets: ["https://*.staging.example.com"]
//	    tokens:
//	      - {name: ci, role: runner, env: ZOF_TOKEN_PAYMENTS_CI}
//	      # the token's SHA-256 in hex: printf %s "$TOKEN" | sha256sum
//	      - {name: dashboard, role: viewer, sha256: 0c4f…(64 hex characters)}
//	  search:
//	    max_concurrent_runs: 4
//	    allow_commands: true
//	    allowed_targets: ["http://127.0.0.1:*"]
//	    tokens:
//	      - {name: ci, role: admin, env: ZOF_TOKEN_SEARCH_CI}
package config

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

const (
	// DefaultListen is the listen address: loopback, so a fresh server is not
	// exposed before someone decides to (put a TLS proxy in front).
	DefaultListen = "127.0.0.1:8080"
	// DefaultMetricsListen is where GET /metrics is served: loopback, because
	// metrics name every tenant and its run counts. Not 9090, Prometheus's
	// own port, which is often taken on the same host.
	DefaultMetricsListen = "127.0.0.1:9464"
	// MetricsListenOff as metrics_listen serves metrics on no separate listener.
	MetricsListenOff = "off"
	// DefaultBlockAfter is block_after when the file does not say
	// (docs/lifecycle.md: "default 10 minutes").
	DefaultBlockAfter = 10 * time.Minute
	// DefaultMaxBody bounds request bodies (docs/api.md: "default 5 MiB").
	DefaultMaxBody = 5 << 20
	// MinMaxBody and MaxMaxBody bound max_body: below 1 KiB no real run fits, above
	// 1 GiB one request could exhaust the server's memory.
	MinMaxBody = 1 << 10
	MaxMaxBody = 1 << 30
	// DefaultHistoryDays is history_days when the file does not say: how long
	// test health keeps finished members' outcomes (docs/serve.md).
	DefaultHistoryDays = 90
	// MaxHistoryDays bounds history_days: ten years.
	MaxHistoryDays = 3660
	// DefaultMaxConcurrentRuns is a tenant's max_concurrent_runs when omitted
	// (lifecycle.md: "typical single digits").
	DefaultMaxConcurrentRuns = 4
	// DefaultMaxStreams bounds a tenant's open event streams; high enough for a
	// thousand CI jobs watching at once, low enough that one runaway client
	// cannot take every file descriptor of the server.
	DefaultMaxStreams = 2000
	// MinTokenLength is the shortest token accepted from an environment
	// variable: shorter ones can be guessed (e.g. `openssl rand -hex 32` gives 64).
	MinTokenLength = 16
	// MaxConfigSize bounds server.yaml; a larger file is a mistake.
	MaxConfigSize = 1 << 20
)

// Role is what a token may do (docs/api.md): viewer reads, runner also
// creates, cancels and reruns, admin everything.
type Role int

// Roles, ordered: a higher role may do everything a lower one may.
const (
	RoleViewer Role = iota + 1
	RoleRunner
	RoleAdmin
)

func (r Role) String() string {
	switch r {
	case RoleViewer:
		return "viewer"
	case RoleRunner:
		return "runner"
	case RoleAdmin:
		return "admin"
	}
	return "none"
}

// ParseRole reads a role name.
func ParseRole(s string) (Role, error) {
	switch s {
	case "viewer":
		return RoleViewer, nil
	case "runner":
		return RoleRunner, nil
	case "admin":
		return RoleAdmin, nil
	}
	return 0, fmt.Errorf("role %q is not one of viewer, runner, admin", s)
}

// Config is a validated server.yaml.
type Config struct {
	// Listen is the address `zof serve` listens on (host:port).
	Listen string
	// MetricsListen is the address of the metrics listener (host:port), ""
	// when metrics_listen is off. The main listener serves GET /metrics only
	// to a caller presenting the metrics token.
	MetricsListen string
	// PublicURL is how clients reach the server (run URLs); "" leaves runs without a URL.
	PublicURL string
	// BlockAfter is the server's block_after for exclusive environments.
	BlockAfter time.Duration
	// MaxBody bounds a request body in bytes.
	MaxBody int64
	// HistoryDays is how many days test health history is kept.
	HistoryDays int
	// Tenants by name.
	Tenants map[string]*Tenant

	tokens    []tokenEntry // every token of every tenant
	tokenEnvs []string     // environment variables holding tokens

	metricsToken    [sha256.Size]byte // SHA-256 of metrics_token
	hasMetricsToken bool
}

// Tenant is one tenant's settings.
type Tenant struct {
	Name              string
	MaxConcurrentRuns int
	// AllowCommands admits `run:` steps and environment `serve` commands.
	AllowCommands bool
	// AllowedTargets are the URL patterns http steps may reach.
	AllowedTargets []Pattern
	// MaxStreams bounds the tenant's open event streams.
	MaxStreams int
	Tokens     []Token
	// Repositories are the tenant's repositories for webhooks and schedules.
	Repositories []*Repository
	// Schedules are the tenant's cron schedules.
	Schedules []*Schedule
	// LocalExecutor: the server's own runtime executes the tenant's runs that
	// match no pool (local_executor, default true; pools.go).
	LocalExecutor bool
	// Pools are the tenant's pools of endpoint agents by name (pools.go).
	Pools map[string]*Pool
}

// Token is a named principal of a tenant; the token itself is not kept.
type Token struct {
	Name string
	Role Role
}

// Principal is who is calling: the tenant, the token's name and its role.
// An agent token's principal has a Pool and no Role: it may call only the
// agent API (/v1/agent/...), and Authenticate never returns it.
type Principal struct {
	Tenant string
	Name   string
	Role   Role
	Pool   string
}

// Agent reports whether the principal is an endpoint agent of a pool.
func (p Principal) Agent() bool { return p.Pool != "" }

type tokenEntry struct {
	hash      [sha256.Size]byte
	principal Principal
}

// Authenticate finds the principal of a bearer token. It compares the token's
// SHA-256 with every configured hash in constant time and does not stop at a
// match, so timing does not reveal which (or whether a) token matched.
// Agent tokens are not found here (AuthenticateAny finds them).
func (c *Config) Authenticate(token string) (Principal, bool) {
	p, ok := c.AuthenticateSum(sha256.Sum256([]byte(token)))
	return p, ok && token != ""
}

// AuthenticateSum finds the user principal of a token by its SHA-256 (a
// console session holds the hash, never the token), in constant time like
// Authenticate. Agent tokens are not found.
func (c *Config) AuthenticateSum(sum [sha256.Size]byte) (Principal, bool) {
	p, ok := c.authenticateSum(sum)
	return p, ok && !p.Agent()
}

// AuthenticateAny finds the principal of a user or agent token (the API
// tells them apart: an agent may call only /v1/agent/...).
func (c *Config) AuthenticateAny(token string) (Principal, bool) {
	p, ok := c.authenticateSum(sha256.Sum256([]byte(token)))
	return p, ok && token != ""
}

func (c *Config) authenticateSum(sum [sha256.Size]byte) (Principal, bool) {
	var found Principal
	ok := 0
	for i := range c.tokens {
		eq := subtle.ConstantTimeCompare(sum[:], c.tokens[i].hash[:])
		if eq == 1 {
			found = c.tokens[i].principal
		}
		ok |= eq
	}
	return found, ok == 1
}

// HasMetricsToken reports whether metrics_token is configured.
func (c *Config) HasMetricsToken() bool { return c.hasMetricsToken }

// MetricsAuthenticate reports whether token is the metrics token, comparing
// SHA-256 digests in constant time. Tenant tokens are not metrics tokens:
// metrics name every tenant.
func (c *Config) MetricsAuthenticate(token string) bool {
	sum := sha256.Sum256([]byte(token))
	return c.hasMetricsToken && token != "" && subtle.ConstantTimeCompare(sum[:], c.metricsToken[:]) == 1
}

// TenantLimit is the tenant's max_concurrent_runs, for engine.Config.TenantLimit.
// An unknown tenant gets 1: the engine never runs one, but if it did, it would
// not be unlimited.
func (c *Config) TenantLimit(tenant string) int {
	if t := c.Tenants[tenant]; t != nil {
		return t.MaxConcurrentRuns
	}
	return 1
}

// RunURL is a run's page in the web console under public_url (/runs/{id}),
// for engine.Config.RunURL: the link zof prints and reporters attach, meant
// for a person. "" when public_url is not set. Scripts read the same run at
// /v1/runs/{id}.
func (c *Config) RunURL(runID string) string {
	if c.PublicURL == "" {
		return ""
	}
	return strings.TrimRight(c.PublicURL, "/") + "/runs/" + url.PathEscape(runID)
}

// SecureCookies reports whether the console's cookies must be Secure: the
// server is reached over https (public_url).
func (c *Config) SecureCookies() bool {
	return strings.HasPrefix(strings.ToLower(c.PublicURL), "https://")
}

// TokenEnv lists the environment variables the config reads tokens from.
// Remove them from the environment run steps and serve commands inherit
// (engine.Config.Env), or a tenant allowed to run commands could read every
// tenant's token.
func (c *Config) TokenEnv() []string {
	return slices.Clone(c.tokenEnvs)
}

// TenantNames lists the tenants in name order.
func (c *Config) TenantNames() []string {
	names := make([]string, 0, len(c.Tenants))
	for n := range c.Tenants {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Lookup reads an environment variable (os.LookupEnv in main).
type Lookup func(name string) (string, bool)

// Load reads and validates the config file at path.
func Load(path string, lookup Lookup) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading the server config: %w; pass --config with the path of server.yaml", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading the server config %s: %w", path, err)
	}
	if len(data) > MaxConfigSize {
		return nil, fmt.Errorf("%s is larger than %d bytes; is it the right file?", path, MaxConfigSize)
	}
	return Parse(data, path, lookup)
}

// raw mirrors the file; decoding into it with KnownFields rejects unknown fields.
type raw struct {
	Listen        string               `yaml:"listen"`
	MetricsListen *string              `yaml:"metrics_listen"`
	MetricsToken  *rawSecret           `yaml:"metrics_token"`
	PublicURL     string               `yaml:"public_url"`
	BlockAfter    *duration            `yaml:"block_after"`
	MaxBody       *byteSize            `yaml:"max_body"`
	HistoryDays   *int                 `yaml:"history_days"`
	Tenants       map[string]rawTenant `yaml:"tenants"`
}

// rawSecret is a token given by its SHA-256 or by the environment variable holding it.
type rawSecret struct {
	SHA256 string `yaml:"sha256"`
	Env    string `yaml:"env"`
}

type rawTenant struct {
	MaxConcurrentRuns *int               `yaml:"max_concurrent_runs"`
	AllowCommands     bool               `yaml:"allow_commands"`
	AllowedTargets    []string           `yaml:"allowed_targets"`
	MaxStreams        *int               `yaml:"max_streams"`
	Tokens            []rawToken         `yaml:"tokens"`
	Repositories      []rawRepo          `yaml:"repositories"`
	Schedules         []rawSched         `yaml:"schedules"`
	LocalExecutor     *bool              `yaml:"local_executor"`
	Pools             map[string]rawPool `yaml:"pools"`
}

type rawToken struct {
	Name   string `yaml:"name"`
	Role   string `yaml:"role"`
	SHA256 string `yaml:"sha256"`
	Env    string `yaml:"env"`
}

// duration is a YAML scalar like "10m".
type duration struct {
	d    time.Duration
	line int
}

func (d *duration) UnmarshalYAML(n *yaml.Node) error {
	d.line = n.Line
	if n.Kind != yaml.ScalarNode {
		return &lineError{n.Line, "expected a duration like 10m or 90s"}
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return &lineError{n.Line, fmt.Sprintf("invalid duration %q: use a number with a unit, like 90s or 10m", n.Value)}
	}
	d.d = v
	return nil
}

// byteSize is a YAML integer of bytes or a string like "5MiB".
type byteSize struct {
	n    int64
	line int
}

var sizeRE = regexp.MustCompile(`^([0-9]+)\s*(B|KB|KiB|MB|MiB|GB|GiB)?$`)

var sizeUnits = map[string]int64{"": 1, "B": 1, "KB": 1000, "KiB": 1 << 10, "MB": 1000 * 1000, "MiB": 1 << 20, "GB": 1000 * 1000 * 1000, "GiB": 1 << 30}

func (b *byteSize) UnmarshalYAML(n *yaml.Node) error {
	b.line = n.Line
	m := sizeRE.FindStringSubmatch(strings.TrimSpace(n.Value))
	if n.Kind != yaml.ScalarNode || m == nil {
		return &lineError{n.Line, fmt.Sprintf("invalid size %q: use bytes or a number with a unit, like 5MiB or 512KiB", n.Value)}
	}
	v, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil || v > MaxMaxBody {
		return &lineError{n.Line, fmt.Sprintf("size %q is too large (at most 1GiB)", n.Value)}
	}
	b.n = v * sizeUnits[m[2]]
	return nil
}

// lineError is a problem at a line of the file.
type lineError struct {
	line int
	msg  string
}

func (e *lineError) Error() string { return fmt.Sprintf("line %d: %s", e.line, e.msg) }

// Error lists every problem of a config file.
type Error struct {
	File     string
	Problems []string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s: %d problem(s):\n  %s", e.File, len(e.Problems), strings.Join(e.Problems, "\n  "))
}

var notFoundRE = regexp.MustCompile(`field (\S+) not found in type \S+`)

// Parse validates a config file's contents; filename names it in errors.
func Parse(data []byte, filename string, lookup Lookup) (*Config, error) {
	if lookup == nil {
		lookup = func(string) (string, bool) { return "", false }
	}
	var r raw
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&r); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{filename, []string{"the file is empty; it needs at least one tenant with a token (see the README's minimal config)"}}
		}
		return nil, &Error{filename, yamlProblems(err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, &Error{filename, []string{"the file holds more than one YAML document; keep one (remove the `---` separators)"}}
	}
	var root yaml.Node
	_ = yaml.Unmarshal(data, &root) // it decoded above; root only gives line numbers
	return build(&r, &root, filename, lookup)
}

// yamlProblems turns a decoding error into lines without Go type names.
func yamlProblems(err error) []string {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		out := make([]string, len(te.Errors))
		for i, e := range te.Errors {
			out[i] = notFoundRE.ReplaceAllString(e, "unknown field $1 (check the spelling; see the README for the fields)")
		}
		return out
	}
	var le *lineError
	if errors.As(err, &le) {
		return []string{le.Error()}
	}
	return []string{strings.TrimPrefix(err.Error(), "yaml: ")}
}

var tenantNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

func build(r *raw, root *yaml.Node, filename string, lookup Lookup) (*Config, error) {
	var probs []string
	at := func(line int, format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		if line > 0 {
			msg = fmt.Sprintf("line %d: %s", line, msg)
		}
		probs = append(probs, msg)
	}
	c := &Config{Listen: r.Listen, PublicURL: r.PublicURL, BlockAfter: DefaultBlockAfter, MaxBody: DefaultMaxBody, HistoryDays: DefaultHistoryDays, Tenants: map[string]*Tenant{}}
	if c.Listen == "" {
		c.Listen = DefaultListen
	} else if _, port, err := splitHostPort(c.Listen); err != nil || port == "" {
		at(lineOf(root, "listen"), "listen %q: use host:port, like 127.0.0.1:8080 or :8080", c.Listen)
	}
	switch {
	case r.MetricsListen == nil:
		c.MetricsListen = DefaultMetricsListen
	case *r.MetricsListen == MetricsListenOff:
	default:
		c.MetricsListen = *r.MetricsListen
		if _, port, err := splitHostPort(c.MetricsListen); err != nil || port == "" {
			at(lineOf(root, "metrics_listen"), "metrics_listen %q: use host:port, like 127.0.0.1:9464, or off", c.MetricsListen)
		}
	}
	seen := map[[sha256.Size]byte]string{}
	if r.MetricsToken != nil {
		const where = "metrics_token"
		if hash, env, ok := secretHash(*r.MetricsToken, where, "token", lineOf(root, "metrics_token"), lookup, at); ok {
			c.metricsToken, c.hasMetricsToken = hash, true
			seen[hash] = where
			if env != "" {
				c.tokenEnvs = append(c.tokenEnvs, env)
			}
		}
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			at(lineOf(root, "public_url"), "public_url %q: use the server's base URL as clients reach it, like https://zof.example.com", c.PublicURL)
		}
	}
	if r.BlockAfter != nil {
		if r.BlockAfter.d <= 0 {
			at(r.BlockAfter.line, "block_after must be positive, like 10m")
		}
		c.BlockAfter = r.BlockAfter.d
	}
	if r.MaxBody != nil {
		if r.MaxBody.n < MinMaxBody || r.MaxBody.n > MaxMaxBody {
			at(r.MaxBody.line, "max_body must be between 1KiB and 1GiB")
		}
		c.MaxBody = r.MaxBody.n
	}
	if r.HistoryDays != nil {
		if *r.HistoryDays < 1 || *r.HistoryDays > MaxHistoryDays {
			at(lineOf(root, "history_days"), "history_days must be a whole number of days from 1 to %d, like 90", MaxHistoryDays)
		}
		c.HistoryDays = *r.HistoryDays
	}
	if len(r.Tenants) == 0 {
		at(lineOf(root, "tenants"), "no tenants: add at least one under `tenants:` with a token, or nobody can call the server")
	}
	for _, name := range sortedKeys(r.Tenants) {
		rt := r.Tenants[name]
		tline := lineOf(root, "tenants", name)
		if !tenantNameRE.MatchString(name) {
			at(tline, "tenant name %q: use letters, digits, '.', '_' and '-' (at most 63), starting with a letter or digit", name)
		}
		t := &Tenant{Name: name, MaxConcurrentRuns: DefaultMaxConcurrentRuns, AllowCommands: rt.AllowCommands, MaxStreams: DefaultMaxStreams}
		if rt.MaxConcurrentRuns != nil {
			t.MaxConcurrentRuns = *rt.MaxConcurrentRuns
			if t.MaxConcurrentRuns < 1 {
				at(lineOf(root, "tenants", name, "max_concurrent_runs"), "tenant %s: max_concurrent_runs must be at least 1", name)
			}
		}
		if rt.MaxStreams != nil {
			t.MaxStreams = *rt.MaxStreams
			if t.MaxStreams < 1 {
				at(lineOf(root, "tenants", name, "max_streams"), "tenant %s: max_streams must be at least 1", name)
			}
		}
		for i, s := range rt.AllowedTargets {
			p, err := ParsePattern(s)
			if err != nil {
				at(lineOf(root, "tenants", name, "allowed_targets", i), "tenant %s: allowed_targets: %v", name, err)
				continue
			}
			t.AllowedTargets = append(t.AllowedTargets, p)
		}
		if len(rt.Tokens) == 0 {
			at(tline, "tenant %s has no tokens: add one under `tokens:` (name, role, and sha256 or env)", name)
		}
		names := map[string]bool{}
		for i, rk := range rt.Tokens {
			kline := lineOf(root, "tenants", name, "tokens", i)
			where := fmt.Sprintf("tenant %s token %d", name, i+1)
			if rk.Name == "" {
				at(kline, "%s has no name: the name is the principal the audit log records", where)
			} else {
				where = fmt.Sprintf("tenant %s token %q", name, rk.Name)
				if names[rk.Name] {
					at(kline, "%s: the name is used twice in this tenant; names must tell principals apart", where)
				}
				names[rk.Name] = true
			}
			role, err := ParseRole(rk.Role)
			if err != nil {
				at(kline, "%s: %v", where, err)
			}
			hash, env, ok := secretHash(rawSecret{SHA256: rk.SHA256, Env: rk.Env}, where, "token's", kline, lookup, at)
			if !ok {
				continue
			}
			if env != "" {
				c.tokenEnvs = append(c.tokenEnvs, env)
			}
			if prev, dup := seen[hash]; dup {
				at(kline, "%s: the same token is already configured for %s; every token must map to one principal", where, prev)
				continue
			}
			seen[hash] = where
			t.Tokens = append(t.Tokens, Token{Name: rk.Name, Role: role})
			c.tokens = append(c.tokens, tokenEntry{hash: hash, principal: Principal{Tenant: name, Name: rk.Name, Role: role}})
		}
		buildTriggers(c, t, rt, root, lookup, at)
		buildPools(c, t, rt, root, lookup, seen, at)
		c.Tenants[name] = t
	}
	checkSharedRepos(c, root, at)
	if len(probs) > 0 {
		return nil, &Error{filename, probs}
	}
	return c, nil
}

// secretHash reads a token given by its SHA-256 or by the environment
// variable holding it; it reports problems through at and returns ok false.
// env is the variable's name when the token came from one.
func secretHash(rs rawSecret, where, whose string, line int, lookup Lookup, at func(int, string, ...any)) (hash [sha256.Size]byte, env string, ok bool) {
	switch {
	case rs.SHA256 != "" && rs.Env != "":
		at(line, "%s: give either sha256 or env, not both", where)
	case rs.SHA256 != "":
		b, err := hex.DecodeString(rs.SHA256)
		if err != nil || len(b) != sha256.Size {
			at(line, "%s: sha256 must be 64 hex characters (e.g. `printf %%s \"$TOKEN\" | sha256sum`)", where)
			return hash, "", false
		}
		copy(hash[:], b)
		return hash, "", true
	case rs.Env != "":
		v, found := lookup(rs.Env)
		if !found || v == "" {
			at(line, "%s: environment variable %s is not set; export it before starting zof serve", where, rs.Env)
			return hash, "", false
		}
		if len(v) < MinTokenLength {
			at(line, "%s: the token in %s has %d characters; use at least %d random ones (e.g. `openssl rand -hex 32`)", where, rs.Env, len(v), MinTokenLength)
			return hash, "", false
		}
		return sha256.Sum256([]byte(v)), rs.Env, true
	default:
		at(line, "%s: give the %s sha256 (hex) or env (the name of an environment variable holding it)", where, whose)
	}
	return hash, "", false
}

func splitHostPort(s string) (string, string, error) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return "", "", errors.New("no port")
	}
	host, port := s[:i], s[i+1:]
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return "", "", errors.New("bad port")
	}
	return host, port, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// lineOf finds the line of a value in the document: path elements are mapping
// keys (string) and sequence indexes (int). 0 when not found.
func lineOf(root *yaml.Node, path ...any) int {
	n := root
	if n != nil && n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := 0
	for _, p := range path {
		if n == nil {
			return line
		}
		switch k := p.(type) {
		case string:
			var next *yaml.Node
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == k {
						line = n.Content[i].Line
						next = n.Content[i+1]
						break
					}
				}
			}
			n = next
		case int:
			var next *yaml.Node
			if n.Kind == yaml.SequenceNode && k < len(n.Content) {
				next = n.Content[k]
				line = next.Line
			}
			n = next
		}
	}
	return line
}

// TargetPolicy is the check every URL a tenant's http steps reach must pass,
// redirects included (engine.Config.URLPolicy); submission checks only see the
// first URL, this one sees where the target sends the step.
func (c *Config) TargetPolicy(tenant string) func(*url.URL) error {
	t := c.Tenants[tenant]
	return func(u *url.URL) error {
		if t == nil || !Allowed(t.AllowedTargets, u) {
			return fmt.Errorf("tenant %s may not reach %s (allowed_targets in server.yaml)", tenant, u.Redacted())
		}
		return nil
	}
}
