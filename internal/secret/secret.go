// Package secret masks secret values in text before it can reach a log, report or event.
package secret

import (
	"sort"
	"strings"
)

// Mask is what a secret is replaced with.
const Mask = "***"

// minLen: values shorter than this are not masked, since masking "a" or "1"
// would shred every line while protecting nothing (GitHub's ::add-mask:: has
// the same blind spot for trivially short values).
const minLen = 3

// Masker replaces every known secret value in text. The zero value and nil mask nothing.
type Masker struct {
	r *strings.Replacer
}

// NewMasker masks the given values, longest first so a secret that contains
// another is masked whole.
func NewMasker(values []string) *Masker {
	vs := make([]string, 0, len(values))
	seen := map[string]bool{}
	for _, v := range values {
		if len(v) < minLen || seen[v] {
			continue
		}
		seen[v] = true
		vs = append(vs, v)
	}
	if len(vs) == 0 {
		return &Masker{}
	}
	sort.Slice(vs, func(i, j int) bool { return len(vs[i]) > len(vs[j]) })
	pairs := make([]string, 0, 2*len(vs))
	for _, v := range vs {
		pairs = append(pairs, v, Mask)
	}
	return &Masker{r: strings.NewReplacer(pairs...)}
}

// String returns s with every secret replaced by Mask.
func (m *Masker) String(s string) string {
	if m == nil || m.r == nil || s == "" {
		return s
	}
	return m.r.Replace(s)
}
