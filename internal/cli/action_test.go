package cli

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
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
	apiCapped     = &diff.Result{Source: diff.SourceAPI, Files: []diff.Change{{Status: diff.Modified, Path: "b.go"}}, Reason: "300 files, the most it lists"}
	errGit        = errors.New("base ref abc not found")
	errAPI        = errors.New("403 Forbidden")
	// errNoGit is what diff.Git returns where git is not installed (zof's image).
	errNoGit = fmt.Errorf("git not found (git): install git or pass --changed-files: %w", &exec.Error{Name: "git", Err: exec.ErrNotFound})
)

// TestFallbackDiff: the primary source first; the fallback only when the primary fails or
// is incomplete, said on the log; when both fail (or there is no fallback, and why is
// known) the change is unknown and the reason names both, git's absence in plain words.
// GitLab asks git then the API, the action the compare API then git.
func TestFallbackDiff(t *testing.T) {
	for _, tc := range []struct {
		name              string
		primary, fallback *fixedDiff
		primaryWhat       string
		fallbackWhat      string
		noFallback        string
		want              *diff.Result
		wantErr           error  // errors.Is
		wantErrText       string // the error's whole text
		wantFallbackCalls int
		wantSaid          string
	}{
		{name: "git works", primary: &fixedDiff{res: gitOK}, fallback: &fixedDiff{res: apiOK}, want: gitOK},
		{name: "git fails", primary: &fixedDiff{err: errGit}, fallback: &fixedDiff{res: apiOK}, want: apiOK, wantFallbackCalls: 1,
			wantSaid: "git could not compute the change (base ref abc not found): using the API"},
		{name: "git incomplete", primary: &fixedDiff{res: gitIncomplete}, fallback: &fixedDiff{res: apiOK}, want: apiOK, wantFallbackCalls: 1,
			wantSaid: "git could not compute the change (shallow clone: no merge base): using the API"},
		{name: "git not installed", primary: &fixedDiff{err: errNoGit}, fallback: &fixedDiff{res: apiOK}, want: apiOK, wantFallbackCalls: 1,
			wantSaid: "git could not compute the change (git is not installed): using the API"},
		{name: "both fail", primary: &fixedDiff{err: errGit}, fallback: &fixedDiff{err: errAPI}, wantErr: errGit, wantFallbackCalls: 1,
			wantErrText: "git: base ref abc not found; the API: 403 Forbidden"},
		{name: "git incomplete, api fails", primary: &fixedDiff{res: gitIncomplete}, fallback: &fixedDiff{err: errAPI}, wantFallbackCalls: 1,
			want: &diff.Result{Source: diff.SourceGit, Reason: "git: shallow clone: no merge base; the API: 403 Forbidden"}},
		{name: "no fallback", primary: &fixedDiff{err: errGit}, wantErr: errGit, wantErrText: errGit.Error()},
		{name: "no fallback, and why", primary: &fixedDiff{err: errNoGit}, noFallback: "without a token the API cannot be read instead",
			wantErr: exec.ErrNotFound, wantErrText: "git: git is not installed; without a token the API cannot be read instead"},
		{name: "no fallback, and why, incomplete", primary: &fixedDiff{res: gitIncomplete}, noFallback: "no token",
			want: &diff.Result{Source: diff.SourceGit, Reason: "git: shallow clone: no merge base; no token"}},
		// The action: the compare API, then git.
		{name: "api works", primary: &fixedDiff{res: apiOK}, primaryWhat: "the compare API", fallback: &fixedDiff{res: gitOK}, fallbackWhat: "git", want: apiOK},
		{name: "api capped, git works", primary: &fixedDiff{res: apiCapped}, primaryWhat: "the compare API", fallback: &fixedDiff{res: gitOK}, fallbackWhat: "git",
			want: gitOK, wantFallbackCalls: 1, wantSaid: "the compare API could not compute the change (300 files, the most it lists): using git"},
		{name: "api capped, no git: the listed files stay, incomplete", primary: &fixedDiff{res: apiCapped}, primaryWhat: "the compare API", fallback: &fixedDiff{err: errNoGit}, fallbackWhat: "git",
			wantFallbackCalls: 1, want: &diff.Result{Source: diff.SourceAPI, Files: apiCapped.Files, Reason: "the compare API: 300 files, the most it lists; git: git is not installed"}},
		{name: "api fails, no git", primary: &fixedDiff{err: errAPI}, primaryWhat: "the compare API", fallback: &fixedDiff{err: errNoGit}, fallbackWhat: "git",
			wantFallbackCalls: 1, wantErr: errAPI, wantErrText: "the compare API: 403 Forbidden; git: git is not installed"},
		{name: "api fails, git incomplete", primary: &fixedDiff{err: errAPI}, primaryWhat: "the compare API", fallback: &fixedDiff{res: gitIncomplete}, fallbackWhat: "git",
			wantFallbackCalls: 1, wantErr: errAPI, wantErrText: "the compare API: 403 Forbidden; git: shallow clone: no merge base"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var said []string
			f := &fallbackDiff{primary: tc.primary, primaryWhat: "git", fallbackWhat: "the API", noFallback: tc.noFallback, say: func(s string) { said = append(said, s) }}
			if tc.primaryWhat != "" {
				f.primaryWhat, f.fallbackWhat = tc.primaryWhat, tc.fallbackWhat
			}
			if tc.fallback != nil {
				f.fallback = tc.fallback
			}
			got, err := f.Changes(context.Background())
			if !errors.Is(err, tc.wantErr) || (err != nil && err.Error() != tc.wantErrText) {
				t.Fatalf("err %v, want %q (errors.Is %v)", err, tc.wantErrText, tc.wantErr)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("result (-want +got):\n%s", d)
			}
			if tc.fallback != nil && tc.fallback.calls != tc.wantFallbackCalls {
				t.Errorf("%d fallback calls, want %d", tc.fallback.calls, tc.wantFallbackCalls)
			}
			var wantSaid []string
			if tc.wantSaid != "" {
				wantSaid = []string{tc.wantSaid}
			}
			if d := cmp.Diff(wantSaid, said); d != "" {
				t.Errorf("said (-want +got):\n%s", d)
			}
		})
	}
	if gitIncomplete.Reason != "shallow clone: no merge base" || apiCapped.Reason != "300 files, the most it lists" {
		t.Errorf("a source's own result was modified: %q, %q", gitIncomplete.Reason, apiCapped.Reason)
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
