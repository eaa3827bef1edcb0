package suite_test

import (
	"bytes"
	"fmt"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/zof-ai/zof-ci/internal/suite"
)

// generate writes a suite with n cases shaped like real ones: tags, covers,
// an http step with expectations and a capture, and a run step using it.
func generate(n int) []byte {
	var b bytes.Buffer
	b.WriteString("version: 1\nproject: big\nenvironments:\n  local:\n    url: http://127.0.0.1:8080\n    headers: {Authorization: \"Bearer ${TOKEN}\"}\n")
	b.WriteString("selection:\n  global: [go.mod, \".github/**\"]\n  ignore: [\"docs/**\"]\ncases:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `  - id: case-%d
    name: Case number %d
    tags: [t%d, smoke]
    covers: ["services/s%d/**", "web/w%d/*.go"]
    steps:
      - name: create
        http:
          method: POST
          path: /api/items/%d
          headers: {X-Trace: "%d"}
          json: {name: item, n: %d, tags: [a, b]}
        expect:
          status: [200, 201]
          body_contains: item
          json:
            $.id: {exists: true}
            $.name: {equals: item}
          max_duration: 500ms
        capture: {id: $.id}
      - run: echo ${capture.id}
        timeout: 10s
`, i, i, i%20, i%50, i%30, i, i, i)
	}
	b.WriteString("sets:\n  first:\n    cases: [case-0, case-1]\n    order: sequential\n  tagged:\n    tags: [t3]\n")
	return b.Bytes()
}

func TestGenerated(t *testing.T) {
	s, err := suite.Parse("big.yaml", bytes.NewReader(generate(50)), suite.Options{Lookup: lookup(map[string]string{"TOKEN": "tok"})})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Cases) != 50 || len(s.Tagged("t3")) != 3 {
		t.Fatalf("cases = %d, tagged t3 = %v", len(s.Cases), s.Tagged("t3"))
	}
}

func BenchmarkLoad5000(b *testing.B) {
	src := generate(5000)
	opts := suite.Options{Lookup: lookup(map[string]string{"TOKEN": "tok"})}
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s, err := suite.Parse("big.yaml", bytes.NewReader(src), opts)
		if err != nil {
			b.Fatal(err)
		}
		if len(s.Cases) != 5000 {
			b.Fatalf("%d cases", len(s.Cases))
		}
	}
}

// BenchmarkYAMLParse5000 is the floor under BenchmarkLoad5000: yaml.v3
// building the node tree of the same file, before any validation.
func BenchmarkYAMLParse5000(b *testing.B) {
	src := generate(5000)
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var n yaml.Node
		if err := yaml.Unmarshal(src, &n); err != nil {
			b.Fatal(err)
		}
	}
}
