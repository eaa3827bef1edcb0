package step

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// ref matches ${vars.NAME} and ${capture.NAME}; every other ${...} is left
// alone (a run step's shell code has its own ${HOME}).
var ref = regexp.MustCompile(`\$\{(vars|capture)\.([^}]*)\}`)

// substituter replaces ${vars.NAME} and ${capture.NAME}, remembering the
// first unknown reference so a step can fail with one clear message.
type substituter struct {
	vars, captures map[string]string
	err            error
}

func (s *substituter) str(in string) string {
	if s.err != nil || !hasRef(in) {
		return in
	}
	return ref.ReplaceAllStringFunc(in, func(m string) string {
		sub := ref.FindStringSubmatch(m)
		kind, name := sub[1], sub[2]
		table := s.vars
		if kind == "capture" {
			table = s.captures
		}
		if v, ok := table[name]; ok {
			return v
		}
		if s.err == nil {
			s.err = unknownRef(kind, name, table)
		}
		return m
	})
}

func unknownRef(kind, name string, table map[string]string) error {
	known := make([]string, 0, len(table))
	for k := range table {
		known = append(known, k)
	}
	sort.Strings(known)
	have := "none"
	if len(known) > 0 {
		have = strings.Join(known, ", ")
	}
	if kind == "capture" {
		return fmt.Errorf("unknown ${capture.%s}: no earlier step of this case captured %q (captured so far: %s); add `capture: {%s: $.path}` to an earlier http step", name, name, have, name)
	}
	return fmt.Errorf("unknown ${vars.%s}: the variant has no var %q (vars: %s); add it to every variant's vars", name, name, have)
}

// hasRef reports whether in may hold a reference to substitute.
func hasRef(in string) bool { return strings.Contains(in, "${") }

// strs returns in with every string substituted: in itself when none holds
// a reference (callers only read the result).
func (s *substituter) strs(in []string) []string {
	if !slices.ContainsFunc(in, hasRef) {
		return in
	}
	out := make([]string, len(in))
	for i, v := range in {
		out[i] = s.str(v)
	}
	return out
}

// strMap returns in with every key and value substituted: in itself when
// none holds a reference (callers only read the result).
func (s *substituter) strMap(in map[string]string) map[string]string {
	refs := false
	for k, v := range in {
		if hasRef(k) || hasRef(v) {
			refs = true
			break
		}
	}
	if !refs {
		return in
	}
	out := make(map[string]string, len(in))
	for k, v := range in {
		out[s.str(k)] = s.str(v)
	}
	return out
}

// ptr returns p's string substituted: p itself when it holds no reference.
func (s *substituter) ptr(p *string) *string {
	if p == nil || !hasRef(*p) {
		return p
	}
	v := s.str(*p)
	return &v
}

// rawJSON substitutes inside the strings (keys and values) of a JSON
// document, so a value with quotes cannot break the document's syntax.
func (s *substituter) rawJSON(raw json.RawMessage) (json.RawMessage, error) {
	if len(raw) == 0 || !bytes.Contains(raw, []byte("${")) {
		return raw, nil
	}
	v, err := decodeJSON(raw)
	if err != nil {
		return nil, err
	}
	v = s.walk(v)
	if s.err != nil {
		return raw, nil
	}
	return json.Marshal(v)
}

func (s *substituter) walk(v any) any {
	switch t := v.(type) {
	case string:
		return s.str(t)
	case []any:
		for i := range t {
			t[i] = s.walk(t[i])
		}
		return t
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[s.str(k)] = s.walk(e)
		}
		return out
	}
	return v
}

// decodeJSON decodes one JSON document keeping numbers exact (json.Number).
func decodeJSON(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, fmt.Errorf("unexpected data after the JSON value")
	}
	return v, nil
}
