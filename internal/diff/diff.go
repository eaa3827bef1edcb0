// Package diff finds the files a change touches: from an explicit list, or from git (three-dot, deepening shallow clones).
package diff

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/zof-ai/zof-ci/api"
)

// Status is how a file changed.
type Status string

// Statuses, named after git's --name-status letters.
const (
	Added      Status = "added"      // A
	Modified   Status = "modified"   // M
	Deleted    Status = "deleted"    // D
	Renamed    Status = "renamed"    // R (only when rename detection is on; Git turns it off)
	Copied     Status = "copied"     // C (likewise)
	TypeChange Status = "typechange" // T: file <-> symlink <-> submodule
	Unmerged   Status = "unmerged"   // U: a conflicted path
	// Unknown is a path from a list (--changed-files) or a source that does not say how it changed.
	Unknown Status = "unknown"
)

// Change is one changed file. Paths are repository-relative, /-separated and
// kept byte for byte as the source gave them (they may be any bytes but NUL).
type Change struct {
	Status Status
	Path   string
	// OldPath is the path before a rename or copy, "" otherwise.
	OldPath string
}

// Result is a change: its files and where they came from.
type Result struct {
	Files []Change
	// Base and Head identify the two sides (for git: the merge-base and head
	// commits; for the API: the pull request's shas).
	Base, Head string
	// Source is "git", "api" or "override".
	Source string
	// Complete is false when some changed files may be missing (API cap,
	// shallow clone without a merge base); Reason then says why, for a person.
	Complete bool
	Reason   string
}

// Source values of Result.Source.
const (
	SourceGit      = "git"
	SourceAPI      = "api"
	SourceOverride = "override"
)

// Paths returns every path that counts for selection, in order, without
// duplicates: a rename or copy counts under both its old and its new path,
// and deleted files count.
func (r *Result) Paths() []string {
	if r == nil {
		return nil
	}
	seen := make(map[string]struct{}, len(r.Files))
	out := make([]string, 0, len(r.Files))
	add := func(p string) {
		if p == "" {
			return
		}
		if _, ok := seen[p]; ok {
			return
		}
		seen[p] = struct{}{}
		out = append(out, p)
	}
	for _, c := range r.Files {
		add(c.OldPath)
		add(c.Path)
	}
	return out
}

// Summary is the part of the result a selection carries. Files counts the
// changes (a rename is one change).
func (r *Result) Summary() *api.DiffSummary {
	if r == nil {
		return nil
	}
	return &api.DiffSummary{
		Source:   r.Source,
		Base:     r.Base,
		Head:     r.Head,
		Files:    len(r.Files),
		Complete: r.Complete,
		Reason:   r.Reason,
	}
}

// Source produces the changed files of the current change.
type Source interface {
	Changes(ctx context.Context) (*Result, error)
}

var (
	_ Source = (*List)(nil)
	_ Source = (*Git)(nil)
)

// List is an explicit list of changed paths (--changed-files FILE|-). It
// overrides every other source and is complete by definition.
type List struct {
	paths []string
}

// ReadList reads one path per line. A trailing "\r" is dropped (files written
// on Windows), blank lines are skipped, and duplicates are kept once. Other
// whitespace is part of the path: file names may contain it.
func ReadList(r io.Reader) (*List, error) {
	l := &List{}
	seen := map[string]struct{}{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), maxListLine)
	for sc.Scan() {
		line := string(bytes.TrimSuffix(sc.Bytes(), []byte("\r")))
		if line == "" {
			continue
		}
		if _, ok := seen[line]; ok {
			continue
		}
		seen[line] = struct{}{}
		l.paths = append(l.paths, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read changed files list: %w (one repository-relative path per line)", err)
	}
	return l, nil
}

// maxListLine bounds one line of a --changed-files list; Linux allows paths of
// at most PATH_MAX = 4096 bytes, so anything far longer is not a path list.
const maxListLine = 1 << 20

// Changes returns the list as a complete override result.
func (l *List) Changes(context.Context) (*Result, error) {
	files := make([]Change, len(l.paths))
	for i, p := range l.paths {
		files[i] = Change{Status: Unknown, Path: p}
	}
	return &Result{Files: files, Source: SourceOverride, Complete: true}, nil
}
