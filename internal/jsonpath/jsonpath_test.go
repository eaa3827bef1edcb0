package jsonpath

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want Path
		str  string // canonical form
		err  string // the SyntaxError's Reason
		off  int
	}{
		{in: "$", want: nil, str: "$"},
		{in: "$.token", want: Path{{Key: "token"}}, str: "$.token"},
		{in: "$.a.b[0]", want: Path{{Key: "a"}, {Key: "b"}, {Index: 0, IsIndex: true}}, str: "$.a.b[0]"},
		{in: "$.items[0].sku", want: Path{{Key: "items"}, {IsIndex: true}, {Key: "sku"}}, str: "$.items[0].sku"},
		{in: "$.items[-1]", want: Path{{Key: "items"}, {Index: -1, IsIndex: true}}, str: "$.items[-1]"},
		{in: "$.a[-12]", want: Path{{Key: "a"}, {Index: -12, IsIndex: true}}, str: "$.a[-12]"},
		{in: "$['content-type'][12].x_y", want: Path{{Key: "content-type"}, {Index: 12, IsIndex: true}, {Key: "x_y"}}, str: "$.content-type[12].x_y"},
		{in: `$['a.b']["c d"]`, want: Path{{Key: "a.b"}, {Key: "c d"}}, str: `$['a.b']['c d']`},
		{in: `$['it\'s']`, want: Path{{Key: "it's"}}, str: `$['it\'s']`},
		{in: `$["x\"y"]`, want: Path{{Key: `x"y`}}, str: `$['x"y']`},
		{in: `$['']`, want: Path{{Key: ""}}, str: `$['']`},
		{in: "$[0][1]", want: Path{{IsIndex: true}, {Index: 1, IsIndex: true}}, str: "$[0][1]"},
		{in: "$.é[0]['ü']", want: Path{{Key: "é"}, {IsIndex: true}, {Key: "ü"}}, str: "$.é[0].ü"},
		{in: "token", err: "must start with $, e.g. $.token or $.items[0].id", off: 0},
		{in: "", err: "must start with $, e.g. $.token or $.items[0].id", off: 0},
		{in: "$..a", err: "recursive descent (..) is not supported; write the full path", off: 1},
		{in: "$.a..b", err: "recursive descent (..) is not supported; write the full path", off: 3},
		{in: "$.*", err: "wildcards are not supported; index the element, e.g. [0]", off: 1},
		{in: "$[*]", err: "wildcards are not supported; index the element, e.g. [0]", off: 1},
		{in: "$.", err: "empty name after . at offset 1; use ['name'] for names with other characters", off: 1},
		{in: "$.a b", err: `unexpected ' ' at offset 3; segments are .name, ['name'] or [N]`, off: 3},
		{in: "$a", err: `unexpected 'a' at offset 1; segments are .name, ['name'] or [N]`, off: 1},
		{in: "$[0", err: "unclosed [ at offset 1", off: 1},
		{in: "$['a'", err: "missing ] at offset 5", off: 5},
		{in: "$['a]", err: "unterminated quote at offset 2", off: 2},
		{in: "$[+1]", err: "[+1] at offset 1 is neither an index [N] or [-N] (from the end) nor a quoted name ['name']; filters and slices are not supported", off: 1},
		{in: "$[-]", err: "[-] at offset 1 is neither an index [N] or [-N] (from the end) nor a quoted name ['name']; filters and slices are not supported", off: 1},
		{in: "$[ 1]", err: "[ 1] at offset 1 is neither an index [N] or [-N] (from the end) nor a quoted name ['name']; filters and slices are not supported", off: 1},
		{in: "$[1:2]", err: "[1:2] at offset 1 is neither an index [N] or [-N] (from the end) nor a quoted name ['name']; filters and slices are not supported", off: 1},
		{in: "$[?(@.a)]", err: "[?(@.a)] at offset 1 is neither an index [N] or [-N] (from the end) nor a quoted name ['name']; filters and slices are not supported", off: 1},
		{in: "$[99999999999999999999]", err: "[99999999999999999999] at offset 1 is neither an index [N] or [-N] (from the end) nor a quoted name ['name']; filters and slices are not supported", off: 1},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if tt.err != "" {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Errorf("Parse(%q) err = %v, want a *SyntaxError %q", tt.in, err, tt.err)
				continue
			}
			if se.Reason != tt.err || se.Offset != tt.off || se.Path != tt.in {
				t.Errorf("Parse(%q) = %+v, want reason %q at offset %d", tt.in, *se, tt.err, tt.off)
			}
			if want := "JSONPath " + `"` + strings.ReplaceAll(tt.in, `"`, `\"`) + `": ` + tt.err; err.Error() != want {
				t.Errorf("Parse(%q) error text %q, want %q", tt.in, err.Error(), want)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Parse(%q) (-want +got):\n%s", tt.in, diff)
		}
		if s := got.String(); s != tt.str {
			t.Errorf("Parse(%q).String() = %q, want %q", tt.in, s, tt.str)
		}
	}
}

func decode(t testing.TB, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestLookup(t *testing.T) {
	doc := decode(t, `{"items":[{"sku":"a"},{"sku":"b"}],"a.b":1,"n":null,"s":"x"}`)
	tests := []struct {
		path string
		want any
		err  string
	}{
		{path: "$", want: doc},
		{path: "$.items[0].sku", want: "a"},
		{path: "$.items[-1].sku", want: "b"},
		{path: "$.items[-2].sku", want: "a"},
		{path: "$['a.b']", want: 1.0},
		{path: "$.n", want: nil},
		{path: "$.items[2]", err: "$.items has 2 elements, no [2]"},
		{path: "$.items[-3]", err: "$.items has 2 elements, no [-3]"},
		{path: "$.s[0]", err: "$.s is a string, not an array"},
		{path: "$.n.x", err: "$.n is null, not an object"},
		{path: "$.missing", err: `$ has no key "missing"`},
		{path: "$.items[0]['odd key']", err: `$.items[0] has no key "odd key"`},
	}
	for _, tt := range tests {
		p, err := Parse(tt.path)
		if err != nil {
			t.Fatal(err)
		}
		got, err := p.Lookup(doc)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("Lookup(%s) err = %v, want %q", tt.path, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Lookup(%s): %v", tt.path, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Lookup(%s) (-want +got):\n%s", tt.path, diff)
		}
	}
}

// FuzzParse: parsing never panics; an error is a *SyntaxError whose offset
// lies inside the input; a parsed path prints to a canonical form that parses
// back to the same path; lookups never panic.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"$", "$.a.b[0]", "$['a.b']", `$["x\"y"]`, "$[-1]", "$..a", "$[*]", "$['", "$.a[", "$[99999999999999999999]", "$.é[0]['ü']", `$['\`, "$[-0]"} {
		f.Add(s)
	}
	doc := decode(f, `{"a":{"b":[1,{"c":"d"}]},"a.b":2,"":[[]]}`)
	f.Fuzz(func(t *testing.T, s string) {
		p, err := Parse(s)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %T is not a *SyntaxError: %v", err, err)
			}
			if se.Offset < 0 || se.Offset > len(s) || se.Reason == "" {
				t.Fatalf("bad error %+v for %q", *se, s)
			}
			return
		}
		again, err := Parse(p.String())
		if err != nil {
			t.Fatalf("%q printed as %q, which does not parse: %v", s, p.String(), err)
		}
		if diff := cmp.Diff(p, again); diff != "" {
			t.Fatalf("%q → %q round trip (-first +second):\n%s", s, p.String(), diff)
		}
		_, _ = p.Lookup(doc)
	})
}
