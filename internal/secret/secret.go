// Package secret masks secret values in text before it can reach a log, report or event.
//
// A secret does not only travel as itself: a query value is percent-encoded
// in a request line, a JSON or XML writer escapes its quotes and brackets, a
// service echoes it back as \u escapes or HTML entities, a Basic-auth header
// carries it in base64. The Masker therefore matches text that *decodes* to a
// secret, whatever mix of these encodings it uses:
//
//   - percent-encoding of any byte, either hex case (%40, %2f), and the
//     double encoding %2540 a URL nested in a query gets; + for a space
//     (application/x-www-form-urlencoded);
//   - backslash escapes of JSON, JavaScript and Go (\" \\ \/ \n \u00e9,
//     surrogate pairs, \xHH, \UXXXXXXXX);
//   - XML and HTML character references (&lt; &gt; &amp; &quot; &apos;,
//     &#NN; &#xHH;);
//   - base64, standard and URL alphabets, with or without padding, of the
//     secret alone and of the secret inside a longer value such as a
//     Basic-auth "user:secret" pair (the part of the encoding that only the
//     secret's bytes determine, at each of the three byte alignments);
//   - up to three of these nested, such as HTML escaped inside a JSON string
//     inside JSON.
package secret

import (
	"encoding/base64"
	"sort"
	"strings"
	"unicode/utf8"
)

// Mask is what a secret is replaced with.
const Mask = "***"

// minLen: values shorter than this are not masked, since masking "a" or "1"
// would shred every line while protecting nothing (GitHub's ::add-mask:: has
// the same blind spot for trivially short values).
const minLen = 3

// minBase64 is the shortest base64 fragment masked: shorter fragments (of a
// 3-byte secret at an unaligned offset) are ordinary words too often.
const minBase64 = 4

// memoAfter is how many match steps one attempt takes before it remembers
// the states it has tried. Ambiguous input (a run of backslashes: each one
// literal or the first of an escaped pair) could otherwise branch
// exponentially; remembering makes it linear in states, and costs nothing on
// the ordinary unambiguous text that never gets this far.
const memoAfter = 64

// Masker replaces every known secret value, in any encoding, in text.
// The zero value and nil mask nothing. It is safe for concurrent use.
type Masker struct {
	pats []string // decoded forms to find: the secrets and their base64 forms
	// start[b]: a match may begin with byte b (a pattern's first byte, or the
	// first byte of an encoding of any byte).
	start [256]bool
	// byFirst[b]: the patterns that start with byte b.
	byFirst [256][]string
}

// NewMasker masks the given values and their encodings. When several match at
// one place, the longest stretch of text is masked.
func NewMasker(values []string) *Masker {
	seen := map[string]bool{}
	var pats []string
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			pats = append(pats, p)
		}
	}
	for _, v := range values {
		if len(v) < minLen {
			continue
		}
		add(v)
		for _, p := range base64Forms(v) {
			add(p)
		}
	}
	m := &Masker{}
	if len(pats) == 0 {
		return m
	}
	sort.Slice(pats, func(i, j int) bool { return len(pats[i]) > len(pats[j]) })
	m.pats = pats
	for _, p := range pats {
		m.byFirst[p[0]] = append(m.byFirst[p[0]], p)
		m.start[p[0]] = true
		if p[0] == ' ' {
			m.start['+'] = true
		}
	}
	m.start['%'], m.start['\\'], m.start['&'] = true, true, true
	return m
}

// base64Forms are the base64 texts that only v's bytes determine: v encoded
// alone (padded and not), and the middle of the encoding of any value that
// contains v at a byte offset of 0, 1 or 2 modulo 3, in both alphabets.
func base64Forms(v string) []string {
	var out []string
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		out = append(out, enc.EncodeToString([]byte(v)), enc.WithPadding(base64.NoPadding).EncodeToString([]byte(v)))
		for shift := range 3 {
			b := make([]byte, shift+len(v))
			copy(b[shift:], v)
			e := enc.WithPadding(base64.NoPadding).EncodeToString(b)
			// The first characters also carry bits of the bytes before v
			// (none, 2 of 4 for one byte, 3 of 4 for two)...
			head := [3]int{0, 2, 3}[shift]
			// ...and the last ones bits of the bytes after it: a group of
			// 1 or 2 trailing bytes fixes only its first 1 or 2 characters.
			full := len(b) / 3 * 4
			tail := full + [3]int{0, 1, 2}[len(b)%3]
			if f := e[head:tail]; len(f) >= minBase64 {
				out = append(out, f)
			}
		}
	}
	return out
}

// String returns s with every secret, in any encoding, replaced by Mask.
func (m *Masker) String(s string) string {
	return m.Map(s, nil)
}

// Map returns s with every secret, in any encoding, replaced by Mask and
// every other stretch of s passed through plain (nil keeps it as is). It lets
// a caller escape text for display without ever escaping a secret: the secret
// is gone before plain sees the text around it.
func (m *Masker) Map(s string, plain func(string) string) string {
	if plain == nil {
		plain = func(x string) string { return x }
	}
	if m == nil || len(m.pats) == 0 || s == "" {
		return plain(s)
	}
	spans := m.spans(s, maxLayers)
	if len(spans) == 0 {
		return plain(s)
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].start < spans[j].start })
	var b strings.Builder
	b.Grow(len(s))
	last := 0
	for i := 0; i < len(spans); {
		cur := spans[i]
		for i++; i < len(spans) && spans[i].start < cur.end; i++ {
			cur.end = max(cur.end, spans[i].end)
		}
		b.WriteString(plain(s[last:cur.start]))
		b.WriteString(Mask)
		last = cur.end
	}
	b.WriteString(plain(s[last:]))
	return b.String()
}

// maxLayers is how many layers of encoding are undone before the matcher,
// which undoes one more of any kind (and a few pairs on its own, such as
// %2540 or \&#34;): a secret HTML-escaped, then JSON-escaped twice
// (\\u0026amp; for &) is found. A layer is only undone in text where it
// hides another, so ordinary text costs one pass (BenchmarkMasker).
const maxLayers = 2

// spans are the stretches of s that hold a secret under up to layers+1
// layers of encoding.
func (m *Masker) spans(s string, layers int) []span {
	spans := m.find(s, nil)
	if layers == 0 {
		return spans
	}
	for _, esc := range layerEscapes {
		if strings.IndexByte(s, esc) < 0 {
			continue
		}
		if v, ok := decodeLayer(s, esc); ok {
			for _, sp := range m.spans(v.s, layers-1) {
				spans = append(spans, span{int(v.start[sp.start]), int(v.end[sp.end-1])})
			}
		}
	}
	return spans
}

// span is a stretch [start, end) of text that holds a secret.
type span struct{ start, end int }

// find appends to spans the leftmost-longest stretches of s that decode to
// a pattern.
func (m *Masker) find(s string, spans []span) []span {
	var mt matcher
	for i := 0; i < len(s); {
		if !m.start[s[i]] {
			i++
			continue
		}
		end := m.matchAt(&mt, s, i)
		if end < 0 {
			i++
			continue
		}
		spans = append(spans, span{i, end})
		i = end
	}
	return spans
}

// layerEscapes are the encodings decodeLayer undoes.
var layerEscapes = []byte{'\\', '&', '%'}

// hidesLayer: decoding the esc encodings of s yields an escape character.
func hidesLayer(s string, esc byte) bool {
	for i := strings.IndexByte(s, esc); i >= 0 && i < len(s); {
		us, k := decodeUnits(s, i)
		for _, u := range us[:k] {
			if c := u.b[0]; isEscape(c) || c == '+' {
				return true
			}
		}
		j := strings.IndexByte(s[i+1:], esc)
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return false
}

// view is text with one layer of encoding undone; start[i] and end[i] are
// the stretch of the original text that view byte i came from.
type view struct {
	s          string
	start, end []int32
}

// decodeLayer undoes one layer of backslash escapes (esc '\\'), character
// references ('&') or percent-encoding ('%') in s. It returns false unless
// that layer hid another (a decoded %, \, & or +): otherwise the matcher,
// which undoes one layer itself, finds in s all the view could show.
func decodeLayer(s string, esc byte) (view, bool) {
	if !hidesLayer(s, esc) {
		return view{}, false
	}
	b := make([]byte, 0, len(s))
	start, end := make([]int32, 0, len(s)), make([]int32, 0, len(s))
	changed := false
	for i := 0; i < len(s); {
		var u unit
		ok := false
		if s[i] == esc {
			us, k := decodeUnits(s, i)
			// The unit that consumes least is the one layer: %2540 is %40 here.
			for _, c := range us[:k] {
				if !ok || c.n < u.n {
					u, ok = c, true
				}
			}
		}
		if !ok {
			b, start, end = append(b, s[i]), append(start, int32(i)), append(end, int32(i+1))
			i++
			continue
		}
		for _, c := range u.b[:u.nb] {
			changed = changed || isEscape(c) || c == '+'
			b, start, end = append(b, c), append(start, int32(i)), append(end, int32(i+u.n))
		}
		i += u.n
	}
	return view{string(b), start, end}, changed
}

// matchAt returns the end of the longest stretch of s from i that decodes to
// one of the patterns, or -1.
func (m *Masker) matchAt(mt *matcher, s string, i int) int {
	// The first byte of the match: s[i] itself, a space for a +, or what an
	// encoded character at i stands for.
	var firsts [4]byte
	n := 0
	add := func(b byte) {
		for _, f := range firsts[:n] {
			if f == b {
				return
			}
		}
		firsts[n] = b
		n++
	}
	c := s[i]
	add(c)
	if c == '+' {
		add(' ')
	}
	if isEscape(c) {
		us, k := decodeUnits(s, i)
		for _, u := range us[:k] {
			add(u.b[0])
		}
	}
	best := -1
	for _, f := range firsts[:n] {
		for _, p := range m.byFirst[f] {
			// Most candidates fail on their second byte: check it before
			// the full match (only when both are plain characters).
			if f == c && len(p) > 1 && i+1 < len(s) && !isEscape(c) {
				if d := s[i+1]; d != p[1] && !isEscape(d) && (d != '+' || p[1] != ' ') {
					continue
				}
			}
			mt.s, mt.p, mt.steps = s, p, 0
			if mt.memo != nil {
				clear(mt.memo)
				mt.memo = nil
			}
			if e := mt.end(0, i); e > best {
				best = e
			}
		}
	}
	return best
}

// isEscape: c may begin an encoded character.
func isEscape(c byte) bool { return c == '%' || c == '\\' || c == '&' }

// matcher matches one pattern against text, trying every way the text can
// encode it.
type matcher struct {
	s, p  string
	steps int
	memo  map[[2]int]int
}

// end returns the largest text offset at which s[pos:] has matched p[j:]
// completely, or -1.
func (mt *matcher) end(j, pos int) int {
	if j == len(mt.p) {
		return pos
	}
	if pos >= len(mt.s) {
		return -1
	}
	mt.steps++
	if mt.steps > memoAfter {
		if mt.memo == nil {
			mt.memo = map[[2]int]int{}
		}
		if e, ok := mt.memo[[2]int{j, pos}]; ok {
			return e
		}
	}
	best := -1
	c := mt.s[pos]
	if c == mt.p[j] || c == '+' && mt.p[j] == ' ' {
		best = mt.end(j+1, pos+1)
	}
	if isEscape(c) {
		us, k := decodeUnits(mt.s, pos)
		for _, u := range us[:k] {
			if strings.HasPrefix(mt.p[j:], string(u.b[:u.nb])) {
				if e := mt.end(j+u.nb, pos+u.n); e > best {
					best = e
				}
			}
		}
	}
	if mt.memo != nil {
		mt.memo[[2]int{j, pos}] = best
	}
	return best
}

// unit is one encoded character: the bytes it stands for and its length in the text.
type unit struct {
	b  [utf8.UTFMax]byte
	nb int // bytes used in b
	n  int // length in the text
}

// maxUnits is the most encoded characters that can start at one place:
// %252B is a doubly encoded + or space, or an encoded %.
const maxUnits = 4

// decodeUnits returns the encoded characters that start at s[i] (a %, \ or &).
func decodeUnits(s string, i int) (out [maxUnits]unit, k int) {
	one := func(b byte, n int) {
		out[k] = unit{b: [utf8.UTFMax]byte{b}, nb: 1, n: n}
		k++
	}
	r := func(r rune, n int) {
		u := unit{n: n}
		u.nb = utf8.EncodeRune(u.b[:], r)
		out[k] = u
		k++
	}
	switch s[i] {
	case '%':
		// %2540 is a doubly encoded %40 (a URL in a query parameter), and
		// %2B a space whose + was encoded again.
		if strings.HasPrefix(s[i:], "%25") {
			if b, ok := hexByte(s, i+3); ok {
				one(b, 5)
				if b == '+' {
					one(' ', 5)
				}
			}
		}
		if b, ok := hexByte(s, i+1); ok {
			one(b, 3)
			if b == '+' {
				one(' ', 3)
			}
			if b == '\\' {
				// A JSON escape in a URL: %5C%22, %5Cu00e9.
				k = escape(s, i+3, 3, &out, k)
			}
		}
	case '\\':
		k = escape(s, i+1, 1, &out, k)
	case '&':
		if v, n, ok := entity(s, i); ok {
			r(v, n)
		}
	}
	return out, k
}

// escape adds to out the characters of the backslash escape whose backslash
// takes the pre bytes before s[j].
func escape(s string, j, pre int, out *[maxUnits]unit, k int) int {
	one := func(b byte, n int) {
		if k < maxUnits {
			out[k] = unit{b: [utf8.UTFMax]byte{b}, nb: 1, n: pre + n}
			k++
		}
	}
	r := func(r rune, n int) {
		if k < maxUnits {
			u := unit{n: pre + n}
			u.nb = utf8.EncodeRune(u.b[:], r)
			out[k] = u
			k++
		}
	}
	if j >= len(s) {
		return k
	}
	switch e := s[j]; e {
	case 'u':
		if hi, ok := hexRune(s, j+1, 4); ok {
			if hi >= 0xD800 && hi < 0xDC00 {
				// The low surrogate follows with the same kind of backslash.
				if bs := s[j-pre : j]; strings.HasPrefix(s[j+5:], bs+"u") {
					if lo, ok := hexRune(s, j+5+pre+1, 4); ok && lo >= 0xDC00 && lo < 0xE000 {
						r((hi-0xD800)<<10+(lo-0xDC00)+0x10000, 5+pre+5)
						break
					}
				}
			}
			r(hi, 5)
		}
	case 'U':
		if v, ok := hexRune(s, j+1, 8); ok {
			r(v, 9)
		}
	case 'x':
		if b, ok := hexByte(s, j+1); ok {
			one(b, 3)
		}
	case 'n':
		one('\n', 1)
	case 't':
		one('\t', 1)
	case 'r':
		one('\r', 1)
	case 'b':
		one('\b', 1)
	case 'f':
		one('\f', 1)
	case 'a':
		one('\a', 1)
	case 'v':
		one('\v', 1)
	default:
		// \" \\ \/ \' and any other escaped punctuation stand for themselves.
		if e < utf8.RuneSelf && !isAlnum(e) {
			one(e, 1)
		}
		// Escaped punctuation encoded again: \&#34; (JSON in HTML), \%22 or
		// %5C%22 (JSON in a URL).
		punct := func(v rune) bool { return v < utf8.RuneSelf && v != ' ' && !isAlnum(byte(v)) }
		switch e {
		case '%':
			if b, ok := hexByte(s, j+1); ok && punct(rune(b)) {
				one(b, 3)
			}
		case '&':
			if v, n, ok := entity(s, j); ok && punct(v) {
				one(byte(v), n)
			}
		}
	}
	return k
}

// entity decodes the XML character reference at s[i] (an &) and returns its
// length.
func entity(s string, i int) (rune, int, bool) {
	semi := strings.IndexByte(s[i:min(len(s), i+12)], ';')
	if s[i] != '&' || semi < 2 {
		return 0, 0, false
	}
	n := semi + 1
	switch name := s[i+1 : i+semi]; name {
	case "lt":
		return '<', n, true
	case "gt":
		return '>', n, true
	case "amp":
		return '&', n, true
	case "quot":
		return '"', n, true
	case "apos":
		return '\'', n, true
	default:
		v, ok := charRef(name)
		return v, n, ok
	}
}

// charRef decodes the NN or xHH of a numeric character reference &#NN; / &#xHH;.
func charRef(name string) (rune, bool) {
	if len(name) < 2 || name[0] != '#' {
		return 0, false
	}
	digits, base := name[1:], rune(10)
	if digits[0] == 'x' || digits[0] == 'X' {
		digits, base = digits[1:], 16
	}
	if digits == "" || len(digits) > 8 {
		return 0, false
	}
	var v rune
	for i := 0; i < len(digits); i++ {
		d, ok := hexDigit(digits[i])
		if !ok || d >= base {
			return 0, false
		}
		v = v*base + d
	}
	if v > utf8.MaxRune {
		return 0, false
	}
	return v, true
}

func hexByte(s string, i int) (byte, bool) {
	v, ok := hexRune(s, i, 2)
	return byte(v), ok
}

// hexRune reads n hex digits at s[i:].
func hexRune(s string, i, n int) (rune, bool) {
	if i+n > len(s) {
		return 0, false
	}
	var v rune
	for k := i; k < i+n; k++ {
		d, ok := hexDigit(s[k])
		if !ok {
			return 0, false
		}
		v = v<<4 | d
	}
	return v, true
}

func hexDigit(c byte) (rune, bool) {
	switch {
	case '0' <= c && c <= '9':
		return rune(c - '0'), true
	case 'a' <= c && c <= 'f':
		return rune(c-'a') + 10, true
	case 'A' <= c && c <= 'F':
		return rune(c-'A') + 10, true
	}
	return 0, false
}

func isAlnum(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}
