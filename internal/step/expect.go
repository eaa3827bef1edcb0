package step

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/zof-ai/zof-ci/api"
)

// substExpect returns a copy of x with ${vars.X} and ${capture.X} replaced.
func substExpect(sub *substituter, x *api.Expect) *api.Expect {
	if x == nil {
		return nil
	}
	c := *x
	c.Status = sub.strs(x.Status)
	c.Headers = sub.strMap(x.Headers)
	c.BodyContains = sub.strs(x.BodyContains)
	c.BodyMatches = sub.str(x.BodyMatches)
	c.JSON = make([]api.JSONAssert, len(x.JSON))
	for i, a := range x.JSON {
		a.Path = sub.str(a.Path)
		if raw, err := sub.rawJSON(a.Equals); err == nil {
			a.Equals = raw
		}
		a.Contains = sub.ptr(a.Contains)
		a.Matches = sub.ptr(a.Matches)
		c.JSON[i] = a
	}
	return &c
}

// checkExpect evaluates every expectation and returns the failing ones in
// order: status, headers, body_contains, body_matches, json, max_duration.
func checkExpect(x *api.Expect, r *response) []*api.Failure {
	if x == nil {
		x = &api.Expect{}
	}
	var fails []*api.Failure
	add := func(f *api.Failure) {
		if f != nil {
			fails = append(fails, f)
		}
	}
	add(checkStatus(x.Status, r))
	for _, name := range sortedKeys(x.Headers) {
		add(checkHeader(name, x.Headers[name], r))
	}
	body := string(r.body)
	for _, want := range x.BodyContains {
		if !strings.Contains(body, want) {
			add(&api.Failure{
				Message:  fmt.Sprintf("body_contains: the body does not contain %q%s", want, truncNote(r)),
				Expected: r.show(fmt.Sprintf("body containing %q", want), excerptLen),
				Actual:   bodyActual(r),
			})
		}
	}
	if x.BodyMatches != "" {
		re, err := regexp.Compile(x.BodyMatches)
		switch {
		case err != nil:
			add(&api.Failure{Message: fmt.Sprintf("body_matches: invalid regular expression %q: %v (Go RE2 syntax)", x.BodyMatches, err)})
		case !re.Match(r.body):
			add(&api.Failure{
				Message:  fmt.Sprintf("body_matches: the body does not match /%s/%s", x.BodyMatches, truncNote(r)),
				Expected: "body matching /" + r.show(x.BodyMatches, excerptLen) + "/",
				Actual:   bodyActual(r),
			})
		}
	}
	if len(x.JSON) > 0 {
		doc, err := decodeJSON(r.body)
		if err != nil {
			add(&api.Failure{
				Message:  fmt.Sprintf("json: the response body is not JSON (%v)%s", err, truncNote(r)),
				Expected: "a JSON body",
				Actual:   bodyActual(r),
			})
		} else {
			for _, a := range x.JSON {
				add(checkJSON(a, doc, r))
			}
		}
	}
	if max := x.MaxDuration.D(); max > 0 && r.duration > max {
		add(&api.Failure{
			Message:  fmt.Sprintf("max_duration: expected at most %s, took %s", max, roundDur(r.duration)),
			Expected: "at most " + max.String(),
			Actual:   roundDur(r.duration).String(),
		})
	}
	return fails
}

func truncNote(r *response) string {
	if !r.truncated {
		return ""
	}
	return fmt.Sprintf(" (only the first %s of the body were read)", byteSize(r.maxBody))
}

func bodyActual(r *response) string {
	if len(r.body) == 0 {
		return "(empty body)"
	}
	return r.show(string(r.body), excerptLen)
}

func checkStatus(want []string, r *response) *api.Failure {
	if len(want) == 0 {
		want = []string{"2xx"}
	}
	for _, w := range want {
		w = strings.TrimSpace(w)
		if len(w) == 3 && (strings.HasSuffix(w, "xx") || strings.HasSuffix(w, "XX")) && w[0] >= '1' && w[0] <= '5' {
			if r.status/100 == int(w[0]-'0') {
				return nil
			}
			continue
		}
		code, err := strconv.Atoi(w)
		if err != nil || code < 100 || code > 599 {
			return &api.Failure{Message: fmt.Sprintf("status: invalid expectation %q: use a code like 200 or a class like 2xx", w)}
		}
		if code == r.status {
			return nil
		}
	}
	expected := strings.Join(want, " or ")
	actual := r.statusTxt
	if len(r.body) > 0 {
		actual += ", body: " + r.show(string(r.body), excerptLen)
	}
	return &api.Failure{
		Message:  fmt.Sprintf("status: expected %s, got %d", expected, r.status),
		Expected: expected,
		Actual:   actual,
	}
}

func checkHeader(name, want string, r *response) *api.Failure {
	got := r.header.Values(name)
	for _, g := range got {
		if g == want {
			return nil
		}
	}
	actual := "(missing)"
	if len(got) > 0 {
		actual = r.show(strings.Join(got, ", "), excerptLen)
	}
	return &api.Failure{
		Message:  fmt.Sprintf("header %s: expected %q, got %s", http.CanonicalHeaderKey(name), want, quoteUnlessMissing(actual, len(got) > 0)),
		Expected: r.show(want, excerptLen),
		Actual:   actual,
	}
}

func quoteUnlessMissing(s string, present bool) string {
	if present {
		return strconv.Quote(s)
	}
	return s
}

// checkJSON evaluates one JSONPath assertion; with no check set the path must exist.
func checkJSON(a api.JSONAssert, doc any, r *response) *api.Failure {
	path, err := parseJSONPath(a.Path)
	if err != nil {
		return &api.Failure{Message: "json: " + err.Error()}
	}
	p := path.String()
	v, lerr := path.Lookup(doc)
	found := lerr == nil
	notFound := func(what string) *api.Failure {
		msg := fmt.Sprintf("json %s: expected %s, but the path does not exist (%v)", p, what, lerr)
		if what == "to exist" {
			msg = fmt.Sprintf("json %s: expected to exist, but it does not (%v)", p, lerr)
		}
		return &api.Failure{
			Message:  msg,
			Expected: what,
			Actual:   "not found: " + lerr.Error(),
		}
	}
	none := a.Equals == nil && a.Exists == nil && a.Contains == nil && a.Matches == nil
	if a.Exists != nil || none {
		want := a.Exists == nil || *a.Exists
		switch {
		case want && !found:
			return notFound("to exist")
		case !want && found:
			return &api.Failure{
				Message:  fmt.Sprintf("json %s: expected not to exist, got %s", p, r.show(jsonText(v), excerptLen)),
				Expected: "not to exist",
				Actual:   r.show(jsonText(v), excerptLen),
			}
		}
		if !found {
			return nil // exists: false and absent: nothing else can be checked
		}
	}
	if a.Equals != nil {
		want, err := decodeJSON(a.Equals)
		if err != nil {
			return &api.Failure{Message: fmt.Sprintf("json %s: equals is not a JSON value: %v", p, err)}
		}
		wantText := jsonText(want)
		if !found {
			return notFound(wantText)
		}
		if !jsonEqual(want, v) {
			return &api.Failure{
				Message:  fmt.Sprintf("json %s: expected %s, got %s", p, r.show(wantText, excerptLen), r.show(jsonText(v), excerptLen)),
				Expected: r.show(wantText, excerptLen),
				Actual:   r.show(jsonText(v), excerptLen),
			}
		}
	}
	if a.Contains != nil {
		what := fmt.Sprintf("to contain %q", *a.Contains)
		if !found {
			return notFound(what)
		}
		ok := false
		switch t := v.(type) {
		case string:
			ok = strings.Contains(t, *a.Contains)
		case []any:
			for _, e := range t {
				if stringForm(e) == *a.Contains {
					ok = true
					break
				}
			}
		case map[string]any:
			_, ok = t[*a.Contains]
		default:
			return &api.Failure{
				Message:  fmt.Sprintf("json %s: contains needs a string, an array or an object, got %s %s", p, kindOf(v), r.show(jsonText(v), excerptLen)),
				Expected: what,
				Actual:   r.show(jsonText(v), excerptLen),
			}
		}
		if !ok {
			return &api.Failure{
				Message:  fmt.Sprintf("json %s: expected %s, got %s", p, what, r.show(jsonText(v), excerptLen)),
				Expected: what,
				Actual:   r.show(jsonText(v), excerptLen),
			}
		}
	}
	if a.Matches != nil {
		what := "to match /" + *a.Matches + "/"
		re, err := regexp.Compile(*a.Matches)
		if err != nil {
			return &api.Failure{Message: fmt.Sprintf("json %s: invalid regular expression %q: %v (Go RE2 syntax)", p, *a.Matches, err)}
		}
		if !found {
			return notFound(what)
		}
		if !re.MatchString(stringForm(v)) {
			return &api.Failure{
				Message:  fmt.Sprintf("json %s: expected %s, got %s", p, what, r.show(jsonText(v), excerptLen)),
				Expected: what,
				Actual:   r.show(jsonText(v), excerptLen),
			}
		}
	}
	return nil
}

// show cuts text for a message, masking first so a secret across the cut
// is hidden whole.
func (r *response) show(s string, n int) string {
	return maskedHead(r.mask, s, n)
}

// jsonText is a value as compact JSON (strings quoted), for messages.
func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// capture reads each name's JSONPath from the body, in name order.
func capture(spec map[string]string, r *response) (map[string]string, *api.Failure) {
	doc, err := decodeJSON(r.body)
	if err != nil {
		return nil, &api.Failure{
			Message:  fmt.Sprintf("capture: the response body is not JSON (%v)%s", err, truncNote(r)),
			Expected: "a JSON body",
			Actual:   bodyActual(r),
		}
	}
	out := make(map[string]string, len(spec))
	for _, name := range sortedKeys(spec) {
		path, err := parseJSONPath(spec[name])
		if err != nil {
			return nil, &api.Failure{Message: fmt.Sprintf("capture %s: %v", name, err)}
		}
		v, err := path.Lookup(doc)
		if err != nil {
			return nil, &api.Failure{
				Message:  fmt.Sprintf("capture %s: %s not found in the response (%v)", name, path, err),
				Expected: path.String() + " in the response",
				Actual:   bodyActual(r),
			}
		}
		out[name] = stringForm(v)
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
