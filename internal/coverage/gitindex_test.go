package coverage

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/zof-ai/zof-ci/internal/coverage/coveragetest"
)

// gitEnv is the environment of the tests' git: no user or system config.
var gitEnv = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
	"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")

// gitOut runs git in dir with stdin and returns its stdout.
func gitOut(t testing.TB, dir, stdin string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = gitEnv
	cmd.Stdin = strings.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, stderr.Bytes())
	}
	return out
}

func write(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// lsFiles is what git lists at the top level of the checkout that holds dir:
// ls-files -z --full-name, each path once.
func lsFiles(t testing.TB, dir string) []string {
	t.Helper()
	top := strings.TrimSpace(string(gitOut(t, dir, "", "rev-parse", "--show-toplevel")))
	var files []string
	for _, f := range bytes.Split(gitOut(t, top, "", "ls-files", "-z", "--full-name", "--deduplicate"), []byte{0}) {
		if len(f) > 0 {
			files = append(files, string(f))
		}
	}
	return files
}

// addPaths puts paths straight into the index (no such files needed: names
// no file system allows), all one blob.
func addPaths(t testing.TB, dir string, paths ...string) {
	t.Helper()
	blob := strings.TrimSpace(string(gitOut(t, dir, "x", "hash-object", "-w", "--stdin")))
	var b strings.Builder
	for _, p := range paths {
		b.WriteString("100644 " + blob + "\t" + p + "\x00")
	}
	gitOut(t, dir, b.String(), "update-index", "--add", "-z", "--index-info")
}

func commitFiles(t testing.TB, dir string, files ...string) {
	t.Helper()
	for _, f := range files {
		write(t, filepath.Join(dir, f), f)
	}
	gitOut(t, dir, "", "add", ".")
	gitOut(t, dir, "", "commit", "-qm", "files")
}

// indexRepos are the repositories TestIndexFiles and FuzzGitIndex build: each
// returns the directory to list from (the repository's or one inside it).
var indexRepos = []struct {
	name  string
	setup func(t testing.TB, root string) string
}{
	{"empty repository", func(t testing.TB, root string) string {
		gitOut(t, root, "", "init", "-q")
		return root
	}},
	{"plain files from a subdirectory", func(t testing.TB, root string) string {
		gitOut(t, root, "", "init", "-q")
		commitFiles(t, root, "a/one.go", "a/b/two.go", "spaced name.go", "README.md")
		return filepath.Join(root, "a", "b")
	}},
	{"intent-to-add and skip-worktree", func(t testing.TB, root string) string {
		gitOut(t, root, "", "init", "-q")
		commitFiles(t, root, "kept.go", "skipped.go")
		gitOut(t, root, "", "update-index", "--skip-worktree", "skipped.go")
		write(t, filepath.Join(root, "new.go"), "new")
		gitOut(t, root, "", "add", "-N", "new.go")
		return root
	}},
	{"sha256 repository", func(t testing.TB, root string) string {
		gitOut(t, root, "", "init", "-q", "--object-format=sha256")
		commitFiles(t, root, "x/a.go", "x/b.go", "y.go")
		return root
	}},
	{"submodule entry", func(t testing.TB, root string) string {
		gitOut(t, root, "", "init", "-q")
		commitFiles(t, root, "main.go")
		gitOut(t, root, "", "update-index", "--add", "--cacheinfo", "160000,"+strings.Repeat("1", 40)+",vendor/sub")
		return root
	}},
	{"names longer than 4095 bytes", func(t testing.TB, root string) string {
		gitOut(t, root, "", "init", "-q")
		long := strings.Repeat(strings.Repeat("d", 200)+"/", 25) + "file.go" // 5,032 bytes
		addPaths(t, root, "a.go", strings.Repeat("e", 4095), long, long+"x", "z.go")
		return root
	}},
	{"non-ASCII and odd bytes", func(t testing.TB, root string) string {
		gitOut(t, root, "", "init", "-q")
		addPaths(t, root, "ünï/cödé.go", "tab\there", "new\nline", `back\slash`, `"quoted"`, "bad\xff\xfeutf8", "emoji 🧪.go", "#hash", " lead")
		return root
	}},
	{"merge conflict", func(t testing.TB, root string) string {
		gitOut(t, root, "", "init", "-q", "-b", "main")
		commitFiles(t, root, "a.go", "f.go", "z.go")
		gitOut(t, root, "", "checkout", "-qb", "other")
		write(t, filepath.Join(root, "f.go"), "theirs")
		gitOut(t, root, "", "commit", "-qam", "theirs")
		gitOut(t, root, "", "checkout", "-q", "main")
		write(t, filepath.Join(root, "f.go"), "ours")
		gitOut(t, root, "", "commit", "-qam", "ours")
		cmd := exec.Command("git", "-C", root, "merge", "other")
		cmd.Env = gitEnv
		if err := cmd.Run(); err == nil {
			t.Fatal("the merge did not conflict")
		}
		if s := gitOut(t, root, "", "ls-files", "-s", "f.go"); bytes.Count(s, []byte("\n")) != 3 {
			t.Fatalf("f.go does not have stages 1 to 3:\n%s", s)
		}
		return root
	}},
	{"linked worktree", func(t testing.TB, root string) string {
		main := filepath.Join(root, "main")
		gitOut(t, root, "", "init", "-q", "main")
		commitFiles(t, main, "a.go", "b/c.go")
		gitOut(t, main, "", "worktree", "add", "-q", "../wt")
		write(t, filepath.Join(root, "wt", "only-here.go"), "x")
		gitOut(t, filepath.Join(root, "wt"), "", "add", "only-here.go")
		return filepath.Join(root, "wt", "b")
	}},
	{"sha256 linked worktree", func(t testing.TB, root string) string {
		main := filepath.Join(root, "main")
		gitOut(t, root, "", "init", "-q", "--object-format=sha256", "main")
		commitFiles(t, main, "a.go")
		gitOut(t, main, "", "worktree", "add", "-q", "../wt")
		return filepath.Join(root, "wt")
	}},
	{"through a symbolic link", func(t testing.TB, root string) string {
		repo := filepath.Join(root, "repo")
		gitOut(t, root, "", "init", "-q", "repo")
		commitFiles(t, repo, "a/b.go", "c.go")
		link := filepath.Join(root, "elsewhere", "link")
		if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(repo, "a"), link); err != nil {
			t.Fatal(err)
		}
		return link
	}},
	{"inside a submodule", func(t testing.TB, root string) string {
		sub := filepath.Join(root, "sub")
		gitOut(t, root, "", "init", "-q", "sub")
		commitFiles(t, sub, "lib.go", "inner/x.go")
		super := filepath.Join(root, "super")
		gitOut(t, root, "", "init", "-q", "super")
		commitFiles(t, super, "main.go")
		gitOut(t, super, "", "-c", "protocol.file.allow=always", "submodule", "add", "-q", sub, "deps/sub")
		return filepath.Join(super, "deps", "sub", "inner")
	}},
}

// TestIndexFiles: in every kind of repository and at every index version,
// reading the index lists exactly what git ls-files lists, and so does
// TrackedFiles with git.
func TestIndexFiles(t *testing.T) {
	for _, r := range indexRepos {
		t.Run(r.name, func(t *testing.T) {
			dir := r.setup(t, t.TempDir())
			for _, version := range []string{"as written", "2", "3", "4"} {
				if version != "as written" {
					if r.name == "empty repository" {
						continue // no index to rewrite
					}
					gitOut(t, dir, "", "update-index", "--index-version", version)
				}
				want := lsFiles(t, dir)
				got, err := indexFiles(dir, nil)
				if err != nil {
					t.Fatalf("index version %s: %v", version, err)
				}
				if d := cmp.Diff(want, got); d != "" {
					t.Errorf("index version %s: indexFiles differs from git ls-files (-git +zof):\n%s", version, d)
				}
				withGit, err := TrackedFiles(context.Background(), dir, gitEnv)
				if err != nil {
					t.Fatal(err)
				}
				if d := cmp.Diff(want, withGit); d != "" {
					t.Errorf("index version %s: TrackedFiles differs from git ls-files --deduplicate (-git +zof):\n%s", version, d)
				}
			}
		})
	}
}

// TestTrackedFilesWithoutGit: with no git on PATH, TrackedFiles reads the
// index; outside a checkout it still says so.
func TestTrackedFilesWithoutGit(t *testing.T) {
	root := t.TempDir()
	gitOut(t, root, "", "init", "-q")
	commitFiles(t, root, "a/one.go", "two.go")
	t.Setenv("PATH", t.TempDir())
	got, err := TrackedFiles(context.Background(), filepath.Join(root, "a"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"a/one.go", "two.go"}, got); d != "" {
		t.Errorf("TrackedFiles (-want +got):\n%s", d)
	}

	outside := t.TempDir()
	_, err = TrackedFiles(context.Background(), outside, []string{"GIT_CEILING_DIRECTORIES=" + filepath.Dir(outside)})
	if !errors.Is(err, ErrNotCheckout) || !strings.Contains(err.Error(), "run zof coverage inside the repository") {
		t.Fatalf("outside a checkout: err = %v, want ErrNotCheckout with its hint", err)
	}

	if err := os.WriteFile(filepath.Join(root, ".git", "index"), []byte("DIRC"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = TrackedFiles(context.Background(), root, nil)
	if err == nil || !strings.HasPrefix(err.Error(), "git is not installed and zof cannot list the git index exactly: ") || !strings.HasSuffix(err.Error(), noGitHint) {
		t.Fatalf("a truncated index: err = %v", err)
	}
}

// TestIndexSkipHash: an index whose checksum is all zero (index.skipHash,
// git 2.40 and later, on with feature.manyFiles) is read like any other; git
// reads it too.
func TestIndexSkipHash(t *testing.T) {
	dir := t.TempDir()
	gitOut(t, dir, "", "init", "-q")
	commitFiles(t, dir, "a.go", "b/c.go")
	want := lsFiles(t, dir)
	path := filepath.Join(dir, ".git", "index")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	copy(b[len(b)-hashBytesSHA1:], make([]byte, hashBytesSHA1))
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, lsFiles(t, dir)); d != "" {
		t.Fatalf("git lists the zero-checksum index differently (-before +after):\n%s", d)
	}
	got, err := indexFiles(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("indexFiles (-git +zof):\n%s", d)
	}
}

// TestIndexFilesNoWorkTree: in a bare repository, or inside .git, git has no
// work tree and lists nothing; neither does the index reader, nor does it
// list an enclosing checkout.
func TestIndexFilesNoWorkTree(t *testing.T) {
	outer := t.TempDir()
	gitOut(t, outer, "", "init", "-q")
	commitFiles(t, outer, "a.go")
	gitOut(t, outer, "", "init", "-q", "--bare", "inner.git")
	for _, dir := range []string{filepath.Join(outer, "inner.git"), filepath.Join(outer, ".git"), filepath.Join(outer, ".git", "refs")} {
		if _, err := TrackedFiles(context.Background(), dir, gitEnv); !errors.Is(err, ErrNotCheckout) {
			t.Errorf("%s: with git: err = %v, want ErrNotCheckout", dir, err)
		}
		if files, err := indexFiles(dir, nil); !errors.Is(err, ErrNotCheckout) {
			t.Errorf("%s: without git: %q, %v; want ErrNotCheckout", dir, files, err)
		}
	}
}

// rewrite edits a copy of an index and gives it a valid checksum again.
func rewrite(index []byte, hashSize int, edit func(body []byte) []byte) []byte {
	body := edit(bytes.Clone(index[:len(index)-hashSize]))
	return append(body, checksum(body, hashSize)...)
}

// TestIndexRefused: what the reader cannot list exactly is refused with a
// hint, never listed wrongly.
func TestIndexRefused(t *testing.T) {
	repo := func(t *testing.T) string {
		dir := t.TempDir()
		gitOut(t, dir, "", "init", "-q")
		commitFiles(t, dir, "a.go", "in/b.go", "out/c.go")
		return dir
	}
	indexOf := func(t *testing.T, dir string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, ".git", "index"))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	setIndex := func(t *testing.T, dir string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, ".git", "index"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string)
		env   []string
		want  string
	}{
		{"split index", func(t *testing.T, dir string) {
			gitOut(t, dir, "", "update-index", "--split-index")
		}, nil, "is a split index (core.splitIndex: its link extension names a shared index): run git update-index --no-split-index in the checkout"},
		{"sparse index", func(t *testing.T, dir string) {
			gitOut(t, dir, "", "sparse-checkout", "set", "--cone", "--sparse-index", "in")
			if !bytes.Contains(indexOf(t, dir), []byte("out/\x00")) {
				t.Fatal("git wrote no sparse directory entry")
			}
		}, nil, "is a sparse index (index.sparse: directory entries stand for their files): run git sparse-checkout reapply --no-sparse-index in the checkout"},
		{"unknown version", func(t *testing.T, dir string) {
			setIndex(t, dir, rewrite(indexOf(t, dir), hashBytesSHA1, func(b []byte) []byte {
				binary.BigEndian.PutUint32(b[4:], 5)
				return b
			}))
		}, nil, "has version 5, which zof does not read (2 to 4)"},
		{"truncated", func(t *testing.T, dir string) {
			b := indexOf(t, dir)
			setIndex(t, dir, b[:len(b)-1])
		}, nil, "is truncated or corrupt (the checksum does not match): remove it and run git reset"},
		{"truncated with a valid checksum", func(t *testing.T, dir string) {
			setIndex(t, dir, rewrite(indexOf(t, dir), hashBytesSHA1, func(b []byte) []byte { return b[:100] }))
		}, nil, "is truncated or corrupt (3 entries cannot fit in 100 bytes)"},
		{"a flipped byte", func(t *testing.T, dir string) {
			b := indexOf(t, dir)
			b[70] ^= 1
			setIndex(t, dir, b)
		}, nil, "is truncated or corrupt (the checksum does not match)"},
		{"entries out of order", func(t *testing.T, dir string) {
			setIndex(t, dir, rewrite(indexOf(t, dir), hashBytesSHA1, func(b []byte) []byte {
				i := bytes.Index(b, []byte("in/b.go"))
				copy(b[i:], "zz")
				return b
			}))
		}, nil, `entry 2 ("out/c.go") is out of order`},
		{"unknown required extension", func(t *testing.T, dir string) {
			setIndex(t, dir, rewrite(indexOf(t, dir), hashBytesSHA1, func(b []byte) []byte {
				return append(b, "abcd\x00\x00\x00\x00"...)
			}))
		}, nil, `has a required extension zof does not know ("abcd")`},
		{"GIT_DIR set", func(t *testing.T, dir string) {}, []string{"GIT_DIR=/elsewhere"}, "GIT_DIR is set and only git itself follows it"},
		{"bad gitdir file", func(t *testing.T, dir string) {
			sub := filepath.Join(dir, "in")
			write(t, filepath.Join(sub, ".git"), "gitdir: ../nowhere\n")
		}, nil, "in/.git points to"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := repo(t)
			tc.setup(t, dir)
			files, err := indexFiles(filepath.Join(dir, "in"), tc.env)
			if err == nil {
				t.Fatalf("listed %q, want an error", files)
			}
			if !errors.Is(err, ErrIndexUnreadable) || !strings.Contains(err.Error(), tc.want) || !strings.HasSuffix(err.Error(), noGitHint) {
				t.Errorf("err = %v\nwant ErrIndexUnreadable saying %q and ending with the hint", err, tc.want)
			}
		})
	}
}

// TestIndexNamesBounded: a version 4 index whose prefix-compressed names
// expand beyond the bound is refused before they are all held; within it, it
// lists.
func TestIndexNamesBounded(t *testing.T) {
	dir := t.TempDir()
	gitOut(t, dir, "", "init", "-q")
	long := strings.Repeat("d", 100)
	var paths []string
	for i := range 50 {
		paths = append(paths, long+"/"+string(rune('a'+i%26))+strings.Repeat("x", i/26))
	}
	addPaths(t, dir, paths...)
	gitOut(t, dir, "", "update-index", "--index-version", "4")
	b, err := os.ReadFile(filepath.Join(dir, ".git", "index"))
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, p := range paths {
		total += len(p)
	}
	if len(b) >= total {
		t.Fatalf("the index (%d bytes) does not compress its %d bytes of names", len(b), total)
	}
	if _, err := parseIndexBounded(b, hashBytesSHA1, total-1); err == nil || !strings.Contains(err.Error(), "expands to more than") {
		t.Errorf("bound %d: err = %v, want a refusal", total-1, err)
	}
	if files, err := parseIndexBounded(b, hashBytesSHA1, total); err != nil || len(files) != len(paths) {
		t.Errorf("bound %d: %d files, %v; want %d", total, len(files), err, len(paths))
	}
}

func TestDecodeVarint(t *testing.T) {
	for _, tc := range []struct {
		in   []byte
		want uint64
		n    int
	}{
		{[]byte{0}, 0, 1},
		{[]byte{0x7f}, 127, 1},
		{[]byte{0x80, 0x00}, 128, 2}, // git's offset encoding: 0x80 0x00 is 128, not 0
		{[]byte{0x80, 0x7f}, 255, 2},
		{[]byte{0x81, 0x00, 0xff}, 256, 2},
		{[]byte{0x80}, 0, 0}, // truncated
		{nil, 0, 0},
		{bytes.Repeat([]byte{0xff}, 12), 0, 0}, // overflows
	} {
		got, n := decodeVarint(tc.in)
		if got != tc.want || n != tc.n {
			t.Errorf("decodeVarint(%x) = %d, %d; want %d, %d", tc.in, got, n, tc.want, tc.n)
		}
	}
}

// FuzzGitIndex: any bytes, read as an index of either hash size, never panic
// and never loop; a list is returned only for an index git lists the same
// (git ls-files on a repository holding those bytes as its index). Each input
// is tried as is and with its checksum made valid, so the fuzzer gets past it.
func FuzzGitIndex(f *testing.F) {
	for _, r := range indexRepos {
		dir := r.setup(f, f.TempDir())
		for _, v := range []string{"2", "3", "4"} {
			if r.name != "empty repository" {
				gitOut(f, dir, "", "update-index", "--index-version", v)
			}
			gitDir := strings.TrimSpace(string(gitOut(f, dir, "", "rev-parse", "--absolute-git-dir")))
			b, err := os.ReadFile(filepath.Join(gitDir, "index"))
			if err != nil {
				continue // the empty repository has none
			}
			f.Add(b, strings.HasPrefix(r.name, "sha256"))
		}
	}
	f.Add([]byte("DIRC\x00\x00\x00\x02\x00\x00\x00\x00"), false)
	f.Add([]byte{}, true)
	// A repository of each hash size, whose index the fuzzer replaces.
	repos := map[bool]string{}
	for _, sha256 := range []bool{false, true} {
		dir := f.TempDir()
		gitOut(f, dir, "", "init", "-q", "--object-format="+map[bool]string{false: "sha1", true: "sha256"}[sha256])
		repos[sha256] = dir
	}
	f.Fuzz(func(t *testing.T, data []byte, sha256 bool) {
		hashSize := map[bool]int{false: hashBytesSHA1, true: hashBytesSHA256}[sha256]
		inputs := [][]byte{data}
		if len(data) >= hashSize {
			inputs = append(inputs, rewrite(data, hashSize, func(b []byte) []byte { return b }))
		}
		for _, in := range inputs {
			files, err := parseIndex(in, hashSize)
			if err != nil {
				continue
			}
			dir := repos[sha256]
			if err := os.WriteFile(filepath.Join(dir, ".git", "index"), in, 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("git", "-C", dir, "ls-files", "-z", "--full-name", "--deduplicate")
			cmd.Env = gitEnv
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("zof listed %q from an index git refuses (%v)", files, err)
			}
			var want []string
			for _, f := range bytes.Split(out, []byte{0}) {
				if len(f) > 0 {
					want = append(want, string(f))
				}
			}
			if d := cmp.Diff(want, files); d != "" {
				t.Fatalf("zof's list differs from git's (-git +zof):\n%s", d)
			}
		}
	})
}

// BenchmarkIndexFiles compares reading the index (the git-less image's way)
// with git rev-parse + ls-files (TrackedFiles with git) on this repository
// and on generated indexes of N files (docs/benchmarks.md, "zof coverage").
func BenchmarkIndexFiles(b *testing.B) {
	_, file, _, _ := runtime.Caller(0)
	repos := []struct{ name, dir string }{{"this-repository", filepath.Dir(file)}}
	for _, n := range []int{10_000, 100_000} {
		dir := b.TempDir()
		coveragetest.FakeRepo(b, dir, n)
		repos = append(repos, struct{ name, dir string }{fmt.Sprintf("files=%d", n), dir})
	}
	for _, r := range repos {
		want := lsFiles(b, r.dir)
		for _, way := range []struct {
			name string
			list func() ([]string, error)
		}{
			{"index", func() ([]string, error) { return indexFiles(r.dir, nil) }},
			{"git", func() ([]string, error) { return TrackedFiles(context.Background(), r.dir, nil) }},
		} {
			b.Run(r.name+"/"+way.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					files, err := way.list()
					if err != nil || len(files) != len(want) {
						b.Fatalf("%d files, %v; want %d", len(files), err, len(want))
					}
				}
			})
		}
	}
}
