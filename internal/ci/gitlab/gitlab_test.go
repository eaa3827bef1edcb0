package gitlab

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/zof-ai/zof-ci/internal/ci/gitlab/gitlabtest"
	"github.com/zof-ai/zof-ci/internal/diff"
)

func lookupOf(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

func TestFromEnv(t *testing.T) {
	base := map[string]string{
		"GITLAB_CI": "true", "CI_PROJECT_ID": "1234", "CI_PROJECT_PATH": "group/checkout", "CI_PIPELINE_ID": "987",
		"CI_COMMIT_SHA": "cccc", "CI_API_V4_URL": "https://gitlab.example.com/api/v4", "CI_SERVER_URL": "https://gitlab.example.com",
		"CI_DEFAULT_BRANCH": "main", "CI_JOB_URL": "https://gitlab.example.com/group/checkout/-/jobs/55",
	}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name            string
		env             map[string]string
		kind            PipelineKind
		base, head, sha string
		ok, fork        bool
	}{
		{"merge request", with("CI_PIPELINE_SOURCE", "merge_request_event", "CI_MERGE_REQUEST_IID", "17", "CI_MERGE_REQUEST_EVENT_TYPE", "detached",
			"CI_MERGE_REQUEST_DIFF_BASE_SHA", "bbbb", "CI_MERGE_REQUEST_SOURCE_PROJECT_ID", "1234", "CI_MERGE_REQUEST_PROJECT_ID", "1234"),
			MergeRequest, "bbbb", "cccc", "cccc", true, false},
		{"merged results", with("CI_MERGE_REQUEST_IID", "17", "CI_MERGE_REQUEST_EVENT_TYPE", "merged_result",
			"CI_MERGE_REQUEST_DIFF_BASE_SHA", "bbbb", "CI_MERGE_REQUEST_TARGET_BRANCH_SHA", "tttt", "CI_MERGE_REQUEST_SOURCE_BRANCH_SHA", "ssss"),
			MergedResults, "tttt", "cccc", "cccc", true, false},
		{"merge train", with("CI_MERGE_REQUEST_IID", "17", "CI_MERGE_REQUEST_EVENT_TYPE", "merge_train", "CI_MERGE_REQUEST_TARGET_BRANCH_SHA", "tttt"),
			MergedResults, "tttt", "cccc", "cccc", true, false},
		{"fork merge request", with("CI_MERGE_REQUEST_IID", "3", "CI_MERGE_REQUEST_DIFF_BASE_SHA", "bbbb",
			"CI_MERGE_REQUEST_SOURCE_PROJECT_ID", "999", "CI_MERGE_REQUEST_PROJECT_ID", "1234"),
			MergeRequest, "bbbb", "cccc", "cccc", true, true},
		{"branch push", with("CI_COMMIT_BRANCH", "feature/x", "CI_COMMIT_BEFORE_SHA", "aaaa"), Branch, "aaaa", "cccc", "cccc", true, false},
		{"new branch", with("CI_COMMIT_BRANCH", "feature/x", "CI_COMMIT_BEFORE_SHA", ZeroSHA), Branch, "origin/main", "cccc", "cccc", true, false},
		{"default branch first pipeline", with("CI_COMMIT_BRANCH", "main", "CI_COMMIT_BEFORE_SHA", ZeroSHA), Branch, "", "cccc", "cccc", false, false},
		{"tag", with("CI_COMMIT_TAG", "v1.2.0"), Tag, "", "cccc", "cccc", false, false},
		{"schedule", with("CI_PIPELINE_SOURCE", "schedule"), Other, "", "cccc", "cccc", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := FromEnv(lookupOf(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			if p.Kind != tt.kind || p.Fork != tt.fork {
				t.Errorf("kind %s fork %v; want %s %v", p.Kind, p.Fork, tt.kind, tt.fork)
			}
			base, head, ok := p.GitRange()
			if base != tt.base || head != tt.head || ok != tt.ok {
				t.Errorf("GitRange = %q %q %v; want %q %q %v", base, head, ok, tt.base, tt.head, tt.ok)
			}
			if p.StatusSHA() != tt.sha {
				t.Errorf("StatusSHA = %q, want %q", p.StatusSHA(), tt.sha)
			}
			if p.ProjectRef() != "1234" || p.PipelineID != 987 || p.APIURL != "https://gitlab.example.com/api/v4" {
				t.Errorf("project %q pipeline %d api %q", p.ProjectRef(), p.PipelineID, p.APIURL)
			}
		})
	}
	if _, err := FromEnv(lookupOf(map[string]string{})); err == nil {
		t.Error("not GitLab: want an error")
	}
	if _, err := FromEnv(lookupOf(map[string]string{"GITLAB_CI": "true"})); err == nil || !strings.Contains(err.Error(), "CI_PROJECT_ID") {
		t.Errorf("no project: %v", err)
	}
}

func newDiffs(t *testing.T, fake *gitlabtest.Fake, iid int64) *MRDiffs {
	t.Helper()
	c, err := NewClient("glpat-api", fake.APIURL(), nil, Retry{Sleep: noSleep})
	if err != nil {
		t.Fatal(err)
	}
	return &MRDiffs{Client: c, Project: "group/checkout", MRIID: iid, Base: "b", Head: "h"}
}

func TestMRDiffs(t *testing.T) {
	fake := gitlabtest.New(t)
	fake.Diffs[17] = []gitlabtest.Diff{
		{OldPath: "a.go", NewPath: "a.go"},
		{OldPath: "new.go", NewPath: "new.go", NewFile: true},
		{OldPath: "gone.go", NewPath: "gone.go", DeletedFile: true},
		{OldPath: "old/name.go", NewPath: "new/name.go", RenamedFile: true},
	}
	got, err := newDiffs(t, fake, 17).Changes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := &diff.Result{Files: []diff.Change{
		{Status: diff.Modified, Path: "a.go"},
		{Status: diff.Added, Path: "new.go"},
		{Status: diff.Deleted, Path: "gone.go"},
		{Status: diff.Renamed, Path: "new/name.go", OldPath: "old/name.go"},
	}, Base: "b", Head: "h", Source: diff.SourceAPI, Complete: true}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	reqs := fake.Requests
	if len(reqs) != 1 || reqs[0].Path != "/api/v4/projects/group%2Fcheckout/merge_requests/17/diffs" || !strings.Contains(reqs[0].Query, "per_page=100") || reqs[0].Auth != "glpat-api" {
		t.Errorf("requests %+v", reqs)
	}
}

func TestMRDiffsPagingAndLimit(t *testing.T) {
	tests := []struct {
		files, instanceMax, maxFiles int
		listed, calls                int
		complete                     bool
	}{
		{5, 1000, 0, 5, 1, true},
		{100, 1000, 0, 100, 1, true}, // X-Next-Page is empty: no second call
		{250, 1000, 0, 250, 3, true},
		{999, 1000, 0, 999, 10, true},
		{1000, 1000, 0, 1000, 10, false}, // at the limit
		{3500, 1000, 0, 1000, 10, false}, // over: the instance cuts at its limit
		{2500, 3000, 3000, 2500, 25, true},
		{3500, 3000, 3000, 3000, 30, false},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.files)+"/"+strconv.Itoa(tt.instanceMax), func(t *testing.T) {
			fake := gitlabtest.New(t)
			fake.MaxDiffFiles = tt.instanceMax
			fake.Diffs[1] = gitlabtest.Diffs(tt.files)
			src := newDiffs(t, fake, 1)
			src.MaxFiles = tt.maxFiles
			got, err := src.Changes(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Files) != tt.listed || got.Complete != tt.complete {
				t.Errorf("files %d complete %v (%s); want %d %v", len(got.Files), got.Complete, got.Reason, tt.listed, tt.complete)
			}
			if !got.Complete && !strings.Contains(got.Reason, "maximum diff files") {
				t.Errorf("reason %q", got.Reason)
			}
			if n := fake.Calls("GET", `.*/diffs`); n != tt.calls {
				t.Errorf("calls %d, want %d", n, tt.calls)
			}
		})
	}
}

// untilBudget stands for "retried until the policy's budget ran out": more than one retry,
// how many depends on the jitter.
const untilBudget = -1

// noSleep stubs the retry policy's waits out; its clock still moves by them.
func noSleep(ctx context.Context, _ time.Duration) error { return ctx.Err() }

func TestMRDiffsErrors(t *testing.T) {
	tests := []struct {
		name    string
		token   string
		fault   *gitlabtest.Fault
		sticky  bool
		want    string
		calls   int
		success bool
	}{
		{"unknown token", "glpat-nope", nil, false, "refused", 1, false},
		{"one 500 is retried", "glpat-api", &gitlabtest.Fault{Status: 500, Body: `{"message":"500 Internal Server Error"}`}, false, "", 2, true},
		{"persistent 503: retried until the budget", "glpat-api", &gitlabtest.Fault{Status: 503, Body: `{}`}, true, "503", untilBudget, false},
		{"429 soon", "glpat-api", &gitlabtest.Fault{Status: 429, Header: map[string]string{"Retry-After": "0"}, Body: `{}`}, false, "", 2, true},
		{"429 much later", "glpat-api", &gitlabtest.Fault{Status: 429, Header: map[string]string{"RateLimit-Reset": strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)}, Body: `{}`}, false, "429", 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := gitlabtest.New(t)
			fake.Diffs[2] = gitlabtest.Diffs(3)
			if tt.fault != nil {
				fake.Fail("GET", `.*/diffs`, *tt.fault, tt.sticky)
			}
			c, err := NewClient(tt.token, fake.APIURL(), nil, Retry{Sleep: noSleep})
			if err != nil {
				t.Fatal(err)
			}
			got, err := (&MRDiffs{Client: c, Project: "7", MRIID: 2}).Changes(context.Background())
			if tt.success {
				if err != nil || len(got.Files) != 3 {
					t.Fatalf("got %+v, %v", got, err)
				}
			} else if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if n := fake.Calls("GET", `.*/diffs`); n != tt.calls && (tt.calls != untilBudget || n <= 2) {
				t.Errorf("calls %d, want %d", n, tt.calls)
			}
		})
	}
}

func TestNewClientAndSource(t *testing.T) {
	if _, err := NewClient("", "https://gitlab.com/api/v4", nil, Retry{}); err == nil || !strings.Contains(err.Error(), "api scope") {
		t.Errorf("no token: %v", err)
	}
	if _, err := NewClient("t", "gitlab.com", nil, Retry{}); err == nil {
		t.Error("bad URL: want an error")
	}
	c, err := NewClient("t", "https://gitlab.example.com", nil, Retry{})
	if err != nil || c.BaseURL().String() != "https://gitlab.example.com/api/v4/" {
		t.Errorf("base URL %v, %v", c.BaseURL(), err)
	}
	if _, err := NewMRDiffs(c, &Pipeline{Kind: Branch}); err == nil {
		t.Error("branch pipeline: want an error")
	}
	src, err := NewMRDiffs(c, &Pipeline{Kind: MergeRequest, ProjectID: "9", MRIID: 4, DiffBaseSHA: "b", CommitSHA: "h"})
	if err != nil || src.Project != "9" || src.MRIID != 4 || src.Base != "b" || src.Head != "h" {
		t.Errorf("NewMRDiffs = %+v, %v", src, err)
	}
}
