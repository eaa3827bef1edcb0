package suite_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/zof-ai/zof-ci/internal/suite"
)

// TestProblemPaths pins the path every kind of nesting writes in a problem
// (fields, list items, JSON bodies at any depth, JSONPath keys, merge keys,
// the long form of a string-map value): the decoder builds paths only when
// it reports a problem, from links it keeps as it descends.
func TestProblemPaths(t *testing.T) {
	src := head + "x-m: &m {k: 1}\ncases:\n  - id: a\n    steps:\n" +
		"      - http: {path: /, json: {a: [1, {b: .nan}, \"${NOPE}\"], c: {d: {<<: 5, e: {<<: [*m, 3]}}}, f: [[{g: 1, g: 2}]]}}\n" +
		"      - http: {path: /, headers: {X: {value: \"${NOPE}\", secret: true}}}\n" +
		"        expect: {json: {$.a: {equals: {x: [.inf]}, exists: 1}}, status: [200, 7]}\n" +
		"    variants: [{name: v, vars: {a: [1]}}]\n" +
		"selection: {modules: {m: [1, [2]]}}\n"
	want := []string{
		`zof.yaml:6:43: cases[0].steps[0].http.json.a[1].b: .nan has no JSON form — quote it to send a string`,
		`zof.yaml:6:51: cases[0].steps[0].http.json.a[2]: unknown variable ${NOPE}: it is not set — set NOPE in the job's environment, or give a default: ${NOPE:-value}`,
		`zof.yaml:6:74: cases[0].steps[0].http.json.c.d: << expects a mapping or a list of mappings, got a number (5) — merge a mapping: <<: *anchor`,
		`zof.yaml:6:90: cases[0].steps[0].http.json.c.d.e.<<: expected a mapping, got a number (3)`,
		`zof.yaml:6:109: cases[0].steps[0].http.json.f[0][0]: duplicate key "g" — remove one; the first is at line 6`,
		`zof.yaml:7:47: cases[0].steps[1].http.headers.X.value: unknown variable ${NOPE}: it is not set — set NOPE in the job's environment, or give a default: ${NOPE:-value}`,
		`zof.yaml:8:44: cases[0].steps[1].expect.json[$.a].equals.x[0]: .inf has no JSON form — quote it to send a string`,
		`zof.yaml:8:60: cases[0].steps[1].expect.json[$.a].exists: expected a boolean, got a number (1) — write true or false`,
		`zof.yaml:8:79: cases[0].steps[1].expect.status[1]: invalid status "7" — a code is 100..599 (200, 404) and a class is 1xx..5xx`,
		`zof.yaml:9:36: cases[0].variants[0].vars.a: expected a string, got a list`,
		`zof.yaml:10:30: selection.modules.m[1]: expected a path pattern, got a list`,
	}
	got := problems(t, src, suite.Options{Lookup: lookup(nil)})
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}
