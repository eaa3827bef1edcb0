package step

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/secret"
)

// substExpect returns a copy of x with ${vars.X} and ${capture.X} replaced
// (the zero Expect for nil). The copy shares what needs no substitution.
func substExpect(sub *substituter, x *api.Expect) api.Expect {
	if x == nil {
		return api.Expect{}
	}
	c := *x
	c.Status = sub.strs(x.Status)
	c.Headers = sub.strMap(x.Headers)
	c.BodyContains = sub.strs(x.BodyContains)
	c.BodyMatches = sub.str(x.BodyMatches)
	if !slices.ContainsFunc(x.JSON, assertHasRef) {
		return c
	}
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
	return c
}

// assertHasRef reports whether a JSON assertion may hold a reference to
// substitute (substExpect copies the assertions only then).
func assertHasRef(a api.JSONAssert) bool {
	return hasRef(a.Path) || bytes.Contains(a.Equals, []byte("${")) ||
		a.Contains != nil && hasRef(*a.Contains) || a.Matches != nil && hasRef(*a.Matches)
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
	for _, want := range x.BodyContains {
		if !bytes.Contains(r.body, []byte(want)) {
			add(&api.Failure{
				Message:  fmt.Sprintf("body_contains: the body does not contain %s%s", r.quote(want), truncNote(r)),
				Expected: r.show("body containing "+r.quote(want), excerptLen),
				Actual:   bodyActual(r),
			})
		}
	}
	if x.BodyMatches != "" {
		re, err := regexp.Compile(x.BodyMatches)
		switch {
		case err != nil:
			add(&api.Failure{Message: fmt.Sprintf("body_matches: invalid regular expression %s: %s (Go RE2 syntax)", r.quote(x.BodyMatches), r.mask.String(err.Error()))})
		case !re.Match(r.body):
			add(&api.Failure{
				Message:  fmt.Sprintf("body_matches: the body does not match /%s/%s", r.mask.String(x.BodyMatches), truncNote(r)),
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
	return r.showBody(excerptLen)
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
			return &api.Failure{Message: fmt.Sprintf("status: invalid expectation %s: use a code like 200 or a class like 2xx", r.quote(w))}
		}
		if code == r.status {
			return nil
		}
	}
	expected := r.mask.String(strings.Join(want, " or "))
	actual := r.mask.String(r.statusTxt)
	if len(r.body) > 0 {
		actual += ", body: " + r.showBody(excerptLen)
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
		Message:  fmt.Sprintf("header %s: expected %s, got %s", r.mask.String(http.CanonicalHeaderKey(name)), r.quote(want), quoteUnlessMissing(actual, len(got) > 0)),
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
		return &api.Failure{Message: "json: " + r.mask.String(err.Error())}
	}
	p := r.mask.String(path.String())
	v, lerr := path.Lookup(doc)
	found := lerr == nil
	notFound := func(what string) *api.Failure {
		why := r.mask.String(lerr.Error())
		msg := fmt.Sprintf("json %s: expected %s, but the path does not exist (%s)", p, what, why)
		if what == "to exist" {
			msg = fmt.Sprintf("json %s: expected to exist, but it does not (%s)", p, why)
		}
		return &api.Failure{
			Message:  msg,
			Expected: what,
			Actual:   "not found: " + why,
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
				Message:  fmt.Sprintf("json %s: expected not to exist, got %s", p, r.showJSON(v, excerptLen)),
				Expected: "not to exist",
				Actual:   r.showJSON(v, excerptLen),
			}
		}
		if !found {
			return nil // exists: false and absent: nothing else can be checked
		}
	}
	if a.Equals != nil {
		want, err := decodeJSON(a.Equals)
		if err != nil {
			return &api.Failure{Message: fmt.Sprintf("json %s: equals is not a JSON value: %s", p, r.mask.String(err.Error()))}
		}
		wantText := jsonText(maskJSON(r.mask, want))
		if !found {
			return notFound(wantText)
		}
		if !jsonEqual(want, v) {
			return &api.Failure{
				Message:  fmt.Sprintf("json %s: expected %s, got %s", p, r.show(wantText, excerptLen), r.showJSON(v, excerptLen)),
				Expected: r.show(wantText, excerptLen),
				Actual:   r.showJSON(v, excerptLen),
			}
		}
	}
	if a.Contains != nil {
		what := "to contain " + r.quote(*a.Contains)
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
				Message:  fmt.Sprintf("json %s: contains needs a string, an array or an object, got %s %s", p, kindOf(v), r.showJSON(v, excerptLen)),
				Expected: what,
				Actual:   r.showJSON(v, excerptLen),
			}
		}
		if !ok {
			return &api.Failure{
				Message:  fmt.Sprintf("json %s: expected %s, got %s", p, what, r.showJSON(v, excerptLen)),
				Expected: what,
				Actual:   r.showJSON(v, excerptLen),
			}
		}
	}
	if a.Matches != nil {
		what := "to match /" + r.mask.String(*a.Matches) + "/"
		re, err := regexp.Compile(*a.Matches)
		if err != nil {
			return &api.Failure{Message: fmt.Sprintf("json %s: invalid regular expression %s: %s (Go RE2 syntax)", p, r.quote(*a.Matches), r.mask.String(err.Error()))}
		}
		if !found {
			return notFound(what)
		}
		if !re.MatchString(stringForm(v)) {
			return &api.Failure{
				Message:  fmt.Sprintf("json %s: expected %s, got %s", p, what, r.showJSON(v, excerptLen)),
				Expected: what,
				Actual:   r.showJSON(v, excerptLen),
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

// showBody is show of the body, which it does not copy whole.
func (r *response) showBody(n int) string {
	return maskedHeadBytes(r.mask, r.body, n)
}

// quote is s masked, then quoted for a message: a secret is gone before
// quoting could escape it.
func (r *response) quote(s string) string {
	return strconv.Quote(r.mask.String(s))
}

// showJSON is a JSON value for a message, its strings (and keys) masked
// before they are encoded, cut to n bytes.
func (r *response) showJSON(v any, n int) string {
	return r.show(jsonText(maskJSON(r.mask, v)), n)
}

// maskJSON returns a copy of a decoded JSON value with every string masked.
func maskJSON(m *secret.Masker, v any) any {
	switch t := v.(type) {
	case string:
		return m.String(t)
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = maskJSON(m, e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[m.String(k)] = maskJSON(m, e)
		}
		return out
	}
	return v
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
			return nil, &api.Failure{Message: fmt.Sprintf("capture %s: %s", r.mask.String(name), r.mask.String(err.Error()))}
		}
		v, err := path.Lookup(doc)
		if err != nil {
			return nil, &api.Failure{
				Message:  fmt.Sprintf("capture %s: %s not found in the response (%s)", r.mask.String(name), r.mask.String(path.String()), r.mask.String(err.Error())),
				Expected: r.mask.String(path.String()) + " in the response",
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
