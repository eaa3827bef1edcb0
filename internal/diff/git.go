package diff

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// Deepening a shallow clone: the first `git fetch --deepen` asks for
// InitialDeepen commits, each next one for twice as many as the one before,
// until DefaultDeepenCap commits in all. 50 covers most pull requests in one
// round trip; the cap (50+100+…+1600) bounds the time spent before giving up
// and telling the user to fetch the whole history instead.
const (
	InitialDeepen    = 50
	DefaultDeepenCap = 3150
)

// defaultBaseCandidates are tried in order when Git.Base is empty, after the
// target of origin/HEAD (the remote's default branch).
var defaultBaseCandidates = []string{"origin/main", "origin/master", "main", "master"}

// Git computes the change from a git checkout, three-dot: the files that
// differ between the merge base of Base and Head, and Head. Changes made on
// the base branch after the fork point are not part of the change.
//
// Rename detection is off (--no-renames): a renamed file is reported as a
// deletion of its old path plus an addition of its new path, so both paths
// count for selection. Git never goes through a shell; file names are kept
// byte for byte.
type Git struct {
	// Dir is the checkout (any directory inside it); "" is the current directory.
	Dir string
	// Base is the ref the change goes into; "" means the upstream default
	// branch: origin/HEAD's target, else origin/main, origin/master, main, master.
	Base string
	// Head is the ref of the change; "" means HEAD.
	Head string
	// Env is the environment of every git process; nil inherits this process's.
	Env []string
	// Deepen lets a shallow clone without a merge base fetch more history
	// (from the remote of Base) step by step before giving up.
	Deepen bool
	// DeepenCap bounds the commits fetched in all by deepening; 0 means DefaultDeepenCap.
	DeepenCap int
	// Binary is the git executable; "" means "git" on PATH.
	Binary string
}

// Changes runs git and returns the change. A missing merge base (unrelated
// histories, or a shallow clone that could not be deepened far enough) is
// not an error: the result is incomplete and says why. Neither is a base ref
// missing from the clone (a fresh or shallow clone without the base branch):
// the result is incomplete, and its reason names the ref and how to fetch it.
// Errors are for what a person has to fix: no repository, no git, no head.
func (g *Git) Changes(ctx context.Context) (*Result, error) {
	if _, err := g.run(ctx, "rev-parse", "--git-dir"); err != nil {
		if errors.Is(err, exec.ErrNotFound) || ctx.Err() != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%s is not a git repository (or git cannot read it): run zof inside a checkout, mark it a safe.directory, or pass --changed-files: %w", g.dirName(), err)
	}
	baseRef := g.Base
	if baseRef == "" {
		var err error
		if baseRef, err = g.defaultBase(ctx); err != nil {
			return nil, err
		}
	}
	headRef := g.Head
	if headRef == "" {
		headRef = "HEAD"
	}
	headSHA, err := g.resolve(ctx, headRef)
	if err != nil {
		return nil, fmt.Errorf("head ref %s not found: check out the change or pass the right ref: %w", headRef, err)
	}
	baseSHA, err := g.resolve(ctx, baseRef)
	if err != nil {
		if ctx.Err() != nil || strings.HasPrefix(baseRef, "-") {
			return nil, fmt.Errorf("base ref %s: %w", baseRef, err)
		}
		// A fresh or shallow clone often lacks the base branch: the change is
		// unknown (on_unknown_diff applies), and the reason says how to get it.
		return &Result{Head: headSHA, Source: SourceGit, Reason: g.missingBase(ctx, baseRef)}, nil
	}

	mb, found, err := g.mergeBase(ctx, baseSHA, headSHA)
	if err != nil {
		return nil, err
	}
	if !found {
		reason, err := g.noMergeBase(ctx, baseRef, headRef, baseSHA, headSHA)
		if err != nil {
			return nil, err
		}
		if reason != "" {
			return &Result{Base: baseSHA, Head: headSHA, Source: SourceGit, Reason: reason}, nil
		}
		if mb, found, err = g.mergeBase(ctx, baseSHA, headSHA); err != nil {
			return nil, err
		}
		if !found {
			return nil, fmt.Errorf("git merge-base %s %s: no merge base after deepening succeeded (please report this)", baseRef, headRef)
		}
	}

	out, err := g.run(ctx, "diff", "--name-status", "-z", "--no-renames", "--no-ext-diff", "--no-textconv", mb, headSHA, "--")
	if err != nil {
		return nil, fmt.Errorf("list changed files between %s and %s: %w", baseRef, headRef, err)
	}
	files, err := ParseNameStatus(out)
	if err != nil {
		return nil, fmt.Errorf("read git diff output: %w", err)
	}
	return &Result{Files: files, Base: mb, Head: headSHA, Source: SourceGit, Complete: true}, nil
}

// noMergeBase handles a missing merge base. It returns the reason the
// result is incomplete, or "" when deepening made a merge base appear.
func (g *Git) noMergeBase(ctx context.Context, baseRef, headRef, baseSHA, headSHA string) (string, error) {
	shallow, err := g.isShallow(ctx)
	if err != nil {
		return "", err
	}
	if !shallow {
		return fmt.Sprintf("no merge base between %s and %s: their histories are unrelated, so the change cannot be computed; pass --base with a ref that shares history with %s", baseRef, headRef, headRef), nil
	}
	if !g.Deepen {
		return fmt.Sprintf("shallow clone: no merge base between %s and %s in the fetched history; fetch with fetch-depth: 0 (actions/checkout) or GIT_DEPTH: 0 (GitLab)", baseRef, headRef), nil
	}
	limit := g.DeepenCap
	if limit <= 0 {
		limit = DefaultDeepenCap
	}
	remote := g.remoteOf(ctx, baseRef)
	total := 0
	for step := InitialDeepen; total < limit; step *= 2 {
		n := min(step, limit-total)
		if _, err := g.run(ctx, "fetch", "--quiet", "--no-tags", "--deepen="+strconv.Itoa(n), "--", remote); err != nil {
			if ctx.Err() != nil {
				return "", fmt.Errorf("deepen shallow clone: %w", ctx.Err())
			}
			return fmt.Sprintf("shallow clone: no merge base between %s and %s after deepening by %d commits, then git fetch from %s failed (%v); fetch with fetch-depth: 0", baseRef, headRef, total, remote, err), nil
		}
		total += n
		if _, found, err := g.mergeBase(ctx, baseSHA, headSHA); err != nil {
			return "", err
		} else if found {
			return "", nil
		}
		if shallow, err = g.isShallow(ctx); err != nil {
			return "", err
		} else if !shallow {
			return fmt.Sprintf("no merge base between %s and %s in the full history: they share no commit, so the change cannot be computed; pass --base with a ref that shares history with %s", baseRef, headRef, headRef), nil
		}
	}
	return fmt.Sprintf("shallow clone: no merge base between %s and %s after deepening by %d commits; fetch with fetch-depth: 0 (actions/checkout) or GIT_DEPTH: 0 (GitLab)", baseRef, headRef, total), nil
}

// defaultBase finds the upstream default branch.
func (g *Git) defaultBase(ctx context.Context) (string, error) {
	if out, err := g.run(ctx, "symbolic-ref", "--quiet", "refs/remotes/origin/HEAD"); err == nil {
		ref := strings.TrimPrefix(strings.TrimSpace(string(out)), "refs/remotes/")
		if _, err := g.resolve(ctx, ref); err == nil {
			return ref, nil
		}
	}
	for _, ref := range defaultBaseCandidates {
		if _, err := g.resolve(ctx, ref); err == nil {
			return ref, nil
		}
	}
	return "", fmt.Errorf("no base branch: none of origin/HEAD, %s exists in %s; fetch the target branch (git fetch origin main) or pass --base REF", strings.Join(defaultBaseCandidates, ", "), g.dirName())
}

// resolve turns a ref into a commit sha.
func (g *Git) resolve(ctx context.Context, ref string) (string, error) {
	if ref == "" || strings.HasPrefix(ref, "-") {
		return "", fmt.Errorf("invalid ref %q", ref)
	}
	out, err := g.run(ctx, "rev-parse", "--verify", "--quiet", ref+"^{commit}")
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}

// mergeBase returns the best common ancestor; found is false when there is none.
func (g *Git) mergeBase(ctx context.Context, a, b string) (sha string, found bool, err error) {
	out, err := g.run(ctx, "merge-base", a, b)
	if err != nil {
		// Exit status 1 without a message is git's "no common ancestor".
		var ge *gitError
		if errors.As(err, &ge) && ge.code == 1 && strings.TrimSpace(ge.stderr) == "" {
			return "", false, nil
		}
		return "", false, fmt.Errorf("git merge-base: %w", err)
	}
	return strings.TrimSpace(string(out)), true, nil
}

func (g *Git) isShallow(ctx context.Context) (bool, error) {
	out, err := g.run(ctx, "rev-parse", "--is-shallow-repository")
	if err != nil {
		return false, fmt.Errorf("check for a shallow clone: %w", err)
	}
	return strings.TrimSpace(string(out)) == "true", nil
}

// remoteOf is the remote to deepen from: the remote named by a
// remote-tracking base ("origin/main"), the upstream of a local branch,
// else origin.
func (g *Git) remoteOf(ctx context.Context, ref string) string {
	out, err := g.run(ctx, "remote")
	if err == nil {
		for _, r := range strings.Fields(string(out)) {
			if strings.HasPrefix(ref, r+"/") || strings.HasPrefix(ref, "refs/remotes/"+r+"/") {
				return r
			}
		}
	}
	branch := strings.TrimPrefix(ref, "refs/heads/")
	if out, err := g.run(ctx, "config", "--get", "branch."+branch+".remote"); err == nil {
		if r := strings.TrimSpace(string(out)); r != "" && r != "." {
			return r
		}
	}
	return "origin"
}

// missingBase is the reason a change against a base ref that is not in the
// clone is unknown: the ref, and the command that fetches it into the very
// ref zof looks for. A plain `git fetch origin main` is not enough in a clone
// made with a narrow refspec (actions/checkout's default, a --single-branch
// clone): it only updates FETCH_HEAD.
func (g *Git) missingBase(ctx context.Context, ref string) string {
	return fmt.Sprintf("base ref %s is not in this clone, so the change cannot be computed: fetch it with "+
		"'%s' (or check out with fetch-depth: 0 in actions/checkout, GIT_DEPTH: 0 in GitLab), or pass --base with a ref that exists",
		ref, g.fetchHint(ctx, ref))
}

// fetchHint is the git command that fetches ref into the ref of the same name:
// origin/main (a remote-tracking branch of a known remote) from that remote into
// refs/remotes/origin/main, any other name as a branch of origin.
func (g *Git) fetchHint(ctx context.Context, ref string) string {
	if len(ref) == 40 && strings.Trim(ref, "0123456789abcdef") == "" {
		return "git fetch origin " + ref // a commit: GitHub and GitLab serve it by sha
	}
	name := strings.TrimPrefix(ref, "refs/remotes/")
	if name != ref || !strings.HasPrefix(ref, "refs/") {
		var remotes []string
		if out, err := g.run(ctx, "remote"); err == nil {
			remotes = strings.Fields(string(out))
		}
		for _, r := range append(remotes, "origin") {
			if b, ok := strings.CutPrefix(name, r+"/"); ok && b != "" {
				return fmt.Sprintf("git fetch %s %s:refs/remotes/%s/%s", r, b, r, b)
			}
		}
	}
	if b, ok := strings.CutPrefix(ref, "refs/heads/"); ok {
		return fmt.Sprintf("git fetch origin %s:refs/heads/%s", b, b)
	}
	if strings.HasPrefix(ref, "refs/") {
		return fmt.Sprintf("git fetch origin %s:%s", ref, ref)
	}
	return fmt.Sprintf("git fetch origin %s:refs/heads/%s", ref, ref)
}

func (g *Git) dirName() string {
	if g.Dir == "" {
		return "the current directory"
	}
	return g.Dir
}

// gitError is a git command that ran and failed.
type gitError struct {
	args   []string
	code   int
	stderr string
}

func (e *gitError) Error() string {
	msg := strings.TrimSpace(e.stderr)
	if len(msg) > maxStderr {
		msg = msg[:maxStderr] + " …"
	}
	if msg == "" {
		msg = "no output"
	}
	return fmt.Sprintf("git %s: exit status %d: %s", strings.Join(e.args, " "), e.code, msg)
}

// maxStderr bounds how much of git's stderr goes into an error message.
const maxStderr = 2000

// run executes git with args (never through a shell) and returns stdout.
func (g *Git) run(ctx context.Context, args ...string) ([]byte, error) {
	bin := g.Binary
	if bin == "" {
		bin = "git"
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = g.Dir
	cmd.Env = g.Env
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return nil, fmt.Errorf("git not found (%s): install git or pass --changed-files: %w", bin, err)
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) && ctx.Err() == nil {
			return nil, &gitError{args: args, code: ee.ExitCode(), stderr: stderr.String()}
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("git %s: %w", args[0], ctx.Err())
		}
		return nil, fmt.Errorf("run git %s: %w", args[0], err)
	}
	return stdout.Bytes(), nil
}

// ParseNameStatus parses `git diff --name-status -z` output: for each file
// a status field, then its path, each NUL-terminated; renames and copies
// ("R100", "C75") carry two paths, old then new.
func ParseNameStatus(out []byte) ([]Change, error) {
	var files []Change
	next := func() (string, bool) {
		i := bytes.IndexByte(out, 0)
		if i < 0 {
			return "", false
		}
		f := string(out[:i])
		out = out[i+1:]
		return f, true
	}
	for len(out) > 0 {
		field, ok := next()
		if !ok {
			return nil, fmt.Errorf("truncated name-status output: status %q is not NUL-terminated", truncate(string(out)))
		}
		if field == "" {
			return nil, fmt.Errorf("malformed name-status output: empty status field")
		}
		st, twoPaths, ok := statusOf(field)
		if !ok {
			return nil, fmt.Errorf("malformed name-status output: unknown status %q", truncate(field))
		}
		c := Change{Status: st}
		p, ok := next()
		if !ok || p == "" {
			return nil, fmt.Errorf("malformed name-status output: status %q without a path", field)
		}
		if twoPaths {
			c.OldPath = p
			if p, ok = next(); !ok || p == "" {
				return nil, fmt.Errorf("malformed name-status output: %s of %q without a new path", st, truncate(c.OldPath))
			}
		}
		c.Path = p
		files = append(files, c)
	}
	return files, nil
}

// statusOf maps a status field; R and C carry a similarity score.
func statusOf(field string) (st Status, twoPaths, ok bool) {
	letter, score := field[0], field[1:]
	if score != "" {
		if letter != 'R' && letter != 'C' && letter != 'M' {
			return "", false, false
		}
		if _, err := strconv.ParseUint(score, 10, 16); err != nil {
			return "", false, false
		}
	}
	switch letter {
	case 'A':
		return Added, false, true
	case 'M':
		return Modified, false, true
	case 'D':
		return Deleted, false, true
	case 'T':
		return TypeChange, false, true
	case 'U':
		return Unmerged, false, true
	case 'X':
		return Unknown, false, true
	case 'R':
		return Renamed, true, score != ""
	case 'C':
		return Copied, true, score != ""
	}
	return "", false, false
}

func truncate(s string) string {
	const n = 80
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
