package step

import "testing"

// The JSONPath grammar, its parser and its fuzz test live in
// internal/jsonpath, shared with the suite's validation.

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
