package api

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Duration is a time.Duration that travels as a Go duration string ("1m30s").
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes the duration as a string, "0s" for zero.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a duration string ("250ms", "5m").
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string like \"30s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q: use a number with a unit, like 500ms, 30s or 5m", s)
	}
	*d = Duration(v)
	return nil
}

// RunRequest is everything the engine needs to execute a run: the resolved
// definition (no ${VAR} left, no repository needed) plus where it came from.
// It is the body of POST /v1/runs and the input of an embedded run.
type RunRequest struct {
	Project     string      `json:"project"`
	Environment Environment `json:"environment"`
	Cases       []Case      `json:"cases"`
	// Sets lists the ordered sets among the selected cases; members of an
	// ordered set run one after another in the set's order.
	Sets []Set `json:"sets,omitempty"`
	// MaxParallel bounds members executing at once (default 4).
	MaxParallel int `json:"max_parallel,omitempty"`
	// BlockAfter overrides the server's block_after for exclusive environments.
	BlockAfter       Duration          `json:"block_after,omitempty"`
	Selection        Selection         `json:"selection"`
	Source           Source            `json:"source"`
	ConcurrencyGroup string            `json:"concurrency_group,omitempty"`
	Supersede        bool              `json:"supersede,omitempty"`
	Labels           map[string]string `json:"labels,omitempty"`
	// SuiteFile is the repository-relative path of the suite file, for annotations.
	SuiteFile string `json:"suite_file,omitempty"`
	// Secrets are values that must never be printed; every event, log and report
	// masks them. They travel to the server because steps need them.
	Secrets []string `json:"secrets,omitempty"`
	// Coverage, sent by zof run --server from a git checkout, is the coverage
	// map of the suite over the checkout, by module (docs/coverage.md). The
	// server stores it as the project's latest and takes it off the request
	// before the run is created: it is not part of the run.
	Coverage *CoverageSummary `json:"coverage,omitempty"`
}

// Environment is the target a run executes against.
type Environment struct {
	Name      string            `json:"name"`
	URL       string            `json:"url,omitempty"`
	Headers   map[string]string `json:"headers,omitempty"`
	Exclusive bool              `json:"exclusive,omitempty"`
	Serve     *Serve            `json:"serve,omitempty"`
}

// Serve starts the system under test before the first member and stops it after the last.
type Serve struct {
	Command string            `json:"command"`
	Dir     string            `json:"dir,omitempty"`
	Env     map[string]string `json:"env,omitempty"`
	// Ready is a path (or URL) polled until it answers 2xx.
	Ready   string   `json:"ready,omitempty"`
	Timeout Duration `json:"timeout,omitempty"`
}

// Case is one resolved test case.
type Case struct {
	ID       string    `json:"id"`
	Name     string    `json:"name,omitempty"`
	Tags     []string  `json:"tags,omitempty"`
	Timeout  Duration  `json:"timeout,omitempty"`
	Retries  int       `json:"retries,omitempty"`
	Variants []Variant `json:"variants,omitempty"`
	Steps    []Step    `json:"steps"`
	// Line is where the case starts in the suite file (for annotations).
	Line int `json:"line,omitempty"`
	// Quarantine, when set, lets the case run and be reported without
	// failing the gate (docs/suite.md, docs/health.md).
	Quarantine *Quarantine `json:"quarantine,omitempty"`
}

// Quarantine is a case's quarantine: who owns the fix, why, and until when
// (after Until the case fails the gate again).
type Quarantine struct {
	Owner  string    `json:"owner"`
	Reason string    `json:"reason"`
	Until  time.Time `json:"until,omitzero"`
	// Released is set by zof serve when the case's history shows it left
	// quarantine: CleanDaysToLeaveQuarantine days without a failure and not
	// broken (docs/health.md, "Quarantine"). The case then fails the gate
	// again, though the suite still lists its quarantine.
	Released bool `json:"released,omitempty"`
}

// Active reports whether q holds at now: set, not released, and now before
// Until (a zero Until never expires).
func (q *Quarantine) Active(now time.Time) bool {
	return q != nil && !q.Released && (q.Until.IsZero() || now.Before(q.Until))
}

// Variant runs every step of a case once with its vars (${vars.NAME}).
type Variant struct {
	Name string            `json:"name"`
	Vars map[string]string `json:"vars,omitempty"`
}

// Step is one step of a case: exactly one of HTTP or Run is set.
type Step struct {
	Name    string            `json:"name,omitempty"`
	HTTP    *HTTPRequest      `json:"http,omitempty"`
	Run     *Command          `json:"run,omitempty"`
	Timeout Duration          `json:"timeout,omitempty"`
	Expect  *Expect           `json:"expect,omitempty"`
	Capture map[string]string `json:"capture,omitempty"`
	Line    int               `json:"line,omitempty"`
}

// Kind is "http" or "run".
func (s Step) Kind() string {
	if s.Run != nil {
		return "run"
	}
	return "http"
}

// Title is the step's name, or a description of it when it has none.
func (s Step) Title() string {
	if s.Name != "" {
		return s.Name
	}
	if s.Run != nil {
		return "run: " + firstLine(s.Run.Command)
	}
	if s.HTTP != nil {
		target := s.HTTP.Path
		if s.HTTP.URL != "" {
			target = s.HTTP.URL
		}
		m := s.HTTP.Method
		if m == "" {
			m = "GET"
		}
		return m + " " + target
	}
	return "step"
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

// HTTPRequest is an http step's request. Path is joined to the environment URL;
// URL, when set, is used as is. At most one of JSON, Body and Form is set.
type HTTPRequest struct {
	Method  string            `json:"method,omitempty"`
	Path    string            `json:"path,omitempty"`
	URL     string            `json:"url,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
	Query   map[string]string `json:"query,omitempty"`
	JSON    json.RawMessage   `json:"json,omitempty"`
	Body    *string           `json:"body,omitempty"`
	Form    map[string]string `json:"form,omitempty"`
}

// Command is a run step: a shell command whose exit code decides.
type Command struct {
	Command string            `json:"command"`
	Env     map[string]string `json:"env,omitempty"`
	Dir     string            `json:"dir,omitempty"`
	// ExitCode is the expected exit code (default 0).
	ExitCode int `json:"exit_code,omitempty"`
}

// Expect is what an http step's response must satisfy.
type Expect struct {
	// Status holds codes ("200") and classes ("2xx"); any one matching passes.
	// Empty means 2xx.
	Status       []string          `json:"status,omitempty"`
	Headers      map[string]string `json:"headers,omitempty"`
	BodyContains []string          `json:"body_contains,omitempty"`
	BodyMatches  string            `json:"body_matches,omitempty"`
	JSON         []JSONAssert      `json:"json,omitempty"`
	MaxDuration  Duration          `json:"max_duration,omitempty"`
}

// JSONAssert checks one JSONPath ($.a.b[0]) of the response body. Unset
// pointers are not checked; with none set, the path must exist.
type JSONAssert struct {
	Path     string          `json:"path"`
	Equals   json.RawMessage `json:"equals,omitempty"`
	Exists   *bool           `json:"exists,omitempty"`
	Contains *string         `json:"contains,omitempty"`
	Matches  *string         `json:"matches,omitempty"`
}

// Set is a named group of cases; Sequential sets run their members in order.
type Set struct {
	Name       string   `json:"name"`
	Cases      []string `json:"cases"`
	Sequential bool     `json:"sequential,omitempty"`
}

// Source says where a run came from.
type Source struct {
	Provider string `json:"provider,omitempty"` // github | gitlab | local | api
	Repo     string `json:"repo,omitempty"`
	SHA      string `json:"sha,omitempty"`
	Ref      string `json:"ref,omitempty"`
	PR       int    `json:"pr,omitempty"`
	CIRunID  string `json:"ci_run_id,omitempty"`
	Attempt  int    `json:"attempt,omitempty"`
	Actor    string `json:"actor,omitempty"`
	URL      string `json:"url,omitempty"`
	Trigger  string `json:"trigger,omitempty"` // ci | api | webhook | schedule
	// TriggerID names what triggered the run within its kind: the webhook's
	// delivery id, or the schedule and its tick ("nightly@2025-03-01T02:00:00Z").
	TriggerID string `json:"trigger_id,omitempty"`
}

// Selection is the chosen scope and why each case is in it.
type Selection struct {
	// Scope is what was asked for ("changed", "smoke", "all", "tag:x", "set:x", "id:a,b").
	Scope string `json:"scope"`
	// Effective is the scope after the rules widened it ("all" after a global file), else Scope.
	Effective string `json:"effective"`
	// Widened names the rule that widened the scope, empty when none did.
	Widened *Reason        `json:"widened,omitempty"`
	Cases   []SelectedCase `json:"cases"`
	// Unmapped are changed files that no case covers (after ignore).
	Unmapped []string `json:"unmapped,omitempty"`
	// Ignored are changed files dropped by selection.ignore.
	Ignored []string `json:"ignored,omitempty"`
	// Diff describes the change the selection was made from (scope changed only).
	Diff *DiffSummary `json:"diff,omitempty"`
	// Warnings are things a person should know (e.g. the diff was incomplete).
	Warnings []string `json:"warnings,omitempty"`
	// Shadow is set on a shadow run (zof run --shadow, docs/cli.md "Shadow
	// runs"): every case runs and the gate judges them all; this is the subset
	// Scope would have run, and why each other case was left out.
	Shadow *ShadowPlan `json:"shadow,omitempty"`
}

// ShadowPlan is the subset a shadow run measures.
type ShadowPlan struct {
	// Scope is the scope the subset was selected with: changed or smoke.
	Scope string `json:"scope"`
	// Effective is the subset's scope after its rules widened it (all after a
	// global file: then nothing is left out).
	Effective string `json:"effective"`
	// Selected are the subset's case ids, in selection order.
	Selected []string `json:"selected"`
	// Left lists every case outside the subset with why it was not selected.
	Left []ShadowLeft `json:"left,omitempty"`
}

// ShadowLeft is a case outside a shadow run's subset.
type ShadowLeft struct {
	Case string `json:"case"`
	// Why is a ShadowWhy* kind; Detail says it in words, naming files.
	Why    string `json:"why"`
	Detail string `json:"detail"`
}

// Why a case was outside a shadow run's subset, most telling first.
const (
	// ShadowWhyUnmapped: changed files matched no case's covers (outside every
	// pattern) and selection.unmapped did not widen to this case.
	ShadowWhyUnmapped = "unmapped_file"
	// ShadowWhyNoCovers: the case declares no covers, so no change selects it.
	ShadowWhyNoCovers = "no_covers"
	// ShadowWhyIgnored: changed files were dropped by selection.ignore.
	ShadowWhyIgnored = "ignored_file"
	// ShadowWhyNoEdge: no changed file matches the case's covers.
	ShadowWhyNoEdge = "no_covers_edge"
	// ShadowWhyNotSmoke: scope smoke, and the case is not tagged smoke.
	ShadowWhyNotSmoke = "not_smoke"
)

// ShadowResult is what a shadow run's subset would have concluded, computed
// from the finished run (the JSON result's "shadow", docs/cli.md).
type ShadowResult struct {
	Scope    string   `json:"scope"`
	Selected []string `json:"selected"`
	// Missed are the failures (failed or blocked members) outside the subset.
	Missed []ShadowMiss `json:"missed"`
	// Verdict is what the gate would have said on the subset's members alone:
	// passed, failed, or the run's own outcome when it did not finish.
	Verdict string `json:"verdict"`
	// TimeShare is the subset members' share of the members' summed
	// duration, 0–1 (1 when nothing took time).
	TimeShare float64 `json:"time_share"`
	// Members and SelectedMembers count the run's members and the subset's.
	Members         int `json:"members"`
	SelectedMembers int `json:"selected_members"`
}

// ShadowMiss is a failure the subset would not have run.
type ShadowMiss struct {
	Case    string `json:"case"`
	Variant string `json:"variant,omitempty"`
	Status  Status `json:"status"`
	Why     string `json:"why"`
	Detail  string `json:"detail"`
}

// SelectedCase is one selected case with every reason it was selected.
type SelectedCase struct {
	ID      string   `json:"id"`
	Reasons []Reason `json:"reasons"`
}

// Reason kinds.
const (
	ReasonCovers       = "covers"         // File matched Pattern in the case's covers
	ReasonAlways       = "always"         // the case is marked always: true
	ReasonGlobal       = "global"         // File matched Pattern in selection.global: all
	ReasonUnmapped     = "unmapped"       // File is covered by no case: unmapped rule applied
	ReasonTooManyFiles = "too_many_files" // more than max_changed_files changed: all
	ReasonUnknownDiff  = "unknown_diff"   // the diff was unknown or incomplete: on_unknown_diff
	ReasonScope        = "scope"          // explicit scope (all, smoke, tag:, set:, id:)
	ReasonShadow       = "shadow"         // a shadow run: every case runs, the subset is reported (Selection.Shadow)
)

// Reason explains why a case is selected, or why the scope was widened.
type Reason struct {
	Kind    string `json:"kind"`
	File    string `json:"file,omitempty"`
	Pattern string `json:"pattern,omitempty"`
	Detail  string `json:"detail,omitempty"`
}

// String is the reason as one line for a person.
func (r Reason) String() string {
	switch r.Kind {
	case ReasonCovers:
		if r.File == "" {
			return r.Detail
		}
		return fmt.Sprintf("%s matches %q", r.File, r.Pattern)
	case ReasonAlways:
		return "always: true"
	case ReasonGlobal:
		return fmt.Sprintf("global file %s matches %q: all cases", r.File, r.Pattern)
	case ReasonUnmapped:
		if r.Detail != "" {
			return fmt.Sprintf("unmapped file %s: %s", r.File, r.Detail)
		}
		return fmt.Sprintf("unmapped file %s", r.File)
	}
	if r.Detail != "" {
		return r.Detail
	}
	return r.Kind
}

// DiffSummary is the part of a diff a selection carries.
type DiffSummary struct {
	Source   string `json:"source"` // git | api | override
	Base     string `json:"base,omitempty"`
	Head     string `json:"head,omitempty"`
	Files    int    `json:"files"`
	Complete bool   `json:"complete"`
	Reason   string `json:"reason,omitempty"`
}
