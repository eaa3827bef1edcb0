package step

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/secret"
)

// MaxEvidenceBody bounds the response body kept as a failed http step's
// evidence (engine.Evidence; the run keeps at most
// engine.MaxRunArtifactBytes of evidence in all). The number is ours: a
// large JSON error or HTML error page fits whole, a download does not.
const MaxEvidenceBody = 256 << 10

// evidenceType is the Content-Type of every piece of evidence: text a
// person reads, whatever the response said it was (a response's own
// text/html must never be served as a page: it is untrusted).
const evidenceType = "text/plain; charset=utf-8"

// sensitiveHeaders are always masked in evidence, whatever the run's
// secrets: they carry credentials by definition.
var sensitiveHeaders = []string{"authorization", "proxy-authorization", "cookie", "set-cookie"}

// sensitiveParts mark a header as credential-like by its name (X-Api-Key,
// X-Auth-Token, X-Session-Id, ...): masked always too.
var sensitiveParts = []string{"auth", "token", "secret", "password", "passwd", "api-key", "apikey", "session", "cookie", "credential", "signature"}

// sensitiveHeader reports whether a header's value is masked whatever it
// holds. WWW-Authenticate names a scheme, never a credential, and says why
// a request was refused: it is kept.
func sensitiveHeader(name string) bool {
	n := strings.ToLower(name)
	if n == "www-authenticate" {
		return false
	}
	if slices.Contains(sensitiveHeaders, n) {
		return true
	}
	for _, p := range sensitiveParts {
		if strings.Contains(n, p) {
			return true
		}
	}
	return false
}

// writeHeaders writes h sorted by name, one "Name: value" line per value,
// every value masked (credential-like headers entirely).
func writeHeaders(b *strings.Builder, m *secret.Masker, h http.Header) {
	for _, k := range sortedKeys(h) {
		for _, v := range h[k] {
			if sensitiveHeader(k) {
				v = secret.Mask
			} else {
				v = m.String(v)
			}
			b.WriteString(m.String(k) + ": " + v + "\n")
		}
	}
}

// httpEvidence is the evidence of a failed http step: the request as sent
// (line built from masked parts, headers masked) and, when one came, the
// response (status line, headers, the body's first MaxEvidenceBody bytes).
func httpEvidence(m *secret.Masker, line string, req *http.Request, r *response) []engine.Evidence {
	var b strings.Builder
	b.WriteString(line + " " + req.Proto + "\n")
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	h := req.Header.Clone()
	h.Set("Host", host)
	writeHeaders(&b, m, h)
	out := []engine.Evidence{{Kind: api.ArtifactRequest, ContentType: evidenceType, Content: []byte(b.String())}}
	if r == nil {
		return out
	}
	b.Reset()
	b.WriteString(m.String(r.proto+" "+r.statusTxt) + "\n")
	writeHeaders(&b, m, r.header)
	b.WriteString("\n")
	body, cut := maskedBody(m, r.body, MaxEvidenceBody)
	b.WriteString(body)
	truncated := cut || r.truncated
	if truncated {
		if !strings.HasSuffix(body, "\n") {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "[zof: body cut: the first %s of it are kept (step.MaxEvidenceBody)]\n", byteSize(MaxEvidenceBody))
	}
	return append(out, engine.Evidence{Kind: api.ArtifactResponse, ContentType: evidenceType, Content: []byte(b.String()), Truncated: truncated})
}

// maskedBody is body masked and cut to at most n bytes on a rune boundary,
// masking before the cut so a secret across it is not half kept.
func maskedBody(m *secret.Masker, body []byte, n int) (string, bool) {
	if len(body) <= n {
		return m.String(string(body)), false
	}
	h := m.String(string(body[:min(len(body), n+maskSlack)]))
	if len(h) <= n {
		return h, true
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(h[cut]) {
		cut--
	}
	return h[:cut], true
}

// commandEvidence is the evidence of a failed run step: its log, which is
// the command line, the tail of its output (stdout and stderr as they were
// interleaved, masked) and how it ended.
func commandEvidence(log string, truncated bool) []engine.Evidence {
	return []engine.Evidence{{Kind: api.ArtifactOutput, ContentType: evidenceType, Content: []byte(log), Truncated: truncated}}
}
