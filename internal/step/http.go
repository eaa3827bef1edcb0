package step

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/secret"
)

// response is what expectations and captures look at.
type response struct {
	status    int
	statusTxt string
	proto     string
	header    http.Header
	body      []byte
	truncated bool // body is the first MaxBody bytes; the rest was not read
	duration  time.Duration
	maxBody   int64
	mask      *secret.Masker
}

func (e *Executor) runHTTP(ctx context.Context, s api.Step, in Input, sub *substituter) result {
	h := s.HTTP
	method := strings.ToUpper(strings.TrimSpace(sub.str(h.Method)))
	if method == "" {
		method = http.MethodGet
	}
	base, path, full, query := in.BaseURL, sub.str(h.Path), sub.str(h.URL), sub.strMap(h.Query)
	u, terr := parseURL(in.Mask, base, path, full, query)
	envHeaders := sub.strMap(in.Headers)
	stepHeaders := sub.strMap(h.Headers)
	jsonBody, jerr := sub.rawJSON(h.JSON)
	body := sub.ptr(h.Body)
	form := sub.strMap(h.Form)
	exp := substExpect(sub, s.Expect)
	if sub.err != nil {
		return failed(sub.err.Error())
	}
	if terr != nil {
		return failed(terr.Error())
	}
	if jerr != nil {
		return failed(fmt.Sprintf("the step's json body is not valid JSON: %v", jerr))
	}

	var reqBody io.Reader
	var contentType []string
	switch {
	case len(jsonBody) > 0:
		reqBody, contentType = bytes.NewReader(jsonBody), jsonContentType
	case form != nil:
		v := url.Values{}
		for k, val := range form {
			v.Set(k, val)
		}
		reqBody, contentType = strings.NewReader(v.Encode()), formContentType
	case body != nil:
		reqBody = strings.NewReader(*body)
	}
	if in.AllowURL != nil {
		ctx = context.WithValue(ctx, allowURLKey{}, in.AllowURL)
	}
	// Every log line and message shows the request built from its masked
	// parts: a secret is never escaped into text that masking must then find.
	shown := shownURL(in.Mask, u, base, path, full, query)
	shownMethod := in.Mask.String(method)
	req, err := newRequest(ctx, method, u, reqBody)
	if err != nil {
		return failed(fmt.Sprintf("invalid request %s %s: %v", shownMethod, shown, unwrapURLError(err)))
	}
	if in.AllowURL != nil {
		if err := in.AllowURL(req.URL); err != nil {
			return failed(fmt.Sprintf("%s %s is not allowed: %v", shownMethod, shown, err))
		}
	}
	req.Header["User-Agent"] = e.userAgent
	if contentType != nil {
		req.Header["Content-Type"] = contentType
	}
	// Environment headers first, the step's own override them.
	for _, hs := range [2]map[string]string{envHeaders, stepHeaders} {
		for k, v := range hs {
			if strings.EqualFold(k, "Host") {
				req.Host = v
				continue
			}
			req.Header.Set(k, v)
		}
	}

	// The step's log is written once; its request line is the log's first
	// bytes (a substring, not a copy).
	var lb strings.Builder
	lb.Grow(len(shownMethod) + 1 + len(shown) + logLineSlack)
	lb.WriteString(shownMethod)
	lb.WriteByte(' ')
	lb.WriteString(shown)
	lineLen := lb.Len()
	start := time.Now()
	resp, err := e.client.Do(req)
	if err != nil {
		line := lb.String()
		if expired(ctx) {
			return result{interrupted: true, log: line + " → no response", doing: fmt.Sprintf("%s: no response after %s", line, roundDur(time.Since(start))), req: req, line: line}
		}
		msg := transportError(shownMethod, shown, err, e.opts.MaxRedirects)
		return result{failure: &api.Failure{Message: msg}, log: line + " → " + msg, req: req, line: line}
	}
	defer resp.Body.Close()
	r := response{status: resp.StatusCode, statusTxt: resp.Status, proto: resp.Proto, header: resp.Header, maxBody: e.opts.MaxBody, mask: in.Mask}
	r.body, r.truncated, err = readBody(resp.Body, resp.ContentLength, e.opts.MaxBody)
	r.duration = time.Since(start)
	lb.WriteString(" → ")
	lb.WriteString(resp.Status)
	lb.WriteString(" (")
	lb.WriteString(roundDur(r.duration).String())
	lb.WriteString(")\n")
	if err != nil {
		log := lb.String()
		line := log[:lineLen]
		if expired(ctx) {
			return result{interrupted: true, log: log, doing: fmt.Sprintf("%s: the response body was still arriving after %d bytes", line, len(r.body)), req: req, line: line, resp: r, hasResp: true}
		}
		msg := fmt.Sprintf("%s: reading the response body failed after %d bytes: %v", line, len(r.body), err)
		return result{failure: &api.Failure{Message: msg}, log: log + msg, req: req, line: line, resp: r, hasResp: true}
	}
	if expired(ctx) {
		log := lb.String()
		return result{interrupted: true, log: log, req: req, line: log[:lineLen], resp: r, hasResp: true}
	}
	writeBodyExcerpt(&lb, &r)

	fails := checkExpect(&exp, &r)
	var caps map[string]string
	if len(fails) == 0 && len(s.Capture) > 0 {
		var f *api.Failure
		caps, f = capture(s.Capture, &r)
		if f != nil {
			fails = append(fails, f)
		}
	}
	if len(fails) > 0 {
		lb.WriteString(strconv.Itoa(len(fails)))
		lb.WriteString(" expectation(s) failed:\n")
		for _, f := range fails {
			lb.WriteString("- ")
			lb.WriteString(indent(f.String()))
			lb.WriteByte('\n')
		}
	} else if len(caps) > 0 {
		lb.WriteString("captured: ")
		lb.WriteString(strings.Join(sortedKeys(caps), ", "))
		lb.WriteByte('\n')
	}
	log := lb.String()
	res := result{captures: caps, log: log, req: req, line: log[:lineLen], resp: r, hasResp: true}
	if len(fails) > 0 {
		res.failure = fails[0]
	}
	return res
}

// logLineSlack is room for the rest of a step log's first line (" → 200 OK
// (1.234ms)") and a short body, so the log is usually built in one allocation.
const logLineSlack = 64

// Content-Type values of the bodies zof encodes, shared by every request:
// a request's header map holds its values, and nothing writes into a
// header's value slice in place (Header.Set and Add replace or grow it).
var (
	jsonContentType = []string{"application/json"}
	formContentType = []string{"application/x-www-form-urlencoded"}
)

// newRequest is http.NewRequestWithContext for a URL parseURL has already
// parsed: the request gets u itself, so the URL is parsed once per step.
func newRequest(ctx context.Context, method string, u *url.URL, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, "", body)
	if err != nil {
		return nil, err
	}
	// What NewRequestWithContext does with a URL it parses (RFC 3986
	// section 6.2.3: an empty port is no port).
	if strings.LastIndex(u.Host, ":") > strings.LastIndex(u.Host, "]") {
		u.Host = strings.TrimSuffix(u.Host, ":")
	}
	req.URL, req.Host = u, u.Host
	return req, nil
}

// writeBodyExcerpt writes the body's first logBodyLen bytes, masked, to a
// step's log, and says when the body was cut at the read limit.
func writeBodyExcerpt(b *strings.Builder, r *response) {
	if len(r.body) == 0 {
		b.WriteString("(empty body)\n")
		return
	}
	b.WriteString(strings.TrimRight(r.showBody(logBodyLen), "\n"))
	if r.truncated {
		b.WriteString("\n(body truncated: only the first " + byteSize(r.maxBody) + " were read, the rest was not)")
	}
	b.WriteByte('\n')
}

// requestURL is the step's URL: url as is, or path joined to the environment
// URL (keeping the environment's own path prefix), plus query parameters.
func requestURL(base, path, full string, query map[string]string) (string, error) {
	return buildURL(nil, base, path, full, query)
}

// buildURL is requestURL whose errors show the parts masked with m.
func buildURL(m *secret.Masker, base, path, full string, query map[string]string) (string, error) {
	u, err := parseURL(m, base, path, full, query)
	if err != nil {
		return "", err
	}
	return u.String(), nil
}

// parseURL is buildURL's URL, parsed.
func parseURL(m *secret.Masker, base, path, full string, query map[string]string) (*url.URL, error) {
	target := full
	if target == "" {
		if strings.HasPrefix(path, "http://") || strings.HasPrefix(path, "https://") {
			target = path
		} else {
			if base == "" {
				return nil, fmt.Errorf("the step has path %q but the environment has no url; set the environment's url, or give the step a full http.url", m.String(path))
			}
			b, q, _ := strings.Cut(base, "?")
			target = strings.TrimRight(b, "/")
			if path != "" {
				target += "/" + strings.TrimLeft(path, "/")
			}
			if q != "" {
				if strings.Contains(target, "?") {
					target += "&" + q
				} else {
					target += "?" + q
				}
			}
		}
	}
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("invalid url %q: %v", m.String(target), m.String(unwrapURLError(err).Error()))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("url %q must start with http:// or https:// (check the environment url)", m.String(u.Redacted()))
	}
	if u.Host == "" {
		return nil, fmt.Errorf("url %q has no host (check the environment url)", m.String(u.Redacted()))
	}
	if len(query) > 0 {
		v := u.Query()
		for k, val := range query {
			v.Set(k, val)
		}
		u.RawQuery = v.Encode()
	}
	return u, nil
}

// displayURL is the request's URL for logs and messages, built like
// requestURL but from the parts with every secret already replaced by
// secret.Mask, and with a password in the URL's userinfo redacted. Query
// values are escaped around the mask, so a secret never appears escaped.
func displayURL(m *secret.Masker, base, path, full string, query map[string]string) string {
	u, err := parseURL(nil, m.String(base), m.String(path), m.String(full), nil)
	if err != nil {
		// Masking made the URL unparsable (a secret host): show it as text.
		return m.String(base + path + full)
	}
	if len(query) > 0 {
		v := u.Query()
		for k, val := range query {
			v.Set(k, val)
		}
		var b strings.Builder
		for _, k := range sortedKeys(v) {
			for _, val := range v[k] {
				if b.Len() > 0 {
					b.WriteByte('&')
				}
				b.WriteString(escapeMasked(m, k, url.QueryEscape) + "=" + escapeMasked(m, val, url.QueryEscape))
			}
		}
		u.RawQuery = b.String()
	}
	return u.Redacted()
}

// shownURL is displayURL for the request URL u built from the same parts
// (parseURL): when masking changes none of the parts, the display is u's own
// redacted form, without building it a second time (TestDisplayURL).
func shownURL(m *secret.Masker, u *url.URL, base, path, full string, query map[string]string) string {
	plain := m.String(base) == base && m.String(path) == path && m.String(full) == full
	for k, v := range query {
		plain = plain && m.String(k) == k && m.String(v) == v
	}
	if plain {
		return u.Redacted()
	}
	return displayURL(m, base, path, full, query)
}

// escapeMasked masks s and escapes the text between the masks (and between
// masks already in s), so the masks show as themselves.
func escapeMasked(m *secret.Masker, s string, escape func(string) string) string {
	return m.Map(s, func(plain string) string {
		parts := strings.Split(plain, secret.Mask)
		for i, p := range parts {
			parts[i] = escape(p)
		}
		return strings.Join(parts, secret.Mask)
	})
}

// transportError turns a failed request into a message for a CI log.
func transportError(method, target string, err error, maxRedirects int) string {
	origin := target
	if u, perr := url.Parse(target); perr == nil {
		origin = u.Scheme + "://" + u.Host
	}
	var redirects errTooManyRedirects
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalidCert x509.CertificateInvalidError
	var recordErr tls.RecordHeaderError
	var alert tls.AlertError
	switch {
	case errors.As(err, &redirects):
		return fmt.Sprintf("%s %s: stopped after %d redirects — a redirect loop? (last: %s)", method, target, redirects.n, redirectTarget(err))
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("could not connect to %s: connection refused — is the service up? check the environment url", origin)
	case errors.Is(err, syscall.ECONNRESET):
		return fmt.Sprintf("%s %s: the connection was reset by %s before a response — did the service crash?", method, target, origin)
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("could not resolve host %q (%v) — check the environment url", dnsErr.Name, dnsErr.Err)
	case errors.As(err, &certErr), errors.As(err, &unknownCA), errors.As(err, &hostErr), errors.As(err, &invalidCert):
		return fmt.Sprintf("TLS error talking to %s: the certificate was not accepted: %v — is the environment url right? a private CA must be given to zof", origin, unwrapURLError(err))
	case errors.As(err, &recordErr), strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return fmt.Sprintf("TLS error talking to %s: the server did not answer TLS (is it plain http? use http:// in the environment url)", origin)
	case errors.As(err, &alert):
		return fmt.Sprintf("TLS error talking to %s: the server refused the handshake: %v", origin, alert)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Sprintf("%s %s: %s closed the connection without a response — did the service crash?", method, target, origin)
	}
	return fmt.Sprintf("%s %s: %v", method, target, unwrapURLError(err))
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func redirectTarget(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.URL
	}
	return "?"
}

func roundDur(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Microsecond)
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

func indent(s string) string {
	return strings.ReplaceAll(s, "\n", "\n  ")
}
