package suite

import (
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestExpand(t *testing.T) {
	env := map[string]string{"HOST": "example.com", "EMPTY": "", "TOKEN": "s3cr3t"}
	look := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	tests := []struct {
		in   string
		out  string
		subs []string
		refs []runtimeRef
		errs []string
	}{
		{in: "plain", out: "plain"},
		{in: "https://${HOST}/x", out: "https://example.com/x", subs: []string{"example.com"}},
		{in: "${MISSING:-fallback}", out: "fallback"},
		{in: "${EMPTY:-fallback}", out: "fallback"},
		{in: "${EMPTY}", out: ""},
		{in: "${HOST:-other}", out: "example.com", subs: []string{"example.com"}},
		{in: "${MISSING:-}", out: ""},
		{in: "$$", out: "$"},
		{in: "$${HOST}", out: "${HOST}"},
		{in: "cost: $5 and $HOME", out: "cost: $5 and $HOME"},
		{in: "trailing $", out: "trailing $"},
		{in: "Bearer ${TOKEN} ${TOKEN}", out: "Bearer s3cr3t s3cr3t", subs: []string{"s3cr3t", "s3cr3t"}},
		{in: "/${vars.currency}/${capture.id}", out: "/${vars.currency}/${capture.id}",
			refs: []runtimeRef{{kind: "vars", name: "currency", off: 1}, {kind: "capture", name: "id", off: 18}}},
		{in: "${MISSING}", out: "", errs: []string{"0 unknown variable ${MISSING}: it is not set"}},
		{in: "a ${", out: "a ${", errs: []string{"2 unterminated ${ (no closing })"}},
		{in: "${}", out: "", errs: []string{"0 empty ${}"}},
		{in: "${1X}", out: "", errs: []string{"0 invalid variable reference ${1X}"}},
		{in: "${A:=b}", out: "", errs: []string{"0 invalid variable reference ${A:=b}"}},
		{in: "${A:-${B}}", out: "}", errs: []string{"0 nested ${...} in the default of ${A:-${B} is not supported"}},
		{in: "${vars.x:-y}", out: "${vars.x:-y}", errs: []string{"0 ${vars.x:-y}: ${vars.NAME} takes no default"}},
		{in: "${capture.a-b}", out: "${capture.a-b}", errs: []string{"0 invalid reference ${capture.a-b}"}},
	}
	for _, tt := range tests {
		x := expand(tt.in, look, nil)
		var errs []string
		for _, e := range x.errs {
			errs = append(errs, strconv.Itoa(e.off)+" "+e.msg)
		}
		if x.out != tt.out {
			t.Errorf("expand(%q) = %q, want %q", tt.in, x.out, tt.out)
		}
		if diff := cmp.Diff(tt.subs, x.subs); diff != "" {
			t.Errorf("expand(%q) subs (-want +got):\n%s", tt.in, diff)
		}
		if diff := cmp.Diff(tt.refs, x.refs, cmp.AllowUnexported(runtimeRef{})); diff != "" {
			t.Errorf("expand(%q) refs (-want +got):\n%s", tt.in, diff)
		}
		if diff := cmp.Diff(tt.errs, errs); diff != "" {
			t.Errorf("expand(%q) errs (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestExpandNilLookup(t *testing.T) {
	x := expand("${A}", nil, nil)
	if len(x.errs) != 1 || !x.errs[0].unset {
		t.Fatalf("want one unset error, got %+v", x.errs)
	}
}

func TestClosest(t *testing.T) {
	fieldsOfCase := fields["case"]
	tests := []struct{ in, want string }{
		{"stpes", "steps"},
		{"Steps", "steps"},
		{"tag", "tags"},
		{"cover", "covers"},
		{"timout", "timeout"},
		{"retry", ""}, // two edits in a 5-letter word is not a typo
		{"description", ""},
		{"x", ""},
	}
	for _, tt := range tests {
		if got := closest(tt.in, fieldsOfCase); got != tt.want {
			t.Errorf("closest(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestIDRule(t *testing.T) {
	good := []string{"a", "login", "user-login", "v1.2", "a_b", "0day"}
	bad := []string{"", "Login", "-a", ".a", "_a", "a b", "a/b", "a:b", "é", string(make([]byte, MaxIDLength+1))}
	for _, s := range good {
		if !isID(s) {
			t.Errorf("isID(%q) = false", s)
		}
	}
	for _, s := range bad {
		if isID(s) {
			t.Errorf("isID(%q) = true", s)
		}
	}
	for in, want := range map[string]string{"Log In": "log-in", "--x": "x", "Über Test!": "ber-test", "***": "my-id"} {
		if got := suggestID(in); got != want || !isID(got) {
			t.Errorf("suggestID(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzExpand: the ${VAR} parser never panics; every problem and placeholder
// points inside the value; text without $ is returned as it is; every
// placeholder found is left verbatim in the output.
func FuzzExpand(f *testing.F) {
	for _, s := range []string{"plain", "${A}", "${A:-x}", "$${A}", "${", "${}", "${A-b}", "${vars.x} ${capture.y}", "$", "${A:-${B}}", "a$b", "${vars.}"} {
		f.Add(s)
	}
	look := func(name string) (string, bool) { return "v", name == "A" }
	f.Fuzz(func(t *testing.T, s string) {
		x := expand(s, look, nil)
		for _, e := range x.errs {
			if e.off < 0 || e.off >= len(s) || e.msg == "" {
				t.Fatalf("expand(%q): problem %+v outside the value", s, e)
			}
		}
		for _, r := range x.refs {
			if r.off < 0 || r.off >= len(s) || !strings.HasPrefix(s[r.off:], "${"+r.kind+"."+r.name+"}") {
				t.Fatalf("expand(%q): placeholder %+v not at its offset", s, r)
			}
			if !strings.Contains(x.out, "${"+r.kind+"."+r.name+"}") {
				t.Fatalf("expand(%q) = %q lost placeholder %+v", s, x.out, r)
			}
		}
		if !strings.Contains(s, "$") && x.out != s {
			t.Fatalf("expand(%q) = %q changed text without $", s, x.out)
		}
		if want := expandRef(s, look); !reflect.DeepEqual(x, want) {
			t.Fatalf("expand(%q) = %+v, want %+v", s, x, want)
		}
	})
}

// expandRef is expand as it was written first, building every value with
// a strings.Builder: the reference FuzzExpand holds expand to.
func expandRef(s string, lookup func(string) (string, bool)) expansion {
	if strings.IndexByte(s, '$') < 0 {
		return expansion{out: s}
	}
	var x expansion
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c != '$' || i+1 >= len(s) {
			b.WriteByte(c)
			i++
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i += 2
			continue
		case '{':
		default:
			b.WriteByte('$')
			i++
			continue
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			x.errs = append(x.errs, expandErr{off: i, msg: "unterminated ${ (no closing })",
				hint: "close it with }, or write $$ for a literal $"})
			b.WriteString(s[i:])
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
			b.WriteString(raw)
			i = next
			continue
		}
		name, def, hasDef := strings.Cut(body, ":-")
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
				b.WriteString(v)
				if v != "" {
					x.subs = append(x.subs, v)
				}
			case hasDef:
				b.WriteString(def)
			default:
				x.errs = append(x.errs, expandErr{off: i, unset: true, msg: "unknown variable ${" + name + "}: it is not set",
					hint: "set " + name + " in the job's environment, or give a default: ${" + name + ":-value}"})
			}
		}
		i = next
	}
	x.out = b.String()
	return x
}
