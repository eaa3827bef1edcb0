package github

import (
	"context"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/zof-ai/zof-ci/internal/ci/github/githubtest"
	"github.com/zof-ai/zof-ci/internal/diff"
)

const (
	shaA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	shaB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

func TestCompareRange(t *testing.T) {
	pushPayload := func(ref, before, after string, forced, created, deleted bool, def string) string {
		return `{"ref":"` + ref + `","before":"` + before + `","after":"` + after + `","forced":` + strconv.FormatBool(forced) +
			`,"created":` + strconv.FormatBool(created) + `,"deleted":` + strconv.FormatBool(deleted) +
			`,"repository":{"full_name":"acme/shop","default_branch":"` + def + `"}}`
	}
	tests := []struct {
		name, event, payload string
		base, head           string
		err                  string
	}{
		{"push: before...after", "push", pushPayload("refs/heads/feature", shaA, shaB, false, false, false, "main"), shaA, shaB, ""},
		{"push to the default branch", "push", pushPayload("refs/heads/main", shaA, shaB, false, false, false, "main"), shaA, shaB, ""},
		{"new branch: default...after", "push", pushPayload("refs/heads/feature", ZeroSHA, shaB, false, true, false, "main"), "main", shaB, ""},
		{"new branch without created (all-zero before)", "push", pushPayload("refs/heads/feature", ZeroSHA, shaB, false, false, false, "trunk"), "trunk", shaB, ""},
		{"forced push: default...after", "push", pushPayload("refs/heads/feature", shaA, shaB, true, false, false, "main"), "main", shaB, ""},
		{"forced push to the default branch: before...after", "push", pushPayload("refs/heads/main", shaA, shaB, true, false, false, "main"), shaA, shaB, ""},
		{"first push of the default branch", "push", pushPayload("refs/heads/main", ZeroSHA, shaB, false, true, false, "main"), "", "", "created the default branch"},
		{"new branch, no default branch named", "push", pushPayload("refs/heads/feature", ZeroSHA, shaB, false, true, false, ""), "", "", "names no default branch"},
		{"deleted branch", "push", pushPayload("refs/heads/feature", shaA, ZeroSHA, false, false, true, "main"), "", "", "deleted"},
		{"merge group: base_sha...head_sha", "merge_group", `{"action":"checks_requested","merge_group":{"head_sha":"` + shaB + `","base_sha":"` + shaA + `","head_ref":"refs/heads/gh-readonly-queue/main/pr-1"},"repository":{"full_name":"acme/shop"}}`, shaA, shaB, ""},
		{"pull request: not the compare API", "pull_request", `{"action":"opened","number":1,"pull_request":{"number":1,"head":{"sha":"` + shaB + `"},"base":{"sha":"` + shaA + `"}},"repository":{"full_name":"acme/shop"}}`, "", "", "own files API"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := ParseEvent(tt.event, []byte(tt.payload))
			if err != nil {
				t.Fatal(err)
			}
			base, head, err := ev.CompareRange()
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil || base != tt.base || head != tt.head {
				t.Errorf("CompareRange = %q, %q, %v; want %q, %q", base, head, err, tt.base, tt.head)
			}
		})
	}
}

func newCompare(t *testing.T, fake *githubtest.Fake, base, head string) (*Compare, *[]time.Duration) {
	t.Helper()
	c, err := NewClient("ghs_test", fake.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	var slept []time.Duration
	return &Compare{Client: c, Owner: "acme", Repo: "shop", Base: base, Head: head,
		Retry: Retry{Sleep: func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }}}, &slept
}

func TestCompareChanges(t *testing.T) {
	fake := githubtest.New(t)
	fake.SetCompare("main", shaB, githubtest.Comparison{MergeBase: shaA, Commits: 3, Files: []githubtest.File{
		{Filename: "cart/total.go", Status: "modified"},
		{Filename: "cart/new.go", Status: "added"},
		{Filename: "old.go", Status: "removed"},
		{Filename: "web/cart.ts", Status: "renamed", PreviousFilename: "web/basket.ts"},
	}})
	src, _ := newCompare(t, fake, "main", shaB)
	got, err := src.Changes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := &diff.Result{
		Files: []diff.Change{
			{Status: diff.Modified, Path: "cart/total.go"},
			{Status: diff.Added, Path: "cart/new.go"},
			{Status: diff.Deleted, Path: "old.go"},
			{Status: diff.Renamed, Path: "web/cart.ts", OldPath: "web/basket.ts"},
		},
		Base: shaA, Head: shaB, Source: diff.SourceAPI, Complete: true,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("result (-want +got):\n%s", d)
	}
	if n := fake.Calls("GET", `/repos/acme/shop/compare/main\.\.\.`+shaB); n != 1 {
		t.Errorf("compare calls = %d, want 1 (the files come with page 1)", n)
	}
	q, _ := url.ParseQuery(fake.Requests[0].Query)
	if q.Get("page") != "1" || q.Get("per_page") != strconv.Itoa(ComparePerPage) {
		t.Errorf("query %q: want the paginated mode, page 1", fake.Requests[0].Query)
	}
}

// TestCompareCap: GitHub lists at most 300 files of a comparison and says
// nothing when it cuts; at the cap the change is incomplete.
func TestCompareCap(t *testing.T) {
	tests := []struct {
		files, listed int
		complete      bool
	}{
		{0, 0, true},
		{1, 1, true},
		{MaxCompareFiles - 1, MaxCompareFiles - 1, true},
		{MaxCompareFiles, MaxCompareFiles, false},
		{MaxCompareFiles + 200, MaxCompareFiles, false},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.files), func(t *testing.T) {
			fake := githubtest.New(t)
			fake.SetCompare(shaA, shaB, githubtest.Comparison{Files: githubtest.Files(tt.files)})
			src, _ := newCompare(t, fake, shaA, shaB)
			got, err := src.Changes(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Files) != tt.listed || got.Complete != tt.complete {
				t.Errorf("listed %d complete %v, want %d %v", len(got.Files), got.Complete, tt.listed, tt.complete)
			}
			if !tt.complete && !strings.Contains(got.Reason, "300 files") {
				t.Errorf("reason %q does not name the cap", got.Reason)
			}
			if tt.complete && got.Reason != "" {
				t.Errorf("reason %q on a complete result", got.Reason)
			}
		})
	}
}

// untilBudget stands for "retried until the policy's budget ran out": more than one retry,
// how many depends on the jitter.
const untilBudget = -1

func TestCompareFailures(t *testing.T) {
	tests := []struct {
		name      string
		fault     *githubtest.Fault
		sticky    bool
		base      string
		wantErr   string
		wantCalls int
	}{
		{"unknown commit (404)", nil, false, "cccccccccccccccccccccccccccccccccccccccc", "does not know one of the commits (a force-push can drop the old one) or the token may not read the repository (give the workflow `permissions: contents: read`)", 1},
		{"one 502: retried", &githubtest.ServerError, false, shaA, "", 2},
		{"persistent 502: retried until the budget", &githubtest.ServerError, true, shaA, "GitHub's API kept failing for as long as zof retries: re-run the job: GET", untilBudget},
		{"403", &githubtest.Forbidden, false, shaA, "may not read the repository's contents (give the workflow `permissions: contents: read`)", 1},
		{"no base", nil, false, "", "both sides are needed", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := githubtest.New(t)
			fake.SetCompare(shaA, shaB, githubtest.Comparison{Files: githubtest.Files(2)})
			if tt.fault != nil {
				fake.Fail("GET", `/repos/acme/shop/compare/.*`, *tt.fault, tt.sticky)
			}
			src, _ := newCompare(t, fake, tt.base, shaB)
			got, err := src.Changes(context.Background())
			if tt.wantErr == "" {
				if err != nil || len(got.Files) != 2 {
					t.Fatalf("got %+v, %v", got, err)
				}
			} else if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
			if n := fake.Calls("GET", `/repos/acme/shop/compare/.*`); n != tt.wantCalls && (tt.wantCalls != untilBudget || n <= 2) {
				t.Errorf("calls = %d, want %d", n, tt.wantCalls)
			}
		})
	}
}
