package step

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseJSONPath(t *testing.T) {
	tests := []struct {
		in   string
		want jsonPath
		str  string // canonical form
		err  string
	}{
		{in: "$", want: nil, str: "$"},
		{in: "$.a.b", want: jsonPath{{key: "a"}, {key: "b"}}, str: "$.a.b"},
		{in: "$.items[0].sku", want: jsonPath{{key: "items"}, {index: 0, isIdx: true}, {key: "sku"}}, str: "$.items[0].sku"},
		{in: "$.items[-1]", want: jsonPath{{key: "items"}, {index: -1, isIdx: true}}, str: "$.items[-1]"},
		{in: `$['a.b']["c d"]`, want: jsonPath{{key: "a.b"}, {key: "c d"}}, str: `$['a.b']['c d']`},
		{in: `$['it\'s']`, want: jsonPath{{key: "it's"}}, str: `$['it\'s']`},
		{in: `$['']`, want: jsonPath{{key: ""}}, str: `$['']`},
		{in: "$[0][1]", want: jsonPath{{isIdx: true}, {index: 1, isIdx: true}}, str: "$[0][1]"},
		{in: "a.b", err: `JSONPath "a.b" must start with $ (like $.items[0].sku)`},
		{in: "$.", err: `JSONPath "$.": empty name at offset 1 (use $.a.b, or $['a.b'] for a key with dots)`},
		{in: "$..a", err: `JSONPath "$..a": empty name at offset 1 (use $.a.b, or $['a.b'] for a key with dots)`},
		{in: "$[*]", err: `JSONPath "$[*]": [*] at offset 1 is not an index; use [0], [-1] or ['key'] (filters and wildcards are not supported)`},
		{in: "$[+1]", err: `JSONPath "$[+1]": [+1] at offset 1 is not an index; use [0], [-1] or ['key'] (filters and wildcards are not supported)`},
		{in: "$[0", err: `JSONPath "$[0": missing ] after offset 1`},
		{in: "$['a'", err: `JSONPath "$['a'": missing ] at offset 5`},
		{in: "$['a]", err: `JSONPath "$['a]": unterminated quote at offset 2`},
		{in: "$a", err: `JSONPath "$a": unexpected 'a' at offset 1; use .name, ['name'] or [N]`},
	}
	for _, tt := range tests {
		got, err := parseJSONPath(tt.in)
		gotErr := ""
		if err != nil {
			gotErr = err.Error()
		}
		if gotErr != tt.err {
			t.Errorf("parseJSONPath(%q) error %q, want %q", tt.in, gotErr, tt.err)
			continue
		}
		if err != nil {
			continue
		}
		if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(pathSeg{})); diff != "" {
			t.Errorf("parseJSONPath(%q) (-want +got):\n%s", tt.in, diff)
		}
		if s := got.String(); s != tt.str {
			t.Errorf("String() = %q, want %q", s, tt.str)
		}
	}
}

func TestJSONEqual(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{`1`, `1.0`, true},
		{`1`, `1e0`, true},
		{`0.1`, `1e-1`, true},
		{`1`, `2`, false},
		{`1`, `"1"`, false},
		{`null`, `null`, true},
		{`null`, `false`, false},
		{`[1,2]`, `[1,2.0]`, true},
		{`[1,2]`, `[2,1]`, false},
		{`[1]`, `[1,1]`, false},
		{`{"a":1,"b":[true]}`, `{"b":[true],"a":1.0}`, true},
		{`{"a":1}`, `{"a":1,"b":2}`, false},
		{`{"a":1}`, `{"b":1}`, false},
		{`1e999999999`, `1e999999999`, true}, // same text; never expanded
		{`1e999999999`, `1e999999998`, false},
	}
	for _, tt := range tests {
		a, err := decodeJSON([]byte(tt.a))
		if err != nil {
			t.Fatal(err)
		}
		b, err := decodeJSON([]byte(tt.b))
		if err != nil {
			t.Fatal(err)
		}
		if got := jsonEqual(a, b); got != tt.want {
			t.Errorf("jsonEqual(%s, %s) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
		if got := jsonEqual(b, a); got != tt.want {
			t.Errorf("jsonEqual(%s, %s) = %v, want %v (not symmetric)", tt.b, tt.a, got, tt.want)
		}
	}
	if _, err := decodeJSON([]byte(`{} x`)); err == nil {
		t.Error("trailing data accepted")
	}
}

// FuzzJSONPath: parsing never panics, and a parsed path prints to a form
// that parses back to the same path; lookups never panic.
func FuzzJSONPath(f *testing.F) {
	for _, s := range []string{"$", "$.a.b[0]", "$['a.b']", `$["x\"y"]`, "$[-1]", "$..a", "$[*]", "$['", "$.a[", "$[99999999999999999999]", "$.é[0]['ü']"} {
		f.Add(s)
	}
	doc, err := decodeJSON([]byte(`{"a":{"b":[1,{"c":"d"}]},"a.b":2,"":[[]]}`))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parseJSONPath(s)
		if err != nil {
			if !strings.Contains(err.Error(), "JSONPath") {
				t.Errorf("error does not name the path: %v", err)
			}
			return
		}
		again, err := parseJSONPath(p.String())
		if err != nil {
			t.Fatalf("%q printed as %q, which does not parse: %v", s, p.String(), err)
		}
		if diff := cmp.Diff(p, again, cmp.AllowUnexported(pathSeg{})); diff != "" {
			t.Fatalf("%q → %q round trip (-first +second):\n%s", s, p.String(), diff)
		}
		_, _ = p.lookup(doc)
	})
}
