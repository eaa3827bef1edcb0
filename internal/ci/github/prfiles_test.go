package github

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/zof-ai/zof-ci/internal/ci/github/githubtest"
	"github.com/zof-ai/zof-ci/internal/diff"
)

func newSource(t *testing.T, fake *githubtest.Fake, n int) (*PRFiles, *[]time.Duration) {
	t.Helper()
	c, err := NewClient("ghs_test", fake.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	var slept []time.Duration
	return &PRFiles{
		Client: c, Owner: "zof-ai", Repo: "checkout-service", Number: n, Base: "b", Head: "h",
		Retry: Retry{Sleep: func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }},
	}, &slept
}

func TestPRFilesStatusesAndRenames(t *testing.T) {
	fake := githubtest.New(t)
	fake.Files[42] = []githubtest.File{
		{Filename: "services/cart/total.go", Status: "modified"},
		{Filename: "services/cart/new.go", Status: "added"},
		{Filename: "services/old.go", Status: "removed"},
		{Filename: "web/cart/index.ts", Status: "renamed", PreviousFilename: "web/basket/index.ts"},
		{Filename: "docs/copy.md", Status: "copied", PreviousFilename: "docs/orig.md"},
		{Filename: "scripts/run.sh", Status: "changed"},
		{Filename: "odd name with spaces/ü.txt", Status: "something-new"},
	}
	src, _ := newSource(t, fake, 42)
	got, err := src.Changes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := &diff.Result{
		Files: []diff.Change{
			{Status: diff.Modified, Path: "services/cart/total.go"},
			{Status: diff.Added, Path: "services/cart/new.go"},
			{Status: diff.Deleted, Path: "services/old.go"},
			{Status: diff.Renamed, Path: "web/cart/index.ts", OldPath: "web/basket/index.ts"},
			{Status: diff.Copied, Path: "docs/copy.md", OldPath: "docs/orig.md"},
			{Status: diff.Modified, Path: "scripts/run.sh"},
			{Status: diff.Unknown, Path: "odd name with spaces/ü.txt"},
		},
		Base: "b", Head: "h", Source: diff.SourceAPI, Complete: true,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("result (-want +got):\n%s", d)
	}
	if n := fake.Calls("GET", `/repos/zof-ai/checkout-service/pulls/42/files`); n != 1 {
		t.Errorf("calls = %d, want 1 (a short first page ends the listing)", n)
	}
	if q := fake.Requests[0].Query; !strings.Contains(q, "per_page=100") {
		t.Errorf("query %q does not ask for 100 per page", q)
	}
	if a := fake.Requests[0].Auth; a != "Bearer ghs_test" {
		t.Errorf("Authorization = %q", a)
	}
	if paths := got.Paths(); len(paths) != 9 {
		t.Errorf("renamed and copied files count under both paths: %v", paths)
	}
}

func TestPRFilesPagingAndCap(t *testing.T) {
	tests := []struct {
		files     int
		calls     int
		listed    int
		complete  bool
		reasonHas string
	}{
		{0, 1, 0, true, ""},
		{99, 1, 99, true, ""},
		{100, 2, 100, true, ""}, // a full page needs one more (empty) page to know it was the last
		{250, 3, 250, true, ""},
		{2999, 30, 2999, true, ""},
		{githubtest.MaxFiles, 30, 3000, false, "3000"}, // at the cap: GitHub cannot say whether more changed
		{3500, 30, 3000, false, "3000"},                // over the cap: the API stops at 3000
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.files), func(t *testing.T) {
			fake := githubtest.New(t)
			fake.Files[9] = githubtest.Files(tt.files)
			src, _ := newSource(t, fake, 9)
			got, err := src.Changes(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Files) != tt.listed || got.Complete != tt.complete || !strings.Contains(got.Reason, tt.reasonHas) {
				t.Errorf("files=%d complete=%v reason=%q; want %d, %v, containing %q", len(got.Files), got.Complete, got.Reason, tt.listed, tt.complete, tt.reasonHas)
			}
			if n := fake.Calls("GET", `/repos/.*/pulls/9/files`); n != tt.calls {
				t.Errorf("calls = %d, want %d", n, tt.calls)
			}
			for i, r := range fake.Requests {
				q, _ := url.ParseQuery(r.Query)
				if q.Get("page") != strconv.Itoa(i+1) || q.Get("per_page") != "100" {
					t.Errorf("request %d query %q", i, r.Query)
				}
			}
			if tt.listed > 0 && got.Files[tt.listed-1].Path != fmt.Sprintf("dir/file-%04d.go", tt.listed) {
				t.Errorf("last file %q", got.Files[tt.listed-1].Path)
			}
		})
	}
}

func TestPRFilesFewerThanEventSays(t *testing.T) {
	fake := githubtest.New(t)
	fake.Files[5] = githubtest.Files(3)
	src, _ := newSource(t, fake, 5)
	src.ChangedFiles = 4
	got, err := src.Changes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got.Complete || !strings.Contains(got.Reason, "event says 4") {
		t.Errorf("complete=%v reason=%q", got.Complete, got.Reason)
	}
}

func TestPRFilesRateLimitsAndErrors(t *testing.T) {
	now := time.Now()
	soon := strconv.FormatInt(now.Add(-time.Second).Unix(), 10) // already reset: retry at once
	later := strconv.FormatInt(now.Add(2*time.Hour).Unix(), 10)
	tests := []struct {
		name      string
		faults    []githubtest.Fault
		sticky    bool
		wantErr   string
		wantCalls int
		wantSleep bool
	}{
		{"primary limit that resets soon: one retry", []githubtest.Fault{{Status: 403,
			Header: map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": soon, "X-RateLimit-Limit": "1000"},
			Body:   `{"message":"API rate limit exceeded for installation ID 1.","documentation_url":"https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting"}`}},
			false, "", 2, true},
		{"429 with Retry-After: one retry", []githubtest.Fault{{Status: 429, Header: map[string]string{"Retry-After": "3"}, Body: `{"message":"too many requests"}`}},
			false, "", 2, true},
		{"secondary limit with Retry-After 0", []githubtest.Fault{{Status: 403, Header: map[string]string{"Retry-After": "0"},
			Body: `{"message":"You have exceeded a secondary rate limit.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}`}},
			false, "", 2, true},
		{"primary limit that resets in two hours: no wait", []githubtest.Fault{{Status: 403,
			Header: map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": later},
			Body:   `{"message":"API rate limit exceeded"}`}},
			false, "rate limit", 1, false},
		{"429 too long to wait", []githubtest.Fault{{Status: 429, Header: map[string]string{"Retry-After": "3600"}, Body: `{}`}},
			false, "rate limit", 1, false},
		{"one 502: retried", []githubtest.Fault{githubtest.ServerError}, false, "", 2, true},
		{"persistent 502: an error when the budget is spent", []githubtest.Fault{githubtest.ServerError}, true, "502", untilBudget, true},
		{"403 without permission", []githubtest.Fault{{Status: 403, Body: `{"message":"Resource not accessible by integration"}`}}, false, "pull-requests: read", 1, false},
		{"404", []githubtest.Fault{{Status: 404, Body: `{"message":"Not Found"}`}}, false, "404", 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := githubtest.New(t)
			fake.Files[1] = githubtest.Files(2)
			for _, f := range tt.faults {
				fake.Fail("GET", `/repos/.*/pulls/1/files`, f, tt.sticky)
			}
			src, slept := newSource(t, fake, 1)
			got, err := src.Changes(context.Background())
			if tt.wantErr == "" {
				if err != nil || len(got.Files) != 2 || !got.Complete {
					t.Fatalf("got %+v, %v", got, err)
				}
			} else if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
			if n := fake.Calls("GET", `/repos/.*/pulls/1/files`); n != tt.wantCalls && (tt.wantCalls != untilBudget || n <= 2) {
				t.Errorf("calls = %d, want %d", n, tt.wantCalls)
			}
			var total time.Duration
			for _, d := range *slept {
				total += d
			}
			if total > DefaultMaxRateLimitWait {
				t.Errorf("slept %s in all, past the %s budget", total, DefaultMaxRateLimitWait)
			}
			if (len(*slept) > 0) != tt.wantSleep {
				t.Errorf("slept %v, want sleep: %v", *slept, tt.wantSleep)
			}
		})
	}
}

func TestRetryWaitsAsTold(t *testing.T) {
	fake := githubtest.New(t)
	fake.Files[1] = githubtest.Files(1)
	fake.Fail("GET", `/repos/.*/pulls/1/files`, githubtest.Fault{Status: 429, Header: map[string]string{"Retry-After": "7"}, Body: `{}`}, false)
	src, slept := newSource(t, fake, 1)
	if _, err := src.Changes(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]time.Duration{7 * time.Second}, *slept); d != "" {
		t.Errorf("waits (-want +got):\n%s", d)
	}
}

func TestRetryGivesUpWithContext(t *testing.T) {
	fake := githubtest.New(t)
	fake.Files[1] = githubtest.Files(1)
	fake.Fail("GET", `/repos/.*/pulls/1/files`, githubtest.ServerError, false)
	src, _ := newSource(t, fake, 1)
	src.Retry.Sleep = nil // the real timer: the cancelled context ends it
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := src.Changes(ctx); err == nil {
		t.Fatal("want an error")
	}
}

func TestRateLimitWait(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	fake := githubtest.New(t)
	fake.Fail("GET", `/x`, githubtest.Fault{Status: 403, Header: map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1700000030"}, Body: `{}`}, false)
	c, _ := NewClient("", fake.URL, nil)
	req, _ := c.NewRequest("GET", "x", nil)
	_, err := c.Do(context.Background(), req, nil)
	if !IsRateLimited(err) || IsPermissionDenied(err) {
		t.Fatalf("classification of %v", err)
	}
	if w, ok := RateLimitWait(err, now); !ok || w != 31*time.Second {
		t.Errorf("wait = %v, %v; want 31s (reset + 1s slack)", w, ok)
	}
	if StatusCode(err) != 403 {
		t.Errorf("status %d", StatusCode(err))
	}
	if StatusCode(errors.New("dial tcp: refused")) != 0 || IsRateLimited(nil) {
		t.Error("no response: status 0, not rate limited")
	}
}

func TestNewClientBaseURL(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", "https://api.github.com/"},
		{"https://ghe.example.com/api/v3", "https://ghe.example.com/api/v3/"},
		{"http://127.0.0.1:1234/", "http://127.0.0.1:1234/"},
	} {
		c, err := NewClient("", tt.in, nil)
		if err != nil || c.BaseURL.String() != tt.want {
			t.Errorf("NewClient(%q) base %v, %v; want %s", tt.in, c, err, tt.want)
		}
	}
	for _, bad := range []string{"api.github.com", "ftp://x/", "://"} {
		if _, err := NewClient("", bad, nil); err == nil {
			t.Errorf("NewClient(%q): want an error", bad)
		}
	}
}

func TestNewPRFilesNeedsAPullRequest(t *testing.T) {
	if _, err := NewPRFiles(nil, &Event{Kind: KindPush}); err == nil {
		t.Error("push: want an error")
	}
	src, err := NewPRFiles(nil, &Event{Kind: KindPullRequestTarget, Owner: "o", Repo: "r", PR: 3, BaseSHA: "b", HeadSHA: "h", ChangedFiles: 2})
	if err != nil || src.Number != 3 || src.Base != "b" || src.Head != "h" || src.ChangedFiles != 2 {
		t.Errorf("NewPRFiles = %+v, %v", src, err)
	}
	if _, err := src.Changes(context.Background()); err == nil {
		t.Error("no client: want an error")
	}
}
