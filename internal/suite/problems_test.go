package suite_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/zof-ai/zof-ci/internal/suite"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// lookup is a fixed environment for tests: never the process environment.
func lookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}
}

// problems parses src and returns every problem rendered, or nil when valid.
func problems(t *testing.T, src string, opts suite.Options) []string {
	t.Helper()
	s, err := suite.Parse("zof.yaml", strings.NewReader(src), opts)
	if err == nil {
		var out []string
		for _, w := range s.Warnings {
			out = append(out, w.String())
		}
		return out
	}
	var se *suite.Error
	if !errors.As(err, &se) {
		t.Fatalf("error is %T, want *suite.Error: %v", err, err)
	}
	if s != nil {
		t.Errorf("suite returned alongside an error")
	}
	out := make([]string, len(se.Problems))
	for i, p := range se.Problems {
		out[i] = p.String()
	}
	return out
}

// head is a valid prefix; tests append a case list or more.
const head = "version: 1\n"

func TestProblems(t *testing.T) {
	tests := []struct {
		name string
		src  string
		env  map[string]string
		opts suite.Options
		want []string
	}{
		{
			name: "valid minimal suite",
			src:  head + "cases:\n  - id: a\n    steps: [{run: \"true\"}]\n",
		},
		{
			name: "empty file",
			src:  "",
			want: []string{"zof.yaml: suite file is empty: start with `version: 1` — then add `cases:`, a list of cases, each with an `id` and `steps`"},
		},
		{
			name: "only comments and blank lines",
			src:  "# nothing yet\n\n   \n",
			want: []string{"zof.yaml: suite file is empty: start with `version: 1` — then add `cases:`, a list of cases, each with an `id` and `steps`"},
		},
		{
			name: "top level is a list",
			src:  "- id: a\n",
			want: []string{"zof.yaml:1:1: top level: expected a mapping, got a list — the file is a mapping of fields: version: 1, project: ..., cases: [...]"},
		},
		{
			name: "top level is a string",
			src:  "hello\n",
			want: []string{`zof.yaml:1:1: top level: expected a mapping, got a string ("hello") — the file is a mapping of fields: version: 1, project: ..., cases: [...]`},
		},
		{
			name: "binary garbage",
			src:  "\x7fELF\x02\x01\x01\x00\x00",
			want: []string{"zof.yaml:1:8: suite file is not UTF-8 text (byte 0x00): is this a binary file? — a suite file is YAML text saved as UTF-8; check that --suite points at zof.yaml"},
		},
		{
			name: "invalid utf-8 on line 2",
			src:  head + "project: caf\xe9\n",
			want: []string{"zof.yaml:2:13: suite file is not UTF-8 text (byte 0xe9): is this a binary file? — a suite file is YAML text saved as UTF-8; check that --suite points at zof.yaml"},
		},
		{
			name: "utf-16",
			src:  "\xff\xfev\x00",
			want: []string{"zof.yaml: suite file is UTF-16 encoded — save it as UTF-8"},
		},
		{
			name: "tabs for indentation",
			src:  head + "cases:\n\t- id: a\n  \t  steps: []\n",
			want: []string{
				"zof.yaml:3:1: tab character used for indentation: YAML allows only spaces — replace the tabs with spaces (2 per level is usual); most editors can show and convert them",
				"zof.yaml:4:3: tab character used for indentation: YAML allows only spaces — replace the tabs with spaces (2 per level is usual); most editors can show and convert them",
			},
		},
		{
			name: "yaml syntax error",
			src:  head + "cases:\n  - id: a\n    name: x: y\n",
			want: []string{`zof.yaml:4:1: invalid YAML: mapping values are not allowed in this context — a value containing ": " must be quoted, or the indentation is off`},
		},
		{
			name: "two documents",
			src:  head + "cases: []\n---\nversion: 1\n",
			want: []string{"zof.yaml:3:1: suite file has more than one YAML document — remove the `---` separator: everything belongs in one document"},
		},
		{
			name: "missing version and cases",
			src:  "project: p\n",
			want: []string{
				`zof.yaml:1:1: top level: missing required field "version" — a suite starts with ` + "`version: 1`" + ` and has a ` + "`cases:`" + ` list`,
				`zof.yaml:1:1: top level: missing required field "cases" — a suite starts with ` + "`version: 1`" + ` and has a ` + "`cases:`" + ` list`,
			},
		},
		{
			name: "version 2",
			src:  "version: 2\ncases: []\n",
			want: []string{"zof.yaml:1:10: version: unsupported version 2: this zof reads version 1 — write `version: 1`, or upgrade zof if the file needs a newer format"},
		},
		{
			name: "version as a string",
			src:  "version: \"1\"\ncases: []\n",
			want: []string{"zof.yaml:1:10: version: expected the number 1, got a string (\"1\") — write `version: 1`"},
		},
		{
			name: "unknown field with suggestion",
			src:  head + "cases:\n  - id: a\n    stpes: [{run: x}]\n",
			want: []string{
				`zof.yaml:3:5: cases[0]: missing required field "steps" — every case needs an ` + "`id`" + ` and a list of ` + "`steps`",
				`zof.yaml:4:5: cases[0]: unknown field "stpes" in a case — did you mean "steps"?`,
			},
		},
		{
			name: "unknown field that belongs elsewhere",
			src:  head + "cases:\n  - id: a\n    expect: {status: 200}\n    steps: [{run: x}]\n",
			want: []string{`zof.yaml:4:5: cases[0]: unknown field "expect" in a case — "expect" is a field of a step, not of a case`},
		},
		{
			name: "unknown field without suggestion",
			src:  head + "cases: []\ngate: {colour: red}\n",
			want: []string{`zof.yaml:3:8: gate: unknown field "colour" in gate — valid fields: fail_on, on_empty`},
		},
		{
			name: "duplicate keys",
			src:  head + "cases: []\ncases: []\n",
			want: []string{`zof.yaml:3:1: top level: duplicate key "cases" — remove one; the first is at line 2`},
		},
		{
			name: "duplicate header names differ in case",
			src:  head + "environments:\n  local:\n    url: http://h\n    headers: {X-A: 1, x-a: 2}\ncases: []\n",
			want: []string{`zof.yaml:5:23: environments.local.headers: duplicate header "x-a" — header names are case-insensitive; the first is at line 5`},
		},
		{
			name: "wrong types",
			src: head + "project: [a]\ncases:\n  - id: a\n    tags: smoke\n    always: \"yes\"\n    retries: two\n" +
				"    steps:\n      - run: {command: x, exit_code: 300}\n",
			want: []string{
				"zof.yaml:2:10: project: expected a string, got a list",
				"zof.yaml:5:11: cases[0].tags: expected a list, got a string (\"smoke\") — write a list: [a, b]",
				"zof.yaml:6:13: cases[0].always: expected a boolean, got a string (\"yes\") — write true or false",
				"zof.yaml:7:14: cases[0].retries: expected a whole number, got a string (\"two\")",
				"zof.yaml:9:38: cases[0].steps[0].run.exit_code: 300 is out of range: use 0 to 255",
			},
		},
		{
			name: "duplicate case id",
			src:  head + "cases:\n  - id: a\n    steps: [{run: x}]\n  - id: a\n    steps: [{run: y}]\n",
			want: []string{`zof.yaml:5:9: cases[1].id: duplicate case id "a" — case ids are unique; the first "a" is at line 3`},
		},
		{
			name: "invalid ids",
			src:  head + "environments:\n  Local Dev: {url: \"http://h\"}\ncases:\n  - id: Log In\n    tags: [-x]\n    steps: [{run: x}]\n",
			want: []string{
				`zof.yaml:3:3: environments: invalid environment name "Local Dev" — use lowercase letters, digits, '.', '_' and '-', starting with a letter or digit, e.g. "local-dev"`,
				`zof.yaml:5:9: cases[0].id: invalid case id "Log In" — use lowercase letters, digits, '.', '_' and '-', starting with a letter or digit, e.g. "log-in"`,
				`zof.yaml:6:12: cases[0].tags[0]: invalid tag "-x" — use lowercase letters, digits, '.', '_' and '-', starting with a letter or digit, e.g. "x"`,
			},
		},
		{
			name: "step needs exactly one of http and run",
			src:  head + "cases:\n  - id: a\n    steps:\n      - name: nothing\n      - run: x\n        http: {path: /}\n",
			want: []string{
				"zof.yaml:5:9: cases[0].steps[0]: missing http or run — add `http: {method: GET, path: /}` or `run: <command>`",
				"zof.yaml:6:9: cases[0].steps[1]: a step has either http or run, not both — split it into two steps",
			},
		},
		{
			name: "bad durations",
			src: head + "defaults: {timeout: 5 min}\ncases:\n  - id: a\n    timeout: 30\n    steps:\n" +
				"      - run: x\n        timeout: 2d\n      - run: y\n        timeout: -1s\n",
			want: []string{
				`zof.yaml:2:21: defaults.timeout: invalid duration "5 min" — no spaces: write 5m, not 5 m`,
				`zof.yaml:5:14: cases[0].timeout: duration 30 has no unit — write "30s" for seconds`,
				`zof.yaml:8:18: cases[0].steps[0].timeout: invalid duration "2d" — there is no d unit; write hours, e.g. 24h`,
				`zof.yaml:10:18: cases[0].steps[1].timeout: duration must be positive, got -1s — use a number with a unit: 500ms, 30s, 5m, 1h30m`,
			},
		},
		{
			name: "invalid patterns",
			src:  head + "selection:\n  global: [\"../x/**\", /etc/hosts, \"\"]\ncases:\n  - id: a\n    covers: [\"**.go\"]\n    steps: [{run: x}]\n",
			want: []string{
				`zof.yaml:3:12: selection.global[0]: invalid path pattern "../x/**": ".." segment; a pattern cannot leave the repository, write the path from the repository root`,
				`zof.yaml:3:23: selection.global[1]: invalid path pattern "/etc/hosts": absolute path; paths are relative to the repository root, e.g. "etc/hosts"`,
				`zof.yaml:3:35: selection.global[2]: invalid path pattern "": empty pattern; write a repository-relative path such as "services/auth/**"`,
				"zof.yaml:6:14: warning: cases[0].covers[0]: pattern \"**.go\": `**` only spans whole directories here (as a segment of its own, like a/**/b); did you mean \"**/*.go\"?",
			},
		},
		{
			name: "warning only: valid suite with warnings",
			src:  head + "cases:\n  - id: a\n    covers: [\"src/**.go\"]\n    steps: [{run: x}]\n",
			want: []string{"zof.yaml:4:14: warning: cases[0].covers[0]: pattern \"src/**.go\": `**` only spans whole directories here (as a segment of its own, like a/**/b); did you mean \"src/**/*.go\"?"},
		},
		{
			name: "set references and cycles",
			src: head + "cases:\n  - id: login\n    tags: [smoke]\n    steps: [{run: x}]\n" +
				"sets:\n  self:\n    sets: [self]\n  a:\n    sets: [b]\n  b:\n    sets: [c]\n  c:\n    sets: [a]\n" +
				"  refs:\n    cases: [logn]\n    tags: [smok]\n    sets: [nope]\n",
			want: []string{
				`zof.yaml:8:12: sets.self.sets: set "self" includes itself — remove the reference; list its cases directly`,
				`zof.yaml:14:12: sets.c.sets: cycle between sets: a → b → c → a — a set cannot include a set that includes it; break the cycle`,
				`zof.yaml:16:13: sets.refs.cases: unknown case "logn" — did you mean "login"?`,
				`zof.yaml:17:12: sets.refs.tags: no case has tag "smok" — did you mean "smoke"?`,
				`zof.yaml:18:12: sets.refs.sets: unknown set "nope" — sets: self, a, b, c, refs`,
			},
		},
		{
			name: "unknown variable in a case",
			src:  head + "cases:\n  - id: a\n    steps:\n      - run: echo ${MISSING} ${SET} ${OPT:-x}\n",
			env:  map[string]string{"SET": "1"},
			want: []string{"zof.yaml:5:19: cases[0].steps[0].run: unknown variable ${MISSING}: it is not set — set MISSING in the job's environment, or give a default: ${MISSING:-value}"},
		},
		{
			name: "unknown variable in an unused environment is fine",
			src:  head + "environments:\n  local: {url: \"http://127.0.0.1:1\"}\n  staging: {url: \"${STAGING_URL}\"}\ndefaults: {environment: local}\ncases: []\n",
		},
		{
			name: "unknown variable in the used environment",
			src:  head + "environments:\n  local: {url: \"http://127.0.0.1:1\"}\n  staging: {url: \"${STAGING_URL}\"}\ndefaults: {environment: local}\ncases: []\n",
			opts: suite.Options{Environment: "staging"},
			want: []string{"zof.yaml:4:19: environments.staging.url: unknown variable ${STAGING_URL}: it is not set — set STAGING_URL in the job's environment, or give a default: ${STAGING_URL:-value}"},
		},
		{
			name: "unknown environment option",
			src:  head + "environments:\n  local: {url: \"http://127.0.0.1:1\"}\ncases: []\n",
			opts: suite.Options{Environment: "locl"},
			want: []string{`zof.yaml: environment "locl" is not defined in the suite — did you mean "local"?`},
		},
		{
			name: "runtime references",
			src: head + "environments:\n  local: {url: \"http://h/${vars.x}\"}\ncases:\n  - id: a\n    variants:\n      - {name: one, vars: {x: 1}}\n      - {name: two, vars: {y: 2}}\n" +
				"    steps:\n      - http: {path: \"/${vars.x}/${capture.id}\"}\n        capture: {id: $.id}\n      - run: echo ${capture.id} ${vars.y:-z}\n",
			want: []string{
				"zof.yaml:3:26: environments.local.url: ${vars.x} is only available inside a case's steps — use ${VAR} from the environment here",
				"zof.yaml:10:24: cases[0].steps[0]: ${vars.x} is not defined by variant two — define x in the vars of every variant",
				"zof.yaml:10:34: cases[0].steps[0]: ${capture.id} is not captured by an earlier step — it is captured by this or a later step; steps run in order, so move the capture earlier",
				"zof.yaml:12:33: cases[0].steps[1].run: ${vars.y:-z}: ${vars.NAME} takes no default — every variant must define the var, or capture it in an earlier step",
			},
		},
		{
			name: "vars without variants",
			src:  head + "cases:\n  - id: a\n    steps:\n      - run: echo ${vars.x}\n",
			want: []string{"zof.yaml:5:19: cases[0].steps[0]: ${vars.x} is used but the case has no variants — add `variants: [{name: a, vars: {x: ...}}]` to the case"},
		},
		{
			name: "expansion syntax errors",
			src:  head + "cases:\n  - id: a\n    steps:\n      - run: \"echo ${} ${A-b} ${unterminated\"\n",
			want: []string{
				"zof.yaml:5:20: cases[0].steps[0].run: empty ${} — write ${NAME}, ${NAME:-default}, or $$ for a literal $",
				"zof.yaml:5:24: cases[0].steps[0].run: invalid variable reference ${A-b} — write ${NAME} or ${NAME:-default} (NAME: letters, digits, _), or $$ for a literal $",
				"zof.yaml:5:31: cases[0].steps[0].run: unterminated ${ (no closing }) — close it with }, or write $$ for a literal $",
			},
		},
		{
			name: "expectations",
			src: head + "cases:\n  - id: a\n    steps:\n      - http: {path: /}\n        expect:\n          status: [200, 6xx, 99, true]\n" +
				"          body_matches: \"a(b\"\n          json:\n            $.a..b: {exists: true}\n            $.c: 3\n            $.d: {matches: \"[\"}\n",
			want: []string{
				`zof.yaml:7:25: cases[0].steps[0].expect.status[1]: invalid status "6xx" — a code is 100..599 (200, 404) and a class is 1xx..5xx`,
				`zof.yaml:7:30: cases[0].steps[0].expect.status[2]: invalid status "99" — a code is 100..599 (200, 404) and a class is 1xx..5xx`,
				`zof.yaml:7:34: cases[0].steps[0].expect.status[3]: expected a status code, got a boolean (true) — write a code (200), a class ("2xx") or a list of them`,
				"zof.yaml:8:25: cases[0].steps[0].expect.body_matches: invalid regexp: missing closing ): `a(b` — Go RE2 syntax: https://pkg.go.dev/regexp/syntax (no lookaround or backreferences)",
				`zof.yaml:10:13: cases[0].steps[0].expect.json: invalid JSONPath "$.a..b" — recursive descent (..) is not supported; write the full path`,
				`zof.yaml:11:18: cases[0].steps[0].expect.json[$.c]: expected a mapping of checks, got a number (3) — write {equals: 3}, or {exists: true}, {contains: ...}, {matches: ...}`,
				"zof.yaml:12:28: cases[0].steps[0].expect.json[$.d].matches: invalid regexp: missing closing ]: `[` — Go RE2 syntax: https://pkg.go.dev/regexp/syntax (no lookaround or backreferences)",
			},
		},
		{
			name: "http request shape",
			src: head + "environments:\n  local: {url: \"http://h\"}\ncases:\n  - id: a\n    steps:\n      - http: {method: \"G T\", path: x}\n" +
				"      - http: {url: \"ftp://x\", json: {}, form: {}}\n      - http: {method: GET}\n      - run: x\n        capture: {t: $.t}\n",
			want: []string{
				`zof.yaml:7:24: cases[0].steps[0].http.method: invalid HTTP method "G T" — e.g. GET, POST, PUT, PATCH, DELETE`,
				`zof.yaml:7:37: cases[0].steps[0].http.path: path "x" does not start with / — paths start with /: "/x"; use http.url for a full URL`,
				`zof.yaml:8:21: cases[0].steps[1].http.url: URL must start with http:// or https:// — write an absolute http(s) URL, or use http.path to join the environment url`,
				`zof.yaml:8:42: cases[0].steps[1].http: json and form are exclusive — keep one of json, body and form`,
				"zof.yaml:9:15: cases[0].steps[2].http: missing path or url — add `path: /...` (joined to the environment url) or `url: https://...`",
				"zof.yaml:11:9: cases[0].steps[3]: capture applies to http steps only — capture reads JSON from an http response",
			},
		},
		{
			name: "path without an environment url",
			src:  head + "cases:\n  - id: a\n    steps: [{http: {path: /}}]\n",
			opts: suite.Options{},
		},
		{
			name: "environment without url used by a path step",
			src:  head + "environments:\n  local: {exclusive: true}\ncases:\n  - id: a\n    steps:\n      - http: {path: /}\n",
			want: []string{`zof.yaml:7:9: cases: step uses http.path but environment "local" has no url — set environments.local.url, or give the step a full http.url`},
		},
		{
			name: "selection and gate enums",
			src:  head + "selection:\n  unmapped: smok\n  on_unknown_diff: none\n  max_changed_files: 0\ncases: []\ngate: {fail_on: [failed, failed, flaky], on_empty: maybe}\n",
			want: []string{
				`zof.yaml:3:13: selection.unmapped: invalid value "smok" — did you mean "smoke"?`,
				`zof.yaml:4:20: selection.on_unknown_diff: invalid value "none" — use one of: all, smoke, fail`,
				`zof.yaml:5:22: selection.max_changed_files: 0 is out of range: use 1 to 2147483647`,
				`zof.yaml:7:26: warning: gate.fail_on[1]: "failed" is listed twice — remove the repeat`,
				`zof.yaml:7:34: gate.fail_on[2]: invalid value "flaky" — use one of: failed, blocked, cancelled, timeout`,
				`zof.yaml:7:52: gate.on_empty: invalid value "maybe" — use one of: fail, pass`,
			},
		},
		{
			name: "unknown default environment",
			src:  head + "environments:\n  local: {url: \"http://h\"}\ndefaults: {environment: stage}\ncases: []\n",
			want: []string{`zof.yaml:4:25: defaults.environment: unknown environment "stage" — defined: local`},
		},
		{
			name: "variants",
			src: head + "cases:\n  - id: a\n    variants:\n      - {name: eur, vars: {currency: EUR, bad-name: 1}}\n      - {name: eur}\n      - {vars: {}}\n" +
				"    steps: [{run: x}]\n",
			want: []string{
				`zof.yaml:5:43: cases[0].variants[0].vars: invalid var name "bad-name" — var names use letters, digits and _ (they are used as ${vars.NAME})`,
				`zof.yaml:6:16: cases[0].variants[1].name: duplicate variant name "eur" — the first "eur" is at line 5`,
				"zof.yaml:7:9: cases[0].variants[2]: missing required field \"name\" — every variant needs a `name` (it becomes part of the member id, case/name)",
			},
		},
		{
			name: "alias that contains itself",
			src:  head + "cases: &a [*a]\n",
			want: []string{"zof.yaml:2:12: alias *a refers to the value that contains it — an anchored value cannot contain an alias to itself"},
		},
		{
			name: "merge keys and x- anchors",
			src: head + "x-base: &base\n  steps: [{run: x}]\n  tags: [smoke]\ncases:\n  - <<: *base\n    id: a\n  - <<: *base\n    id: b\n    tags: [other]\n" +
				"sets:\n  smoke: {tags: [smoke]}\n",
		},
		{
			name: "secret value form",
			src:  head + "cases:\n  - id: a\n    steps:\n      - run: {command: x, env: {A: {value: v, secret: yes, extra: 1}, B: {secret: true}}}\n",
			want: []string{
				`zof.yaml:5:55: cases[0].steps[0].run.env.A.secret: expected a boolean, got a string ("yes") — write true or false`,
				`zof.yaml:5:60: cases[0].steps[0].run.env.A: unknown field "extra" in a {value, secret} entry — valid fields: value, secret`,
				`zof.yaml:5:74: cases[0].steps[0].run.env.B: missing required field "value" — write {value: "...", secret: true}`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts
			opts.Lookup = lookup(tt.env)
			got := problems(t, tt.src, opts)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

// TestGolden loads a file with many problems of every kind and compares the
// whole report; run with -update after a deliberate change of wording.
func TestGolden(t *testing.T) {
	_, err := suite.Load("testdata/broken.yaml", suite.Options{Lookup: lookup(nil)})
	if err == nil {
		t.Fatal("broken.yaml loaded without error")
	}
	got := err.Error() + "\n"
	const golden = "testdata/broken.golden"
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err2 := os.ReadFile(golden)
	if err2 != nil {
		t.Fatalf("%v (run go test -update to create it)", err2)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("report differs from %s (-want +got):\n%s", golden, diff)
	}
	var se *suite.Error
	if !errors.As(err, &se) || se.Errors() < 30 {
		t.Fatalf("want at least 30 errors from broken.yaml, got %v", se)
	}
	for i := 1; i < len(se.Problems); i++ {
		a, b := se.Problems[i-1], se.Problems[i]
		if a.Line > b.Line || a.Line == b.Line && a.Col > b.Col {
			t.Errorf("problems not sorted: %v before %v", a, b)
		}
	}
}

// endless is an io.Reader of n bytes of YAML-ish text, without allocating them.
type endless struct{ n int64 }

func (r *endless) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.n {
		p = p[:r.n]
	}
	for i := range p {
		p[i] = "a: b\n"[i%5]
	}
	r.n -= int64(len(p))
	return len(p), nil
}

func TestLimits(t *testing.T) {
	t.Run("50 MB reader is refused after MaxFileSize bytes", func(t *testing.T) {
		r := &endless{n: 50 << 20}
		_, err := suite.Parse("big.yaml", r, suite.Options{})
		want := "big.yaml: suite file is larger than 10 MiB — a suite is a small YAML file; is --suite pointing at the right file?"
		if err == nil || err.Error() != want {
			t.Fatalf("err = %v, want %s", err, want)
		}
		if read := 50<<20 - r.n; read > suite.MaxFileSize+64<<10 {
			t.Errorf("read %d bytes, want at most about MaxFileSize (%d)", read, suite.MaxFileSize)
		}
	})
	t.Run("50 MB file is refused before reading", func(t *testing.T) {
		path := t.TempDir() + "/zof.yaml"
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(50 << 20); err != nil { // sparse: no 50 MB written
			t.Fatal(err)
		}
		f.Close()
		_, err = suite.Load(path, suite.Options{})
		if err == nil || !strings.Contains(err.Error(), "suite file is larger than 10 MiB") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("many tiny values are refused before parsing", func(t *testing.T) {
		src := bytes.Repeat([]byte("- a\n"), 2<<20) // 8 MiB, 2M values
		_, err := suite.Parse("wide.yaml", bytes.NewReader(src), suite.Options{})
		want := "wide.yaml: suite file has more than 500000 YAML values — a suite is a small YAML file; is --suite pointing at the right file?"
		if err == nil || err.Error() != want {
			t.Fatalf("err = %v, want %s", err, want)
		}
	})
	t.Run("billion laughs", func(t *testing.T) {
		_, err := suite.Load("testdata/bomb.yaml", suite.Options{})
		want := "testdata/bomb.yaml:9:8: suite file expands to more than 1000000 YAML values — aliases (*name) that repeat large anchors multiply the file's size; this looks like a YAML bomb"
		if err == nil || err.Error() != want {
			t.Fatalf("err = %v, want %s", err, want)
		}
	})
	t.Run("deep nesting", func(t *testing.T) {
		src := head + "cases: " + strings.Repeat("[", 500) + strings.Repeat("]", 500) + "\n"
		_, err := suite.Parse("deep.yaml", strings.NewReader(src), suite.Options{})
		want := "deep.yaml:2:108: suite file is nested more than 100 levels deep — flatten the structure"
		if err == nil || err.Error() != want {
			t.Fatalf("err = %v, want %s", err, want)
		}
	})
	t.Run("one alias repeated: problems are capped", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("version: 1\nx-bad: &bad {bad: 1}\ncases:\n  - id: a\n    steps: [")
		for i := 0; i < 20000; i++ {
			fmt.Fprintf(&b, "{x%d: *bad}, ", i)
		}
		b.WriteString("]\n")
		_, err := suite.Parse("many.yaml", strings.NewReader(b.String()), suite.Options{})
		var se *suite.Error
		if !errors.As(err, &se) {
			t.Fatalf("err = %v", err)
		}
		if n := len(se.Problems); n != suite.MaxProblems+1 {
			t.Errorf("%d problems, want %d and a count of the rest", n, suite.MaxProblems+1)
		}
		last := se.Problems[len(se.Problems)-1].String()
		if want := "many.yaml: warning: 39500 more problems not shown — fix the ones above and run again"; last != want {
			t.Errorf("last problem = %q, want %q", last, want)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		_, err := suite.Load("testdata/nope.yaml", suite.Options{})
		want := "testdata/nope.yaml: suite file not found — create zof.yaml at the repository root, or point --suite / ZOF_SUITE at the file"
		if err == nil || err.Error() != want || !errors.As(err, new(*suite.Error)) {
			t.Fatalf("err = %v, want %s", err, want)
		}
	})
}
