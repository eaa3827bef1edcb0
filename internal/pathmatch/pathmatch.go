// Package pathmatch checks and matches the repository path patterns of a suite (covers, global, ignore).
package pathmatch

import (
	"errors"
	"fmt"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
)

// ErrInvalid is wrapped by every error Check and Parse return, so callers can
// tell a bad pattern from other failures with errors.Is.
var ErrInvalid = errors.New("invalid path pattern")

// metaChars are the bytes doublestar gives a meaning to. Backslash is not in
// the list because Check rejects it (paths here are always /-separated).
const metaChars = "*?[{"

// MaxAlternatives bounds the "{a,b}" groups in one pattern: doublestar tries
// alternatives by backtracking, so matching time grows as 2^groups (15 groups
// already take ~10ms per path, on every changed file).
const MaxAlternatives = 8

// Check validates one pattern as written in a suite file (with an optional
// leading "!"). err is set when the pattern cannot be used at all; warning is
// set (err nil) when the pattern is valid but will not match what a person
// most likely means, and says what to write instead.
func Check(pattern string) (warning string, err error) {
	glob := pattern
	if strings.HasPrefix(glob, "!") {
		glob = glob[1:]
		if glob == "" {
			return "", invalid(pattern, "a bare \"!\" excludes nothing; write the path to exclude after it, e.g. \"!docs/**\"")
		}
	}
	if err := checkErrors(pattern, glob); err != nil {
		return "", err
	}
	return strings.Join(warnings(pattern, glob), "; "), nil
}

func invalid(pattern, why string) error {
	return fmt.Errorf("%w %q: %s", ErrInvalid, pattern, why)
}

func checkErrors(pattern, glob string) error {
	if strings.TrimSpace(glob) == "" {
		return invalid(pattern, "empty pattern; write a repository-relative path such as \"services/auth/**\"")
	}
	if strings.HasPrefix(glob, "/") {
		return invalid(pattern, fmt.Sprintf("absolute path; paths are relative to the repository root, e.g. %q", strings.TrimLeft(glob, "/")))
	}
	if len(glob) >= 2 && glob[1] == ':' && isASCIILetter(glob[0]) {
		return invalid(pattern, "absolute Windows path; paths are relative to the repository root and use / as separator")
	}
	if strings.Contains(glob, `\`) {
		return invalid(pattern, fmt.Sprintf("backslash in pattern; use / as separator (%q), and [*] to match a literal meta character", strings.ReplaceAll(glob, `\`, "/")))
	}
	for _, seg := range strings.Split(glob, "/") {
		if seg == ".." {
			return invalid(pattern, "\"..\" segment; a pattern cannot leave the repository, write the path from the repository root")
		}
	}
	if !doublestar.ValidatePattern(glob) {
		return invalid(pattern, "invalid glob syntax (unclosed [ or {, or an empty [] class)")
	}
	if n := strings.Count(glob, "{"); n > MaxAlternatives {
		return invalid(pattern, fmt.Sprintf("%d {a,b} groups, at most %d are allowed (matching cost doubles with each); split it into several patterns", n, MaxAlternatives))
	}
	return nil
}

func isASCIILetter(b byte) bool { return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' }

// warnings lists why a valid pattern probably does not say what its author
// means. Each entry carries a suggestion.
func warnings(pattern, glob string) []string {
	neg := strings.TrimSuffix(pattern, glob) // "!" or ""
	var out []string
	if strings.TrimSpace(glob) != glob {
		out = append(out, fmt.Sprintf("leading or trailing space is part of the path; did you mean %q?", neg+strings.TrimSpace(glob)))
		glob = strings.TrimSpace(glob)
	}
	if strings.HasPrefix(glob, "./") {
		fixed := strings.TrimLeft(strings.TrimPrefix(glob, "./"), "/")
		if fixed == "" {
			fixed = "**"
		}
		out = append(out, fmt.Sprintf("a leading ./ never matches (changed paths have no ./ prefix); did you mean %q?", neg+fixed))
		glob = fixed
	}
	if strings.HasSuffix(glob, "/") {
		fixed := strings.TrimRight(glob, "/")
		if !strings.HasSuffix(fixed, "/**") && fixed != "**" {
			fixed += "/**"
		}
		out = append(out, fmt.Sprintf("a trailing / never matches a file; did you mean %q?", neg+fixed))
		glob = fixed
	}
	segs := strings.Split(glob, "/")
	var emptySeg, dotSeg, badStar bool
	for i, seg := range segs {
		switch {
		case seg == "":
			emptySeg = true
		case seg == ".":
			dotSeg = true
		case strings.Contains(seg, "**") && seg != "**":
			badStar = true
			segs[i] = fixDoubleStar(seg)
		}
	}
	if emptySeg || dotSeg {
		var keep []string
		for _, s := range strings.Split(glob, "/") {
			if s != "" && s != "." {
				keep = append(keep, s)
			}
		}
		out = append(out, fmt.Sprintf("empty or \".\" path segment never matches; did you mean %q?", neg+strings.Join(keep, "/")))
	}
	if badStar {
		out = append(out, fmt.Sprintf("`**` only spans whole directories here (as a segment of its own, like a/**/b); did you mean %q?", neg+strings.Join(segs, "/")))
	}
	return out
}

// fixDoubleStar rewrites a segment that uses ** inside it ("**.js",
// "foo**", "a**b") into what its author most likely meant.
func fixDoubleStar(seg string) string {
	for strings.Contains(seg, "***") {
		seg = strings.ReplaceAll(seg, "***", "**")
	}
	switch {
	case strings.HasPrefix(seg, "**"):
		return "**/*" + strings.ReplaceAll(seg[2:], "**", "*")
	case strings.HasSuffix(seg, "**"):
		return strings.ReplaceAll(seg[:len(seg)-2], "**", "*") + "*/**"
	default:
		i := strings.Index(seg, "**")
		return seg[:i] + "*/**/*" + strings.ReplaceAll(seg[i+2:], "**", "*")
	}
}

// kind selects a matcher that gives the same answer as doublestar for the
// common shapes of pattern without running the general glob matcher.
type kind uint8

const (
	kindGlob    kind = iota // anything else: doublestar
	kindLiteral             // "go.mod": equality
	kindTree                // "a/b/**" or "**": the directory and everything below it
	kindSuffix              // "a/**/*.go" or "**/*.go": below the prefix, name ends with Suffix
)

// Pattern is one compiled pattern.
type Pattern struct {
	// Raw is the pattern as written, with its "!" if any.
	Raw string
	// Glob is the pattern without the leading "!".
	Glob string
	// Negate is true for an exclusion ("!x").
	Negate bool
	// Prefix is the literal directory part: every path the pattern matches is
	// Prefix itself or lies below Prefix+"/". It is "" when the pattern starts
	// with a meta character (any path can match), and the whole pattern when
	// the pattern has no meta character at all. Callers index patterns by it.
	Prefix string

	kind   kind
	suffix string
}

// Parse compiles one pattern. Only errors of Check fail; warnings do not.
func Parse(pattern string) (Pattern, error) {
	if _, err := Check(pattern); err != nil {
		return Pattern{}, err
	}
	p := Pattern{Raw: pattern, Glob: pattern}
	if strings.HasPrefix(pattern, "!") {
		p.Negate = true
		p.Glob = pattern[1:]
	}
	p.Prefix = literalPrefix(p.Glob)
	switch {
	case p.Prefix == p.Glob:
		p.kind = kindLiteral
	case p.Glob == "**" || p.Glob == p.Prefix+"/**":
		p.kind = kindTree
	default:
		rest := strings.TrimPrefix(p.Glob, p.Prefix)
		if p.Prefix != "" {
			rest = strings.TrimPrefix(rest, "/")
		}
		if sfx, ok := strings.CutPrefix(rest, "**/*"); ok && sfx != "" && !strings.ContainsAny(sfx, metaChars+"/") {
			p.kind = kindSuffix
			p.suffix = sfx
		}
	}
	return p, nil
}

// literalPrefix is the run of whole leading segments without meta characters.
func literalPrefix(glob string) string {
	i := strings.IndexAny(glob, metaChars)
	if i < 0 {
		return glob
	}
	j := strings.LastIndexByte(glob[:i], '/')
	if j < 0 {
		return ""
	}
	return glob[:j]
}

// UnderPrefix reports whether path is Prefix or below it: a necessary
// condition for Match.
func (p *Pattern) UnderPrefix(path string) bool {
	return underPrefix(p.Prefix, path)
}

func underPrefix(prefix, path string) bool {
	if prefix == "" {
		return true
	}
	return len(path) >= len(prefix) && path[:len(prefix)] == prefix &&
		(len(path) == len(prefix) || path[len(prefix)] == '/')
}

// Match reports whether path matches the pattern's glob, ignoring Negate.
func (p *Pattern) Match(path string) bool {
	switch p.kind {
	case kindLiteral:
		return path == p.Glob
	case kindTree:
		return underPrefix(p.Prefix, path)
	case kindSuffix:
		rest := path
		if p.Prefix != "" {
			if len(path) <= len(p.Prefix) || !underPrefix(p.Prefix, path) {
				return false
			}
			rest = path[len(p.Prefix)+1:]
		}
		return strings.HasSuffix(rest, p.suffix)
	}
	if !underPrefix(p.Prefix, path) {
		return false
	}
	return doublestar.MatchUnvalidated(p.Glob, path)
}

// Set is an ordered list of patterns in which the last matching one wins.
type Set struct {
	patterns []Pattern
}

// Compile parses patterns in order. The first invalid pattern is an error
// naming its position.
func Compile(patterns []string) (*Set, error) {
	s := &Set{patterns: make([]Pattern, 0, len(patterns))}
	for i, raw := range patterns {
		p, err := Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("pattern %d: %w", i+1, err)
		}
		s.patterns = append(s.patterns, p)
	}
	return s, nil
}

// Patterns returns the compiled patterns in order. The slice is shared: do not modify it.
func (s *Set) Patterns() []Pattern { return s.patterns }

// Len is the number of patterns.
func (s *Set) Len() int { return len(s.patterns) }

// Match reports whether path is selected by the set: the last pattern that
// matches decides, and a "!" pattern excludes. pattern is the winning
// (positive) pattern as written, "" when not matched.
func (s *Set) Match(path string) (matched bool, pattern string) {
	if s == nil {
		return false, ""
	}
	for i := len(s.patterns) - 1; i >= 0; i-- {
		p := &s.patterns[i]
		if p.Match(path) {
			if p.Negate {
				return false, ""
			}
			return true, p.Raw
		}
	}
	return false, ""
}
