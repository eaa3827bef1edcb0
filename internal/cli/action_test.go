package cli

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/zof-ai/zof-ci/internal/diff"
)

// fixedDiff is a diff source with a canned answer.
type fixedDiff struct {
	res   *diff.Result
	err   error
	calls int
}

func (f *fixedDiff) Changes(context.Context) (*diff.Result, error) {
	f.calls++
	return f.res, f.err
}

var (
	gitOK         = &diff.Result{Source: diff.SourceGit, Complete: true, Files: []diff.Change{{Status: diff.Modified, Path: "a.go"}}}
	gitIncomplete = &diff.Result{Source: diff.SourceGit, Reason: "shallow clone: no merge base"}
	apiOK         = &diff.Result{Source: diff.SourceAPI, Complete: true, Files: []diff.Change{{Status: diff.Modified, Path: "b.go"}}}
	errGit        = errors.New("base ref abc not found")
	errAPI        = errors.New("403 Forbidden")
)

// TestFallbackDiff: git first; the API only when git fails or is incomplete; git's answer
// when both fail.
func TestFallbackDiff(t *testing.T) {
	for _, tc := range []struct {
		name          string
		git, api      *fixedDiff
		noFallback    bool
		want          *diff.Result
		wantErr       error
		wantAPICalls  int
		wantLogSubstr string
	}{
		{name: "git works", git: &fixedDiff{res: gitOK}, api: &fixedDiff{res: apiOK}, want: gitOK},
		{name: "git fails", git: &fixedDiff{err: errGit}, api: &fixedDiff{res: apiOK}, want: apiOK, wantAPICalls: 1,
			wantLogSubstr: "git could not compute the change (base ref abc not found): using the API"},
		{name: "git incomplete", git: &fixedDiff{res: gitIncomplete}, api: &fixedDiff{res: apiOK}, want: apiOK, wantAPICalls: 1,
			wantLogSubstr: "(shallow clone: no merge base): using the API"},
		{name: "both fail", git: &fixedDiff{err: errGit}, api: &fixedDiff{err: errAPI}, wantErr: errGit, wantAPICalls: 1,
			wantLogSubstr: "and neither could the API: 403 Forbidden"},
		{name: "git incomplete, api fails", git: &fixedDiff{res: gitIncomplete}, api: &fixedDiff{err: errAPI}, want: gitIncomplete, wantAPICalls: 1},
		{name: "no fallback", git: &fixedDiff{err: errGit}, noFallback: true, wantErr: errGit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log bytes.Buffer
			f := &fallbackDiff{primary: tc.git, what: "the API", log: &log}
			if !tc.noFallback {
				f.fallback = tc.api
			}
			got, err := f.Changes(context.Background())
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("result %+v, want %+v", got, tc.want)
			}
			if tc.api != nil && tc.api.calls != tc.wantAPICalls {
				t.Errorf("%d API calls, want %d", tc.api.calls, tc.wantAPICalls)
			}
			if !strings.Contains(log.String(), tc.wantLogSubstr) {
				t.Errorf("log %q does not say %q", log.String(), tc.wantLogSubstr)
			}
		})
	}
}

// TestUnknownDiff: a CI source's failure becomes an incomplete change of that source, with
// a warning; success passes through untouched.
func TestUnknownDiff(t *testing.T) {
	for _, tc := range []struct {
		name     string
		src      diff.Source
		err      error
		want     *diff.Result
		wantWarn []string
	}{
		{name: "works", src: &fixedDiff{res: apiOK}, want: apiOK},
		{name: "fails", src: &fixedDiff{err: errAPI},
			want:     &diff.Result{Base: "b", Head: "h", Source: diff.SourceAPI, Reason: "could not list: 403 Forbidden"},
			wantWarn: []string{"could not list: 403 Forbidden: the change is unknown, so the suite's selection.on_unknown_diff applies"}},
		{name: "unknown without an error", src: &fixedDiff{res: &diff.Result{Head: "h", Source: diff.SourceGit, Reason: "base ref b is not in this clone"}},
			want:     &diff.Result{Head: "h", Source: diff.SourceGit, Reason: "base ref b is not in this clone"},
			wantWarn: []string{"could not list: base ref b is not in this clone: the change is unknown, so the suite's selection.on_unknown_diff applies"}},
		{name: "incomplete but known", src: &fixedDiff{res: &diff.Result{Files: []diff.Change{{Status: diff.Added, Path: "a"}}, Source: diff.SourceAPI, Reason: "capped at 3000 files"}},
			want: &diff.Result{Files: []diff.Change{{Status: diff.Added, Path: "a"}}, Source: diff.SourceAPI, Reason: "capped at 3000 files"}},
		{name: "no source", err: errAPI,
			want:     &diff.Result{Base: "b", Head: "h", Source: diff.SourceAPI, Reason: "could not list: 403 Forbidden"},
			wantWarn: []string{"could not list: 403 Forbidden: the change is unknown, so the suite's selection.on_unknown_diff applies"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var warns []string
			u := &unknownDiff{src: tc.src, err: tc.err, source: diff.SourceAPI, base: "b", head: "h", what: "could not list", warn: func(s string) { warns = append(warns, s) }}
			got, err := u.Changes(context.Background())
			if err != nil {
				t.Fatalf("err %v: a CI source's failure must not fail the run", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantWarn, warns); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
		})
	}
}
