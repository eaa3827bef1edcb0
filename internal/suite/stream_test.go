package suite_test

import (
	"bytes"
	"os"
	"reflect"
	"testing"

	"github.com/zof-ai/zof-ci/internal/suite"
)

// streamSeeds are layouts the stream reads, and near misses it must leave to
// the whole-file parse; FuzzStream starts from them.
var streamSeeds = []struct {
	name   string
	src    string
	stream bool // Parse streams it: the fast path is not lost to a fallback
}{
	{"plain", "version: 1\ncases:\n  - id: a\n    steps: [{run: x}]\n  - id: b\n    steps: [{run: y}]\n", true},
	{"items at column 1", "version: 1\ncases:\n- id: a\n  steps: [{run: x}]\n- id: b\n  steps: [{run: y}]\nsets:\n  s: {cases: [a]}\n", true},
	{"a tail", "version: 1\ncases:\n  - id: a\n    steps: [{run: x}]\n\n# the sets\nsets:\n  s: {cases: [a]}\ngate: {on_empty: pass}\n", true},
	{"comments and blank lines", "# suite\nversion: 1\ncases: # all of them\n\n# first\n  - id: a\n    # steps\n    steps: [{run: x}]\n# between\n\n  - id: b\n    steps: [{run: y}]\n", true},
	{"an anchor in the head used by the cases", "version: 1\nx-step: &s {run: x}\ncases:\n  - id: a\n    steps: [*s]\n  - {id: b, steps: [*s]}\n", true},
	{"an anchor in one case used by the next", "version: 1\ncases:\n  - id: a\n    steps: [&s {run: x}]\n  - id: b\n    steps: [*s]\n", true},
	{"an anchor redefined", "version: 1\nx: &s {run: x}\ncases:\n  - id: a\n    steps: [&s {run: y}]\n  - id: b\n    steps: [*s]\n", true},
	{"block scalars keeping their blank lines", "version: 1\ncases:\n  - id: a\n    steps:\n      - run: |+\n          echo a\n\n\n  - id: b\n    steps:\n      - run: >-\n          echo\n          b\n\n", true},
	{"an item with a problem", "version: 1\ncases:\n  - id: a\n    steps: [{run: x}]\n  - id: b\n    stepz: []\n", true},
	{"a duplicate id", "version: 1\ncases:\n  - id: a\n    steps: [{run: x}]\n  - id: a\n    steps: [{run: y}]\n", true},
	{"no final newline", "version: 1\ncases:\n  - id: a\n    steps: [{run: x}]", true},

	{"an alias in the tail to a case's anchor", "version: 1\ncases:\n  - id: &a a\n    steps: [{run: x}]\nsets:\n  s: {cases: [*a]}\n", false},
	{"a quoted scalar across items", "version: 1\ncases:\n  - id: a\n    name: \"x\n  - id: b\"\n    steps: [{run: x}]\n", false},
	{"a flow list across items", "version: 1\ncases:\n  - id: a\n    tags: [x,\n  - y]\n    steps: [{run: x}]\n", false},
	{"a plain scalar back at column 1", "version: 1\ncases:\n  - id: a\n    steps: [{run: x\n}]\n", false},
	{"two cases keys", "version: 1\ncases:\n  - id: a\n    steps: [{run: x}]\ncases:\n  - id: b\n    steps: [{run: y}]\n", false},
	{"a flow list", "version: 1\ncases: [{id: a, steps: [{run: x}]}]\n", false},
	{"CRLF", "version: 1\r\ncases:\r\n  - id: a\r\n    steps: [{run: x}]\r\n\r\n  - id: b # x\r\n    steps:\r\n      - run: |\r\n          y\r\n\r\nsets:\r\n  s: {cases: [a]}\r\n", true},
	{"a lone CR", "version: 1\ncases:\n  - id: a\r    steps: [{run: x}]\n", false},
	{"CR before the end", "version: 1\ncases:\n  - id: a\n    steps: [{run: x}]\r", false},
	{"U+2028", "version: 1\ncases:\n  - id: a\n    name: \"a\u2028b\"\n    steps: [{run: x}]\n", false},
	{"a document marker", "---\nversion: 1\ncases:\n  - id: a\n    steps: [{run: x}]\n", false},
	{"a tab", "version: 1\ncases:\n  - id: a\n\tsteps: [{run: x}]\n", false},
	{"invalid YAML in an item", "version: 1\ncases:\n  - id: a\n    steps: [{run: x}]\n  - id: b: c\n", false},
	{"an indented root", "  version: 1\ncases:\n  - id: a\n    steps: [{run: x}]\n", false},
	{"a tag before the tail", "cases:\n- 0\n\n!\nA:", false},
	{"an anchor before the tail", "version: 1\ncases:\n  - id: a\n    steps: [{run: x}]\n&t\nsets: {}\n", false},
	{"a merge key in the head", "x: &x {project: p}\n<<: *x\nversion: 1\ncases:\n  - id: a\n    steps: [{run: x}]\n", false},
}

// TestStream checks that each seed loads the same streamed as parsed whole,
// and that the layouts the stream is for are streamed.
func TestStream(t *testing.T) {
	for _, tt := range streamSeeds {
		t.Run(tt.name, func(t *testing.T) {
			sameStreamed(t, []byte(tt.src))
			if got := suite.Streamed([]byte(tt.src), suite.Options{}); got != tt.stream {
				t.Errorf("streamed = %v, want %v", got, tt.stream)
			}
		})
	}
	for _, name := range []string{"testdata/spec.yaml", "testdata/full.yaml", "../../examples/checkout/zof.yaml"} {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		sameStreamed(t, b)
		if !suite.Streamed(b, suite.Options{Lookup: lookup(nil)}) {
			t.Errorf("%s is not streamed", name)
		}
	}
	if !suite.Streamed(generate(50), suite.Options{Lookup: lookup(map[string]string{"TOKEN": "tok"})}) {
		t.Error("the benchmarks' suite is not streamed")
	}
}

// FuzzStream checks that whatever the input, a streamed load gives exactly
// what the whole-file parse gives: the suite, or the same problems.
func FuzzStream(f *testing.F) {
	for _, tt := range streamSeeds {
		f.Add([]byte(tt.src))
	}
	for _, name := range []string{"testdata/spec.yaml", "testdata/full.yaml", "testdata/broken.yaml", "testdata/bomb.yaml"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(generate(3))
	f.Fuzz(func(t *testing.T, src []byte) {
		sameStreamed(t, src)
	})
}

func sameStreamed(t *testing.T, src []byte) {
	t.Helper()
	opts := suite.Options{Lookup: lookup(map[string]string{"TOKEN": "tok", "A": "1"})}
	restore := suite.SetStream(true)
	streamed, serr := suite.Parse("f.yaml", bytes.NewReader(src), opts)
	suite.SetStream(false)
	whole, werr := suite.Parse("f.yaml", bytes.NewReader(src), opts)
	restore()
	if !reflect.DeepEqual(serr, werr) {
		t.Fatalf("streamed: %v\nwhole:    %v", serr, werr)
	}
	if !reflect.DeepEqual(streamed, whole) {
		t.Fatalf("streamed:\n%+v\nwhole:\n%+v", streamed, whole)
	}
}
