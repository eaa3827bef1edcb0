package suite

import (
	"strings"
)

// Runtime placeholder kinds, filled by the engine (not at load).
const (
	refVars    = "vars"
	refCapture = "capture"
)

// runtimeRef is a ${vars.NAME} or ${capture.NAME} found in a value.
type runtimeRef struct {
	kind, name string
	off        int // byte offset of "${" in the raw value
}

// expandErr is a problem in one value at byte offset off.
type expandErr struct {
	off       int
	msg, hint string
	unset     bool // an unknown ${VAR}: only fatal where the value is used
}

// expansion is the result of expanding one value.
type expansion struct {
	out  string
	subs []string // values that came from Lookup (candidates for secrets)
	refs []runtimeRef
	errs []expandErr
}

// expand resolves ${VAR}, ${VAR:-default} and $$ in s; runtime placeholders
// are kept verbatim for the engine. A value that needs no change (no $, or
// only placeholders) is returned as it is, without a copy.
//
// Placeholders are appended to refs, which the caller may reuse.
func expand(s string, lookup func(string) (string, bool), refs []runtimeRef) expansion {
	if strings.IndexByte(s, '$') < 0 {
		return expansion{out: s, refs: refs}
	}
	x := expansion{refs: refs}
	var b strings.Builder
	copied := 0 // s[:copied] is in b, once b is used
	replace := func(i, next int, with string) {
		if b.Cap() == 0 {
			b.Grow(len(s))
		}
		b.WriteString(s[copied:i])
		b.WriteString(with)
		copied = next
	}
	for i := 0; i < len(s); {
		if s[i] != '$' || i+1 >= len(s) {
			i++
			continue
		}
		switch s[i+1] {
		case '$':
			replace(i, i+2, "$")
			i += 2
			continue
		case '{':
		default:
			i++
			continue
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			x.errs = append(x.errs, expandErr{off: i, msg: "unterminated ${ (no closing })",
				hint: "close it with }, or write $$ for a literal $"})
			break
		}
		body := s[i+2 : i+2+end]
		raw := s[i : i+3+end]
		next := i + 3 + end
		if kind, name, ok := strings.Cut(body, "."); ok && (kind == refVars || kind == refCapture) {
			switch {
			case strings.Contains(name, ":-"):
				x.errs = append(x.errs, expandErr{off: i, msg: raw + ": ${" + kind + ".NAME} takes no default",
					hint: "every variant must define the var, or capture it in an earlier step"})
			case !isIdent(name):
				x.errs = append(x.errs, expandErr{off: i, msg: "invalid reference " + raw,
					hint: "names use letters, digits and _, e.g. ${" + kind + ".token}"})
			default:
				x.refs = append(x.refs, runtimeRef{kind: kind, name: name, off: i})
			}
			i = next // kept verbatim
			continue
		}
		name, def, hasDef := strings.Cut(body, ":-")
		with := ""
		switch {
		case body == "":
			x.errs = append(x.errs, expandErr{off: i, msg: "empty ${}",
				hint: "write ${NAME}, ${NAME:-default}, or $$ for a literal $"})
		case !isIdent(name):
			x.errs = append(x.errs, expandErr{off: i, msg: "invalid variable reference " + raw,
				hint: "write ${NAME} or ${NAME:-default} (NAME: letters, digits, _), or $$ for a literal $"})
		case strings.Contains(def, "${"):
			x.errs = append(x.errs, expandErr{off: i, msg: "nested ${...} in the default of " + raw + " is not supported",
				hint: "use a literal default"})
		default:
			v, ok := "", false
			if lookup != nil {
				v, ok = lookup(name)
			}
			switch {
			case ok && (v != "" || !hasDef):
				with = v
				if v != "" {
					x.subs = append(x.subs, v)
				}
			case hasDef:
				with = def
			default:
				x.errs = append(x.errs, expandErr{off: i, unset: true, msg: "unknown variable ${" + name + "}: it is not set",
					hint: "set " + name + " in the job's environment, or give a default: ${" + name + ":-value}"})
			}
		}
		replace(i, next, with)
		i = next
	}
	if b.Cap() == 0 {
		x.out = s
		return x
	}
	b.WriteString(s[copied:])
	x.out = b.String()
	return x
}

// isIdent reports whether s is a variable name: [A-Za-z_][A-Za-z0-9_]*.
func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return false
	}
	return true
}

// isID reports whether s follows the id rule ^[a-z0-9][a-z0-9._-]*$.
func isID(s string) bool {
	if s == "" || len(s) > MaxIDLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || i > 0 && (c == '.' || c == '_' || c == '-') {
			continue
		}
		return false
	}
	return true
}

// suggestID turns s into something that follows the id rule.
func suggestID(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'
		if !ok || r > 127 {
			if !dash && b.Len() > 0 {
				b.WriteByte('-')
				dash = true
			}
			continue
		}
		b.WriteRune(r)
		dash = r == '-'
	}
	out := strings.TrimLeft(strings.TrimRight(b.String(), "-"), "._-")
	if len(out) > MaxIDLength {
		out = out[:MaxIDLength]
	}
	if out == "" {
		return "my-id"
	}
	return out
}

// quote shortens long values so a message stays one readable line.
func quote(s string) string {
	const max = 60
	r := []rune(s)
	if len(r) > max {
		s = string(r[:max]) + "…"
	}
	return `"` + strings.NewReplacer(`"`, `\"`, "\n", `\n`, "\t", `\t`).Replace(s) + `"`
}
