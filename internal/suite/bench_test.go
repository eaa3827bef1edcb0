package suite_test

import (
	"bytes"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

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

// benchSizes are the suite sizes the load benchmarks run at, to show how
// cost grows with the number of cases (docs/benchmarks.md); 10,000 cases is
// 5.9 MB, about the most MaxNodes lets through.
var benchSizes = []int{500, 5000, 10000}

// BenchmarkLoad is the whole of suite.Parse: text checks, the YAML parse,
// decoding, validation, expansion and conversion, its cases streamed one at
// a time (stream.go).
func BenchmarkLoad(b *testing.B) {
	benchmarkLoad(b, true)
}

// BenchmarkLoadWhole is BenchmarkLoad with the file parsed whole, as Parse
// does when the stream cannot read a file's layout (and did for every file
// before the stream).
func BenchmarkLoadWhole(b *testing.B) {
	benchmarkLoad(b, false)
}

func benchmarkLoad(b *testing.B, stream bool) {
	defer suite.SetStream(stream)()
	opts := suite.Options{Lookup: lookup(map[string]string{"TOKEN": "tok"})}
	for _, n := range benchSizes {
		src := generate(n)
		b.Run(fmt.Sprintf("cases=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(src)))
			b.ReportAllocs()
			defer reportCPU(b, cpuTime())
			for b.Loop() {
				s, err := suite.Parse("big.yaml", bytes.NewReader(src), opts)
				if err != nil {
					b.Fatal(err)
				}
				if len(s.Cases) != n {
					b.Fatalf("%d cases", len(s.Cases))
				}
			}
		})
	}
}

// BenchmarkYAMLParse is the floor the issue measures the load against:
// yaml.v3 building the node tree of the same file, before any validation.
// LoadWhole minus this is Zof's own layer. A streamed load parses the same
// bytes for less than this (docs/benchmarks.md says why), so Load minus this
// understates the layer: a profile gives it.
func BenchmarkYAMLParse(b *testing.B) {
	for _, n := range benchSizes {
		src := generate(n)
		b.Run(fmt.Sprintf("cases=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(src)))
			b.ReportAllocs()
			defer reportCPU(b, cpuTime())
			for b.Loop() {
				var n yaml.Node
				if err := yaml.Unmarshal(src, &n); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// reportCPU adds cpu-ns/op, the process's CPU time per iteration since
// start: the figure to compare on a shared machine, where wall time (ns/op)
// also counts the time other processes held the cores (docs/benchmarks.md).
func reportCPU(b *testing.B, start time.Duration) {
	if start == 0 || b.N == 0 {
		return
	}
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}

// BenchmarkLayer measures Zof's own layer as the brief of docs/benchmarks.md
// states it, (load − YAML parse) / YAML parse, from paired samples: every
// iteration times the YAML parse and the whole load of the same file back to
// back, each in CPU time after a collection (as a fresh `zof` process starts),
// so a shared machine's load shifts both figures of a pair alike. It reports
// the medians of the parse, the load and the layer's share.
func BenchmarkLayer(b *testing.B) {
	opts := suite.Options{Lookup: lookup(map[string]string{"TOKEN": "tok"})}
	for _, n := range benchSizes {
		src := generate(n)
		b.Run(fmt.Sprintf("cases=%d", n), func(b *testing.B) {
			var parse, load, share []float64
			for b.Loop() {
				b.StopTimer()
				runtime.GC()
				t0 := cpuTime()
				var root yaml.Node
				if err := yaml.Unmarshal(src, &root); err != nil {
					b.Fatal(err)
				}
				t1 := cpuTime()
				runtime.GC()
				b.StartTimer()
				t2 := cpuTime()
				s, err := suite.Parse("big.yaml", bytes.NewReader(src), opts)
				t3 := cpuTime()
				if err != nil || len(s.Cases) != n {
					b.Fatalf("%d cases, %v", len(s.Cases), err)
				}
				p, l := float64(t1-t0), float64(t3-t2)
				parse, load, share = append(parse, p), append(load, l), append(share, (l-p)/p)
			}
			if t := cpuTime(); t == 0 {
				return
			}
			b.ReportMetric(median(parse)/1e6, "parse-cpu-ms")
			b.ReportMetric(median(load)/1e6, "load-cpu-ms")
			b.ReportMetric(100*median(share), "layer-%")
		})
	}
}

func median(v []float64) float64 {
	v = slices.Clone(v)
	slices.Sort(v)
	if len(v) == 0 {
		return 0
	}
	return (v[(len(v)-1)/2] + v[len(v)/2]) / 2
}
