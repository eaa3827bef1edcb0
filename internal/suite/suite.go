// Package suite loads a suite file (zof.yaml, docs/suite.md) into a validated model and turns it into an api.RunRequest.
//
// # Decoding
//
// The file is decoded strictly by walking yaml.Node trees, so every problem is
// reported at once, each with its line and column, sorted by position: unknown
// fields (with a "did you mean" suggestion), wrong types, duplicate keys,
// duplicate ids, unknown references, invalid globs (pathmatch.Check), bad
// durations, set cycles, unknown ${VAR}s, missing required fields. Load and
// Parse return a *Error (exit code 64) when any error-severity problem exists;
// warnings alone ride along in Suite.Warnings.
//
// Top-level keys starting with "x-" are ignored, so they can hold YAML
// anchors to reuse (`x-health: &health {...}` then `- *health`); merge keys
// (<<: *anchor) work in every mapping.
//
// Ids of cases, variants, sets, environments and tags match
// ^[a-z0-9][a-z0-9._-]*$ (at most 128 characters): they appear in member ids
// ("case/variant"), scopes ("tag:smoke", "id:a,b"), file names and URLs, so
// they must never need quoting or escaping there.
//
// # Expansion
//
// String values that reach a request (environment url, headers and serve
// settings; step http fields, json leaves, run command/env/dir; expectation
// texts; variant vars) expand ${VAR} and ${VAR:-default} through
// Options.Lookup (never the process environment directly). As in a POSIX
// shell, the default also applies when VAR is set but empty. $$ is a literal
// $ (so `run: echo $${HOME}` hands ${HOME} to the shell); a $ not followed by
// { or $ is kept as is. Ids, names, tags, patterns, durations and enums are
// not expanded.
//
// ${vars.NAME} and ${capture.NAME} are left in place for the engine, which
// fills them per variant and from earlier steps at run time. They are only
// allowed inside a case's steps; at load every ${vars.NAME} must be defined by
// every variant of its case and every ${capture.NAME} must be captured by an
// earlier step of the same case. A default (${vars.x:-y}) is refused for them.
//
// An unknown ${VAR} without a default is an error in cases, defaults and
// selection, and in the environment the run uses (Options.Environment, else
// defaults.environment, else the only environment). It is NOT an error in the
// other environments: a CI job that validates the suite or runs against
// "local" need not hold staging credentials. Requesting such an environment
// later (Suite.Request) fails with those problems.
//
// # Secrets
//
// A value that a ${VAR} expansion put into any `headers` or `env` map
// (environment headers, serve env, http step headers, run env) is a secret;
// so is the whole value of any string-map entry written in the long form
// {value: "...", secret: true}, which headers, env, query, form and variant
// vars accept. Secrets are collected into api.RunRequest.Secrets so every log
// and report masks them. Defaults written in the file are not secrets.
//
// # Limits
//
// Hostile input is bounded by MaxFileSize, MaxNodes (counted after alias
// expansion, so YAML bombs fail fast) and MaxDepth. Nothing panics on any input.
package suite

import (
	"time"

	"github.com/zof-ai/zof-ci/api"
)

// Limits against hostile or runaway input. They are far above any real suite
// (the 5,000-case benchmark suite is about 2 MB and 250,000 nodes).
const (
	// MaxFileSize bounds the bytes read from a suite file.
	MaxFileSize = 10 << 20
	// MaxNodes bounds YAML nodes after alias expansion: a "billion laughs"
	// file of a few hundred bytes expands past it and is refused while counting.
	MaxNodes = 1_000_000
	// MaxDepth bounds nesting (yaml.v3's own limit is 10,000 levels, far too
	// deep for recursive walks over a suite).
	MaxDepth = 100
	// MaxIDLength bounds ids, which end up in file names and URLs.
	MaxIDLength = 128
	// MaxProblems bounds the problems reported for one file; the rest are counted.
	MaxProblems = 500
	// MaxRetries bounds per-case retries: more hides real failures and wastes the fleet.
	MaxRetries = 10
)

// Defaults applied when the suite does not say otherwise.
const (
	// DefaultCaseTimeout bounds a case when neither the case nor defaults.timeout set one.
	DefaultCaseTimeout = 5 * time.Minute
	// DefaultMaxChangedFiles is selection.max_changed_files (suite.md).
	DefaultMaxChangedFiles = 500
)

// Selection rule values (suite.md "Selection").
const (
	ScopeAll   = "all"
	ScopeSmoke = "smoke"
	ScopeNone  = "none"
	ScopeFail  = "fail"
)

// Gate values.
const (
	GateFailed    = "failed"
	GateBlocked   = "blocked"
	GateCancelled = "cancelled"
	GateTimeout   = "timeout"
	OnEmptyFail   = "fail"
	OnEmptyPass   = "pass"
)

// Options tune loading.
type Options struct {
	// Lookup resolves ${VAR}; nil resolves nothing (every ${VAR} without a default is unknown).
	Lookup func(name string) (string, bool)
	// Environment is the environment the run will use; "" means
	// defaults.environment (or the only environment).
	Environment string
}

// Suite is a validated suite file.
type Suite struct {
	Version      int
	Project      string
	Environments []Environment // in file order
	Defaults     Defaults
	Selection    Selection
	Cases        []Case // in file order
	Sets         []Set  // in file order
	Gate         Gate
	// File is the name the suite was loaded from; Digest is the hex sha256 of its bytes.
	File   string
	Digest string
	// Environment is the environment Load resolved (Options.Environment,
	// defaults.environment, or the only one); "" when none could be chosen.
	Environment string
	// Warnings are warning-severity problems of a valid suite, sorted by position.
	Warnings []Problem

	byID map[string]int
}

// Environment is a target a run executes against.
type Environment struct {
	Name      string
	URL       string
	Headers   map[string]string
	Exclusive bool
	Serve     *Serve
	Line, Col int

	// unresolved holds unknown-${VAR} problems, which only matter when the
	// environment is used; secrets are its expanded secret values.
	unresolved []Problem
	secrets    []string
	hasURL     bool // a url was written (possibly invalid: then no second error)
}

// Serve starts the system under test before the first member.
type Serve struct {
	Command string
	Dir     string
	Env     map[string]string
	// Ready is a path (joined to the environment URL) or an absolute URL polled until 2xx.
	Ready   string
	Timeout time.Duration
}

// Defaults are suite-wide defaults.
type Defaults struct {
	Environment string
	Timeout     time.Duration // per case; DefaultCaseTimeout when unset
	Retries     int
}

// Pattern is a path pattern with its position in the file.
type Pattern struct {
	Value     string
	Line, Col int
}

// Selection holds the rules for scope "changed".
type Selection struct {
	Global          []Pattern
	Ignore          []Pattern
	Unmapped        string // all | smoke | none
	MaxChangedFiles int
	OnUnknownDiff   string // all | smoke | fail
	// Modules group files for the coverage map, in the file's order: a file
	// belongs to the first module one of whose patterns matches it, else to
	// its top-level directory.
	Modules []Module
}

// Module is one entry of selection.modules.
type Module struct {
	Name      string
	Patterns  []Pattern
	Line, Col int
}

// Case is one test case. Timeout and Retries are effective values: the
// case's own, else defaults'.
type Case struct {
	ID       string
	Name     string
	Tags     []string
	Covers   []string
	Always   bool
	Timeout  time.Duration
	Retries  int
	Variants []api.Variant
	Steps    []Step
	// Quarantine lets the case run and be reported without failing the
	// gate until it expires (docs/suite.md); nil: not quarantined.
	Quarantine *api.Quarantine
	// Line and Col locate the case (its first key) for annotations.
	Line, Col int

	secrets []string
}

// Step is one step of a case; exactly one of HTTP and Run is set.
type Step struct {
	Name    string
	HTTP    *api.HTTPRequest
	Run     *api.Command
	Timeout time.Duration
	Expect  *api.Expect
	Capture map[string]string
	// Line and Col locate the step.
	Line, Col int
}

// Set is a named group of cases.
type Set struct {
	Name       string
	Members    []SetMember // as written, in order
	Sequential bool        // order: sequential
	// Cases is the flat, de-duplicated list of case ids the members resolve
	// to, in member order (a tag member adds its cases in suite order).
	Cases     []string
	Line, Col int
}

// SetMember kinds.
const (
	MemberCase = "case"
	MemberSet  = "set"
	MemberTag  = "tag"
)

// SetMember is one reference in a set.
type SetMember struct {
	Kind      string // case | set | tag
	Name      string
	Line, Col int
}

// Gate decides the exit code from the statuses that occurred.
type Gate struct {
	FailOn  []string // subset of failed, blocked, cancelled, timeout
	OnEmpty string   // fail | pass
}

// Case returns the case with the given id, or nil.
func (s *Suite) Case(id string) *Case {
	// byID is checked against the slice, so a caller editing Cases still
	// gets a correct (if slower) answer.
	if i, ok := s.byID[id]; ok && i < len(s.Cases) && s.Cases[i].ID == id {
		return &s.Cases[i]
	}
	for i := range s.Cases {
		if s.Cases[i].ID == id {
			return &s.Cases[i]
		}
	}
	return nil
}

// Env returns the environment with the given name, or nil.
func (s *Suite) Env(name string) *Environment {
	for i := range s.Environments {
		if s.Environments[i].Name == name {
			return &s.Environments[i]
		}
	}
	return nil
}

// Set returns the set with the given name, or nil.
func (s *Suite) Set(name string) *Set {
	for i := range s.Sets {
		if s.Sets[i].Name == name {
			return &s.Sets[i]
		}
	}
	return nil
}

// SetCases is the flat list of case ids of a set, in order.
func (s *Suite) SetCases(name string) ([]string, bool) {
	set := s.Set(name)
	if set == nil {
		return nil, false
	}
	return append([]string(nil), set.Cases...), true
}

// CaseIDs lists every case id in suite order.
func (s *Suite) CaseIDs() []string {
	out := make([]string, len(s.Cases))
	for i, c := range s.Cases {
		out[i] = c.ID
	}
	return out
}

// Tagged lists the ids of cases carrying tag, in suite order.
func (s *Suite) Tagged(tag string) []string {
	var out []string
	for _, c := range s.Cases {
		if c.HasTag(tag) {
			out = append(out, c.ID)
		}
	}
	return out
}

// Tags lists every tag used by a case, in order of first use.
func (s *Suite) Tags() []string {
	var out []string
	seen := map[string]bool{}
	for _, c := range s.Cases {
		for _, t := range c.Tags {
			if !seen[t] {
				seen[t] = true
				out = append(out, t)
			}
		}
	}
	return out
}

// HasTag reports whether the case carries tag.
func (c *Case) HasTag(tag string) bool {
	for _, t := range c.Tags {
		if t == tag {
			return true
		}
	}
	return false
}

// EnvironmentNames lists the environments in file order.
func (s *Suite) EnvironmentNames() []string {
	out := make([]string, len(s.Environments))
	for i, e := range s.Environments {
		out[i] = e.Name
	}
	return out
}
