// Package github reads the GitHub Actions side of a CI job: the event that
// triggered the workflow (pull_request, pull_request_target, merge_group, push),
// the action's inputs, and the pull request's changed files from the REST API
// as a diff.Source (docs/ci.md). For `zof serve` it also compares
// commits (Compare, for push and merge_group webhooks) and authenticates as a
// GitHub App (App: JWT, cached installation tokens).
package github

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Kind is a supported event.
type Kind string

// The events zof understands. Any other event is an *UnsupportedEventError.
const (
	KindPullRequest       Kind = "pull_request"
	KindPullRequestTarget Kind = "pull_request_target"
	KindMergeGroup        Kind = "merge_group"
	KindPush              Kind = "push"
)

// ZeroSHA is the "before" of a push that created a branch (and the "after" of
// one that deleted it).
const ZeroSHA = "0000000000000000000000000000000000000000"

// Event is what zof needs from a workflow's event payload.
type Event struct {
	Kind Kind
	// Action is the payload's action ("opened", "synchronize", "checks_requested"), if any.
	Action string
	// Owner and Repo name the repository the workflow runs in (the base repository).
	Owner, Repo string
	// PR is the pull request number (pull_request, pull_request_target), else 0.
	PR int
	// BaseSHA and HeadSHA are the two sides of a pull request or merge group.
	// HeadSHA is what a check run goes on: never GITHUB_SHA, which is a merge
	// commit for pull requests.
	BaseSHA, HeadSHA string
	// BaseRef and HeadRef are branch names (merge groups: full refs as GitHub sends them).
	BaseRef, HeadRef string
	DefaultBranch    string
	// Fork is true when a pull request's head repository is not the base
	// repository (or was deleted): its GITHUB_TOKEN is read-only on pull_request.
	Fork bool
	// ChangedFiles is the pull request's changed_files count at event time (0: unknown).
	ChangedFiles int
	// Push: the ref, before and after shas, and whether the push was forced,
	// created the branch (before is all zeros) or deleted it.
	Ref           string
	Before, After string
	Forced        bool
	NewBranch     bool
	Deleted       bool
}

// UnsupportedEventError is returned for an event zof does not scope by: the
// caller falls back to scope all and says so.
type UnsupportedEventError struct {
	Name string
}

func (e *UnsupportedEventError) Error() string {
	name := e.Name
	if name == "" {
		name = "(none)"
	}
	return fmt.Sprintf("event %q is not one zof computes a change for (pull_request, pull_request_target, merge_group, push): running scope all", name)
}

// ErrUnsupportedEvent matches every *UnsupportedEventError with errors.Is.
var ErrUnsupportedEvent = errors.New("unsupported event")

// Is makes errors.Is(err, ErrUnsupportedEvent) true.
func (e *UnsupportedEventError) Is(target error) bool { return target == ErrUnsupportedEvent }

// maxPayload bounds an event payload read from disk. GitHub caps webhook
// payloads at 25 MB ("Webhook payloads are capped at 25 MB",
// https://docs.github.com/webhooks/webhook-events-and-payloads#payload-cap).
const maxPayload = 25 << 20

// LoadEvent reads GITHUB_EVENT_NAME and the payload at GITHUB_EVENT_PATH
// (lookup is os.LookupEnv in main) and parses them.
func LoadEvent(lookup func(string) (string, bool)) (*Event, error) {
	name, _ := lookup("GITHUB_EVENT_NAME")
	path, _ := lookup("GITHUB_EVENT_PATH")
	if strings.TrimSpace(name) == "" {
		return nil, errors.New("GITHUB_EVENT_NAME is not set: zof action reads the event of the workflow run it is part of (run it as a step of a workflow)")
	}
	if !isSupported(Kind(name)) {
		return nil, &UnsupportedEventError{Name: name}
	}
	if path == "" {
		return nil, fmt.Errorf("GITHUB_EVENT_PATH is not set for the %s event: cannot read its payload", name)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read the event payload: %w (GITHUB_EVENT_PATH=%s)", err, path)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPayload+1))
	if err != nil {
		return nil, fmt.Errorf("read the event payload %s: %w", path, err)
	}
	if len(data) > maxPayload {
		return nil, fmt.Errorf("event payload %s is larger than GitHub's 25 MB cap: not an event payload", path)
	}
	return ParseEvent(name, data)
}

func isSupported(k Kind) bool {
	switch k {
	case KindPullRequest, KindPullRequestTarget, KindMergeGroup, KindPush:
		return true
	}
	return false
}

// The payload shapes, only the fields zof reads
// (https://docs.github.com/webhooks/webhook-events-and-payloads).
type (
	payloadRepo struct {
		FullName      string `json:"full_name"`
		Name          string `json:"name"`
		DefaultBranch string `json:"default_branch"`
		Owner         *struct {
			Login string `json:"login"`
			Name  string `json:"name"`
		} `json:"owner"`
	}
	payloadBranch struct {
		SHA  string       `json:"sha"`
		Ref  string       `json:"ref"`
		Repo *payloadRepo `json:"repo"`
	}
	payload struct {
		Action      string `json:"action"`
		Number      int    `json:"number"`
		PullRequest *struct {
			Number       int            `json:"number"`
			ChangedFiles int            `json:"changed_files"`
			Head         *payloadBranch `json:"head"`
			Base         *payloadBranch `json:"base"`
		} `json:"pull_request"`
		MergeGroup *struct {
			HeadSHA string `json:"head_sha"`
			HeadRef string `json:"head_ref"`
			BaseSHA string `json:"base_sha"`
			BaseRef string `json:"base_ref"`
		} `json:"merge_group"`
		Ref        string       `json:"ref"`
		Before     string       `json:"before"`
		After      string       `json:"after"`
		Created    bool         `json:"created"`
		Deleted    bool         `json:"deleted"`
		Forced     bool         `json:"forced"`
		Repository *payloadRepo `json:"repository"`
	}
)

// ParseEvent reads an event payload (the file at GITHUB_EVENT_PATH) for the
// event name (GITHUB_EVENT_NAME). An event zof does not scope by gives an
// *UnsupportedEventError; a payload without the fields the event must have
// gives an error naming every missing field.
func ParseEvent(name string, payloadJSON []byte) (*Event, error) {
	kind := Kind(name)
	if !isSupported(kind) {
		return nil, &UnsupportedEventError{Name: name}
	}
	var p payload
	if err := json.Unmarshal(payloadJSON, &p); err != nil {
		return nil, fmt.Errorf("the %s event payload is not valid JSON: %w (is GITHUB_EVENT_PATH the payload of this run?)", name, err)
	}
	ev := &Event{Kind: kind, Action: p.Action}
	var missing []string
	need := func(field, v string) string {
		if strings.TrimSpace(v) == "" {
			missing = append(missing, field)
		}
		return v
	}
	if p.Repository == nil {
		missing = append(missing, "repository")
	} else {
		ev.Owner, ev.Repo = splitRepo(p.Repository)
		if ev.Owner == "" || ev.Repo == "" {
			missing = append(missing, "repository.full_name")
		}
		ev.DefaultBranch = p.Repository.DefaultBranch
	}
	switch kind {
	case KindPullRequest, KindPullRequestTarget:
		pr := p.PullRequest
		if pr == nil {
			missing = append(missing, "pull_request")
			break
		}
		ev.PR = pr.Number
		if ev.PR == 0 {
			ev.PR = p.Number
		}
		if ev.PR <= 0 {
			missing = append(missing, "pull_request.number")
		}
		ev.ChangedFiles = pr.ChangedFiles
		if pr.Head == nil {
			missing = append(missing, "pull_request.head")
		} else {
			ev.HeadSHA = need("pull_request.head.sha", pr.Head.SHA)
			ev.HeadRef = pr.Head.Ref
		}
		if pr.Base == nil {
			missing = append(missing, "pull_request.base")
		} else {
			ev.BaseSHA = need("pull_request.base.sha", pr.Base.SHA)
			ev.BaseRef = pr.Base.Ref
			if pr.Base.Repo != nil && pr.Base.Repo.DefaultBranch != "" && ev.DefaultBranch == "" {
				ev.DefaultBranch = pr.Base.Repo.DefaultBranch
			}
		}
		if pr.Head != nil && pr.Base != nil {
			// A deleted fork leaves head.repo null: treat it as a fork (read-only token).
			ev.Fork = pr.Head.Repo == nil || (pr.Base.Repo != nil && !strings.EqualFold(pr.Head.Repo.FullName, pr.Base.Repo.FullName))
		}
	case KindMergeGroup:
		mg := p.MergeGroup
		if mg == nil {
			missing = append(missing, "merge_group")
			break
		}
		ev.BaseSHA = need("merge_group.base_sha", mg.BaseSHA)
		ev.HeadSHA = need("merge_group.head_sha", mg.HeadSHA)
		ev.BaseRef, ev.HeadRef = mg.BaseRef, mg.HeadRef
	case KindPush:
		ev.Ref = need("ref", p.Ref)
		ev.Before = need("before", p.Before)
		ev.After = need("after", p.After)
		ev.Forced, ev.Deleted = p.Forced, p.Deleted
		ev.NewBranch = p.Created || (p.Before != "" && isZeroSHA(p.Before))
		ev.BaseSHA, ev.HeadSHA = ev.Before, ev.After
		if ev.Deleted {
			ev.HeadSHA = ""
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("the %s event payload has no %s: cannot tell what changed (is GITHUB_EVENT_PATH the payload of this run?)", name, strings.Join(missing, ", "))
	}
	return ev, nil
}

func splitRepo(r *payloadRepo) (owner, name string) {
	if o, n, ok := strings.Cut(r.FullName, "/"); ok && o != "" && n != "" && !strings.Contains(n, "/") {
		return o, n
	}
	name = r.Name
	if r.Owner != nil {
		owner = r.Owner.Login
		if owner == "" {
			owner = r.Owner.Name
		}
	}
	return owner, name
}

func isZeroSHA(s string) bool {
	return strings.Trim(s, "0") == "" && s != ""
}

// IsPullRequest reports whether the event is a pull request (either kind).
func (e *Event) IsPullRequest() bool {
	return e.Kind == KindPullRequest || e.Kind == KindPullRequestTarget
}

// CheckSHA is the commit a check run or status belongs on: the pull request's
// or merge group's head, or the pushed commit.
func (e *Event) CheckSHA() string { return e.HeadSHA }

// ReadOnlyToken reports whether GITHUB_TOKEN is read-only for this event: a
// pull_request from a fork (pull_request_target runs with the base
// repository's token and may write).
func (e *Event) ReadOnlyToken() bool {
	return e.Kind == KindPullRequest && e.Fork
}

// GitRange is the base and head to give a three-dot git diff (diff.Git) when
// the change is computed from the checkout: merge groups and ordinary pushes
// diff their two shas; a push that created the branch or was forced diffs
// against the default branch (origin/<default>), since "before" is not an
// ancestor; a pull request uses its base and head shas. ok is false when
// there is no change to compute (a deleted branch).
func (e *Event) GitRange() (base, head string, ok bool) {
	switch {
	case e.Kind == KindPush && e.Deleted:
		return "", "", false
	case e.Kind == KindPush && (e.NewBranch || e.Forced):
		def := e.DefaultBranch
		if def == "" {
			return "", e.After, true // diff.Git picks the upstream default branch
		}
		return "origin/" + def, e.After, true
	}
	return e.BaseSHA, e.HeadSHA, e.BaseSHA != "" && e.HeadSHA != ""
}
