package suite

import (
	"fmt"
	"strconv"
	"strings"
)

// PathSegment is one step of a JSONPath: an object key or an array index.
type PathSegment struct {
	Key     string
	Index   int
	IsIndex bool
}

// ParseJSONPath parses the JSONPath subset of suite.md: "$" followed by
// .name, ['name'] (or ["name"]) and [N] segments, e.g. $.items[0]['content-type'].
// Names after a dot use letters, digits, _ and -; anything else needs brackets.
func ParseJSONPath(p string) ([]PathSegment, error) {
	if !strings.HasPrefix(p, "$") {
		return nil, fmt.Errorf("a JSONPath starts with $, e.g. $.token or $.items[0].id")
	}
	var segs []PathSegment
	for i := 1; i < len(p); {
		switch p[i] {
		case '.':
			j := i + 1
			for j < len(p) && isNameByte(p[j]) {
				j++
			}
			if j == i+1 {
				if j < len(p) && p[j] == '.' {
					return nil, fmt.Errorf("recursive descent (..) is not supported; write the full path")
				}
				if j < len(p) && p[j] == '*' {
					return nil, fmt.Errorf("wildcards are not supported; index the element, e.g. [0]")
				}
				return nil, fmt.Errorf("empty name after . at offset %d; use ['name'] for names with other characters", i)
			}
			segs = append(segs, PathSegment{Key: p[i+1 : j]})
			i = j
		case '[':
			end := strings.IndexByte(p[i:], ']')
			if end < 0 {
				return nil, fmt.Errorf("unclosed [ at offset %d", i)
			}
			in := p[i+1 : i+end]
			switch {
			case len(in) >= 2 && (in[0] == '\'' || in[0] == '"') && in[len(in)-1] == in[0]:
				key := in[1 : len(in)-1]
				if strings.ContainsAny(key, `'"`) {
					return nil, fmt.Errorf("quotes inside a bracketed name are not supported")
				}
				segs = append(segs, PathSegment{Key: key})
			case in == "*":
				return nil, fmt.Errorf("wildcards are not supported; index the element, e.g. [0]")
			default:
				n, err := strconv.Atoi(in)
				if err != nil || n < 0 || strings.HasPrefix(in, "+") {
					return nil, fmt.Errorf("[%s] is neither an index [N] (N >= 0) nor a quoted name ['name']", in)
				}
				segs = append(segs, PathSegment{Index: n, IsIndex: true})
			}
			i += end + 1
		default:
			return nil, fmt.Errorf("unexpected %q at offset %d; segments are .name, ['name'] or [N]", p[i], i)
		}
	}
	return segs, nil
}

func isNameByte(c byte) bool {
	return c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
