package suite_test

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"github.com/zof-ai/zof-ci/internal/suite"
)

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(suite.Schema))
	if err != nil {
		t.Fatalf("schema.json is not JSON: %v", err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("schema.json")
	if err != nil {
		t.Fatalf("schema.json does not compile: %v", err)
	}
	return sch
}

// yamlToJSON converts a YAML document to the JSON value the schema checks,
// as an editor's YAML language server does.
func yamlToJSON(t *testing.T, src []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(src, &v); err != nil {
		t.Fatalf("yaml: %v", err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("json: %v", err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return inst
}

// validSuites are the suite files that must load and pass the schema: this
// package's valid fixtures and every zof.yaml under examples/.
func validSuites(t *testing.T) []string {
	files := []string{"testdata/spec.yaml", "testdata/full.yaml"}
	err := filepath.WalkDir("../../examples", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return filepath.SkipAll
			}
			return err
		}
		if !d.IsDir() && d.Name() == "zof.yaml" {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestSchemaAcceptsValidSuites(t *testing.T) {
	sch := compileSchema(t)
	for _, f := range validSuites(t) {
		t.Run(f, func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := sch.Validate(yamlToJSON(t, src)); err != nil {
				t.Errorf("schema rejects %s:\n%v", f, err)
			}
			// The decoder agrees: the file loads without errors (other
			// ${VAR}s have defaults or sit in environments not in use).
			if _, err := suite.Load(f, suite.Options{Lookup: lookup(fullEnv)}); err != nil {
				t.Errorf("decoder rejects %s:\n%v", f, err)
			}
		})
	}
}

func TestSchemaRejectsInvalidSuites(t *testing.T) {
	sch := compileSchema(t)
	const ok = "version: 1\ncases:\n  - id: a\n    steps: [{run: x}]\n"
	tests := []struct{ name, src string }{
		{"unknown top-level field", ok + "colour: red\n"},
		{"version 2", strings.Replace(ok, "version: 1", "version: 2", 1)},
		{"missing cases", "version: 1\n"},
		{"step with http and run", "version: 1\ncases:\n  - id: a\n    steps: [{run: x, http: {path: /}}]\n"},
		{"step with neither", "version: 1\ncases:\n  - id: a\n    steps: [{name: x}]\n"},
		{"expect on a run step", "version: 1\ncases:\n  - id: a\n    steps: [{run: x, expect: {status: 200}}]\n"},
		{"invalid case id", strings.Replace(ok, "id: a", "id: Bad ID", 1)},
		{"unknown case field", strings.Replace(ok, "id: a", "id: a\n    stpes: []", 1)},
		{"bad duration", ok + "defaults: {timeout: 5 min}\n"},
		{"duration without unit", ok + "defaults: {timeout: 30}\n"},
		{"bad enum", ok + "gate: {on_empty: maybe}\n"},
		{"bad status", "version: 1\ncases:\n  - id: a\n    steps: [{http: {path: /}, expect: {status: 6xx}}]\n"},
		{"http with path and url", "version: 1\ncases:\n  - id: a\n    steps: [{http: {path: /, url: \"http://x\"}}]\n"},
		{"json and body", "version: 1\ncases:\n  - id: a\n    steps: [{http: {path: /, json: {}, body: x}}]\n"},
		{"empty set", ok + "sets: {s: {}}\n"},
		{"module without patterns", ok + "selection: {modules: {cart: []}}\n"},
		{"bad module name", ok + "selection: {modules: {\"Cart UI\": [a/**]}}\n"},
		{"bad json path", "version: 1\ncases:\n  - id: a\n    steps: [{http: {path: /}, expect: {json: {token: {exists: true}}}}]\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := sch.Validate(yamlToJSON(t, []byte(tt.src))); err == nil {
				t.Errorf("schema accepts:\n%s", tt.src)
			}
			if _, err := suite.Parse("zof.yaml", strings.NewReader(tt.src), suite.Options{}); err == nil {
				t.Errorf("decoder accepts:\n%s", tt.src)
			}
		})
	}
}

// TestSchemaMatchesDecoder keeps schema.json and the decoder in step: each
// $defs entry named after a decoder context lists the same properties.
func TestSchemaMatchesDecoder(t *testing.T) {
	var schema struct {
		Defs map[string]struct {
			Properties map[string]json.RawMessage `json:"properties"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(suite.Schema, &schema); err != nil {
		t.Fatal(err)
	}
	for ctx, want := range suite.Fields() {
		def, ok := schema.Defs[ctx]
		if !ok {
			t.Errorf("schema.json has no $defs/%s", ctx)
			continue
		}
		var got []string
		for k := range def.Properties {
			got = append(got, k)
		}
		sort.Strings(got)
		want = append([]string(nil), want...)
		sort.Strings(want)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("$defs/%s properties differ from the decoder (-decoder +schema):\n%s", ctx, diff)
		}
	}
}
