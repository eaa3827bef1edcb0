package diff

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// gitEnv is an environment that isolates git from the machine's config.
func gitEnv(t *testing.T) []string {
	t.Helper()
	home := t.TempDir()
	return []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=" + filepath.Join(home, "gitconfig"),
		"GIT_AUTHOR_NAME=Zof Test", "GIT_AUTHOR_EMAIL=zof@example.com",
		"GIT_COMMITTER_NAME=Zof Test", "GIT_COMMITTER_EMAIL=zof@example.com",
		"GIT_AUTHOR_DATE=2024-01-01T00:00:00Z", "GIT_COMMITTER_DATE=2024-01-01T00:00:00Z",
		"GIT_CEILING_DIRECTORIES=" + filepath.Dir(home),
		"LC_ALL=C",
	}
}

type repo struct {
	t   *testing.T
	dir string
	env []string
}

func newRepo(t *testing.T, env []string) *repo {
	t.Helper()
	r := &repo{t: t, dir: t.TempDir(), env: env}
	r.git("init", "-q", "-b", "main")
	return r
}

func (r *repo) git(args ...string) string {
	r.t.Helper()
	return gitIn(r.t, r.dir, r.env, "", args...)
}

func gitIn(t *testing.T, dir string, env []string, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = env
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func (r *repo) write(name, content string) {
	r.t.Helper()
	p := filepath.Join(r.dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		r.t.Fatal(err)
	}
}

func (r *repo) commit(msg string) string {
	r.t.Helper()
	r.git("add", "-A")
	r.git("commit", "-q", "--allow-empty", "-m", msg)
	return r.git("rev-parse", "HEAD")
}

// commits adds n commits on branch (which must exist) in one fast-import
// process, each rewriting file.
func (r *repo) commits(branch, file string, n int) {
	r.t.Helper()
	var b strings.Builder
	for i := range n {
		msg := fmt.Sprintf("%s %d", branch, i)
		content := fmt.Sprintf("%d\n", i)
		fmt.Fprintf(&b, "commit refs/heads/%s\ncommitter Zof Test <zof@example.com> 1704067200 +0000\ndata %d\n%s\n", branch, len(msg), msg)
		if i == 0 {
			fmt.Fprintf(&b, "from refs/heads/%s^0\n", branch)
		}
		fmt.Fprintf(&b, "M 644 inline %s\ndata %d\n%s\n", file, len(content), content)
	}
	gitIn(r.t, r.dir, r.env, b.String(), "fast-import", "--quiet")
}

func sorted(cs []Change) []Change {
	sort.Slice(cs, func(i, j int) bool { return cs[i].Path < cs[j].Path })
	return cs
}

func TestGitChanges(t *testing.T) {
	env := gitEnv(t)
	r := newRepo(t, env)
	r.write("keep.txt", "keep\n")
	r.write("modify.txt", "v1\n")
	r.write("delete.txt", "bye\n")
	r.write("old/name.txt", "rename me\n")
	r.write("link", "regular file\n")
	r.write("main-only.txt", "v1\n")
	fork := r.commit("base")
	r.git("branch", "feature")

	// The base branch moves on after the fork point: none of this is in the change.
	r.write("main-only.txt", "v2\n")
	r.write("added-on-main.txt", "x\n")
	r.commit("main moves on")

	r.git("switch", "-q", "feature")
	odd := []string{"with space.txt", "new\nline.txt", `quo"te's.txt`, "tab\there.txt", "bad\xff\xfe.txt", "ünïcode/ß.txt", "-dash.txt"}
	for _, name := range odd {
		r.write(name, "odd\n")
	}
	r.write("modify.txt", "v2\n")
	r.git("rm", "-q", "delete.txt")
	if err := os.Mkdir(filepath.Join(r.dir, "new"), 0o755); err != nil {
		t.Fatal(err)
	}
	r.git("mv", "old/name.txt", "new/name.txt")
	if err := os.Remove(filepath.Join(r.dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("keep.txt", filepath.Join(r.dir, "link")); err != nil {
		t.Fatal(err)
	}
	head := r.commit("feature work")

	want := []Change{
		{Status: Modified, Path: "modify.txt"},
		{Status: Deleted, Path: "delete.txt"},
		{Status: Deleted, Path: "old/name.txt"}, // --no-renames: a rename is a delete ...
		{Status: Added, Path: "new/name.txt"},   // ... plus an add
		{Status: TypeChange, Path: "link"},
	}
	for _, name := range odd {
		want = append(want, Change{Status: Added, Path: name})
	}

	for _, tt := range []struct {
		name string
		g    Git
	}{
		{"explicit refs", Git{Dir: r.dir, Env: env, Base: "main", Head: "feature"}},
		{"head defaults to HEAD", Git{Dir: r.dir, Env: env, Base: "main"}},
		{"base defaults to main", Git{Dir: r.dir, Env: env}},
		{"subdirectory", Git{Dir: filepath.Join(r.dir, "new"), Env: env, Base: "main"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res, err := tt.g.Changes(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			res.Files = sorted(res.Files)
			wantRes := &Result{Files: sorted(want), Base: fork, Head: head, Source: "git", Complete: true}
			if diff := cmp.Diff(wantRes, res); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
			paths := res.Paths()
			for _, p := range []string{"old/name.txt", "new/name.txt", "delete.txt"} {
				if !slices.Contains(paths, p) {
					t.Errorf("Paths() lacks %q: %q", p, paths)
				}
			}
			if slices.Contains(paths, "main-only.txt") || slices.Contains(paths, "added-on-main.txt") {
				t.Errorf("three-dot diff includes changes made on the base branch: %q", paths)
			}
		})
	}
}

func TestGitErrors(t *testing.T) {
	env := gitEnv(t)
	r := newRepo(t, env)
	r.write("a", "a\n")
	r.commit("one")
	r.git("switch", "-q", "--orphan", "unrelated")
	r.write("b", "b\n")
	r.commit("other root")

	t.Run("unrelated histories are incomplete", func(t *testing.T) {
		res, err := (&Git{Dir: r.dir, Env: env, Base: "main", Head: "unrelated"}).Changes(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if res.Complete || len(res.Files) != 0 {
			t.Fatalf("got complete=%v files=%v", res.Complete, res.Files)
		}
		if want := "no merge base between main and unrelated: their histories are unrelated"; !strings.Contains(res.Reason, want) {
			t.Errorf("reason %q lacks %q", res.Reason, want)
		}
	})

	for _, tt := range []struct {
		name string
		g    Git
		want string
	}{
		{"missing head", Git{Dir: r.dir, Env: env, Base: "main", Head: "nope"}, "head ref nope not found"},
		{"option-like ref", Git{Dir: r.dir, Env: env, Base: "--output=x"}, `invalid ref "--output=x"`},
		{"not a repository", Git{Dir: t.TempDir(), Env: env, Base: "main"}, "is not a git repository"},
		{"no git", Git{Dir: r.dir, Env: env, Binary: "zof-no-such-git"}, "git not found (zof-no-such-git): install git or pass --changed-files"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.g.Changes(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}

	t.Run("missing base refs are unknown changes that say how to fetch them", func(t *testing.T) {
		r.git("remote", "add", "upstream", "file:///nonexistent")
		sha := strings.Repeat("ab", 20)
		for _, tt := range []struct{ base, fetch string }{
			{"origin/main", "git fetch origin main:refs/remotes/origin/main"},
			{"upstream/release/v1", "git fetch upstream release/v1:refs/remotes/upstream/release/v1"},
			{"refs/remotes/origin/dev", "git fetch origin dev:refs/remotes/origin/dev"},
			{"trunk", "git fetch origin trunk:refs/heads/trunk"},
			{"feature/x", "git fetch origin feature/x:refs/heads/feature/x"},
			{"refs/heads/trunk", "git fetch origin trunk:refs/heads/trunk"},
			{"refs/tags/v1", "git fetch origin refs/tags/v1:refs/tags/v1"},
			{sha, "git fetch origin " + sha},
		} {
			res, err := (&Git{Dir: r.dir, Env: env, Base: tt.base}).Changes(context.Background())
			if err != nil {
				t.Fatalf("base %s: %v", tt.base, err)
			}
			if res.Complete || len(res.Files) != 0 || res.Source != SourceGit || res.Head == "" {
				t.Errorf("base %s: got complete=%v files=%v source=%q head=%q, want an unknown git change of HEAD", tt.base, res.Complete, res.Files, res.Source, res.Head)
			}
			want := "base ref " + tt.base + " is not in this clone, so the change cannot be computed: fetch it with '" + tt.fetch + "' (or check out with fetch-depth: 0 in actions/checkout"
			if !strings.HasPrefix(res.Reason, want) {
				t.Errorf("base %s: reason\n%s\nwant prefix\n%s", tt.base, res.Reason, want)
			}
		}
	})

	t.Run("no default base", func(t *testing.T) {
		r2 := newRepo(t, env)
		r2.git("switch", "-q", "-c", "trunk")
		r2.commit("one")
		_, err := (&Git{Dir: r2.dir, Env: env}).Changes(context.Background())
		if err == nil || !strings.Contains(err.Error(), "no base branch: none of origin/HEAD, origin/main, origin/master, main, master exists") {
			t.Fatalf("err = %v", err)
		}
	})
}

// shallowSetup makes an upstream with 200 commits of history, after which
// feature forked from main and main moved on by 60 commits; and returns a
// function that makes --depth 1 clones of every branch.
func shallowSetup(t *testing.T, env []string) (up *repo, clone func() string, fork string) {
	t.Helper()
	up = newRepo(t, env)
	up.commit("root")
	up.commits("main", "history.txt", 199)
	up.write("base.txt", "base\n")
	fork = up.commit("fork point")
	up.git("branch", "feature")
	up.commits("main", "main-log.txt", 60)
	up.git("switch", "-q", "feature")
	up.write("feature.txt", "feature\n")
	up.commit("feature 1")
	up.git("switch", "-q", "main")
	up.git("switch", "-q", "--orphan", "unrelated")
	up.write("other.txt", "x\n")
	up.commit("unrelated root")
	up.git("switch", "-q", "main")

	clone = func() string {
		dir := filepath.Join(t.TempDir(), "clone")
		gitIn(t, up.dir, env, "", "clone", "-q", "--depth", "1", "--no-single-branch", "file://"+up.dir, dir)
		return dir
	}
	return up, clone, fork
}

func TestGitShallow(t *testing.T) {
	env := gitEnv(t)
	_, newClone, fork := shallowSetup(t, env)
	clone := newClone()
	head := gitIn(t, clone, env, "", "rev-parse", "origin/feature")

	t.Run("without deepening: incomplete", func(t *testing.T) {
		res, err := (&Git{Dir: clone, Env: env, Base: "origin/main", Head: "origin/feature"}).Changes(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		want := "shallow clone: no merge base between origin/main and origin/feature in the fetched history; fetch with fetch-depth: 0"
		if res.Complete || !strings.HasPrefix(res.Reason, want) {
			t.Fatalf("complete=%v reason=%q, want prefix %q", res.Complete, res.Reason, want)
		}
	})

	t.Run("cap reached: incomplete", func(t *testing.T) {
		res, err := (&Git{Dir: newClone(), Env: env, Base: "origin/main", Head: "origin/feature", Deepen: true, DeepenCap: 30}).Changes(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		want := "shallow clone: no merge base between origin/main and origin/feature after deepening by 30 commits; fetch with fetch-depth: 0"
		if res.Complete || !strings.HasPrefix(res.Reason, want) {
			t.Fatalf("complete=%v reason=%q, want prefix %q", res.Complete, res.Reason, want)
		}
	})

	t.Run("fetch fails: incomplete", func(t *testing.T) {
		broken := newClone()
		gitIn(t, broken, env, "", "remote", "set-url", "origin", "file://"+filepath.Join(t.TempDir(), "gone"))
		res, err := (&Git{Dir: broken, Env: env, Base: "origin/main", Head: "origin/feature", Deepen: true}).Changes(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		want := "shallow clone: no merge base between origin/main and origin/feature after deepening by 0 commits, then git fetch from origin failed"
		if res.Complete || !strings.HasPrefix(res.Reason, want) {
			t.Fatalf("complete=%v reason=%q, want prefix %q", res.Complete, res.Reason, want)
		}
	})

	t.Run("deepens until the merge base appears", func(t *testing.T) {
		res, err := (&Git{Dir: clone, Env: env, Base: "origin/main", Head: "origin/feature", Deepen: true}).Changes(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		want := &Result{Files: []Change{{Status: Added, Path: "feature.txt"}}, Base: fork, Head: head, Source: "git", Complete: true}
		if diff := cmp.Diff(want, res); diff != "" {
			t.Errorf("mismatch (-want +got):\n%s", diff)
		}
		// 50 commits were not enough (main is 61 commits from the fork), 50+100
		// were, and the 200 commits before the fork were not all fetched.
		if got := gitIn(t, clone, env, "", "rev-parse", "--is-shallow-repository"); got != "true" {
			t.Errorf("clone fetched its whole history (is-shallow %s); deepening should stop at the merge base", got)
		}
	})

	t.Run("default base is origin/HEAD", func(t *testing.T) {
		res, err := (&Git{Dir: clone, Env: env, Head: "origin/feature"}).Changes(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if !res.Complete || res.Base != fork {
			t.Fatalf("got %+v, want base %s", res, fork)
		}
	})
}

func TestGitShallowNoCommonHistory(t *testing.T) {
	env := gitEnv(t)
	_, newClone, _ := shallowSetup(t, env)
	res, err := (&Git{Dir: newClone(), Env: env, Base: "origin/unrelated", Head: "origin/main", Deepen: true}).Changes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := "no merge base between origin/unrelated and origin/main in the full history: they share no commit"
	if res.Complete || !strings.HasPrefix(res.Reason, want) {
		t.Fatalf("complete=%v reason=%q, want prefix %q", res.Complete, res.Reason, want)
	}
}

func TestGitCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := (&Git{Dir: t.TempDir(), Env: gitEnv(t)}).Changes(ctx)
	if err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Fatalf("err = %v", err)
	}
}
