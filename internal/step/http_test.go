package step

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/secret"
)

const doc = `{"token":"abc123","n":1.0,"big":12345678901234567890,"items":[1,"two",{"k":"v"}],"s":"hello world","obj":{"a.b":1,"x":null},"ok":true}`

// testServer answers the requests the tests make; every handler returns
// promptly when the client goes away.
func testServer(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Add("X-Multi", "one")
		w.Header().Add("X-Multi", "two")
		io.WriteString(w, doc)
	})
	mux.HandleFunc("/status/{code}", func(w http.ResponseWriter, r *http.Request) {
		var code int
		fmt.Sscan(r.PathValue("code"), &code)
		w.WriteHeader(code)
		io.WriteString(w, `{"error":"boom"}`)
	})
	mux.HandleFunc("/html", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "<html><h1>Sign in</h1></html>")
	})
	mux.HandleFunc("/echo/", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h := map[string]string{}
		for k := range r.Header {
			h[k] = r.Header.Get(k)
		}
		json.NewEncoder(w).Encode(map[string]any{
			"method": r.Method, "path": r.URL.Path, "query": r.URL.RawQuery, "headers": h, "body": string(b), "host": r.Host,
		})
	})
	mux.HandleFunc("/hang", func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	mux.HandleFunc("/slowbody", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		io.WriteString(w, "start")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	mux.HandleFunc("/huge", func(w http.ResponseWriter, r *http.Request) {
		// An endless body: the client must stop reading, not the server.
		w.Header().Set("Content-Type", "application/octet-stream")
		io.Copy(w, endless{})
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/loop", http.StatusFound)
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/json", http.StatusMovedPermanently)
	})
	mux.HandleFunc("/sleep", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(30 * time.Millisecond)
		io.WriteString(w, "late")
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

func ptr[T any](v T) *T { return &v }

func get(path string, x *api.Expect) api.Step {
	return api.Step{HTTP: &api.HTTPRequest{Path: path}, Expect: x}
}

func jsonX(a ...api.JSONAssert) *api.Expect { return &api.Expect{JSON: a} }

func TestHTTPExpectations(t *testing.T) {
	srv := testServer(t)
	ex := NewExecutor(ExecutorOptions{})
	tests := []struct {
		name string
		step api.Step
		want *api.Failure // nil: passes
	}{
		{"default status is 2xx", get("/json", nil), nil},
		{"default status fails on 500", get("/status/500", nil), &api.Failure{
			Message: "status: expected 2xx, got 500", Expected: "2xx", Actual: `500 Internal Server Error, body: {"error":"boom"}`}},
		{"status code", get("/status/201", &api.Expect{Status: []string{"201"}}), nil},
		{"status list", get("/status/404", &api.Expect{Status: []string{"200", "404"}}), nil},
		{"status class", get("/status/404", &api.Expect{Status: []string{"4xx"}}), nil},
		{"status mismatch", get("/status/500", &api.Expect{Status: []string{"201"}}), &api.Failure{
			Message: "status: expected 201, got 500", Expected: "201", Actual: `500 Internal Server Error, body: {"error":"boom"}`}},
		{"status list mismatch", get("/status/302", &api.Expect{Status: []string{"200", "4xx"}}), &api.Failure{
			Message: "status: expected 200 or 4xx, got 302", Expected: "200 or 4xx", Actual: `302 Found, body: {"error":"boom"}`}},
		{"status invalid", get("/json", &api.Expect{Status: []string{"abc"}}), &api.Failure{
			Message: `status: invalid expectation "abc": use a code like 200 or a class like 2xx`}},
		{"header exact, name case-insensitive", get("/json", &api.Expect{Headers: map[string]string{"content-type": "application/json"}}), nil},
		{"header any of several values", get("/json", &api.Expect{Headers: map[string]string{"X-Multi": "two"}}), nil},
		{"header mismatch", get("/json", &api.Expect{Headers: map[string]string{"Content-Type": "text/html"}}), &api.Failure{
			Message: `header Content-Type: expected "text/html", got "application/json"`, Expected: "text/html", Actual: "application/json"}},
		{"header missing", get("/json", &api.Expect{Headers: map[string]string{"x-request-id": "1"}}), &api.Failure{
			Message: `header X-Request-Id: expected "1", got (missing)`, Expected: "1", Actual: "(missing)"}},
		{"body_contains all", get("/html", &api.Expect{BodyContains: []string{"Sign in", "<h1>"}}), nil},
		{"body_contains missing", get("/html", &api.Expect{BodyContains: []string{"Sign in", "Log out"}}), &api.Failure{
			Message: `body_contains: the body does not contain "Log out"`, Expected: `body containing "Log out"`, Actual: "<html><h1>Sign in</h1></html>"}},
		{"body_matches", get("/html", &api.Expect{BodyMatches: `<h1>Sign \w+</h1>`}), nil},
		{"body_matches fails", get("/html", &api.Expect{BodyMatches: `^\{`}), &api.Failure{
			Message: `body_matches: the body does not match /^\{/`, Expected: `body matching /^\{/`, Actual: "<html><h1>Sign in</h1></html>"}},
		{"body_matches invalid", get("/html", &api.Expect{BodyMatches: `(`}), &api.Failure{
			Message: "body_matches: invalid regular expression \"(\": error parsing regexp: missing closing ): `(` (Go RE2 syntax)"}},
		{"json equals string", get("/json", jsonX(api.JSONAssert{Path: "$.token", Equals: json.RawMessage(`"abc123"`)})), nil},
		{"json equals number by value", get("/json", jsonX(api.JSONAssert{Path: "$.n", Equals: json.RawMessage(`1`)}, api.JSONAssert{Path: "$.n", Equals: json.RawMessage(`1e0`)})), nil},
		{"json equals big number exactly", get("/json", jsonX(api.JSONAssert{Path: "$.big", Equals: json.RawMessage(`12345678901234567890`)})), nil},
		{"json equals big number off by one", get("/json", jsonX(api.JSONAssert{Path: "$.big", Equals: json.RawMessage(`12345678901234567891`)})), &api.Failure{
			Message: "json $.big: expected 12345678901234567891, got 12345678901234567890", Expected: "12345678901234567891", Actual: "12345678901234567890"}},
		{"json equals object ignores key order", get("/json", jsonX(api.JSONAssert{Path: "$.obj", Equals: json.RawMessage(`{"x":null,"a.b":1.00}`)})), nil},
		{"json equals index and negative index", get("/json", jsonX(api.JSONAssert{Path: "$.items[1]", Equals: json.RawMessage(`"two"`)}, api.JSONAssert{Path: "$.items[-1]['k']", Equals: json.RawMessage(`"v"`)})), nil},
		{"json equals mismatch", get("/json", jsonX(api.JSONAssert{Path: "$.token", Equals: json.RawMessage(`"xyz"`)})), &api.Failure{
			Message: `json $.token: expected "xyz", got "abc123"`, Expected: `"xyz"`, Actual: `"abc123"`}},
		{"json equals type mismatch", get("/json", jsonX(api.JSONAssert{Path: "$.n", Equals: json.RawMessage(`"1"`)})), &api.Failure{
			Message: `json $.n: expected "1", got 1.0`, Expected: `"1"`, Actual: "1.0"}},
		{"json equals on a missing path", get("/json", jsonX(api.JSONAssert{Path: "$.items[7]", Equals: json.RawMessage(`1`)})), &api.Failure{
			Message: "json $.items[7]: expected 1, but the path does not exist ($.items has 3 elements, no [7])", Expected: "1", Actual: "not found: $.items has 3 elements, no [7]"}},
		{"json bare path must exist", get("/json", jsonX(api.JSONAssert{Path: "$.obj['a.b']"})), nil},
		{"json exists true", get("/json", jsonX(api.JSONAssert{Path: "$.obj.x", Exists: ptr(true)})), nil},
		{"json exists false", get("/json", jsonX(api.JSONAssert{Path: "$.nope", Exists: ptr(false)})), nil},
		{"json exists fails", get("/json", jsonX(api.JSONAssert{Path: "$.tokn"})), &api.Failure{
			Message: `json $.tokn: expected to exist, but it does not ($ has no key "tokn")`, Expected: "to exist", Actual: `not found: $ has no key "tokn"`}},
		{"json not exists fails", get("/json", jsonX(api.JSONAssert{Path: "$.ok", Exists: ptr(false)})), &api.Failure{
			Message: "json $.ok: expected not to exist, got true", Expected: "not to exist", Actual: "true"}},
		{"json path through a scalar", get("/json", jsonX(api.JSONAssert{Path: "$.s.x"})), &api.Failure{
			Message: "json $.s.x: expected to exist, but it does not ($.s is a string, not an object)", Expected: "to exist", Actual: "not found: $.s is a string, not an object"}},
		{"json contains substring", get("/json", jsonX(api.JSONAssert{Path: "$.s", Contains: ptr("lo wo")})), nil},
		{"json contains element", get("/json", jsonX(api.JSONAssert{Path: "$.items", Contains: ptr("two")}, api.JSONAssert{Path: "$.items", Contains: ptr("1")})), nil},
		{"json contains key", get("/json", jsonX(api.JSONAssert{Path: "$.obj", Contains: ptr("a.b")})), nil},
		{"json contains fails", get("/json", jsonX(api.JSONAssert{Path: "$.items", Contains: ptr("three")})), &api.Failure{
			Message: `json $.items: expected to contain "three", got [1,"two",{"k":"v"}]`, Expected: `to contain "three"`, Actual: `[1,"two",{"k":"v"}]`}},
		{"json contains on a number", get("/json", jsonX(api.JSONAssert{Path: "$.n", Contains: ptr("1")})), &api.Failure{
			Message: "json $.n: contains needs a string, an array or an object, got a number 1.0", Expected: `to contain "1"`, Actual: "1.0"}},
		{"json matches string form", get("/json", jsonX(api.JSONAssert{Path: "$.token", Matches: ptr(`^abc\d+$`)}, api.JSONAssert{Path: "$.ok", Matches: ptr(`^true$`)})), nil},
		{"json matches fails", get("/json", jsonX(api.JSONAssert{Path: "$.token", Matches: ptr(`^x`)})), &api.Failure{
			Message: `json $.token: expected to match /^x/, got "abc123"`, Expected: "to match /^x/", Actual: `"abc123"`}},
		{"json invalid path", get("/json", jsonX(api.JSONAssert{Path: "token"})), &api.Failure{
			Message: `json: JSONPath "token": must start with $, e.g. $.token or $.items[0].id`}},
		{"json on a non-JSON body", get("/html", jsonX(api.JSONAssert{Path: "$.x"})), &api.Failure{
			Message: "json: the response body is not JSON (invalid character '<' looking for beginning of value)", Expected: "a JSON body", Actual: "<html><h1>Sign in</h1></html>"}},
		{"max_duration", get("/json", &api.Expect{MaxDuration: api.Duration(5 * time.Second)}), nil},
		{"first failure reported", get("/status/500", &api.Expect{Status: []string{"200"}, BodyContains: []string{"nope"}}), &api.Failure{
			Message: "status: expected 200, got 500", Expected: "200", Actual: `500 Internal Server Error, body: {"error":"boom"}`}},
		{"redirect followed", get("/redirect", jsonX(api.JSONAssert{Path: "$.ok", Equals: json.RawMessage(`true`)})), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := ex.Run(context.Background(), tt.step, Input{BaseURL: srv.URL})
			wantStatus := api.StepPassed
			if tt.want != nil {
				wantStatus = api.StepFailed
			}
			if out.Status != wantStatus {
				t.Errorf("status = %s, want %s; output:\n%s", out.Status, wantStatus, out.Output)
			}
			if diff := cmp.Diff(tt.want, out.Failure); diff != "" {
				t.Errorf("failure (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMaxDurationFails(t *testing.T) {
	srv := testServer(t)
	out := NewExecutor(ExecutorOptions{}).Run(context.Background(), get("/sleep", &api.Expect{MaxDuration: api.Duration(time.Millisecond)}), Input{BaseURL: srv.URL})
	if out.Status != api.StepFailed || !strings.HasPrefix(out.Failure.Message, "max_duration: expected at most 1ms, took ") || out.Failure.Expected != "at most 1ms" {
		t.Fatalf("got %s %#v", out.Status, out.Failure)
	}
}

func TestHTTPLogAndAllFailures(t *testing.T) {
	srv := testServer(t)
	out := NewExecutor(ExecutorOptions{}).Run(context.Background(),
		get("/status/500", &api.Expect{Status: []string{"200"}, BodyContains: []string{"nope"}}), Input{BaseURL: srv.URL})
	for _, want := range []string{
		"GET " + srv.URL + "/status/500 → 500 Internal Server Error (",
		`{"error":"boom"}`,
		"2 expectation(s) failed:",
		"- status: expected 200, got 500",
		`- body_contains: the body does not contain "nope"`,
	} {
		if !strings.Contains(out.Output, want) {
			t.Errorf("output lacks %q:\n%s", want, out.Output)
		}
	}
}

func TestRequestBuilding(t *testing.T) {
	srv := testServer(t)
	ex := NewExecutor(ExecutorOptions{})
	in := Input{
		BaseURL:  srv.URL + "/echo/",
		Headers:  map[string]string{"X-Env": "env", "X-Both": "env", "Authorization": "Bearer ${capture.token}"},
		Vars:     map[string]string{"currency": `EUR"quoted`, "sku": "A1"},
		Captures: map[string]string{"token": "t0k"},
	}
	tests := []struct {
		name string
		req  api.HTTPRequest
		want map[string]any // fields of the echo
	}{
		{"get with prefix, query and headers", api.HTTPRequest{
			Path: "/items/${vars.sku}?a=1", Query: map[string]string{"b": "${capture.token}"},
			Headers: map[string]string{"x-both": "step", "Host": "example.test"},
		}, map[string]any{"method": "GET", "path": "/echo/items/A1", "query": "a=1&b=t0k", "host": "example.test",
			"headers": map[string]any{"X-Env": "env", "X-Both": "step", "Authorization": "Bearer t0k"}}},
		{"json body substituted inside strings", api.HTTPRequest{
			Method: "post", Path: "cart", JSON: json.RawMessage(`{"sku":"${vars.sku}","currency":"${vars.currency}","qty":2}`),
		}, map[string]any{"method": "POST", "path": "/echo/cart", "body": `{"currency":"EUR\"quoted","qty":2,"sku":"A1"}`,
			"headers": map[string]any{"Content-Type": "application/json"}}},
		{"form", api.HTTPRequest{Method: "PUT", Path: "f", Form: map[string]string{"u": "${vars.sku}", "p": "a b"}},
			map[string]any{"method": "PUT", "body": "p=a+b&u=A1", "headers": map[string]any{"Content-Type": "application/x-www-form-urlencoded"}}},
		{"raw body and content type header", api.HTTPRequest{Method: "POST", Path: "raw", Body: ptr("id=${capture.token}"), Headers: map[string]string{"Content-Type": "text/plain"}},
			map[string]any{"body": "id=t0k", "headers": map[string]any{"Content-Type": "text/plain"}}},
		{"url used as is", api.HTTPRequest{URL: srv.URL + "/echo/abs"}, map[string]any{"path": "/echo/abs"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := ex.Run(context.Background(), api.Step{HTTP: &tt.req, Capture: map[string]string{"echo": "$"}}, in)
			if out.Status != api.StepPassed {
				t.Fatalf("%s\n%s", out.Failure, out.Output)
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(out.Captures["echo"]), &got); err != nil {
				t.Fatal(err)
			}
			for k, want := range tt.want {
				if wm, ok := want.(map[string]any); ok {
					gm, _ := got[k].(map[string]any)
					for hk, hv := range wm {
						if gm[hk] != hv {
							t.Errorf("%s[%s] = %v, want %v", k, hk, gm[hk], hv)
						}
					}
					continue
				}
				if got[k] != want {
					t.Errorf("%s = %v, want %v", k, got[k], want)
				}
			}
		})
	}
}

func TestRequestURL(t *testing.T) {
	tests := []struct {
		base, path, url string
		query           map[string]string
		want, err       string
	}{
		{base: "http://h:1", path: "/a", want: "http://h:1/a"},
		{base: "http://h:1/", path: "a", want: "http://h:1/a"},
		{base: "http://h:1/prefix/", path: "/a/b", want: "http://h:1/prefix/a/b"},
		{base: "http://h:1/prefix", path: "", want: "http://h:1/prefix"},
		{base: "http://h:1/p?k=1", path: "/a", want: "http://h:1/p/a?k=1"},
		{base: "http://h:1", path: "/a?x=1", query: map[string]string{"y": "2 3"}, want: "http://h:1/a?x=1&y=2+3"},
		{base: "http://h:1", path: "https://other/x", want: "https://other/x"},
		{base: "http://h:1", url: "http://o:2/z", want: "http://o:2/z"},
		{base: "", path: "/a", err: `the step has path "/a" but the environment has no url; set the environment's url, or give the step a full http.url`},
		{base: "ftp://h", path: "/a", err: `url "ftp://h/a" must start with http:// or https:// (check the environment url)`},
		{base: "http://", path: "/a", err: `url "http:/a" has no host (check the environment url)`},
	}
	for _, tt := range tests {
		got, err := requestURL(tt.base, tt.path, tt.url, tt.query)
		gotErr := ""
		if err != nil {
			gotErr = err.Error()
		}
		if got != tt.want || gotErr != tt.err {
			t.Errorf("requestURL(%q, %q, %q) = %q, %q; want %q, %q", tt.base, tt.path, tt.url, got, gotErr, tt.want, tt.err)
		}
	}
}

func TestSubstitutionErrors(t *testing.T) {
	srv := testServer(t)
	ex := NewExecutor(ExecutorOptions{})
	in := Input{BaseURL: srv.URL, Vars: map[string]string{"a": "1"}, Captures: map[string]string{"tok": "x", "id": "y"}}
	tests := []struct {
		name string
		step api.Step
		want string
	}{
		{"unknown capture in path", get("/x/${capture.token}", nil),
			"unknown ${capture.token}: no earlier step of this case captured \"token\" (captured so far: id, tok); add `capture: {token: $.path}` to an earlier http step"},
		{"unknown var in expectation", get("/json", &api.Expect{BodyContains: []string{"${vars.b}"}}),
			`unknown ${vars.b}: the variant has no var "b" (vars: a); add it to every variant's vars`},
		{"unknown var in json body", api.Step{HTTP: &api.HTTPRequest{Path: "/json", JSON: json.RawMessage(`{"k":["${vars.zz}"]}`)}},
			`unknown ${vars.zz}: the variant has no var "zz" (vars: a); add it to every variant's vars`},
		{"unknown var in run env", api.Step{Run: &api.Command{Command: "true", Env: map[string]string{"X": "${vars.q}"}}},
			`unknown ${vars.q}: the variant has no var "q" (vars: a); add it to every variant's vars`},
		{"neither kind", api.Step{}, "the step has neither http nor run; give it one of them"},
		{"both kinds", api.Step{HTTP: &api.HTTPRequest{}, Run: &api.Command{Command: "true"}}, "the step has both http and run; a step is exactly one of them"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := ex.Run(context.Background(), tt.step, in)
			if out.Status != api.StepFailed || out.Failure == nil || out.Failure.Message != tt.want {
				t.Errorf("got %s %v\nwant failed %q", out.Status, out.Failure, tt.want)
			}
		})
	}
}

func TestCaptures(t *testing.T) {
	srv := testServer(t)
	ex := NewExecutor(ExecutorOptions{})
	out := ex.Run(context.Background(), api.Step{
		HTTP:    &api.HTTPRequest{Path: "/json"},
		Capture: map[string]string{"token": "$.token", "n": "$.n", "item": "$.items[2]", "ok": "$.ok", "nothing": "$.obj.x"},
	}, Input{BaseURL: srv.URL})
	want := map[string]string{"token": "abc123", "n": "1.0", "item": `{"k":"v"}`, "ok": "true", "nothing": "null"}
	if diff := cmp.Diff(want, out.Captures); diff != "" || out.Status != api.StepPassed {
		t.Errorf("%s captures (-want +got):\n%s\n%s", out.Status, diff, out.Output)
	}
	if !strings.Contains(out.Output, "captured: item, n, nothing, ok, token") {
		t.Errorf("output does not list the captures:\n%s", out.Output)
	}

	out = ex.Run(context.Background(), api.Step{HTTP: &api.HTTPRequest{Path: "/json"}, Capture: map[string]string{"t": "$.missing"}}, Input{BaseURL: srv.URL})
	if out.Status != api.StepFailed || out.Failure.Message != `capture t: $.missing not found in the response ($ has no key "missing")` || out.Captures != nil {
		t.Errorf("missing capture: %s %v %v", out.Status, out.Failure, out.Captures)
	}
	out = ex.Run(context.Background(), api.Step{HTTP: &api.HTTPRequest{Path: "/html"}, Capture: map[string]string{"t": "$.x"}}, Input{BaseURL: srv.URL})
	if out.Status != api.StepFailed || !strings.HasPrefix(out.Failure.Message, "capture: the response body is not JSON (") {
		t.Errorf("capture from html: %s %v", out.Status, out.Failure)
	}
	// A failed expectation means no captures, even when the path exists.
	out = ex.Run(context.Background(), api.Step{HTTP: &api.HTTPRequest{Path: "/json"}, Expect: &api.Expect{Status: []string{"500"}}, Capture: map[string]string{"t": "$.token"}}, Input{BaseURL: srv.URL})
	if out.Status != api.StepFailed || out.Captures != nil {
		t.Errorf("captures after a failed expectation: %v", out.Captures)
	}
}

func TestHTTPFaults(t *testing.T) {
	srv := testServer(t)
	tlsSrv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is the point
	tlsSrv.StartTLS()
	defer tlsSrv.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + l.Addr().String()
	l.Close()

	ex := NewExecutor(ExecutorOptions{MaxBody: 64 << 10})
	tests := []struct {
		name    string
		base    string
		step    api.Step
		ctx     func() (context.Context, context.CancelFunc)
		status  api.StepStatus
		message string // exact, or a prefix when it ends in "…"
	}{
		{name: "connection refused", base: refused, step: get("/x", nil), status: api.StepFailed,
			message: "could not connect to " + refused + ": connection refused — is the service up? check the environment url"},
		{name: "hang: step timeout", base: srv.URL, step: api.Step{HTTP: &api.HTTPRequest{Path: "/hang"}, Timeout: api.Duration(100 * time.Millisecond)}, status: api.StepFailed,
			message: "timed out after 100ms (the step's timeout); raise `timeout:` on the step or find what is slow — GET " + srv.URL + "/hang: no response after …"},
		{name: "hang: case deadline", base: srv.URL, step: get("/hang", nil),
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 100*time.Millisecond)
			},
			status: api.StepFailed, message: "timed out: the case timeout ran out during this step; raise the case's `timeout:` or find what is slow — GET …"},
		{name: "case deadline before a longer step timeout", base: srv.URL, step: api.Step{HTTP: &api.HTTPRequest{Path: "/hang"}, Timeout: api.Duration(time.Minute)},
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 100*time.Millisecond)
			},
			status: api.StepFailed, message: "timed out: the case timeout ran out during this step…"},
		{name: "engine applied the step timeout itself", base: srv.URL, step: api.Step{HTTP: &api.HTTPRequest{Path: "/hang"}, Timeout: api.Duration(100 * time.Millisecond)},
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 100*time.Millisecond)
			},
			status: api.StepFailed, message: "timed out after 100ms (the step's timeout)…"},
		{name: "hang while reading the body", base: srv.URL, step: api.Step{HTTP: &api.HTTPRequest{Path: "/slowbody"}, Timeout: api.Duration(100 * time.Millisecond)}, status: api.StepFailed,
			message: "timed out after 100ms (the step's timeout); raise `timeout:` on the step or find what is slow — GET " + srv.URL + "/slowbody: the response body was still arriving after 5 bytes"},
		{name: "cancelled", base: srv.URL, step: get("/hang", nil),
			ctx: func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				time.AfterFunc(50*time.Millisecond, cancel)
				return ctx, cancel
			},
			status: api.StepCancelled, message: "cancelled"},
		{name: "huge body is cut at the limit", base: srv.URL, step: get("/huge", &api.Expect{BodyContains: []string{"y"}}), status: api.StepFailed,
			message: `body_contains: the body does not contain "y" (only the first 64 KiB of the body were read)`},
		{name: "redirect loop", base: srv.URL, step: get("/loop", nil), status: api.StepFailed,
			message: "GET " + srv.URL + "/loop: stopped after 10 redirects — a redirect loop? (last: /loop)"},
		{name: "TLS unknown authority", base: tlsSrv.URL, step: get("/", nil), status: api.StepFailed,
			message: "TLS error talking to " + tlsSrv.URL + ": the certificate was not accepted: tls: failed to verify certificate: x509: certificate signed by unknown authority — is the environment url right? a private CA must be given to zof"},
		{name: "plain http to a TLS port", base: strings.Replace(srv.URL, "http:", "https:", 1), step: get("/", nil), status: api.StepFailed,
			message: "TLS error talking to " + strings.Replace(srv.URL, "http:", "https:", 1) + ": the server did not answer TLS (is it plain http? use http:// in the environment url)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.Background(), context.CancelFunc(func() {})
			if tt.ctx != nil {
				ctx, cancel = tt.ctx()
			}
			defer cancel()
			start := time.Now()
			out := ex.Run(ctx, tt.step, Input{BaseURL: tt.base})
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("took %s", took)
			}
			if out.Status != tt.status || out.Failure == nil {
				t.Fatalf("status %s (%v), want %s\n%s", out.Status, out.Failure, tt.status, out.Output)
			}
			if prefix, ok := strings.CutSuffix(tt.message, "…"); ok {
				if !strings.HasPrefix(out.Failure.Message, prefix) {
					t.Errorf("message %q\nwant prefix %q", out.Failure.Message, prefix)
				}
			} else if out.Failure.Message != tt.message {
				t.Errorf("message %q\nwant        %q", out.Failure.Message, tt.message)
			}
		})
	}
}

func TestHugeBodyLog(t *testing.T) {
	srv := testServer(t)
	out := NewExecutor(ExecutorOptions{MaxBody: 64 << 10}).Run(context.Background(), get("/huge", nil), Input{BaseURL: srv.URL})
	if out.Status != api.StepPassed {
		t.Fatalf("%s %v", out.Status, out.Failure)
	}
	for _, want := range []string{"(body truncated: only the first 64 KiB were read, the rest was not)", "… (63488 bytes more)"} {
		if !strings.Contains(out.Output, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if len(out.Output) > 4<<10 {
		t.Errorf("output is %d bytes; the body excerpt should be bounded", len(out.Output))
	}
}

func TestInvalidJSONBody(t *testing.T) {
	srv := testServer(t)
	out := NewExecutor(ExecutorOptions{}).Run(context.Background(), get("/html", jsonX(api.JSONAssert{Path: "$.a"})), Input{BaseURL: srv.URL})
	want := &api.Failure{
		Message:  "json: the response body is not JSON (invalid character '<' looking for beginning of value)",
		Expected: "a JSON body",
		Actual:   "<html><h1>Sign in</h1></html>",
	}
	if diff := cmp.Diff(want, out.Failure); diff != "" {
		t.Error(diff)
	}
}

func TestMasking(t *testing.T) {
	srv := testServer(t)
	in := Input{BaseURL: srv.URL, Headers: map[string]string{"Authorization": "Bearer s3cr3t-token"}, Mask: secret.NewMasker([]string{"s3cr3t-token"})}
	out := NewExecutor(ExecutorOptions{}).Run(context.Background(), api.Step{
		HTTP:   &api.HTTPRequest{Path: "/echo/s3cr3t-token"},
		Expect: &api.Expect{BodyContains: []string{"nope"}},
	}, in)
	all := out.Output + out.Failure.Message + out.Failure.Expected + out.Failure.Actual
	if strings.Contains(all, "s3cr3t") {
		t.Errorf("secret leaked:\n%s\n%#v", out.Output, out.Failure)
	}
	if !strings.Contains(out.Output, "Bearer ***") || !strings.Contains(out.Output, "/echo/***") {
		t.Errorf("masked values missing from the output:\n%s", out.Output)
	}
}

func TestMaskingAcrossTheCut(t *testing.T) {
	body := strings.Repeat("a", 505) + "SECRETVALUE" + strings.Repeat("b", 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) }))
	defer srv.Close()
	out := NewExecutor(ExecutorOptions{}).Run(context.Background(), get("/", &api.Expect{BodyContains: []string{"zzz"}}),
		Input{BaseURL: srv.URL, Mask: secret.NewMasker([]string{"SECRETVALUE"})})
	if out.Failure == nil {
		t.Fatal("no failure")
	}
	if want := strings.Repeat("a", 505) + "***bbbb"; !strings.HasPrefix(out.Failure.Actual, want) {
		t.Errorf("actual %q, want prefix %q", out.Failure.Actual, want)
	}
	if strings.Contains(out.Failure.Actual+out.Output, "SECRET") {
		t.Errorf("part of the secret leaked:\n%s\n%s", out.Failure.Actual, out.Output)
	}
}

func TestExcerpt(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"abcdef", 3, "abc… (3 bytes more)"},
		{"ééé", 3, "é… (4 bytes more)"}, // never cuts a rune
	}
	for _, tt := range tests {
		if got := excerpt(tt.in, tt.n); got != tt.want {
			t.Errorf("excerpt(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
	m := secret.NewMasker([]string{"SECRETVALUE"})
	long := strings.Repeat("a", 510) + "SECRETVALUE" + strings.Repeat("b", 10000)
	if got := maskedHead(m, long, 512); strings.Contains(got, "SE") || !strings.HasPrefix(got, strings.Repeat("a", 510)+"**") {
		t.Errorf("maskedHead leaked or lost text: %q", got[:530])
	}
}

func TestExecutorReusesConnections(t *testing.T) {
	var conns int
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns++
		}
	}
	srv.Start()
	defer srv.Close()
	ex := NewExecutor(ExecutorOptions{})
	for range 5 {
		if out := ex.Run(context.Background(), get("/", nil), Input{BaseURL: srv.URL}); out.Status != api.StepPassed {
			t.Fatal(out.Failure)
		}
	}
	ex.Close()
	srv.Close()
	if conns != 1 {
		t.Errorf("%d connections for 5 sequential steps, want 1", conns)
	}
}

func TestNoRedirects(t *testing.T) {
	srv := testServer(t)
	out := NewExecutor(ExecutorOptions{MaxRedirects: -1}).Run(context.Background(),
		get("/redirect", &api.Expect{Status: []string{"301"}, Headers: map[string]string{"Location": "/json"}}), Input{BaseURL: srv.URL})
	if out.Status != api.StepPassed {
		t.Errorf("%v\n%s", out.Failure, out.Output)
	}
}

// BenchmarkHTTPStep is one GET with status, header and three JSON checks
// against a loopback server: the per-step overhead of the executor.
func BenchmarkHTTPStep(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, doc)
	}))
	defer srv.Close()
	ex := NewExecutor(ExecutorOptions{})
	st := api.Step{
		HTTP: &api.HTTPRequest{Path: "/json", Headers: map[string]string{"Authorization": "Bearer ${capture.token}"}},
		Expect: &api.Expect{
			Status:  []string{"200"},
			Headers: map[string]string{"Content-Type": "application/json"},
			JSON: []api.JSONAssert{
				{Path: "$.token", Equals: json.RawMessage(`"abc123"`)},
				{Path: "$.items[2].k", Matches: ptr("^v$")},
				{Path: "$.items", Contains: ptr("two")},
			},
		},
		Capture: map[string]string{"t": "$.token"},
	}
	in := Input{BaseURL: srv.URL, Captures: map[string]string{"token": "x"}, Mask: secret.NewMasker([]string{"secret-value"})}
	b.ReportAllocs()
	for b.Loop() {
		if out := ex.Run(context.Background(), st, in); out.Status != api.StepPassed {
			b.Fatal(out.Failure)
		}
	}
}

// TestAllowURLCoversRedirects: a target the policy allows cannot send the step
// to one it does not (zof serve's allowed_targets).
func TestAllowURLCoversRedirects(t *testing.T) {
	var outsideHits atomic.Int32
	outside := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		outsideHits.Add(1)
	}))
	defer outside.Close()
	inside := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, outside.URL+"/metadata", http.StatusFound)
	}))
	defer inside.Close()
	insideHost := strings.TrimPrefix(inside.URL, "http://")
	allow := func(u *url.URL) error {
		if u.Host != insideHost {
			return fmt.Errorf("%s is not in allowed_targets", u.Host)
		}
		return nil
	}
	e := NewExecutor(ExecutorOptions{})

	out := e.Run(context.Background(), get("/start", nil), Input{BaseURL: inside.URL, AllowURL: allow})
	if out.Status != api.StepFailed || out.Failure == nil || !strings.Contains(out.Failure.Message, "refused to follow a redirect to "+outside.URL+"/metadata") {
		t.Fatalf("status %s, failure %+v", out.Status, out.Failure)
	}
	if n := outsideHits.Load(); n != 0 {
		t.Errorf("the refused target was reached %d times", n)
	}

	out = e.Run(context.Background(), get("/start", nil), Input{BaseURL: outside.URL, AllowURL: allow})
	if out.Status != api.StepFailed || !strings.Contains(out.Failure.Message, "is not allowed") || outsideHits.Load() != 0 {
		t.Fatalf("direct request: status %s, failure %+v, hits %d", out.Status, out.Failure, outsideHits.Load())
	}
}

func TestDisplayURL(t *testing.T) {
	m := secret.NewMasker([]string{"p@ss/w+rd=&<>\" x", "tok?#:;,%"})
	tests := []struct {
		name, base, path, url string
		query                 map[string]string
		want                  string
	}{
		{name: "secret query value", base: "http://h:1", path: "/echo", query: map[string]string{"q": "p@ss/w+rd=&<>\" x", "n": "a b&c"},
			want: "http://h:1/echo?n=a+b%26c&q=***"},
		{name: "secret inside a query value", base: "http://h:1", path: "/echo", query: map[string]string{"q": "[p@ss/w+rd=&<>\" x]"},
			want: "http://h:1/echo?q=%5B***%5D"},
		{name: "secret in the path and the written query", base: "http://h:1/api?k=tok?#:;,%", path: "/items/p@ss/w+rd=&<>\" x/x",
			want: "http://h:1/api/items/***/x?k=***"},
		{name: "secret in a full url", url: "https://o/x?token=tok?#:;,%&a=1", query: map[string]string{"b": "2"},
			want: "https://o/x?a=1&b=2&token=***"},
		{name: "password in the userinfo", base: "http://alice:hunter2@h:1", path: "/a", want: "http://alice:xxxxx@h:1/a"},
		{name: "no secrets", base: "http://h:1", path: "/a b", query: map[string]string{"x": "1/2"}, want: "http://h:1/a%20b?x=1%2F2"},
		{name: "no secrets, a query in the environment url", base: "http://h:1/v1?a=1&z=%2F", path: "/b", query: map[string]string{"m": "x y"},
			want: "http://h:1/v1/b?a=1&m=x+y&z=%2F"},
		{name: "secret query value, query in the environment url", base: "http://h:1/v1?a=1", path: "/b", query: map[string]string{"m": "tok?#:;,%"},
			want: "http://h:1/v1/b?a=1&m=***"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := displayURL(m, tt.base, tt.path, tt.url, tt.query); got != tt.want {
				t.Errorf("displayURL = %q, want %q", got, tt.want)
			}
			// The executor's shortcut through the request's own URL shows the same.
			// (A URL that does not parse fails the step before it is shown.)
			u, err := parseURL(m, tt.base, tt.path, tt.url, tt.query)
			if err != nil {
				return
			}
			if got := shownURL(m, u, tt.base, tt.path, tt.url, tt.query); got != tt.want {
				t.Errorf("shownURL = %q, want %q", got, tt.want)
			}
			// Without the secrets, the display is the request URL itself (redacted).
			if got, want := shownURL(nil, u, tt.base, tt.path, tt.url, tt.query), u.Redacted(); got != want {
				t.Errorf("shownURL without secrets = %q, want %q", got, want)
			}
		})
	}
}

// TestMaskingChangesOnlyText: a secret that happens to equal the method or a
// query value is masked in the log, never in the request itself.
func TestMaskingChangesOnlyText(t *testing.T) {
	srv := testServer(t)
	in := Input{BaseURL: srv.URL, Mask: secret.NewMasker([]string{"DELETE", "a b+c"})}
	out := NewExecutor(ExecutorOptions{}).Run(context.Background(), api.Step{
		HTTP:    &api.HTTPRequest{Method: "DELETE", Path: "/echo/x", Query: map[string]string{"q": "a b+c"}},
		Capture: map[string]string{"method": "$.method", "query": "$.query"},
	}, in)
	if out.Status != api.StepPassed || out.Captures["method"] != "DELETE" || out.Captures["query"] != "q=a+b%2Bc" {
		t.Fatalf("the request changed: %s %v\n%s", out.Status, out.Captures, out.Output)
	}
	if !strings.HasPrefix(out.Output, "*** "+srv.URL+"/echo/x?q=*** → 200 OK") {
		t.Errorf("log %q, want the method and the query value masked", out.Output)
	}
}

// reservedSecrets are secrets made of every character some encoding changes.
var reservedSecrets = []string{
	`@/+=&<>"'%?#:;, x`,
	"p@ss/w+rd=&<>\" x",
	"naïve café 😀 ünï",
	`back\slash "quoted"`,
	"100%25 ok",
}

// shownForms are the forms a secret could take in a step's text.
func shownForms(s string) []string {
	j, _ := json.Marshal(s)
	return []string{s, url.QueryEscape(s), url.PathEscape(s), string(j[1 : len(j)-1]), strconv.Quote(s)[1 : len(strconv.Quote(s))-1]}
}

// TestSecretsNeverShown: a secret used in every part of a request and in
// every expectation, echoed back by the service, shows in no form in the
// step's log or failure.
func TestSecretsNeverShown(t *testing.T) {
	srv := testServer(t)
	ex := NewExecutor(ExecutorOptions{})
	for _, sec := range reservedSecrets {
		t.Run(sec, func(t *testing.T) {
			js, _ := json.Marshal(sec)
			in := Input{
				BaseURL: srv.URL, Headers: map[string]string{"Authorization": "Bearer " + sec},
				Vars: map[string]string{"pw": sec}, Mask: secret.NewMasker([]string{sec}),
			}
			steps := []api.Step{
				{HTTP: &api.HTTPRequest{Path: "/echo/${vars.pw}", Query: map[string]string{"q": "${vars.pw}"}},
					Expect: &api.Expect{Status: []string{"418"}, BodyContains: []string{"${vars.pw}!"}, Headers: map[string]string{"X-Pw": "${vars.pw}"},
						JSON: []api.JSONAssert{{Path: "$.query", Equals: js}, {Path: "$.path", Contains: ptr("${vars.pw}!")}, {Path: "$.method", Matches: ptr("${vars.pw}")}}}},
				{HTTP: &api.HTTPRequest{Method: "POST", Path: "/echo/form", Form: map[string]string{"pw": "${vars.pw}"}},
					Expect: &api.Expect{BodyMatches: "x${vars.pw}"}},
				{HTTP: &api.HTTPRequest{Method: "POST", URL: srv.URL + "/echo/json?pw=${vars.pw}", JSON: json.RawMessage(`{"pw":"${vars.pw}"}`)},
					Expect: &api.Expect{JSON: []api.JSONAssert{{Path: "$.headers", Equals: json.RawMessage(`"x"`)}}}},
				{HTTP: &api.HTTPRequest{URL: "http://127.0.0.1:1/${vars.pw}", Query: map[string]string{"q": "${vars.pw}"}}},
			}
			for i, st := range steps {
				out := ex.Run(context.Background(), st, in)
				if out.Failure == nil {
					t.Fatalf("step %d passed:\n%s", i, out.Output)
				}
				all := out.Output + "\n" + out.Failure.Message + "\n" + out.Failure.Expected + "\n" + out.Failure.Actual
				for _, f := range shownForms(sec) {
					if strings.Contains(all, f) {
						t.Errorf("step %d shows the secret as %q:\n%s", i, f, all)
					}
				}
				if !strings.Contains(all, secret.Mask) {
					t.Errorf("step %d shows no mask:\n%s", i, all)
				}
			}
		})
	}
}

// TestSubstExpectCopiesOnlyWhatChanges: expectations without references are
// used as they are (no copy per request), those with references are copied
// with the references replaced, and the step's own expectations never change.
func TestSubstExpectCopiesOnlyWhatChanges(t *testing.T) {
	plain := &api.Expect{
		Status: []string{"200"}, Headers: map[string]string{"X": "y"}, BodyContains: []string{"ok"},
		JSON: []api.JSONAssert{{Path: "$.a", Equals: json.RawMessage(`1`), Contains: ptr("c"), Matches: ptr("^m$")}},
	}
	sub := &substituter{vars: map[string]string{"v": "V"}}
	got := substExpect(sub, plain)
	if &got.Status[0] != &plain.Status[0] || &got.BodyContains[0] != &plain.BodyContains[0] || &got.JSON[0] != &plain.JSON[0] {
		t.Error("an expectation without references was copied")
	}
	if got := testing.AllocsPerRun(10, func() { _ = substExpect(sub, plain) }); got != 0 {
		t.Errorf("substExpect without references: %.0f allocations, want 0", got)
	}

	refs := &api.Expect{
		Status: []string{"20${vars.v}"}, Headers: map[string]string{"X-${vars.v}": "${vars.v}"}, BodyContains: []string{"a", "${vars.v}"},
		BodyMatches: "^${vars.v}", JSON: []api.JSONAssert{{Path: "$.a"}, {Path: "$.${vars.v}", Equals: json.RawMessage(`"${vars.v}"`), Contains: ptr("${vars.v}"), Matches: ptr("${vars.v}$")}},
	}
	before := fmt.Sprintf("%#v %v %v %v", *refs, *refs.JSON[1].Contains, *refs.JSON[1].Matches, string(refs.JSON[1].Equals))
	got = substExpect(sub, refs)
	want := api.Expect{
		Status: []string{"20V"}, Headers: map[string]string{"X-V": "V"}, BodyContains: []string{"a", "V"},
		BodyMatches: "^V", JSON: []api.JSONAssert{{Path: "$.a"}, {Path: "$.V", Equals: json.RawMessage(`"V"`), Contains: ptr("V"), Matches: ptr("V$")}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("substituted expectations (-want +got):\n%s", diff)
	}
	if after := fmt.Sprintf("%#v %v %v %v", *refs, *refs.JSON[1].Contains, *refs.JSON[1].Matches, string(refs.JSON[1].Equals)); after != before {
		t.Errorf("the step's expectations changed:\n%s\n%s", before, after)
	}
	if sub.err != nil {
		t.Fatal(sub.err)
	}
	if got := substExpect(sub, nil); got.Status != nil || got.JSON != nil {
		t.Errorf("no expectations: %#v", got)
	}
}

// TestRequestURLParsedOnce: the request carries the URL the step parsed
// (not a copy parsed again from its text), with NewRequest's Host rule.
func TestRequestURLParsedOnce(t *testing.T) {
	for _, tt := range []struct{ raw, host string }{
		{"http://h:8080/a?b=c", "h:8080"},
		{"http://h:/a", "h"},
		{"http://[::1]:/a", "[::1]"},
		{"http://[::1]/a", "[::1]"},
	} {
		u, err := parseURL(nil, "", "", tt.raw, nil)
		if err != nil {
			t.Fatal(err)
		}
		req, err := newRequest(context.Background(), "GET", u, nil)
		if err != nil {
			t.Fatal(err)
		}
		std, err := http.NewRequest("GET", tt.raw, nil)
		if err != nil {
			t.Fatal(err)
		}
		if req.URL != u || req.Host != tt.host || std.Host != tt.host || req.URL.String() != std.URL.String() {
			t.Errorf("%s: request URL %p (parsed %p) %q host %q; NewRequest: %q host %q", tt.raw, req.URL, u, req.URL, req.Host, std.URL, std.Host)
		}
	}
	if _, err := newRequest(context.Background(), "GE T", &url.URL{Scheme: "http", Host: "h"}, nil); err == nil {
		t.Error("an invalid method was accepted")
	}
}

// TestSharedHeaderValues: the header values every request shares are never
// written through (their capacity is their length, so an Add reallocates),
// and a step that overrides them changes its own request only.
func TestSharedHeaderValues(t *testing.T) {
	srv := testServer(t)
	ex := NewExecutor(ExecutorOptions{})
	for name, v := range map[string][]string{"user agent": ex.userAgent, "json": jsonContentType, "form": formContentType} {
		if len(v) != 1 || cap(v) != 1 {
			t.Errorf("%s: len %d cap %d, want 1 and 1", name, len(v), cap(v))
		}
	}
	echo := func(st api.Step) map[string]any {
		t.Helper()
		st.Capture = map[string]string{"h": "$.headers"}
		out := ex.Run(context.Background(), st, Input{BaseURL: srv.URL})
		if out.Status != api.StepPassed {
			t.Fatalf("%s %v\n%s", out.Status, out.Failure, out.Output)
		}
		var h map[string]any
		if err := json.Unmarshal([]byte(out.Captures["h"]), &h); err != nil {
			t.Fatal(err)
		}
		return h
	}
	h := echo(api.Step{HTTP: &api.HTTPRequest{Method: "POST", Path: "/echo/", JSON: json.RawMessage(`{}`),
		Headers: map[string]string{"user-agent": "mine", "content-type": "application/merge-patch+json"}}})
	if h["User-Agent"] != "mine" || h["Content-Type"] != "application/merge-patch+json" {
		t.Errorf("overridden headers: %v", h)
	}
	h = echo(api.Step{HTTP: &api.HTTPRequest{Method: "POST", Path: "/echo/", JSON: json.RawMessage(`{}`)}})
	if h["User-Agent"] != DefaultUserAgent || h["Content-Type"] != "application/json" {
		t.Errorf("default headers after an override: %v", h)
	}
	if ex.userAgent[0] != DefaultUserAgent || jsonContentType[0] != "application/json" || formContentType[0] != "application/x-www-form-urlencoded" {
		t.Errorf("shared values changed: %q %q %q", ex.userAgent, jsonContentType, formContentType)
	}
}
