package suite_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/suite"
)

var fullEnv = map[string]string{"DB_PASSWORD": "pw-123", "API_KEY": "key-9", "CI_USER": "bob", "STAGING_TOKEN": "stg-tok"}

func loadFull(t *testing.T, opts suite.Options) *suite.Suite {
	t.Helper()
	if opts.Lookup == nil {
		opts.Lookup = lookup(fullEnv)
	}
	s, err := suite.Load("testdata/full.yaml", opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ptr[T any](v T) *T { return &v }

func TestRequest(t *testing.T) {
	s := loadFull(t, suite.Options{})
	if len(s.Warnings) != 0 {
		t.Errorf("warnings: %v", s.Warnings)
	}
	// asked out of order and with a repeat: the request keeps suite order
	req, err := s.Request("", []string{"contract", "checkout", "login", "checkout"})
	if err != nil {
		t.Fatal(err)
	}
	body := "raw $HOME"
	want := &api.RunRequest{
		Project: "shop",
		Environment: api.Environment{
			Name:    "local",
			URL:     "http://127.0.0.1:8089",
			Headers: map[string]string{"X-Client": "zof"},
			Serve: &api.Serve{
				Command: "go run ./app",
				Dir:     "app",
				Env:     map[string]string{"DB_PASSWORD": "pw-123", "MODE": "test"},
				Ready:   "/healthz",
				Timeout: api.Duration(time.Minute),
			},
		},
		Cases: []api.Case{
			{
				ID: "login", Name: "User can log in", Tags: []string{"smoke", "auth"},
				Timeout: api.Duration(2 * time.Minute), Retries: 1, Line: 41,
				Steps: []api.Step{
					{Name: "health", HTTP: &api.HTTPRequest{Path: "/healthz"}, Line: 46},
					{
						Name: "token issued",
						HTTP: &api.HTTPRequest{
							Method:  "POST",
							Path:    "/api/login",
							Headers: map[string]string{"X-Api-Key": "k-key-9"},
							JSON:    json.RawMessage(`{"user":"demo","remember":true,"tries":3,"ratio":0.5,"extra":null,"list":[1,"two"]}`),
						},
						Expect: &api.Expect{
							Status:       []string{"200", "2xx"},
							Headers:      map[string]string{"Content-Type": "application/json"},
							BodyContains: []string{"token", "user"},
							BodyMatches:  `"token":\s*"[^"]+"`,
							JSON: []api.JSONAssert{
								{Path: "$.token", Exists: ptr(true)},
								{Path: "$.user['name']", Equals: json.RawMessage(`"demo"`)},
								{Path: "$.roles[0]", Contains: ptr("adm"), Matches: ptr("^ad")},
							},
							MaxDuration: api.Duration(800 * time.Millisecond),
						},
						Capture: map[string]string{"token": "$.token"},
						Line:    47,
					},
					{
						Name: "profile",
						HTTP: &api.HTTPRequest{
							Path:    "/api/me",
							Headers: map[string]string{"Authorization": "Bearer ${capture.token}"},
							Query:   map[string]string{"verbose": "1"},
						},
						Timeout: api.Duration(10 * time.Second),
						Expect:  &api.Expect{Status: []string{"200"}, BodyContains: []string{"$5 off"}},
						Line:    66,
					},
				},
			},
			{
				ID: "checkout", Timeout: api.Duration(30 * time.Second), Retries: 0, Line: 74,
				Variants: []api.Variant{
					{Name: "eur", Vars: map[string]string{"currency": "EUR"}},
					{Name: "usd", Vars: map[string]string{"currency": "USD", "card": "4111-1111"}},
				},
				Steps: []api.Step{{
					HTTP: &api.HTTPRequest{
						Method: "POST",
						URL:    "https://payments.example.com/api/cart",
						Form:   map[string]string{"currency": "${vars.currency}"},
					},
					Expect: &api.Expect{Status: []string{"201"}},
					Line:   83,
				}},
			},
			{
				ID: "contract", Tags: []string{"nightly"}, Timeout: api.Duration(2 * time.Minute), Retries: 1, Line: 89,
				Steps: []api.Step{
					{Run: &api.Command{Command: "go test ./api/..."}, Timeout: api.Duration(3 * time.Minute), Line: 92},
					{Run: &api.Command{Command: "./scripts/check.sh", Env: map[string]string{"TOKEN": "none", "USER": "bob"}, Dir: "scripts", ExitCode: 3}, Line: 94},
					{HTTP: &api.HTTPRequest{Path: "/echo", Body: &body}, Line: 99},
				},
			},
		},
		Sets: []api.Set{
			{Name: "release", Cases: []string{"login", "checkout"}, Sequential: true},
			{Name: "nightly", Cases: []string{"contract", "login", "checkout"}},
			{Name: "all-parallel", Cases: []string{"contract", "login", "checkout"}},
		},
		SuiteFile: "testdata/full.yaml",
		// serve env from ${DB_PASSWORD}, the secret: true header and var,
		// and run env from ${CI_USER}; "none" is a default written in the file.
		Secrets: []string{"4111-1111", "bob", "k-key-9", "pw-123"},
	}
	if diff := cmp.Diff(want, req); diff != "" {
		t.Errorf("request (-want +got):\n%s", diff)
	}

	// The request is a copy: changing it leaves the suite alone.
	req.Cases[0].Steps[1].HTTP.Headers["X-Api-Key"] = "changed"
	req.Environment.Serve.Env["MODE"] = "changed"
	again, _ := s.Request("", []string{"login"})
	if got := again.Cases[0].Steps[1].HTTP.Headers["X-Api-Key"]; got != "k-key-9" {
		t.Errorf("suite shares maps with a request: header = %q", got)
	}
	if got := again.Environment.Serve.Env["MODE"]; got != "test" {
		t.Errorf("suite shares maps with a request: serve env = %q", got)
	}
}

func TestRequestSubset(t *testing.T) {
	s := loadFull(t, suite.Options{})
	req, err := s.Request("staging", []string{"checkout"})
	if err != nil {
		t.Fatal(err)
	}
	wantEnv := api.Environment{
		Name: "staging", URL: "https://staging.example.com", Exclusive: true,
		Headers: map[string]string{"Authorization": "Bearer stg-tok"},
	}
	if diff := cmp.Diff(wantEnv, req.Environment); diff != "" {
		t.Errorf("environment (-want +got):\n%s", diff)
	}
	wantSets := []api.Set{
		{Name: "release", Cases: []string{"checkout"}, Sequential: true},
		{Name: "nightly", Cases: []string{"checkout"}},
		{Name: "all-parallel", Cases: []string{"checkout"}},
	}
	if diff := cmp.Diff(wantSets, req.Sets); diff != "" {
		t.Errorf("sets (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"4111-1111", "stg-tok"}, req.Secrets); diff != "" {
		t.Errorf("secrets (-want +got):\n%s", diff)
	}
	none, err := s.Request("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(none.Cases) != 0 || len(none.Sets) != 0 || none.Cases == nil {
		t.Errorf("no ids: want an empty, non-nil case list and no sets, got %+v %+v", none.Cases, none.Sets)
	}
}

func TestRequestErrors(t *testing.T) {
	// staging needs STAGING_TOKEN; it is not the environment in use, so the
	// suite loads, and asking for staging later reports the missing variable.
	s := loadFull(t, suite.Options{Lookup: lookup(map[string]string{"DB_PASSWORD": "x", "API_KEY": "k", "CI_USER": "u"})})
	tests := []struct {
		name string
		env  string
		ids  []string
		want string
	}{
		{"unresolved environment", "staging", []string{"login"},
			"testdata/full.yaml:21:29: environments.staging.headers.Authorization: unknown variable ${STAGING_TOKEN}: it is not set — set STAGING_TOKEN in the job's environment, or give a default: ${STAGING_TOKEN:-value}"},
		{"unknown environment", "prod", nil, `testdata/full.yaml: environment "prod" is not defined in the suite — defined: local, staging`},
		{"unknown case", "", []string{"logn"}, `testdata/full.yaml: unknown case "logn" — did you mean "login"?`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Request(tt.env, tt.ids)
			var se *suite.Error
			if !errors.As(err, &se) {
				t.Fatalf("err = %v (%T), want *suite.Error", err, err)
			}
			if err.Error() != tt.want {
				t.Errorf("err =\n%s\nwant\n%s", err, tt.want)
			}
		})
	}

	// several environments and no default: Request("") must be told which
	src := "version: 1\nenvironments:\n  a: {url: \"http://a\"}\n  b: {url: \"http://b\"}\ncases:\n  - id: x\n    steps: [{http: {path: /}}]\n"
	s2, err := suite.Parse("zof.yaml", strings.NewReader(src), suite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s2.Request("", []string{"x"})
	want := "zof.yaml: no environment chosen: the suite defines several and no defaults.environment — pass --env NAME (or ZOF_ENV), or set defaults.environment; defined: a, b"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
	req, err := s2.Request("b", []string{"x"})
	if err != nil || req.Environment.URL != "http://b" {
		t.Errorf("Request(b) = %+v, %v", req, err)
	}

	// an http path with no environment url to join it to
	s3, err := suite.Parse("zof.yaml", strings.NewReader("version: 1\ncases:\n  - id: x\n    steps: [{http: {path: /}}]\n"), suite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s3.Request("", []string{"x"})
	want = `zof.yaml:4:13: case "x": an http step uses a path but the suite defines no environments — set the environment's url, or give the step a full http.url`
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
}

func TestModel(t *testing.T) {
	s := loadFull(t, suite.Options{})
	if s.Environment != "local" || s.Version != 1 || s.Project != "shop" {
		t.Errorf("Environment=%q Version=%d Project=%q", s.Environment, s.Version, s.Project)
	}
	if len(s.Digest) != 64 {
		t.Errorf("digest %q is not a hex sha256", s.Digest)
	}
	wantSel := suite.Selection{
		Global:          []suite.Pattern{{Value: "go.mod", Line: 30, Col: 12}, {Value: ".github/workflows/**", Line: 30, Col: 20}},
		Ignore:          []suite.Pattern{{Value: "docs/**", Line: 31, Col: 12}, {Value: "!docs/api/**", Line: 31, Col: 23}},
		Unmapped:        suite.ScopeSmoke,
		MaxChangedFiles: 200,
		OnUnknownDiff:   suite.ScopeFail,
	}
	if diff := cmp.Diff(wantSel, s.Selection); diff != "" {
		t.Errorf("selection (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(suite.Gate{FailOn: []string{"failed", "blocked"}, OnEmpty: "pass"}, s.Gate); diff != "" {
		t.Errorf("gate (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(suite.Defaults{Environment: "local", Timeout: 2 * time.Minute, Retries: 1}, s.Defaults); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	c := s.Case("checkout")
	if c == nil || !c.Always || c.Retries != 0 || c.Timeout != 30*time.Second || !cmp.Equal(c.Covers, []string{"services/checkout/**"}) {
		t.Errorf("checkout = %+v", c)
	}
	if got, _ := s.SetCases("all-parallel"); !cmp.Equal(got, []string{"contract", "login", "checkout"}) {
		t.Errorf("SetCases(all-parallel) = %v", got)
	}
	if _, ok := s.SetCases("nope"); ok {
		t.Error("SetCases(nope) found a set")
	}
	wantMembers := []suite.SetMember{{Kind: suite.MemberSet, Name: "nightly", Line: 109, Col: 12}, {Kind: suite.MemberCase, Name: "login", Line: 110, Col: 13}}
	if diff := cmp.Diff(wantMembers, s.Set("all-parallel").Members); diff != "" {
		t.Errorf("members (-want +got):\n%s", diff)
	}
	if got := s.Tagged("smoke"); !cmp.Equal(got, []string{"login"}) {
		t.Errorf("Tagged(smoke) = %v", got)
	}
	if got := s.Tags(); !cmp.Equal(got, []string{"smoke", "auth", "nightly"}) {
		t.Errorf("Tags() = %v", got)
	}
	if got := s.CaseIDs(); !cmp.Equal(got, []string{"login", "checkout", "contract"}) {
		t.Errorf("CaseIDs() = %v", got)
	}
}

func TestDefaultsWhenUnset(t *testing.T) {
	s, err := suite.Parse("zof.yaml", strings.NewReader("version: 1\ncases:\n  - id: a\n    steps: [{run: x}]\n"), suite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := suite.Selection{Unmapped: "all", MaxChangedFiles: 500, OnUnknownDiff: "all"}
	if diff := cmp.Diff(want, s.Selection); diff != "" {
		t.Errorf("selection (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(suite.Gate{FailOn: []string{"failed", "blocked", "cancelled", "timeout"}, OnEmpty: "fail"}, s.Gate); diff != "" {
		t.Errorf("gate (-want +got):\n%s", diff)
	}
	if s.Cases[0].Timeout != suite.DefaultCaseTimeout || s.Environment != "" {
		t.Errorf("timeout = %v, environment = %q", s.Cases[0].Timeout, s.Environment)
	}
	req, err := s.Request("", []string{"a"})
	if err != nil {
		t.Fatal(err)
	}
	if req.Environment.Name != "" || req.Cases[0].Timeout != api.Duration(5*time.Minute) || req.Secrets != nil {
		t.Errorf("request = %+v", req)
	}
}
