package coverage

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Reading the git index without git: zof's Action image has no git, but the
// checkout actions/checkout made on the runner host has a real .git with its
// index. The format is gitformat-index, https://git-scm.com/docs/index-format;
// the constants below cite its sections.
const (
	// indexSignature opens every index ("4-byte signature: The signature is
	// { 'D', 'I', 'R', 'C' } (stands for "dircache")").
	indexSignature = "DIRC"
	// indexHeaderBytes is the signature, the version and the number of
	// entries, 32 bits each.
	indexHeaderBytes = 12
	// Supported versions ("4-byte version number: The current supported
	// versions are 2, 3 and 4").
	indexVersionMin, indexVersionMax = 2, 4
	// indexStatBytes is an entry's ctime, mtime (seconds and nanoseconds),
	// dev, ino, mode, uid, gid and file size, 32 bits each, before the object
	// name.
	indexStatBytes = 40
	// indexModeOffset is where the 32-bit mode sits among those fields.
	indexModeOffset = 24
	// indexFlagExtended marks an entry followed by 16 more flag bits ("1-bit
	// extended flag (must be zero in version 2)").
	indexFlagExtended = 0x4000
	// indexFlagStageShift and indexFlagStageMask are the "2-bit stage (during
	// merge)".
	indexFlagStageShift, indexFlagStageMask = 12, 0x3
	// indexNameMask is the "12-bit name length if the length is less than
	// 0xFFF; otherwise 0xFFF is stored in this field" (the name then ends at
	// its NUL).
	indexNameMask = 0xFFF
	// indexExtendedUnused are the extended flag bits that "must be zero" (all
	// but skip-worktree and intent-to-add).
	indexExtendedUnused = 0x9FFF
	// indexModeTypeMask and indexModeDir: an entry whose mode is a directory
	// is a sparse directory entry ("Sparse Directory Entries").
	indexModeTypeMask, indexModeDir = 0o170000, 0o040000
	// indexExtensionHeaderBytes is an extension's 4-byte signature and 32-bit
	// size ("Extensions").
	indexExtensionHeaderBytes = 8
	// The extensions that change which paths the file lists: "link" (split
	// index: most entries live in a shared index) and "sdir" (sparse index:
	// directories stand for their files).
	indexExtSplit, indexExtSparse = "link", "sdir"

	// hashBytesSHA1 and hashBytesSHA256 are the object name sizes of the two
	// object formats (gitformat-index: "hash of the object"; git-config
	// extensions.objectFormat).
	hashBytesSHA1, hashBytesSHA256 = 20, 32

	// maxIndexBytes bounds the index zof reads: about 100 bytes an entry, so
	// some five million files, far beyond the largest monorepos' checkouts.
	maxIndexBytes = 512 << 20
	// maxIndexNameBytes bounds the paths a version 4 index expands to (its
	// names are prefix-compressed: a small file could name gigabytes).
	maxIndexNameBytes = maxIndexBytes
	// maxGitFileBytes bounds a .git file, a commondir file and the config
	// zof reads beside the index: they hold a path or a few settings.
	maxGitFileBytes = 1 << 20
)

// ErrIndexUnreadable is returned by TrackedFiles, when git is not installed,
// for every index it cannot list exactly (a split or sparse index, an unknown
// version, a truncated or corrupt file): it refuses rather than list wrongly.
var ErrIndexUnreadable = errors.New("zof cannot list the git index exactly")

// noGitHint ends the errors of the index reader: what makes coverage work.
const noGitHint = "install git where zof runs"

// indexFiles lists what git ls-files -z --full-name lists, without git: it
// finds the checkout that contains dir, reads its index and returns each path
// once, in index order. Outside a checkout the error wraps ErrNotCheckout;
// anything it cannot list exactly (a split or sparse index, an unknown version,
// a truncated or corrupt file, GIT_DIR and friends in env) is refused. env's
// GIT_CEILING_DIRECTORIES is honoured as git does.
func indexFiles(dir string, env []string) ([]string, error) {
	for _, k := range []string{"GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR"} {
		if v, ok := lookupEnv(env, k); ok && v != "" {
			return nil, fmt.Errorf("%w: %s is set and only git itself follows it: %s", ErrIndexUnreadable, k, noGitHint)
		}
	}
	ceil, _ := lookupEnv(env, "GIT_CEILING_DIRECTORIES")
	gitDir, err := findGitDir(dir, filepath.SplitList(ceil))
	if err != nil {
		return nil, err
	}
	hashSize, err := objectFormat(gitDir)
	if err != nil {
		return nil, err
	}
	data, err := readBounded(filepath.Join(gitDir, "index"), maxIndexBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // a repository nothing was ever added to has no index
	}
	if err != nil {
		return nil, err
	}
	files, err := parseIndex(data, hashSize)
	if err != nil {
		return nil, fmt.Errorf("%w: %s %w, or %s", ErrIndexUnreadable, filepath.Join(gitDir, "index"), err, noGitHint)
	}
	return files, nil
}

// lookupEnv finds key in env (the last entry wins, as in os/exec).
func lookupEnv(env []string, key string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], key+"="); ok {
			return v, true
		}
	}
	return "", false
}

// findGitDir walks from dir upward, as git's discovery does, to the first
// directory holding a .git directory or a .git file ("gitdir: PATH", PATH
// relative to that directory: linked worktrees, submodules), and returns that
// git directory. It stops before a directory of ceilings, and at a git
// directory itself (a bare repository: no work tree, nothing to list).
func findGitDir(dir string, ceilings []string) (string, error) {
	// Git walks up the physical path (getcwd), not a symbolic link's parents.
	d, err := filepath.Abs(dir)
	if err == nil {
		d, err = filepath.EvalSymlinks(d)
	}
	if err != nil {
		return "", fmt.Errorf("%w (%v): run zof coverage inside the repository the suite belongs to", ErrNotCheckout, err)
	}
	stop := map[string]bool{}
	for _, c := range ceilings {
		if filepath.IsAbs(c) {
			stop[filepath.Clean(c)] = true
		}
	}
	for {
		dotGit := filepath.Join(d, ".git")
		switch fi, err := os.Stat(dotGit); {
		case err != nil:
		case fi.IsDir():
			if isGitDir(dotGit) {
				return dotGit, nil
			}
		case fi.Mode().IsRegular():
			b, err := readBounded(dotGit, maxGitFileBytes)
			if err != nil {
				return "", err
			}
			p, ok := strings.CutPrefix(string(b), "gitdir: ")
			p = strings.TrimRight(p, "\r\n")
			if !ok || p == "" || strings.ContainsAny(p, "\n\x00") {
				return "", fmt.Errorf("%w: %s is not a gitdir file (gitdir: PATH): %s", ErrIndexUnreadable, dotGit, noGitHint)
			}
			if !filepath.IsAbs(p) {
				p = filepath.Join(d, p)
			}
			if !isGitDir(p) {
				return "", fmt.Errorf("%w: %s points to %s, which is not a git directory: %s", ErrIndexUnreadable, dotGit, p, noGitHint)
			}
			return p, nil
		}
		if isGitDir(d) { // a bare repository, or inside .git: git has no work tree here
			return "", fmt.Errorf("%w (%s is a git directory, which has no work tree): run zof coverage inside the repository the suite belongs to", ErrNotCheckout, d)
		}
		parent := filepath.Dir(d)
		if parent == d || stop[parent] {
			return "", fmt.Errorf("%w (no .git from %s upward): run zof coverage inside the repository the suite belongs to", ErrNotCheckout, dir)
		}
		d = parent
	}
}

// isGitDir is git's check of a candidate git directory, in short: it has a
// HEAD, and its common directory has objects and refs.
func isGitDir(gitDir string) bool {
	if fi, err := os.Stat(filepath.Join(gitDir, "HEAD")); err != nil || !fi.Mode().IsRegular() {
		return false
	}
	common, err := commonDir(gitDir)
	if err != nil {
		return false
	}
	for _, sub := range []string{"objects", "refs"} {
		if fi, err := os.Stat(filepath.Join(common, sub)); err != nil || !fi.IsDir() {
			return false
		}
	}
	return true
}

// commonDir is the directory a linked worktree's git directory shares with
// the main one (its commondir file, relative to it), or gitDir itself.
func commonDir(gitDir string) (string, error) {
	b, err := readBounded(filepath.Join(gitDir, "commondir"), maxGitFileBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return gitDir, nil
	}
	if err != nil {
		return "", err
	}
	p := strings.TrimRight(string(b), "\r\n")
	if p == "" {
		return "", fmt.Errorf("%w: %s is empty: %s", ErrIndexUnreadable, filepath.Join(gitDir, "commondir"), noGitHint)
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(gitDir, p)
	}
	return p, nil
}

// objectFormat is the object name size of the repository: SHA-256 when its
// config (the common directory's, for a worktree) sets
// extensions.objectFormat = sha256, else SHA-1.
func objectFormat(gitDir string) (int, error) {
	common, err := commonDir(gitDir)
	if err != nil {
		return 0, err
	}
	b, err := readBounded(filepath.Join(common, "config"), maxGitFileBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return hashBytesSHA1, nil
	}
	if err != nil {
		return 0, err
	}
	switch v := strings.ToLower(configValue(b, "extensions", "objectformat")); v {
	case "", "sha1":
		return hashBytesSHA1, nil
	case "sha256":
		return hashBytesSHA256, nil
	default:
		return 0, fmt.Errorf("%w: extensions.objectFormat %q is not sha1 or sha256: %s", ErrIndexUnreadable, v, noGitHint)
	}
}

// configValue is the last value of section.key in a git config file (names
// compared without case; subsections, includes and continuation lines are
// not followed: objectFormat is a plain word in [extensions]).
func configValue(b []byte, section, key string) string {
	var in bool
	var val string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, maxGitFileBytes)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "[") {
			end := strings.IndexByte(line, ']')
			if end < 0 {
				in = false
				continue
			}
			in = strings.EqualFold(strings.TrimSpace(line[1:end]), section)
			line = strings.TrimSpace(line[end+1:]) // [section] key = value
		}
		if !in || line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		if !strings.EqualFold(strings.TrimSpace(k), key) {
			continue
		}
		if i := strings.IndexAny(v, "#;"); i >= 0 {
			v = v[:i]
		}
		val = strings.Trim(strings.TrimSpace(v), `"`)
	}
	return val
}

// readBounded reads a whole file of at most max bytes.
func readBounded(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var buf bytes.Buffer
	if fi, err := f.Stat(); err == nil && fi.Size() < max {
		buf.Grow(int(fi.Size()) + bytes.MinRead) // one allocation, not doublings
	}
	if _, err := buf.ReadFrom(io.LimitReader(f, max+1)); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	b := buf.Bytes()
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%w: %s is larger than %d MiB: %s", ErrIndexUnreadable, path, max>>20, noGitHint)
	}
	return b, nil
}

// corrupt is the error of an index that does not parse.
func corrupt(format string, args ...any) error {
	return fmt.Errorf("is truncated or corrupt (%s): remove it and run git reset in the checkout to rebuild it", fmt.Sprintf(format, args...))
}

// parseIndex lists the paths of an index file whose object names are
// hashSize bytes: each path once (a conflict's stages are one path), in
// index order, as git ls-files -z --full-name prints them. It checks more
// than git does (the trailing checksum unless it is all zero, as
// index.skipHash writes it; padding; order) and refuses what it cannot list
// exactly.
func parseIndex(data []byte, hashSize int) ([]string, error) {
	return parseIndexBounded(data, hashSize, maxIndexNameBytes)
}

// parseIndexBounded is parseIndex refusing a version 4 index whose names
// expand to more than maxNames bytes.
func parseIndexBounded(data []byte, hashSize, maxNames int) ([]string, error) {
	if len(data) < indexHeaderBytes+hashSize {
		return nil, corrupt("%d bytes, shorter than a header and a checksum", len(data))
	}
	if string(data[:4]) != indexSignature {
		return nil, corrupt("no %s signature", indexSignature)
	}
	version := binary.BigEndian.Uint32(data[4:8])
	if version < indexVersionMin || version > indexVersionMax {
		return nil, fmt.Errorf("has version %d, which zof does not read (%d to %d): run git update-index --index-version %d in the checkout", version, indexVersionMin, indexVersionMax, indexVersionMax)
	}
	body, sum := data[:len(data)-hashSize], data[len(data)-hashSize:]
	if !allZero(sum) && !bytes.Equal(sum, checksum(body, hashSize)) {
		return nil, corrupt("the checksum does not match")
	}
	count := binary.BigEndian.Uint32(data[8:12])
	fixed := indexStatBytes + hashSize + 2 // before the extended flags and the name
	if uint64(count) > uint64(len(body))/uint64(fixed) {
		return nil, corrupt("%d entries cannot fit in %d bytes", count, len(body))
	}
	files := make([]string, 0, count)
	var prev, buf []byte // the previous entry's name (v4 compresses against it), v4's next
	prevStage := 0
	names := 0 // bytes of v4's expanded names
	// The first entry that makes the list wrong; reported after the
	// extensions, since a split index's entries may have empty names.
	var bad error
	off := indexHeaderBytes
	for i := uint32(0); i < count; i++ {
		start := off
		if len(body)-off < fixed {
			return nil, corrupt("entry %d is truncated", i)
		}
		mode := binary.BigEndian.Uint32(body[off+indexModeOffset:])
		if mode&indexModeTypeMask == indexModeDir {
			return nil, sparseErr()
		}
		off += indexStatBytes + hashSize
		flags := binary.BigEndian.Uint16(body[off:])
		off += 2
		if flags&indexFlagExtended != 0 {
			if version < 3 {
				return nil, corrupt("entry %d has extended flags in a version 2 index", i)
			}
			if len(body)-off < 2 {
				return nil, corrupt("entry %d is truncated", i)
			}
			if binary.BigEndian.Uint16(body[off:])&indexExtendedUnused != 0 {
				return nil, corrupt("entry %d has unknown extended flags", i)
			}
			off += 2
		}
		stage := int(flags>>indexFlagStageShift) & indexFlagStageMask
		nameLen := int(flags & indexNameMask)
		var name []byte
		if version == 4 {
			strip, n := decodeVarint(body[off:])
			if n == 0 || strip > uint64(len(prev)) {
				return nil, corrupt("entry %d's name prefix is invalid", i)
			}
			off += n
			end := bytes.IndexByte(body[off:], 0)
			if end < 0 {
				return nil, corrupt("entry %d's name is not terminated", i)
			}
			keep := len(prev) - int(strip)
			if names += keep + end; names > maxNames {
				return nil, fmt.Errorf("expands to more than %d bytes of paths (the most zof holds without git)", maxNames)
			}
			name = append(append(buf[:0], prev[:keep]...), body[off:off+end]...)
			buf = prev // name and prev never share an array
			off += end + 1
		} else {
			end := bytes.IndexByte(body[off:], 0)
			if end < 0 {
				return nil, corrupt("entry %d's name is not terminated", i)
			}
			name = body[off : off+end]
			// (stat + hash + flags + name + 1 to 8 NULs) is a multiple of 8.
			size := (off - start + end + 8) &^ 7
			if start+size > len(body) || !allZero(body[off+end:start+size]) {
				return nil, corrupt("entry %d's padding is invalid", i)
			}
			off = start + size
		}
		if nameLen < indexNameMask && len(name) != nameLen || nameLen == indexNameMask && len(name) < indexNameMask {
			return nil, corrupt("entry %d's name is %d bytes, its flags say %d", i, len(name), nameLen)
		}
		c := bytes.Compare(prev, name)
		switch {
		case bad != nil:
		case len(name) == 0:
			bad = corrupt("entry %d has an empty name", i)
		case name[len(name)-1] == '/':
			bad = sparseErr()
		case i > 0 && (c > 0 || c == 0 && (prevStage == 0 || stage <= prevStage)):
			bad = corrupt("entry %d (%q) is out of order", i, name)
		case i == 0 || c < 0: // a conflict's later stages are the same path
			files = append(files, string(name))
		}
		prev, prevStage = name, stage
	}
	if err := checkExtensions(body[off:]); err != nil {
		return nil, err
	}
	if bad != nil {
		return nil, bad
	}
	if len(files) == 0 {
		return nil, nil // as TrackedFiles with git: no files is nil
	}
	return files, nil
}

// checkExtensions walks the extensions after the entries: a split or sparse
// index is refused, as is a required extension zof does not know (git refuses
// a lowercase signature it does not know; an uppercase one is optional).
func checkExtensions(ext []byte) error {
	for len(ext) > 0 {
		if len(ext) < indexExtensionHeaderBytes {
			return corrupt("%d stray bytes after the entries", len(ext))
		}
		sig := string(ext[:4])
		size := binary.BigEndian.Uint32(ext[4:8])
		if uint64(size) > uint64(len(ext)-indexExtensionHeaderBytes) {
			return corrupt("extension %q is truncated", sig)
		}
		switch {
		case sig == indexExtSplit:
			return errors.New("is a split index (core.splitIndex: its link extension names a shared index): run git update-index --no-split-index in the checkout")
		case sig == indexExtSparse:
			return sparseErr()
		case sig[0] < 'A' || sig[0] > 'Z':
			return fmt.Errorf("has a required extension zof does not know (%q): run git update-index --index-version %d in the checkout to rewrite it", sig, indexVersionMax)
		}
		ext = ext[indexExtensionHeaderBytes+int(size):]
	}
	return nil
}

func sparseErr() error {
	return errors.New("is a sparse index (index.sparse: directory entries stand for their files): run git sparse-checkout reapply --no-sparse-index in the checkout")
}

// decodeVarint is git's offset varint (varint.c, used by index version 4):
// each continuation adds one before shifting, so every value has one
// encoding. It returns the value and the bytes read, 0 when b ends first or
// the value overflows.
func decodeVarint(b []byte) (uint64, int) {
	if len(b) == 0 {
		return 0, 0
	}
	c := b[0]
	val := uint64(c & 0x7f)
	n := 1
	for c&0x80 != 0 {
		val++
		if val == 0 || val>>(64-7) != 0 {
			return 0, 0
		}
		if n == len(b) {
			return 0, 0
		}
		c = b[n]
		n++
		val = val<<7 + uint64(c&0x7f)
	}
	return val, n
}

func checksum(b []byte, hashSize int) []byte {
	if hashSize == hashBytesSHA256 {
		s := sha256.Sum256(b)
		return s[:]
	}
	s := sha1.Sum(b)
	return s[:]
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
