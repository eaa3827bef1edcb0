package github

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func readEvent(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "events", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseEvent(t *testing.T) {
	const (
		s1 = "1111111111111111111111111111111111111111"
		s2 = "2222222222222222222222222222222222222222"
	)
	tests := []struct {
		event, file string
		want        Event
		base, head  string
	}{
		{"pull_request", "pull_request.json", Event{
			Kind: KindPullRequest, Action: "synchronize", Owner: "zof-ai", Repo: "checkout-service", PR: 42,
			BaseSHA: s2, HeadSHA: s1, BaseRef: "main", HeadRef: "feature/cart", DefaultBranch: "main", ChangedFiles: 3,
		}, s2, s1},
		{"pull_request", "pull_request_fork.json", Event{
			Kind: KindPullRequest, Action: "opened", Owner: "zof-ai", Repo: "checkout-service", PR: 7,
			BaseSHA: "4444444444444444444444444444444444444444", HeadSHA: "3333333333333333333333333333333333333333",
			BaseRef: "main", HeadRef: "patch-1", DefaultBranch: "main", Fork: true, ChangedFiles: 1,
		}, "4444444444444444444444444444444444444444", "3333333333333333333333333333333333333333"},
		{"pull_request_target", "pull_request_target.json", Event{
			Kind: KindPullRequestTarget, Action: "labeled", Owner: "zof-ai", Repo: "checkout-service", PR: 7,
			BaseSHA: "4444444444444444444444444444444444444444", HeadSHA: "3333333333333333333333333333333333333333",
			BaseRef: "main", HeadRef: "patch-1", DefaultBranch: "main", Fork: true, ChangedFiles: 1,
		}, "4444444444444444444444444444444444444444", "3333333333333333333333333333333333333333"},
		{"pull_request", "pull_request_deleted_fork.json", Event{
			Kind: KindPullRequest, Action: "synchronize", Owner: "zof-ai", Repo: "checkout-service", PR: 8,
			BaseSHA: "6666666666666666666666666666666666666666", HeadSHA: "5555555555555555555555555555555555555555",
			BaseRef: "main", HeadRef: "patch-2", DefaultBranch: "main", Fork: true,
		}, "6666666666666666666666666666666666666666", "5555555555555555555555555555555555555555"},
		{"merge_group", "merge_group.json", Event{
			Kind: KindMergeGroup, Action: "checks_requested", Owner: "zof-ai", Repo: "checkout-service",
			BaseSHA: s2, HeadSHA: "7777777777777777777777777777777777777777",
			BaseRef: "refs/heads/main", HeadRef: "refs/heads/gh-readonly-queue/main/pr-42-2222222222222222222222222222222222222222", DefaultBranch: "main",
		}, s2, "7777777777777777777777777777777777777777"},
		{"push", "push.json", Event{
			Kind: KindPush, Owner: "zof-ai", Repo: "checkout-service", DefaultBranch: "main", Ref: "refs/heads/main",
			Before: s2, After: "8888888888888888888888888888888888888888", BaseSHA: s2, HeadSHA: "8888888888888888888888888888888888888888",
		}, s2, "8888888888888888888888888888888888888888"},
		{"push", "push_new_branch.json", Event{
			Kind: KindPush, Owner: "zof-ai", Repo: "checkout-service", DefaultBranch: "main", Ref: "refs/heads/feature/new",
			Before: ZeroSHA, After: "9999999999999999999999999999999999999999", NewBranch: true,
			BaseSHA: ZeroSHA, HeadSHA: "9999999999999999999999999999999999999999",
		}, "origin/main", "9999999999999999999999999999999999999999"},
		{"push", "push_forced.json", Event{
			Kind: KindPush, Owner: "zof-ai", Repo: "checkout-service", DefaultBranch: "main", Ref: "refs/heads/feature/cart",
			Before: s1, After: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", Forced: true,
			BaseSHA: s1, HeadSHA: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		}, "origin/main", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			ev, err := ParseEvent(tt.event, readEvent(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(&tt.want, ev); d != "" {
				t.Errorf("event (-want +got):\n%s", d)
			}
			base, head, ok := ev.GitRange()
			if !ok || base != tt.base || head != tt.head {
				t.Errorf("GitRange = %q, %q, %v; want %q, %q, true", base, head, ok, tt.base, tt.head)
			}
		})
	}
}

func TestParseEventDeletedBranch(t *testing.T) {
	ev, err := ParseEvent("push", readEvent(t, "push_deleted.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !ev.Deleted || ev.HeadSHA != "" {
		t.Errorf("deleted push: Deleted=%v HeadSHA=%q", ev.Deleted, ev.HeadSHA)
	}
	if _, _, ok := ev.GitRange(); ok {
		t.Error("a deleted branch has no change to compute")
	}
}

func TestReadOnlyToken(t *testing.T) {
	for _, tt := range []struct {
		event, file string
		want        bool
	}{
		{"pull_request", "pull_request_fork.json", true},
		{"pull_request_target", "pull_request_target.json", false}, // runs with the base repository's token
		{"pull_request", "pull_request.json", false},
		{"push", "push.json", false},
	} {
		ev, err := ParseEvent(tt.event, readEvent(t, tt.file))
		if err != nil {
			t.Fatal(err)
		}
		if got := ev.ReadOnlyToken(); got != tt.want {
			t.Errorf("%s %s: ReadOnlyToken = %v, want %v", tt.event, tt.file, got, tt.want)
		}
	}
}

func TestParseEventUnsupported(t *testing.T) {
	for _, name := range []string{"workflow_dispatch", "schedule", "issue_comment", "", "PULL_REQUEST"} {
		_, err := ParseEvent(name, []byte(`{}`))
		var ue *UnsupportedEventError
		if !errors.As(err, &ue) || ue.Name != name || !errors.Is(err, ErrUnsupportedEvent) {
			t.Errorf("%q: err = %v, want *UnsupportedEventError", name, err)
		}
		if err != nil && !strings.Contains(err.Error(), "scope all") {
			t.Errorf("%q: the error should say what happens instead: %v", name, err)
		}
	}
}

func TestParseEventMissingFields(t *testing.T) {
	tests := []struct {
		name, event, payload string
		want                 []string
	}{
		{"empty pull request", "pull_request", `{}`, []string{"repository", "pull_request"}},
		{"no shas", "pull_request", `{"repository":{"full_name":"o/r"},"pull_request":{"number":1,"head":{"ref":"x"},"base":{"ref":"main"}}}`,
			[]string{"pull_request.head.sha", "pull_request.base.sha"}},
		{"no head or base", "pull_request_target", `{"repository":{"full_name":"o/r"},"pull_request":{"number":3}}`,
			[]string{"pull_request.head", "pull_request.base"}},
		{"no number", "pull_request", `{"repository":{"full_name":"o/r"},"pull_request":{"head":{"sha":"a"},"base":{"sha":"b"}}}`,
			[]string{"pull_request.number"}},
		{"merge group without body", "merge_group", `{"repository":{"full_name":"o/r"}}`, []string{"merge_group"}},
		{"merge group without shas", "merge_group", `{"repository":{"full_name":"o/r"},"merge_group":{}}`,
			[]string{"merge_group.base_sha", "merge_group.head_sha"}},
		{"push without shas", "push", `{"repository":{"full_name":"o/r"},"ref":"refs/heads/x"}`, []string{"before", "after"}},
		{"repository without name", "push", `{"repository":{},"ref":"r","before":"a","after":"b"}`, []string{"repository.full_name"}},
		{"not json", "push", `{"ref":`, []string{"not valid JSON"}},
		{"wrong types", "pull_request", `{"pull_request":{"number":"seven"}}`, []string{"not valid JSON"}},
		{"null", "push", `null`, []string{"repository", "ref", "before", "after"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := ParseEvent(tt.event, []byte(tt.payload))
			if err == nil {
				t.Fatalf("want an error, got %+v", ev)
			}
			if errors.Is(err, ErrUnsupportedEvent) {
				t.Fatalf("a supported event with a bad payload is not unsupported: %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
		})
	}
}

func TestLoadEvent(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "event.json")
	if err := os.WriteFile(path, readEvent(t, "pull_request.json"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": path}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	ev, err := LoadEvent(lookup)
	if err != nil || ev.PR != 42 {
		t.Fatalf("LoadEvent = %+v, %v", ev, err)
	}
	env["GITHUB_EVENT_NAME"] = "workflow_dispatch"
	if _, err := LoadEvent(lookup); !errors.Is(err, ErrUnsupportedEvent) {
		t.Errorf("workflow_dispatch: %v", err)
	}
	env["GITHUB_EVENT_NAME"] = "push"
	env["GITHUB_EVENT_PATH"] = filepath.Join(dir, "missing.json")
	if _, err := LoadEvent(lookup); err == nil || !strings.Contains(err.Error(), "GITHUB_EVENT_PATH") {
		t.Errorf("missing file: %v", err)
	}
	delete(env, "GITHUB_EVENT_NAME")
	if _, err := LoadEvent(lookup); err == nil || !strings.Contains(err.Error(), "GITHUB_EVENT_NAME") {
		t.Errorf("no event name: %v", err)
	}
}

func FuzzParseEvent(f *testing.F) {
	entries, _ := os.ReadDir(filepath.Join("testdata", "events"))
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join("testdata", "events", e.Name()))
		name := strings.TrimSuffix(e.Name(), ".json")
		for _, k := range []Kind{KindPullRequest, KindPullRequestTarget, KindMergeGroup, KindPush} {
			if strings.HasPrefix(name, string(k)) {
				f.Add(string(k), b)
			}
		}
	}
	f.Add("push", []byte(`{"before":"0","after":"","repository":{"full_name":"/"}}`))
	f.Add("pull_request", []byte(`{"pull_request":{"head":null,"base":{"repo":null}}}`))
	f.Add("merge_group", []byte(`[]`))
	f.Add("unknown", []byte(`{}`))
	f.Fuzz(func(t *testing.T, name string, payload []byte) {
		ev, err := ParseEvent(name, payload)
		if err != nil {
			if ev != nil {
				t.Fatal("an error comes with no event")
			}
			return
		}
		if ev.Owner == "" || ev.Repo == "" {
			t.Fatalf("parsed without a repository: %+v", ev)
		}
		if ev.IsPullRequest() && (ev.PR <= 0 || ev.HeadSHA == "" || ev.BaseSHA == "") {
			t.Fatalf("pull request without number or shas: %+v", ev)
		}
		if ev.Kind == KindMergeGroup && (ev.HeadSHA == "" || ev.BaseSHA == "") {
			t.Fatalf("merge group without shas: %+v", ev)
		}
		ev.GitRange()
	})
}
