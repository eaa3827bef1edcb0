package suite

// YAML values written as JSON (request bodies, equals).

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"

	"go.yaml.in/yaml/v3"
)

// toJSON converts a YAML value to JSON, keeping mapping order; strings are expanded.
func (d *decoder) toJSON(n *yaml.Node, path *at) (json.RawMessage, bool) {
	var b bytes.Buffer
	before := len(d.probs)
	d.writeJSON(&b, n, path)
	if len(d.probs) > before && hasErrors(d.probs[before:]) {
		return nil, false
	}
	return b.Bytes(), true
}

// writeJSON writes n; path is where toJSON started and d.trail the way
// from there to n.
func (d *decoder) writeJSON(b *bytes.Buffer, n *yaml.Node, path *at) {
	n = deref(n)
	here := at{up: path, kind: atTrail, trail: d.trail}
	switch n.Kind {
	case yaml.MappingNode:
		ps, _ := d.pairs(n, &here, "")
		b.WriteByte('{')
		first := true
		for p := range ps.all {
			if !first {
				b.WriteByte(',')
			}
			first = false
			writeJSONString(b, p.key)
			b.WriteByte(':')
			d.trail = append(d.trail, at{name: p.key})
			d.writeJSON(b, p.v, path)
			d.trail = d.trail[:len(d.trail)-1]
		}
		b.WriteByte('}')
	case yaml.SequenceNode:
		b.WriteByte('[')
		for i, it := range n.Content {
			if i > 0 {
				b.WriteByte(',')
			}
			d.trail = append(d.trail, at{i: i, kind: atItem})
			d.writeJSON(b, it, path)
			d.trail = d.trail[:len(d.trail)-1]
		}
		b.WriteByte(']')
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			b.WriteString("null")
			return
		case "!!bool", "!!int", "!!float":
			if plainJSON(n.Tag, n.Value) {
				b.WriteString(n.Value)
				return
			}
			var v any
			if err := n.Decode(&v); err == nil {
				if f, isF := v.(float64); isF && (math.IsNaN(f) || math.IsInf(f, 0)) {
					d.errAt(n, "quote it to send a string", "%s: %s has no JSON form", here.String(), n.Value)
					b.WriteString("null")
					return
				}
				if out, err := json.Marshal(v); err == nil {
					b.Write(out)
					return
				}
			}
		}
		s, _ := d.text(n, &here, expanded)
		writeJSONString(b, s)
	default:
		b.WriteString("null")
	}
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

// writeJSONString writes s as encoding/json.Marshal does; strings of plain
// printable ASCII (the usual case) skip the encoder.
func writeJSONString(b *bytes.Buffer, s string) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			out, _ := json.Marshal(s)
			b.Write(out)
			return
		}
	}
	b.WriteByte('"')
	b.WriteString(s)
	b.WriteByte('"')
}
