package secret

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"html"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestMasker(t *testing.T) {
	tests := []struct {
		name    string
		secrets []string
		in      string
		want    string
	}{
		{"none", nil, "token abc", "token abc"},
		{"one", []string{"s3cret"}, "Bearer s3cret!", "Bearer ***!"},
		{"longest first", []string{"abc", "abcdef"}, "x abcdef y abc", "x *** y ***"},
		{"too short to mask", []string{"ab"}, "ab ab", "ab ab"},
		{"repeated", []string{"tok"}, "toktok", "******"},
		{"query-escaped", []string{"p@ss/w+rd"}, "GET http://h/echo?q=p%40ss%2Fw%2Brd&x=1", "GET http://h/echo?q=***&x=1"},
		{"lower-case hex", []string{"p@ss/w+rd"}, "q=p%40ss%2fw%2brd", "q=***"},
		{"path-escaped", []string{"a b/c"}, "/echo/a%20b%2Fc/x", "/echo/***/x"},
		{"plus for space", []string{"a b c"}, "q=a+b+c&", "q=***&"},
		{"double-encoded", []string{"p@ss"}, "next=%3Fq%3Dp%2540ss", "next=%3Fq%3D***"},
		{"json escapes", []string{`say "<hi>" & \bye/`}, `{"v":"say \"\u003chi\u003e\" \u0026 \\bye\/"}`, `{"v":"***"}`},
		{"json non-ASCII", []string{"café😀"}, `"caf\u00e9\ud83d\ude00"`, `"***"`},
		{"go quoting", []string{"tab\there\xff"}, `"tab\there\xff"`, `"***"`},
		{"xml entities", []string{`<a href="x">&'`}, `&lt;a href=&#34;x&#34;&gt;&amp;&#39;`, `***`},
		{"numeric references", []string{"café"}, "caf&#233; caf&#xE9;", "*** ***"},
		{"base64 of the secret", []string{"hunter2"}, "aHVudGVyMg== aHVudGVyMg", "*** ***"},
		{"base64 url alphabet", []string{"\xfb\xff\xfe??>"}, "-__-Pz8- +//+Pz8+", "*** ***"},
		// The bytes around the secret show in the first and last characters;
		// every character only the secret determines is masked.
		{"basic auth pair", []string{"hunter22"}, "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("alice:hunter22")), "Authorization: Basic YWxpY2U6***"},
		{"not an encoding", []string{"abc"}, "%zz \\q &nope; &#xZZ; a%62 a%62c", "%zz \\q &nope; &#xZZ; a%62 ***"},
		{"escape at the end", []string{"abc"}, "ab%", "ab%"},
		{"html escaped, then json", []string{"a&b<c"}, `{"HTML":"a\u0026amp;b\u0026lt;c"}`, `{"HTML":"***"}`},
		{"json escaped twice", []string{`a&"b`}, `"a\\u0026\\\"b"`, `"***"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NewMasker(tt.secrets).String(tt.in); got != tt.want {
				t.Errorf("String(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	var nilM *Masker
	if got := nilM.String("x"); got != "x" {
		t.Errorf("nil masker changed text: %q", got)
	}
}

// reserved are secrets made of every character that some encoding changes.
var reserved = []string{
	`@/+=&<>"'%?#:;, `,
	"p@ss/w+rd=&<>\" x",
	"100% #1: a,b;c?d",
	"naïve café 😀 ünïcödé",
	`back\slash "quoted" 'single'`,
	"tab\tnew\nline\r",
	"&amp;%41\\u0041",
	"a+b c",
	"日本語のパスワード",
	"xyz",
}

// encodings are the forms a secret takes on its way out of zof: in URLs,
// JSON, XML, Go-quoted messages and base64 (alone and in Basic auth).
func encodings(s string) map[string]string {
	enc := map[string]string{
		"exact":               s,
		"query":               url.QueryEscape(s),
		"path":                url.PathEscape(s),
		"query lower hex":     lowerHex(url.QueryEscape(s)),
		"path lower hex":      lowerHex(url.PathEscape(s)),
		"all bytes percent":   percentAll(s),
		"uri component":       uriComponent(s),
		"double query":        url.QueryEscape(url.QueryEscape(s)),
		"form":                url.Values{"k": {s}}.Encode()[2:],
		"json":                jsonString(s, true),
		"json no html":        jsonString(s, false),
		"json ascii":          jsonASCII(s),
		"json of query":       jsonString(url.QueryEscape(s), true),
		"query of json":       url.QueryEscape(jsonString(s, true)),
		"query of json ascii": url.QueryEscape(jsonASCII(s)),
		"go quote":            strconv.Quote(s),
		"go quote ascii":      strconv.QuoteToASCII(s),
		"html":                html.EscapeString(s),
		"json in html":        html.EscapeString(jsonString(s, false)),
		"query in url query":  url.Values{"next": {"http://h/?q=" + url.QueryEscape(s)}}.Encode()[5:],
	}
	if xmlSafe(s) {
		var b bytes.Buffer
		_ = xml.EscapeText(&b, []byte(s))
		enc["xml"] = b.String()
	}
	for name, e := range map[string]*base64.Encoding{"std": base64.StdEncoding, "url": base64.URLEncoding} {
		enc["base64 "+name] = e.EncodeToString([]byte(s))
		enc["base64 raw "+name] = e.WithPadding(base64.NoPadding).EncodeToString([]byte(s))
		enc["base64 "+name+" in json"] = jsonString(e.EncodeToString([]byte(s)), false)
		enc["base64 "+name+" in query"] = url.QueryEscape(e.EncodeToString([]byte(s)))
		if len(s) >= minBase64 {
			for _, user := range []string{"u", "al", "bob", "alice"} {
				enc["basic auth "+name+" "+user] = e.EncodeToString([]byte(user + ":" + s))
			}
		}
	}
	return enc
}

func lowerHex(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			b.WriteString(strings.ToLower(s[i : i+3]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func percentAll(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		fmt.Fprintf(&b, "%%%02X", s[i])
	}
	return b.String()
}

// uriComponent is JavaScript's encodeURIComponent, which leaves !'()* alone.
func uriComponent(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < utf8.RuneSelf && (isAlnum(c) || strings.IndexByte("-_.!~*'()", c) >= 0) {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

func jsonString(s string, escapeHTML bool) string {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(escapeHTML)
	_ = e.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}

// jsonASCII is JSON with every non-ASCII character escaped (Python's json.dumps).
func jsonASCII(s string) string {
	var b strings.Builder
	for _, r := range jsonString(s, false) {
		switch {
		case r < utf8.RuneSelf:
			b.WriteRune(r)
		case r > 0xFFFF:
			r -= 0x10000
			fmt.Fprintf(&b, `\u%04x\u%04x`, 0xD800+(r>>10), 0xDC00+(r&0x3FF))
		default:
			fmt.Fprintf(&b, `\u%04X`, r)
		}
	}
	return b.String()
}

// xmlSafe: encoding/xml replaces characters XML cannot hold, so such a
// secret has no XML form to find.
func xmlSafe(s string) bool {
	for _, r := range s {
		if r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == utf8.RuneError || r >= 0xFFFE {
			return false
		}
	}
	return true
}

// checkMasked fails if any encoding of secret survives masking text that
// carries each of them between other text.
func checkMasked(t *testing.T, m *Masker, secret, around string) {
	t.Helper()
	encs := encodings(secret)
	for name, e := range encs {
		in := around + e + around
		// The mask itself is not a leak, even when "***" and the text
		// around it spell a secret made of asterisks.
		out := strings.ReplaceAll(m.String(in), Mask, "\x00")
		for other, o := range encs {
			if strings.Contains(out, o) && !strings.Contains(around, o) {
				t.Errorf("secret %q, %s form %q: masked text %q still holds the %s form %q", secret, name, e, out, other, o)
			}
		}
	}
}

func TestMaskerEveryEncoding(t *testing.T) {
	for _, s := range reserved {
		t.Run(s, func(t *testing.T) {
			m := NewMasker([]string{s, "other-secret-value"})
			checkMasked(t, m, s, " text ")
			checkMasked(t, m, s, "")
		})
	}
}

func TestMap(t *testing.T) {
	m := NewMasker([]string{"p@ss word"})
	got := m.Map("q=a b&p@ss word/x", url.QueryEscape)
	if want := "q%3Da+b%26***%2Fx"; got != want {
		t.Errorf("Map = %q, want %q", got, want)
	}
	if got := (*Masker)(nil).Map("a b", url.PathEscape); got != "a%20b" {
		t.Errorf("nil Map = %q", got)
	}
}

// TestMaskerAmbiguous: text in which every character could start two
// encodings must not make masking exponential.
func TestMaskerAmbiguous(t *testing.T) {
	secret := strings.Repeat(`\`, 60)
	in := strings.Repeat(`\`, 4000)
	got := NewMasker([]string{secret}).String(in)
	if strings.Contains(got, secret) || !strings.HasPrefix(got, Mask) {
		t.Errorf("the secret survived in %d bytes of backslashes: %.80q…", len(in), got)
	}
}

func FuzzMasker(f *testing.F) {
	for _, s := range reserved {
		f.Add(s, " ")
	}
	f.Add("%25%", "%")
	f.Add(`\\\\`, `\`)
	f.Add("&amp;&", "&")
	f.Fuzz(func(t *testing.T, secret, around string) {
		if len(secret) < minLen || len(secret) > 64 || len(around) > 64 || !utf8.ValidString(secret) {
			t.Skip()
		}
		for _, r := range secret {
			if !unicode.IsPrint(r) && !unicode.IsSpace(r) {
				t.Skip() // JSON and XML writers replace such characters; nothing to find
			}
		}
		m := NewMasker([]string{secret})
		checkMasked(t, m, secret, around)
		// Text without the secret passes unchanged, whatever it holds.
		if !strings.Contains(around, secret) && m.String(around) != around && len(secret) > len(around)*12 {
			t.Errorf("masking changed %q, which is too short to hold %q", around, secret)
		}
	})
}
