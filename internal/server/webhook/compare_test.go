package webhook_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/zof-ai/zof-ci/api"
	cigithub "github.com/zof-ai/zof-ci/internal/ci/github"
	"github.com/zof-ai/zof-ci/internal/ci/github/githubtest"
)

func pushPayload(branch, before, after string, forced, created bool) []byte {
	return []byte(fmt.Sprintf(`{
  "ref": "refs/heads/%s", "before": %q, "after": %q, "forced": %v, "created": %v, "deleted": false,
  "repository": {"full_name": %q, "name": "shop", "owner": {"login": "acme"}, "default_branch": "main"},
  "sender": {"login": "octocat"}
}`, branch, before, after, forced, created, repoName))
}

func mergeGroupPayload(base, head string) []byte {
	return []byte(fmt.Sprintf(`{
  "action": "checks_requested",
  "merge_group": {"head_sha": %q, "head_ref": "refs/heads/gh-readonly-queue/main/pr-7-%s", "base_sha": %q, "base_ref": "refs/heads/main"},
  "repository": {"full_name": %q, "name": "shop", "owner": {"login": "acme"}, "default_branch": "main"},
  "sender": {"login": "octocat"}
}`, head, base, base, repoName))
}

// TestScopeChangedForPushAndMergeGroup: with scope changed, a push or a
// merge group is scoped by the compare API (before...after, or the default
// branch for a new or force-pushed branch; base...head for a merge group);
// a capped or failed comparison leaves the change unknown, on_unknown_diff
// (here all) decides, and the trigger says so.
func TestScopeChangedForPushAndMergeGroup(t *testing.T) {
	cart := []githubtest.File{{Filename: "cart/checkout.go", Status: "modified"}}
	auth := []githubtest.File{{Filename: "auth/login.go", Status: "added"}}
	tests := []struct {
		name       string
		event      string
		payload    []byte
		base, head string // the comparison the fake answers
		files      []githubtest.File
		fault      *githubtest.Fault
		attempts   int
		members    []string
		reason     string // of the run_created trigger ("" : none)
		tries      int    // compare requests
		asked      string // the base compared, when not base
	}{
		{"push: before...after", "push", pushPayload("feature", sha1, sha2, false, false), sha1, sha2, cart, nil, 0, []string{"cart"}, "", 1, ""},
		{"new branch: main...after", "push", pushPayload("feature", cigithub.ZeroSHA, sha2, false, true), "main", sha2, auth, nil, 0, []string{"login"}, "", 1, ""},
		{"forced push: main...after", "push", pushPayload("feature", sha1, sha2, true, false), "main", sha2, cart, nil, 0, []string{"cart"}, "", 1, ""},
		{"forced push to main: before...after", "push", pushPayload("main", sha1, sha2, true, false), sha1, sha2, auth, nil, 0, []string{"login"}, "", 1, ""},
		{"merge group: base...head", "merge_group", mergeGroupPayload(sha1, sha2), sha1, sha2, cart, nil, 0, []string{"cart"}, "", 1, ""},
		{"300 files: incomplete", "push", pushPayload("feature", sha1, sha2, false, false), sha1, sha2,
			append(githubtest.Files(cigithub.MaxCompareFiles-1), cart...), nil, 0, []string{"login", "cart"}, "the change is incomplete (the comparison", 1, ""},
		{"compare keeps failing: retried, then unknown", "push", pushPayload("feature", sha1, sha2, false, false), sha1, sha2, cart,
			&githubtest.ServerError, 2, []string{"login", "cart"}, "the change is unknown", -1, ""},
		{"unknown commit: unknown at once", "push", pushPayload("feature", sha1, sha2, false, false), sha3, sha2, cart,
			nil, 3, []string{"login", "cart"}, "does not know one of the commits", 1, sha1},
		{"first push of main: nothing to compare", "push", pushPayload("main", cigithub.ZeroSHA, sha2, false, true), "", "", nil,
			nil, 3, []string{"login", "cart"}, "created the default branch", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, harnessOpts{pushScope: "changed", attempts: tt.attempts})
			h.api.setSuite(sha2, suiteWith("/ok"))
			if tt.base != "" {
				h.api.gh.SetCompare(tt.base, tt.head, githubtest.Comparison{Files: tt.files, MergeBase: sha1})
			}
			if tt.fault != nil {
				h.api.gh.Fail("GET", `/repos/acme/shop/compare/.*`, *tt.fault, true)
			}
			res := h.github(tt.event, "cmp-1", tt.payload)
			if res.status != http.StatusAccepted {
				t.Fatalf("%d %s", res.status, res.body)
			}
			rec := h.waitTrigger(res.trigger.ID)
			if rec.State != api.TriggerRunCreated {
				t.Fatalf("trigger %+v\nlogs:\n%s", rec, h.logs.String())
			}
			if (tt.reason == "") != (rec.Reason == "") || !strings.Contains(rec.Reason, tt.reason) {
				t.Errorf("trigger reason %q, want %q", rec.Reason, tt.reason)
			}
			if tt.reason != "" && !strings.Contains(rec.Reason, "on_unknown_diff (all)") {
				t.Errorf("trigger reason %q does not say on_unknown_diff decided", rec.Reason)
			}
			r := h.run(rec.RunID)
			if got := memberIDs(r); !cmp.Equal(got, tt.members) {
				t.Errorf("members %v, want %v", got, tt.members)
			}
			if r.Status != api.StatusPassed {
				t.Errorf("run %s", r.Status)
			}
			// -1: a persistent fault, retried under internal/retry until its budget.
			if n := h.api.gh.Calls("GET", `/repos/acme/shop/compare/.*`); n != tt.tries && (tt.tries != -1 || n <= 2) {
				t.Errorf("%d compare requests, want %d", n, tt.tries)
			}
			for _, req := range h.api.gh.Requests {
				if strings.Contains(req.Path, "/compare/") {
					asked := tt.base
					if tt.asked != "" {
						asked = tt.asked
					}
					if want := "/repos/acme/shop/compare/" + asked + "..." + tt.head; req.Path != want {
						t.Errorf("compared %s, want %s", req.Path, want)
					}
					if q, _ := url.ParseQuery(req.Query); q.Get("per_page") == "" {
						t.Errorf("query %q: not the paginated mode", req.Query)
					}
				}
			}
			if len(tt.members) == 1 && r.Selection.Diff == nil {
				t.Error("the run's selection has no diff summary")
			}
		})
	}
}
