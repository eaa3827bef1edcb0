package suite

// YAML values written as JSON (request bodies, equals).

import (
	"encoding/json"
	"math"
	"strings"

	"go.yaml.in/yaml/v3"
)

// jsonChunk is the size of the chunks request bodies and equals values are
// written into: one allocation for many small values instead of a buffer
// each. A chunk is only appended to, so the values handed out never change.
const jsonChunk = 32 << 10

// toJSON converts a YAML value to JSON, keeping mapping order; strings are expanded.
func (d *decoder) toJSON(n *yaml.Node, path *at) (json.RawMessage, bool) {
	if cap(d.json)-len(d.json) < jsonChunk/64 {
		d.json = make([]byte, 0, jsonChunk)
	}
	start := len(d.json)
	before := len(d.probs)
	// A value too big for the chunk moves it, with what it holds, to a
	// bigger array: values handed out before keep the old one.
	d.json = d.writeJSON(d.json, n, path)
	if len(d.probs) > before && hasErrors(d.probs[before:]) {
		return nil, false
	}
	end := len(d.json)
	return json.RawMessage(d.json[start:end:end]), true
}

// writeJSON writes n; path is where toJSON started and d.trail the way
// from there to n.
func (d *decoder) writeJSON(b []byte, n *yaml.Node, path *at) []byte {
	n = deref(n)
	here := at{up: path, kind: atTrail, trail: d.trail}
	switch n.Kind {
	case yaml.MappingNode:
		ps, _ := d.pairs(n, &here, "")
		b = append(b, '{')
		first := true
		for p := range ps.all {
			if !first {
				b = append(b, ',')
			}
			first = false
			b = appendJSONString(b, p.key)
			b = append(b, ':')
			d.trail = append(d.trail, at{name: p.key})
			b = d.writeJSON(b, p.v, path)
			d.trail = d.trail[:len(d.trail)-1]
		}
		b = append(b, '}')
	case yaml.SequenceNode:
		b = append(b, '[')
		for i, it := range n.Content {
			if i > 0 {
				b = append(b, ',')
			}
			d.trail = append(d.trail, at{i: i, kind: atItem})
			b = d.writeJSON(b, it, path)
			d.trail = d.trail[:len(d.trail)-1]
		}
		b = append(b, ']')
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return append(b, "null"...)
		case "!!bool", "!!int", "!!float":
			if plainJSON(n.Tag, n.Value) {
				return append(b, n.Value...)
			}
			var v any
			if err := n.Decode(&v); err == nil {
				if f, isF := v.(float64); isF && (math.IsNaN(f) || math.IsInf(f, 0)) {
					d.errAt(n, "quote it to send a string", "%s: %s has no JSON form", here.String(), n.Value)
					return append(b, "null"...)
				}
				if out, err := json.Marshal(v); err == nil {
					return append(b, out...)
				}
			}
		}
		s, _ := d.text(n, &here, expanded)
		b = appendJSONString(b, s)
	default:
		b = append(b, "null"...)
	}
	return b
}

// plainJSON reports whether a YAML bool or int scalar is already written the
// way encoding/json writes the value the YAML library gives it: true, false,
// or a decimal integer without + or leading zeros that fits an int64.
// Anything else (0x1F, 1_000, +1, 1.50, .inf, yes) goes through the YAML
// library and encoding/json.
func plainJSON(tag, s string) bool {
	switch tag {
	case "!!bool":
		return s == "true" || s == "false"
	case "!!int":
		return isDecimal(s)
	}
	return false
}

// isDecimal: -?(0|[1-9][0-9]*) with at most 18 digits, and not -0.
func isDecimal(s string) bool {
	digits := strings.TrimPrefix(s, "-")
	if digits == "" || len(digits) > 18 || digits[0] == '0' && (len(digits) > 1 || len(s) > 1) {
		return false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return false
		}
	}
	return true
}

// appendJSONString appends s as encoding/json.Marshal writes it; strings of
// plain printable ASCII (the usual case) skip the encoder.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			out, _ := json.Marshal(s)
			return append(b, out...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
