package pathmatch

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/google/go-cmp/cmp"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		pattern string
		err     string // substring; "" = no error
		warning string // exact; "" = no warning
	}{
		{pattern: "services/auth/**"},
		{pattern: "go.mod"},
		{pattern: "**/*.js"},
		{pattern: "!docs/**"},
		{pattern: "{api,web}/**"},
		{pattern: "a/[bc]/*.go"},
		{pattern: "", err: "empty pattern"},
		{pattern: "   ", err: "empty pattern"},
		{pattern: "!", err: `bare "!"`},
		{pattern: "/etc/passwd", err: `absolute path; paths are relative to the repository root, e.g. "etc/passwd"`},
		{pattern: `C:\src`, err: "absolute Windows path"},
		{pattern: "C:/src", err: "absolute Windows path"},
		{pattern: "../other/**", err: `".." segment`},
		{pattern: "a/../b", err: `".." segment`},
		{pattern: "!../b", err: `".." segment`},
		{pattern: `src\main.go`, err: `use / as separator ("src/main.go")`},
		{pattern: "a/[b", err: "invalid glob syntax"},
		{pattern: "a/{b,c", err: "invalid glob syntax"},
		{pattern: "a/[]", err: "invalid glob syntax"},
		{pattern: "{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}"},
		{pattern: "{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}", err: "9 {a,b} groups, at most 8"},
		{pattern: "**.js", warning: "`**` only spans whole directories here (as a segment of its own, like a/**/b); did you mean \"**/*.js\"?"},
		{pattern: "src/**.js", warning: "`**` only spans whole directories here (as a segment of its own, like a/**/b); did you mean \"src/**/*.js\"?"},
		{pattern: "foo**", warning: "`**` only spans whole directories here (as a segment of its own, like a/**/b); did you mean \"foo*/**\"?"},
		{pattern: "a**b", warning: "`**` only spans whole directories here (as a segment of its own, like a/**/b); did you mean \"a*/**/*b\"?"},
		{pattern: "!**.md", warning: "`**` only spans whole directories here (as a segment of its own, like a/**/b); did you mean \"!**/*.md\"?"},
		{pattern: "docs/", warning: `a trailing / never matches a file; did you mean "docs/**"?`},
		{pattern: "docs/**/", warning: `a trailing / never matches a file; did you mean "docs/**"?`},
		{pattern: "./src/**", warning: `a leading ./ never matches (changed paths have no ./ prefix); did you mean "src/**"?`},
		{pattern: "a//b", warning: `empty or "." path segment never matches; did you mean "a/b"?`},
		{pattern: "a/./b", warning: `empty or "." path segment never matches; did you mean "a/b"?`},
		{pattern: " go.mod", warning: `leading or trailing space is part of the path; did you mean "go.mod"?`},
		{pattern: "./docs/", warning: `a leading ./ never matches (changed paths have no ./ prefix); did you mean "docs/"?; a trailing / never matches a file; did you mean "docs/**"?`},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			warning, err := Check(tt.pattern)
			if tt.err == "" {
				if err != nil {
					t.Fatalf("Check(%q) error = %v, want none", tt.pattern, err)
				}
			} else {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Check(%q) error = %v, want it to contain %q", tt.pattern, err, tt.err)
				}
				if !errors.Is(err, ErrInvalid) {
					t.Errorf("error %v does not wrap ErrInvalid", err)
				}
			}
			if warning != tt.warning {
				t.Errorf("Check(%q) warning:\n got %q\nwant %q", tt.pattern, warning, tt.warning)
			}
		})
	}
}

// TestSuggestionsAreClean checks that every suggested rewrite is itself a
// pattern without errors or warnings.
func TestSuggestionsAreClean(t *testing.T) {
	for _, p := range []string{"**.js", "foo**", "a**b", "docs/", "./src/**", "a//b", "x/***.go"} {
		w, _ := Check(p)
		i := strings.LastIndex(w, "did you mean \"")
		if i < 0 {
			t.Fatalf("Check(%q) warning %q has no suggestion", p, w)
		}
		s := w[i+len("did you mean \""):]
		s = s[:strings.Index(s, "\"")]
		if w2, err := Check(s); w2 != "" || err != nil {
			t.Errorf("suggestion %q for %q: warning %q, error %v", s, p, w2, err)
		}
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		pattern string
		want    Pattern
	}{
		{"go.mod", Pattern{Raw: "go.mod", Glob: "go.mod", Prefix: "go.mod", kind: kindLiteral}},
		{"a/b/c.txt", Pattern{Raw: "a/b/c.txt", Glob: "a/b/c.txt", Prefix: "a/b/c.txt", kind: kindLiteral}},
		{"**", Pattern{Raw: "**", Glob: "**", kind: kindTree}},
		{"services/auth/**", Pattern{Raw: "services/auth/**", Glob: "services/auth/**", Prefix: "services/auth", kind: kindTree}},
		{"!services/auth/**", Pattern{Raw: "!services/auth/**", Glob: "services/auth/**", Negate: true, Prefix: "services/auth", kind: kindTree}},
		{"**/*.go", Pattern{Raw: "**/*.go", Glob: "**/*.go", kind: kindSuffix, suffix: ".go"}},
		{"web/**/*.test.ts", Pattern{Raw: "web/**/*.test.ts", Glob: "web/**/*.test.ts", Prefix: "web", kind: kindSuffix, suffix: ".test.ts"}},
		{"web/*.go", Pattern{Raw: "web/*.go", Glob: "web/*.go", Prefix: "web"}},
		{"web/a*/x", Pattern{Raw: "web/a*/x", Glob: "web/a*/x", Prefix: "web"}},
		{"{a,b}/**", Pattern{Raw: "{a,b}/**", Glob: "{a,b}/**"}},
		{"**/*.{go,mod}", Pattern{Raw: "**/*.{go,mod}", Glob: "**/*.{go,mod}"}},
	}
	for _, tt := range tests {
		got, err := Parse(tt.pattern)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.pattern, err)
		}
		if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(Pattern{})); diff != "" {
			t.Errorf("Parse(%q) mismatch (-want +got):\n%s", tt.pattern, diff)
		}
	}
}

func TestPatternMatch(t *testing.T) {
	tests := []struct {
		pattern string
		path    string
		want    bool
	}{
		{"a/**", "a", true}, // a/** matches a itself
		{"a/**", "a/b/c", true},
		{"a/**", "ab", false},
		{"a/**", "ab/c", false},
		{"**", "anything/at/all", true},
		{"go.mod", "go.mod", true},
		{"go.mod", "x/go.mod", false},
		{"**/*.go", "main.go", true},
		{"**/*.go", "a/b/main.go", true},
		{"**/*.go", "a/b/main.go.txt", false},
		{"**/*.go", ".go", true},
		{"web/**/*.ts", "web/x.ts", true},
		{"web/**/*.ts", "web/a/b/x.ts", true},
		{"web/**/*.ts", "web.ts", false},
		{"web/**/*.ts", "webx/a.ts", false},
		{"web/**/*.ts", "other/web/a.ts", false},
		{"web/*.go", "web/a.go", true},
		{"web/*.go", "web/a/b.go", false},
		{"**.js", "a/b.js", false}, // why Check warns
		{"**.js", "b.js", true},
		{"{api,web}/**", "web/x", true},
		{"{api,web}/**", "cli/x", false},
		{"a/b c/**", "a/b c/d\ne", true},
		{"a/[xy]/*", "a/y/z", true},
	}
	for _, tt := range tests {
		p, err := Parse(tt.pattern)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Match(tt.path); got != tt.want {
			t.Errorf("%q.Match(%q) = %v, want %v", tt.pattern, tt.path, got, tt.want)
		}
		if want, _ := doublestar.Match(tt.pattern, tt.path); want != tt.want {
			t.Errorf("test table disagrees with doublestar for %q %q", tt.pattern, tt.path)
		}
	}
}

func TestSetMatch(t *testing.T) {
	set, err := Compile([]string{"services/**", "!services/legacy/**", "services/legacy/keep.go", "**/*.md", "!README.md"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path    string
		matched bool
		pattern string
	}{
		{"services/a/x.go", true, "services/**"},
		{"services/legacy/x.go", false, ""},
		{"services/legacy/keep.go", true, "services/legacy/keep.go"},
		{"services/legacy/doc.md", true, "**/*.md"}, // later positive wins over earlier !
		{"README.md", false, ""},
		{"docs/README.md", true, "**/*.md"},
		{"cmd/main.go", false, ""},
	}
	for _, tt := range tests {
		m, p := set.Match(tt.path)
		if m != tt.matched || p != tt.pattern {
			t.Errorf("Match(%q) = %v, %q; want %v, %q", tt.path, m, p, tt.matched, tt.pattern)
		}
	}
	if set.Len() != 5 || set.Patterns()[1].Raw != "!services/legacy/**" || !set.Patterns()[1].Negate {
		t.Errorf("Patterns() = %+v", set.Patterns())
	}
	var nilSet *Set
	if m, _ := nilSet.Match("x"); m {
		t.Error("nil set matched")
	}
}

func TestCompileError(t *testing.T) {
	_, err := Compile([]string{"ok/**", "/abs"})
	if err == nil || !strings.Contains(err.Error(), "pattern 2") || !errors.Is(err, ErrInvalid) {
		t.Fatalf("Compile error = %v", err)
	}
}

// FuzzMatch checks the fast paths against doublestar and the Prefix invariant.
func FuzzMatch(f *testing.F) {
	seeds := [][2]string{
		{"a/**", "a"}, {"a/**", "a/b"}, {"**/*.go", "x/y.go"}, {"web/**/*.ts", "web/.ts"},
		{"go.mod", "go.mod"}, {"a/*/c", "a/b/c"}, {"{a,b}/**", "b"}, {"a/b*/**/*.x", "a/bc/d.x"},
		{"**", ""}, {"a/**/*.go", "a//b.go"}, {"x/**", "x/"},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, path string) {
		p, err := Parse(pattern)
		if err != nil {
			return
		}
		got := p.Match(path)
		if got && !p.UnderPrefix(path) {
			t.Fatalf("%q matches %q outside its prefix %q", pattern, path, p.Prefix)
		}
		if !utf8.ValidString(pattern) || !utf8.ValidString(path) {
			return // doublestar compares runes; invalid bytes all decode to U+FFFD there
		}
		if want := doublestar.MatchUnvalidated(p.Glob, path); got != want {
			t.Fatalf("%q.Match(%q) = %v, doublestar says %v", pattern, path, got, want)
		}
	})
}

// FuzzCheck: the pattern checker never panics; an error is ErrInvalid and
// names the pattern; a warning comes only with a usable pattern; Parse fails
// exactly when Check does.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{"services/**", "!docs/**", "!", "", " ", "/abs", "C:/x", `a\b`, "../x", "a/[", "{a,b", "[]",
		"{a,{b,c}}/{d,e}/{f,g}/{h,i}/{j,k}/{l,m}/{n,o}/{p,q}", "**.go", "a/**b", "*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, pattern string) {
		warning, err := Check(pattern)
		if err != nil {
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), strconv.Quote(pattern)) {
				t.Fatalf("Check(%q) error %v does not wrap ErrInvalid or name the pattern", pattern, err)
			}
			if warning != "" {
				t.Fatalf("Check(%q) gave both an error and a warning", pattern)
			}
		}
		if _, perr := Parse(pattern); (perr != nil) != (err != nil) {
			t.Fatalf("Check(%q) error %v, Parse error %v", pattern, err, perr)
		}
	})
}
