package suite

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// readInPlace is what object decided before knownKeys: a mapping is read in
// place when pairs reads it as a view (plainKeys) and every key is known.
func readInPlace(c []*yaml.Node, known []string) bool {
	if !plainKeys(c) {
		return false
	}
	for i := 0; i+1 < len(c); i += 2 {
		if !slices.Contains(known, c[i].Value) {
			return false
		}
	}
	return true
}

// mappings returns every mapping node of the tree under n (aliases not
// followed: their targets are in the tree too).
func mappings(n *yaml.Node, out []*yaml.Node) []*yaml.Node {
	if n == nil {
		return out
	}
	if n.Kind == yaml.MappingNode {
		out = append(out, n)
	}
	for _, c := range n.Content {
		out = mappings(c, out)
	}
	return out
}

// TestKnownKeys pins the one-pass check against the two it replaces on the
// mappings where they could differ: a repeated known key, an unknown key, a
// merge key, an alias or a non-scalar as a key, too many keys.
func TestKnownKeys(t *testing.T) {
	tests := []struct {
		src  string
		want bool
	}{
		{"{id: a, steps: [], name: n}", true},
		{"{}", true},
		{"{id: a, id: b}", false}, // yaml.v3 keeps both
		{"{id: a, stpes: []}", false},
		{"{x-a: 1}", false},
		{"{<<: {id: a}, name: n}", false},
		{"{? [id] : a}", false},
		{"{id: &k name, *k : b}", false},
		{"{id: a, name: b, tags: c, covers: d, always: e, timeout: f, retries: g, variants: h, steps: i, quarantine: j}", true},
	}
	for _, tt := range tests {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(tt.src), &doc); err != nil {
			t.Fatalf("%s: %v", tt.src, err)
		}
		m := doc.Content[0]
		if got := knownKeys(m.Content, fields["case"]); got != tt.want {
			t.Errorf("knownKeys(%s) = %v, want %v", tt.src, got, tt.want)
		}
		if ref := readInPlace(m.Content, fields["case"]); ref != tt.want {
			t.Errorf("the reference says %v for %s", ref, tt.src)
		}
	}
}

// FuzzKnownKeys checks on any input that knownKeys reads a mapping in place
// exactly when the pairwise check and the known-field check together did,
// for every context's field list.
func FuzzKnownKeys(f *testing.F) {
	for _, name := range []string{"testdata/spec.yaml", "testdata/full.yaml", "testdata/broken.yaml"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("{id: a, id: b, name: [{url: u, url: v}], x: {<<: {run: x}, run: y}}"))
	f.Add([]byte(strings.Repeat("- {method: GET, path: /, url: u, headers: {}, query: {}, json: 1, body: b, form: {}}\n", 3)))
	ctxs := make([]string, 0, len(fields))
	for ctx := range fields {
		ctxs = append(ctxs, ctx)
	}
	slices.Sort(ctxs)
	f.Fuzz(func(t *testing.T, src []byte) {
		if len(src) > 1<<16 {
			return
		}
		var doc yaml.Node
		dec := yaml.NewDecoder(bytes.NewReader(src))
		if err := safeDecode(dec, &doc); err != nil {
			return // not YAML: no mappings to compare
		}
		for _, m := range mappings(&doc, nil) {
			for _, ctx := range ctxs {
				if got, want := knownKeys(m.Content, fields[ctx]), readInPlace(m.Content, fields[ctx]); got != want {
					t.Fatalf("knownKeys = %v, the pairwise and known checks %v, for %s at line %d", got, want, ctx, m.Line)
				}
			}
		}
	})
}
