package suite

import (
	"bytes"
	"encoding/json"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestToJSONFastPaths: scalars written without the YAML library and
// encoding/json (plain decimals, true/false, plain ASCII strings) come out
// exactly as the slow path writes them, and the rest still takes it.
func TestToJSONFastPaths(t *testing.T) {
	for _, src := range []string{
		"0", "7", "-7", "200", "123456789012345678", "1234567890123456789", "-0", "007", "+1", "0x1F", "0o17", "1_000",
		"1.5", "1.50", "1e3", ".inf", "-.Inf", ".nan", "true", "false", "True", "FALSE", "~", "null",
		"plain", "a b", `"quo\"te"`, "'<b>&'", "'a<b'", `"tab\there"`, "é", `"\u2028"`, `"back\\slash"`,
		"!!int 12", "!!str 12", "[1, {a: b}, true]", "{x: 1, 'y z': [null]}",
	} {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte("v: "+src), &doc); err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		n := doc.Content[0].Content[1]
		d := &decoder{file: "t.yaml", lookup: func(string) (string, bool) { return "", false }}
		got, ok := d.toJSON(n, rootAt("v"))
		if !ok {
			if n.Tag == "!!float" {
				continue // NaN and infinities have no JSON form; reported elsewhere
			}
			t.Errorf("%s: toJSON failed: %v", src, d.probs)
			continue
		}
		var v any
		if err := n.Decode(&v); err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if n.Kind == yaml.ScalarNode && !bytes.Equal(got, want) {
			t.Errorf("%s (%s): toJSON = %s, encoding/json = %s", src, n.Tag, got, want)
		}
		var back any
		if err := json.Unmarshal(got, &back); err != nil {
			t.Errorf("%s: toJSON wrote invalid JSON %s", src, got)
		}
	}
}

// TestJSONChunksAreNotShared: values toJSON hands out share one chunk; none
// may see another's bytes or be changed by an append to another.
func TestJSONChunksAreNotShared(t *testing.T) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte("a: {x: [1, 2]}\nb: \"text\"\nc: {y: true}\n"), &doc); err != nil {
		t.Fatal(err)
	}
	d := &decoder{file: "t.yaml"}
	var got []json.RawMessage
	for i := 1; i < len(doc.Content[0].Content); i += 2 {
		raw, ok := d.toJSON(doc.Content[0].Content[i], rootAt("v"))
		if !ok || cap(raw) != len(raw) {
			t.Fatalf("toJSON = %s (cap %d), %v", raw, cap(raw), ok)
		}
		got = append(got, raw)
	}
	_ = append(got[0], "garbage"...)
	for i, want := range []string{`{"x":[1,2]}`, `"text"`, `{"y":true}`} {
		if string(got[i]) != want {
			t.Errorf("value %d = %s, want %s", i, got[i], want)
		}
	}
}
