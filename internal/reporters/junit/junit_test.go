package junit_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/gate"
	"github.com/zof-ai/zof-ci/internal/reporters/junit"
	"github.com/zof-ai/zof-ci/internal/reporters/report"
	"github.com/zof-ai/zof-ci/internal/reporters/reporttest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// xsdPath is a copy of the Jenkins JUnit XSD (MIT; jenkinsci/xunit-plugin,
// src/main/resources/org/jenkinsci/plugins/xunit/types/model/xsd/junit-10.xsd,
// as in shared/reference/), kept here so the test runs from any checkout.
const xsdPath = "testdata/junit-10.xsd"

func write(t *testing.T, res *report.Result) (string, []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "nested", "dir", "junit.xml")
	r, err := junit.New(report.Options{Path: path, Now: reporttest.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Report(context.Background(), res); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, b
}

func TestGolden(t *testing.T) {
	for _, sc := range reporttest.Scenarios(t) {
		t.Run(sc.Name, func(t *testing.T) {
			_, got := write(t, sc.Result)
			golden := filepath.Join("testdata", sc.Name+".xml")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("%s differs (-want +got; -update rewrites):\n%s", golden, diff)
			}
		})
	}
}

// TestGoldensValidateAgainstXSD checks every golden file with xmllint against
// the Jenkins JUnit XSD that JUnit consumers follow.
func TestGoldensValidateAgainstXSD(t *testing.T) {
	// .ci/run sets ZOF_REQUIRE_XMLLINT=1: there the validation must run, never skip.
	skip := t.Skipf
	if os.Getenv("ZOF_REQUIRE_XMLLINT") == "1" {
		skip = t.Fatalf
	}
	xmllint, err := exec.LookPath("xmllint")
	if err != nil {
		skip("xmllint not on PATH: install libxml2-utils (CI does) to validate the JUnit goldens against the XSD")
	}
	if _, err := os.Stat(xsdPath); err != nil {
		skip("JUnit XSD not found at %s (shared/ beside the repository): %v", xsdPath, err)
	}
	files, err := filepath.Glob("testdata/*.xml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files in testdata/ (%v): run with -update", err)
	}
	for _, f := range files {
		out, err := exec.Command(xmllint, "--noout", "--schema", xsdPath, f).CombinedOutput()
		if err != nil {
			t.Errorf("%s does not validate against %s: %v\n%s", f, xsdPath, err, out)
		}
	}
}

// parsed is what the tests read back from the XML.
type parsed struct {
	Name     string `xml:"name,attr"`
	Tests    int    `xml:"tests,attr"`
	Failures int    `xml:"failures,attr"`
	Errors   int    `xml:"errors,attr"`
	Suites   []struct {
		Name       string `xml:"name,attr"`
		Tests      int    `xml:"tests,attr"`
		Failures   int    `xml:"failures,attr"`
		Errors     int    `xml:"errors,attr"`
		Skipped    int    `xml:"skipped,attr"`
		Properties []struct {
			Name  string `xml:"name,attr"`
			Value string `xml:"value,attr"`
		} `xml:"properties>property"`
		Cases []struct {
			Name      string `xml:"name,attr"`
			Classname string `xml:"classname,attr"`
			Time      string `xml:"time,attr"`
			Failure   *struct {
				Message string `xml:"message,attr"`
				Text    string `xml:",chardata"`
			} `xml:"failure"`
			Error *struct {
				Type    string `xml:"type,attr"`
				Message string `xml:"message,attr"`
			} `xml:"error"`
			Skipped *struct {
				Message string `xml:"message,attr"`
			} `xml:"skipped"`
			Flaky []struct {
				Message string `xml:"message,attr"`
			} `xml:"flakyFailure"`
			SystemOut string `xml:"system-out"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

func parse(t *testing.T, b []byte) parsed {
	t.Helper()
	var p parsed
	if err := xml.Unmarshal(b, &p); err != nil {
		t.Fatalf("report is not well-formed XML: %v", err)
	}
	return p
}

type caseSummary struct{ Suite, Name, Classname, Kind, Message string }

func summarize(p parsed) []caseSummary {
	var out []caseSummary
	for _, s := range p.Suites {
		for _, c := range s.Cases {
			cs := caseSummary{Suite: s.Name, Name: c.Name, Classname: c.Classname, Kind: "passed"}
			switch {
			case c.Failure != nil:
				cs.Kind, cs.Message = "failure", c.Failure.Message
			case c.Error != nil:
				cs.Kind, cs.Message = "error:"+c.Error.Type, c.Error.Message
			case c.Skipped != nil:
				cs.Kind, cs.Message = "skipped", c.Skipped.Message
			case len(c.Flaky) > 0:
				cs.Kind, cs.Message = "flaky", c.Flaky[0].Message
			}
			out = append(out, cs)
		}
	}
	return out
}

func TestStructure(t *testing.T) {
	const rel = "checkout-service.release"
	tests := []struct {
		name  string
		res   *report.Result
		want  []caseSummary
		total [3]int // tests, failures, errors
	}{
		{"failed", reporttest.Failures(t), []caseSummary{
			{"checkout-service", "contract-tests", "checkout-service", "failure", `step 1 "run: go test ./api/...": command exited with code 1`},
			{rel, "login", rel, "passed", ""},
			{rel, "checkout [eur]", rel, "failure", `step 2 "create cart": status: expected 201, got 500`},
			{rel, "checkout [usd]", rel, "passed", ""},
		}, [3]int{4, 2, 0}},
		{"flaky", reporttest.Flaky(t), []caseSummary{
			{"checkout-service", "contract-tests", "checkout-service", "passed", ""},
			{rel, "login", rel, "flaky", "attempt 1 failed: token issued: json $.token: expected to exist, missing"},
			{rel, "checkout [eur]", rel, "passed", ""},
			{rel, "checkout [usd]", rel, "passed", ""},
		}, [3]int{4, 0, 0}},
		{"cancelled", reporttest.Cancelled(t), []caseSummary{
			{"checkout-service", "contract-tests", "checkout-service", "passed", ""},
			{rel, "login", rel, "passed", ""},
			{rel, "checkout [eur]", rel, "error:cancelled", `cancelled during step 2 "create cart": cancelled by alice via the API`},
			{rel, "checkout [usd]", rel, "skipped", "not run: cancelled before it started: cancelled by alice via the API"},
		}, [3]int{4, 0, 1}},
		{"timeout", reporttest.Timeout(t), []caseSummary{
			{"checkout-service", "contract-tests", "checkout-service", "passed", ""},
			{rel, "login", rel, "error:unfinished", "still running when the report was written (the run timed out or was interrupted)"},
			{rel, "checkout [eur]", rel, "skipped", "not run: not started when the report was written (initial)"},
			{rel, "checkout [usd]", rel, "skipped", "not run: not started when the report was written (initial)"},
		}, [3]int{4, 0, 1}},
		{"blocked", reporttest.Blocked(t), []caseSummary{
			{"checkout-service", "contract-tests", "checkout-service", "error:blocked", "Failed (Blocked): waited 10m0s for exclusive environment staging, held by run r-0000"},
			{rel, "login", rel, "error:blocked", "Failed (Blocked): waited 10m0s for exclusive environment staging, held by run r-0000"},
			{rel, "checkout [eur]", rel, "error:blocked", "Failed (Blocked): waited 10m0s for exclusive environment staging, held by run r-0000"},
			{rel, "checkout [usd]", rel, "error:blocked", "Failed (Blocked): waited 10m0s for exclusive environment staging, held by run r-0000"},
		}, [3]int{4, 0, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, b := write(t, tt.res)
			p := parse(t, b)
			if diff := cmp.Diff(tt.want, summarize(p)); diff != "" {
				t.Errorf("testcases (-want +got):\n%s", diff)
			}
			if got := [3]int{p.Tests, p.Failures, p.Errors}; got != tt.total {
				t.Errorf("testsuites tests/failures/errors = %v, want %v", got, tt.total)
			}
			for _, s := range p.Suites {
				f, e, sk := 0, 0, 0
				for _, c := range s.Cases {
					if c.Failure != nil {
						f++
					}
					if c.Error != nil {
						e++
					}
					if c.Skipped != nil {
						sk++
					}
				}
				if s.Tests != len(s.Cases) || s.Failures != f || s.Errors != e || s.Skipped != sk {
					t.Errorf("suite %s counts tests=%d failures=%d errors=%d skipped=%d, want %d %d %d %d",
						s.Name, s.Tests, s.Failures, s.Errors, s.Skipped, len(s.Cases), f, e, sk)
				}
			}
		})
	}
}

func TestFailureCarriesExpectationAndOutput(t *testing.T) {
	_, b := write(t, reporttest.Failures(t))
	p := parse(t, b)
	c := p.Suites[1].Cases[1]
	if c.Failure == nil {
		t.Fatal("checkout [eur] has no <failure>")
	}
	for _, want := range []string{`step 2 "create cart" at zof.yaml:62`, "expected: 201", "got:      500 Internal Server Error", `  | {"error":"db timeout"}`} {
		if !strings.Contains(c.Failure.Text, want) {
			t.Errorf("failure text lacks %q:\n%s", want, c.Failure.Text)
		}
	}
	for _, want := range []string{"step 1 passed: add item (30ms) [zof.yaml:57]", "step 2 failed: create cart (85ms) [zof.yaml:62]", "step 3 skipped: pay [zof.yaml:68]"} {
		if !strings.Contains(c.SystemOut, want) {
			t.Errorf("system-out lacks %q:\n%s", want, c.SystemOut)
		}
	}
}

func TestProperties(t *testing.T) {
	_, b := write(t, reporttest.Failures(t))
	p := parse(t, b)
	got := map[string]string{}
	for _, pr := range p.Suites[1].Properties {
		got[pr.Name] = pr.Value
	}
	want := map[string]string{
		"zof.run.id":             "r-0001",
		"zof.run.url":            "https://zof.example.test/runs/r-0001",
		"zof.run.status":         "Failed",
		"zof.project":            "checkout-service",
		"zof.environment":        "staging",
		"zof.set":                "release",
		"zof.sha":                "0123456789abcdef0123456789abcdef01234567",
		"zof.ref":                "refs/pull/42/merge",
		"zof.scope":              "changed",
		"zof.scope.effective":    "all",
		"zof.scope.widened":      `global file go.mod matches "go.mod": all cases`,
		"zof.selection.login":    `global file go.mod matches "go.mod": all cases`,
		"zof.selection.checkout": `services/checkout/cart.go matches "services/checkout/**"`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("release suite properties (-want +got):\n%s", diff)
	}
}

func TestHostileTextIsSanitised(t *testing.T) {
	_, b := write(t, reporttest.Hostile(t))
	if !utf8.Valid(b) {
		t.Fatal("report is not valid UTF-8")
	}
	for i, r := range string(b) {
		ok := r == '\t' || r == '\n' || (r >= 0x20 && r < 0x7f) || (r > 0x9f && r != 0xfffe && r != 0xffff)
		if !ok {
			t.Fatalf("character %U at byte %d is not allowed", r, i)
		}
	}
	p := parse(t, b)
	c := p.Suites[0].Cases[0]
	if want := "weird]]> [ü🙂]"; c.Name != want {
		t.Errorf("testcase name = %q, want %q", c.Name, want)
	}
	for _, want := range []string{"::error::forged command", "emoji 🙂 ok", "bad:\ufffd\ufffd end", "]]>", "green", "after osc"} {
		if !strings.Contains(c.SystemOut, want) {
			t.Errorf("system-out lacks %q:\n%s", want, c.SystemOut)
		}
	}
	if strings.Contains(c.SystemOut, "\n::error") {
		t.Errorf("a line of output starts with a workflow command:\n%s", c.SystemOut)
	}
	if strings.Contains(c.SystemOut, "window title") {
		t.Errorf("an OSC sequence's text survived:\n%s", c.SystemOut)
	}
}

func TestSecondsIsPlainDecimal(t *testing.T) {
	_, b := write(t, reporttest.Flaky(t))
	for _, s := range parse(t, b).Suites {
		for _, c := range s.Cases {
			if strings.ContainsAny(c.Time, "eE-") || !strings.Contains(c.Time, ".") {
				t.Errorf("%s time = %q, want plain decimal seconds", c.Name, c.Time)
			}
		}
	}
}

func TestAtomicWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a", "b", "junit.xml")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := junit.New(report.Options{Path: path, Now: reporttest.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Report(context.Background(), reporttest.AllPassed(t)); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("<?xml")) {
		t.Errorf("file was not replaced: %q", b[:min(len(b), 20)])
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode = %v, want 0644", fi.Mode().Perm())
	}
	// A directory in the way: the error says where, and nothing is left behind.
	blocker := filepath.Join(dir, "a")
	r2, _ := junit.New(report.Options{Path: blocker, Now: reporttest.Now})
	if err := r2.Report(context.Background(), reporttest.AllPassed(t)); err == nil || !strings.Contains(err.Error(), blocker) {
		t.Errorf("writing over a directory: err = %v, want one naming %s", err, blocker)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("temporary files left behind after a failed write: %v", entries)
	}
}

func TestNeedsPath(t *testing.T) {
	if _, err := junit.New(report.Options{}); err == nil || !strings.Contains(err.Error(), "--junit") {
		t.Errorf("New without a path: err = %v, want a hint naming --junit", err)
	}
}

func TestEmptyRunKeepsProperties(t *testing.T) {
	req := &api.RunRequest{Project: "p", Environment: api.Environment{Name: "local"}, Selection: api.Selection{Scope: "smoke", Effective: "smoke"}}
	res := &report.Result{Run: reporttest.NewBuilder(t, req).Run}
	_, b := write(t, res)
	p := parse(t, b)
	if len(p.Suites) != 1 || p.Suites[0].Tests != 0 || len(p.Suites[0].Properties) == 0 {
		t.Errorf("empty run: suites = %+v, want one suite with properties and no tests", p.Suites)
	}
}

// TestLocations: with JUnitLocations every testcase carries file (the suite) and line (the
// failing step's, else the case's), which GitLab's unit test report and test-report actions
// read; without it (the default) neither attribute is written, so the output stays valid
// against the Jenkins XSD (TestGoldensValidateAgainstXSD checks the default goldens).
func TestLocations(t *testing.T) {
	for _, sc := range reporttest.Scenarios(t) {
		t.Run(sc.Name, func(t *testing.T) {
			_, plain := write(t, sc.Result)
			if bytes.Contains(plain, []byte(` file="`)) || bytes.Contains(plain, []byte(` line="`)) {
				t.Fatalf("the default output has file/line attributes, outside the XSD:\n%s", plain)
			}
			path := filepath.Join(t.TempDir(), "junit.xml")
			r, err := junit.New(report.Options{Path: path, Now: reporttest.Now, JUnitLocations: true})
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Report(context.Background(), sc.Result); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var doc struct {
				Suites []struct {
					Cases []struct {
						Name string `xml:"name,attr"`
						File string `xml:"file,attr"`
						Line int    `xml:"line,attr"`
					} `xml:"testcase"`
				} `xml:"testsuite"`
			}
			if err := xml.Unmarshal(b, &doc); err != nil {
				t.Fatal(err)
			}
			// Expected line of each testcase, by its name.
			want := map[string]int{}
			for i := range sc.Result.Run.Members {
				m := &sc.Result.Run.Members[i]
				line := m.Line
				if _, st := report.FailingStep(m); st != nil && st.Line > 0 {
					line = st.Line
				}
				want[report.Line(nil, report.DisplayName(m))] = line
			}
			n := 0
			for _, s := range doc.Suites {
				for _, c := range s.Cases {
					n++
					if c.File != report.Line(nil, sc.Result.Run.SuiteFile) {
						t.Errorf("%s: file %q, want %q", c.Name, c.File, sc.Result.Run.SuiteFile)
					}
					if c.Line != want[c.Name] {
						t.Errorf("%s: line %d, want %d", c.Name, c.Line, want[c.Name])
					}
				}
			}
			if n != len(sc.Result.Run.Members) {
				t.Errorf("%d testcases, want %d", n, len(sc.Result.Run.Members))
			}
		})
	}
}

// TestLocationsWithSets: members of sets go into one suite per set, in order of first
// appearance, after the run-level suite; the locations follow the members there.
func TestLocationsWithSets(t *testing.T) {
	res := reporttest.Failures(t)
	run := res.Run
	for i := range run.Members {
		run.Members[i].Line = 100 + i
		run.Members[i].Steps = nil // no failing step: the case's own line
		if i%2 == 0 {
			run.Members[i].Set = "release"
		}
	}
	doc := junit.Build(res, nil, reporttest.Now())
	junit.AddLocations(doc, res, nil)
	want := map[string]int{}
	for i := range run.Members {
		want[report.DisplayName(&run.Members[i])] = run.Members[i].Line
	}
	n := 0
	for _, s := range doc.Suites {
		for _, c := range s.Cases {
			n++
			if c.Line != want[c.Name] || c.File != run.SuiteFile {
				t.Errorf("%s in %s: %s:%d, want %s:%d", c.Name, s.Name, c.File, c.Line, run.SuiteFile, want[c.Name])
			}
		}
	}
	if n != len(run.Members) {
		t.Errorf("%d testcases, want %d", n, len(run.Members))
	}
}

// TestNothingToRun: an empty selection still writes the report, with zero
// tests and the reason as a property, so GitLab's artifacts:reports:junit and
// test-report actions find a file. testdata/nothing-to-run.xml is validated
// against the XSD with the other goldens.
func TestNothingToRun(t *testing.T) {
	res := &report.Result{
		Run: &api.Run{
			Project: "checkout", Environment: "staging", Members: []api.Member{},
			Selection: api.Selection{Scope: "changed", Effective: "changed", Cases: []api.SelectedCase{}},
		},
		Gate:    gate.Empty,
		Verdict: "nothing to run: scope changed selected none of the 4 cases",
	}
	_, got := write(t, res)
	golden := filepath.Join("testdata", "nothing-to-run.xml")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (-update writes it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got; -update rewrites):\n%s", golden, diff)
	}
	var p parsed
	if err := xml.Unmarshal(got, &p); err != nil {
		t.Fatal(err)
	}
	if p.Tests != 0 || len(p.Suites) != 1 || p.Suites[0].Tests != 0 {
		t.Fatalf("want one suite with zero tests, got %+v", p)
	}
	found := false
	for _, prop := range p.Suites[0].Properties {
		if prop.Name == "zof.nothing_to_run" && prop.Value == res.Verdict {
			found = true
		}
	}
	if !found {
		t.Errorf("no zof.nothing_to_run property with the reason in %+v", p.Suites[0].Properties)
	}
}

// TestArtifactsGolden: the failed testcases of a run with artifacts list
// them in <system-out>: an [[ATTACHMENT|path]] line alone per file written
// by --artifacts DIR, and the download URL of each when a server ran it.
// The golden validates against the XSD with the others.
func TestArtifactsGolden(t *testing.T) {
	for _, tc := range []struct {
		name   string
		dir    string
		server bool
	}{
		{"artifacts-embedded", "zof-artifacts", false},
		{"artifacts-server", "/builds/shop/zof-artifacts", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := reporttest.WithArtifacts(reporttest.Failures(t), tc.dir, tc.server)
			_, got := write(t, res)
			golden := filepath.Join("testdata", tc.name+".xml")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (-update writes it)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("%s differs (-want +got; -update rewrites):\n%s", golden, diff)
			}
			for _, a := range res.Artifacts {
				line := "\n[[ATTACHMENT|" + a.Path + "]]\n"
				if !strings.Contains(string(got), line) {
					t.Errorf("no line %q alone for %s", strings.TrimSpace(line), a.Name)
				}
				if tc.server && !strings.Contains(string(got), a.URL) {
					t.Errorf("no URL %s for %s", a.URL, a.Name)
				}
			}
		})
	}
}
