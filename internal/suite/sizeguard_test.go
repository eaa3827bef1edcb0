package suite

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

// laughs defines anchors x-l0 … x-l<levels-1> in x- keys, each a list of ten
// aliases to the one before: x-lK expands to about 11^(K+1) values.
func laughs(levels int) string {
	var b strings.Builder
	b.WriteString("x-l0: &l0 [a, a, a, a, a, a, a, a, a, a]\n")
	for k := 1; k < levels; k++ {
		fmt.Fprintf(&b, "x-l%d: &l%d [%s]\n", k, k, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*l%d, ", k-1), 10), ", "))
	}
	return b.String()
}

// nested is a flow list nested n deep around inner.
func nested(n int, inner string) string {
	return strings.Repeat("[", n) + inner + strings.Repeat("]", n)
}

// wholeWalk is the reference the size guard must agree with: checkSize over
// the whole tree before any decoding, the way every file was checked before
// the guard moved into the decoder's pass. nil: the file is within limits.
func wholeWalk(t testing.TB, src []byte) []Problem {
	d := &decoder{file: "f.yaml", src: src}
	root := d.parseTree(src)
	if root == nil {
		t.Fatalf("the YAML does not parse: %v", d.probs)
	}
	if d.checkSize(root) {
		return nil
	}
	return d.probs
}

// sizeProblem reports whether p is one of the size guard's refusals.
func sizeProblem(p Problem) bool {
	return strings.HasPrefix(p.Message, "suite file expands to more than ") ||
		strings.HasPrefix(p.Message, "suite file is nested more than ") ||
		strings.HasSuffix(p.Message, " refers to the value that contains it")
}

// TestSizeGuard covers the places where counting during the decoder's pass
// could miss what the walk over the whole tree finds: values the decoder
// skips (x- keys, unknown fields, a second cases key), a case item after
// others that have problems, depth reached through an alias, an alias inside
// its own anchor in a case. Each file must be refused with exactly the one
// problem the whole walk reports, and nothing the decoder found before.
func TestSizeGuard(t *testing.T) {
	const ok = "cases:\n  - id: a\n    steps: [{run: x}]\n"
	bomb := "[" + strings.TrimSuffix(strings.Repeat("*l4, ", 10), ", ") + "]" // 10 × 11^5 values
	tests := []struct{ name, src, want string }{
		{
			name: "bomb in an x- key after the cases",
			src:  "version: 1\n" + ok + laughs(7),
			want: "f.yaml:10:47: suite file expands to more than 1000000 YAML values",
		},
		{
			name: "bomb in an unknown field of a case the decoder skips",
			src:  "version: 1\n" + laughs(5) + ok + "    junk: " + bomb + "\n",
			want: "f.yaml:10:47: suite file expands to more than 1000000 YAML values",
		},
		{
			name: "bomb in the last case, after cases with problems",
			src: "version: 1\n" + laughs(5) + "cases:\n  - {id: A, steps: [{run: x}]}\n  - {id: b, stpes: []}\n  - {id: c, steps: [{run: x}], timeout: 5}\n" +
				"  - {id: d, steps: [{run: x}], name: " + bomb + "}\n",
			want: "f.yaml:11:74: suite file expands to more than 1000000 YAML values",
		},
		{
			name: "bomb in a second cases key",
			src:  "version: 1\n" + laughs(5) + ok + "cases: " + bomb + "\n",
			want: "f.yaml:10:44: suite file expands to more than 1000000 YAML values",
		},
		{
			name: "bomb in the top level's merge key",
			src:  "version: 1\n" + laughs(5) + "<<: {x-b: " + bomb + "}\n" + ok,
			want: "f.yaml:7:47: suite file expands to more than 1000000 YAML values",
		},
		{
			name: "depth reached through an alias in a case",
			src:  "version: 1\nx-d: &d " + nested(60, "x") + "\ncases:\n  - id: a\n    steps: [{http: {path: /, json: " + nested(45, "*d") + "}}]\n",
			want: "f.yaml:5:81: suite file is nested more than 100 levels deep",
		},
		{
			name: "alias inside its own anchor in a case",
			src:  "version: 1\ncases:\n  - id: a\n    steps: &s [{run: x, name: [*s]}]\n",
			want: "f.yaml:4:32: alias *s refers to the value that contains it",
		},
		{
			name: "bomb within the limit in a skipped value is accepted",
			src:  "version: 1\n" + laughs(5) + ok + "x-big: [*l4, *l4, *l4]\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := []byte(tt.src)
			ref := wholeWalk(t, src)
			_, err := Parse("f.yaml", bytes.NewReader(src), Options{})
			if tt.want == "" {
				if ref != nil {
					t.Fatalf("the whole walk refuses the file: %v", ref)
				}
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want a refusal", err)
			}
			if len(se.Problems) != 1 || len(ref) != 1 || se.Problems[0] != ref[0] {
				t.Fatalf("problems %v, want exactly the whole walk's %v", se.Problems, ref)
			}
			if got := se.Problems[0]; !strings.HasPrefix(got.String(), tt.want+" — ") {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

// FuzzSizeGuard checks on any input that the guard in the decoder's pass
// refuses exactly the files the walk over the whole tree refuses, with the
// same problem, and no other.
func FuzzSizeGuard(f *testing.F) {
	for _, name := range []string{"testdata/spec.yaml", "testdata/full.yaml", "testdata/broken.yaml", "testdata/bomb.yaml"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("version: 1\ncases: &a [*a]\n"))
	f.Add([]byte("version: 1\ncases: [{id: a, steps: &s [{run: x, name: [*s]}]}]\ncases: [1]\n"))
	f.Add([]byte("version: 1\nx: &x [[[[a]]]]\ncases: [*x, [*x, [*x]], {id: b, steps: [{run: x}]}]\n<<: {cases: *x}\n"))
	f.Add([]byte("version: 1\n" + laughs(5) + "cases:\n  - {id: d, steps: [{run: x}], name: [*l4, *l4, *l4, *l4, *l4, *l4, *l4, *l4, *l4]}\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		d := &decoder{file: "f.yaml", src: src}
		root := d.parseTree(src)
		if root == nil {
			return // refused before the tree exists
		}
		ref := &decoder{file: "f.yaml", src: src}
		refOK := ref.checkSize(root)
		_, err := Parse("f.yaml", bytes.NewReader(src), Options{})
		var se *Error
		if err != nil && !errors.As(err, &se) {
			t.Fatalf("err = %v", err)
		}
		if !refOK {
			if se == nil || len(se.Problems) != 1 || se.Problems[0] != ref.probs[0] {
				t.Fatalf("got %v, want exactly the whole walk's %v", err, ref.probs)
			}
			return
		}
		if se != nil {
			for _, p := range se.Problems {
				if sizeProblem(p) {
					t.Fatalf("refused %s; the whole walk accepts the file", p)
				}
			}
		}
	})
}
