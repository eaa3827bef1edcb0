package step

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// jsonPath is a parsed path of the JSONPath subset the suite allows:
// `$`, `.name`, `['name']` / `["name"]`, `[N]` and `[-N]` (from the end).
type jsonPath []pathSeg

type pathSeg struct {
	key   string
	index int
	isIdx bool
}

// parseJSONPath parses p, naming the position of the first problem.
func parseJSONPath(p string) (jsonPath, error) {
	if !strings.HasPrefix(p, "$") {
		return nil, fmt.Errorf("JSONPath %q must start with $ (like $.items[0].sku)", p)
	}
	var out jsonPath
	i := 1
	for i < len(p) {
		switch p[i] {
		case '.':
			j := i + 1
			for j < len(p) && p[j] != '.' && p[j] != '[' {
				j++
			}
			if j == i+1 {
				return nil, fmt.Errorf("JSONPath %q: empty name at offset %d (use $.a.b, or $['a.b'] for a key with dots)", p, i)
			}
			out = append(out, pathSeg{key: p[i+1 : j]})
			i = j
		case '[':
			if i+1 < len(p) && (p[i+1] == '\'' || p[i+1] == '"') {
				key, next, err := quotedKey(p, i+1)
				if err != nil {
					return nil, err
				}
				if next >= len(p) || p[next] != ']' {
					return nil, fmt.Errorf("JSONPath %q: missing ] at offset %d", p, next)
				}
				out = append(out, pathSeg{key: key})
				i = next + 1
				continue
			}
			end := strings.IndexByte(p[i:], ']')
			if end < 0 {
				return nil, fmt.Errorf("JSONPath %q: missing ] after offset %d", p, i)
			}
			num := p[i+1 : i+end]
			n, err := strconv.Atoi(num)
			if err != nil || strings.HasPrefix(num, "+") {
				return nil, fmt.Errorf("JSONPath %q: [%s] at offset %d is not an index; use [0], [-1] or ['key'] (filters and wildcards are not supported)", p, num, i)
			}
			out = append(out, pathSeg{index: n, isIdx: true})
			i += end + 1
		default:
			return nil, fmt.Errorf("JSONPath %q: unexpected %q at offset %d; use .name, ['name'] or [N]", p, p[i], i)
		}
	}
	return out, nil
}

// quotedKey reads a quoted key starting at the quote at p[i]; backslash
// escapes the next byte. It returns the key and the offset after the quote.
func quotedKey(p string, i int) (string, int, error) {
	q := p[i]
	var b strings.Builder
	for j := i + 1; j < len(p); j++ {
		switch c := p[j]; {
		case c == '\\' && j+1 < len(p):
			j++
			b.WriteByte(p[j])
		case c == q:
			return b.String(), j + 1, nil
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, fmt.Errorf("JSONPath %q: unterminated quote at offset %d", p, i)
}

// String writes the path back in canonical form.
func (jp jsonPath) String() string {
	var b strings.Builder
	b.WriteByte('$')
	for _, s := range jp {
		switch {
		case s.isIdx:
			fmt.Fprintf(&b, "[%d]", s.index)
		case s.key != "" && !strings.ContainsAny(s.key, ".[]'\"\\ "):
			b.WriteByte('.')
			b.WriteString(s.key)
		default:
			b.WriteString("['")
			b.WriteString(strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s.key))
			b.WriteString("']")
		}
	}
	return b.String()
}

// lookup resolves the path in a decoded document. When it does not resolve,
// the error says where and why ("$.items has 2 elements, no [5]").
func (jp jsonPath) lookup(doc any) (any, error) {
	cur := doc
	for i, s := range jp {
		at := jp[:i].String()
		if s.isIdx {
			arr, ok := cur.([]any)
			if !ok {
				return nil, fmt.Errorf("%s is %s, not an array", at, kindOf(cur))
			}
			n := s.index
			if n < 0 {
				n += len(arr)
			}
			if n < 0 || n >= len(arr) {
				return nil, fmt.Errorf("%s has %d elements, no [%d]", at, len(arr), s.index)
			}
			cur = arr[n]
			continue
		}
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s is %s, not an object", at, kindOf(cur))
		}
		v, ok := obj[s.key]
		if !ok {
			return nil, fmt.Errorf("%s has no key %q", at, s.key)
		}
		cur = v
	}
	return cur, nil
}

func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case json.Number, float64:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// stringForm is how a JSON value reads in messages, captures and matches:
// strings as themselves, everything else as compact JSON.
func stringForm(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
