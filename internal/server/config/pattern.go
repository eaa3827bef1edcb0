package config

import (
	"fmt"
	"net/url"
	"path"
	"regexp"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
)

// Pattern is one allowed_targets entry: which URLs a tenant's http steps may reach.
//
// Syntax: SCHEME://HOST[:PORT][/PATH]
//
//   - SCHEME is http or https, exactly.
//   - HOST is matched case-insensitively. `*` matches one or more characters
//     inside one DNS label (no dot); `**` matches one or more characters across
//     labels. So `*.staging.example.com` matches api.staging.example.com but
//     not a.b.staging.example.com, and `**.example.com` matches both (neither
//     matches example.com itself). An IP address or [IPv6] literal matches
//     itself only.
//   - PORT is a number or `*` (any port). Without it only the scheme's
//     default port (80 for http, 443 for https) matches.
//   - PATH is optional: without it every path matches. With it, it is a
//     doublestar glob over the URL's cleaned path (`*` one segment, `**` any
//     number of segments): `/api/**` matches /api and everything under it.
//
// Query strings and fragments are not part of the match; user info is
// refused (a URL that carries credentials in its authority is never allowed).
type Pattern struct {
	raw    string
	scheme string
	host   *regexp.Regexp
	port   string // "*" or digits
	path   string // "" matches every path
}

// String is the pattern as written.
func (p Pattern) String() string { return p.raw }

var portRE = regexp.MustCompile(`^([0-9]{1,5}|\*)$`)

// ParsePattern reads an allowed_targets pattern.
func ParsePattern(s string) (Pattern, error) {
	p := Pattern{raw: s}
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || (scheme != "http" && scheme != "https") {
		return p, fmt.Errorf("pattern %q must start with http:// or https://", s)
	}
	p.scheme = scheme
	hostport, pth := rest, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		hostport, pth = rest[:i], rest[i:]
	}
	if strings.ContainsAny(hostport, "@?#") || strings.ContainsAny(pth, "?#") {
		return p, fmt.Errorf("pattern %q: only scheme, host, port and path are matched; remove user info, query and fragment", s)
	}
	host, port := hostport, ""
	if strings.HasPrefix(host, "[") {
		end := strings.IndexByte(host, ']')
		if end < 0 {
			return p, fmt.Errorf("pattern %q: unclosed [ in an IPv6 address", s)
		}
		host, port = host[:end+1], strings.TrimPrefix(host[end+1:], ":")
		if host[end+1:] != "" && !strings.HasPrefix(hostport[end+1:], ":") {
			return p, fmt.Errorf("pattern %q: expected :PORT after the IPv6 address", s)
		}
	} else if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host, port = host[:i], host[i+1:]
		if port == "" {
			return p, fmt.Errorf("pattern %q: empty port after ':'; give a number or *", s)
		}
	}
	if host == "" {
		return p, fmt.Errorf("pattern %q has no host", s)
	}
	if port == "" {
		port = defaultPort(scheme)
	}
	if !portRE.MatchString(port) {
		return p, fmt.Errorf("pattern %q: port %q must be a number or *", s, port)
	}
	p.port = port
	re, err := hostRegexp(strings.ToLower(host))
	if err != nil {
		return p, fmt.Errorf("pattern %q: %v", s, err)
	}
	p.host = re
	if pth != "" {
		if !doublestar.ValidatePattern(pth) {
			return p, fmt.Errorf("pattern %q: path %q is not a valid glob", s, pth)
		}
		p.path = pth
	}
	return p, nil
}

func defaultPort(scheme string) string {
	if scheme == "https" {
		return "443"
	}
	return "80"
}

var hostCharsRE = regexp.MustCompile(`^(\[[0-9a-f:.]+\]|[a-z0-9.*_-]+)$`)

// hostRegexp compiles a host glob: `**` any characters, `*` any within a label.
func hostRegexp(h string) (*regexp.Regexp, error) {
	if !hostCharsRE.MatchString(h) {
		return nil, fmt.Errorf("host %q may hold letters, digits, '.', '-', '_' and the wildcards * and **", h)
	}
	if strings.Contains(h, "***") {
		return nil, fmt.Errorf("host %q: use * (within a label) or ** (across labels)", h)
	}
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(h); i++ {
		switch {
		case strings.HasPrefix(h[i:], "**"):
			b.WriteString(`.+`)
			i++
		case h[i] == '*':
			b.WriteString(`[^.]+`)
		default:
			b.WriteString(regexp.QuoteMeta(h[i : i+1]))
		}
	}
	b.WriteString("$")
	return regexp.Compile(b.String())
}

// Match reports whether a URL is allowed by the pattern.
func (p Pattern) Match(u *url.URL) bool {
	if u == nil || u.Scheme != p.scheme || u.User != nil || u.Opaque != "" {
		return false
	}
	host := strings.ToLower(u.Hostname())
	if strings.Contains(host, ":") { // IPv6: Hostname strips the brackets
		host = "[" + host + "]"
	}
	if host == "" || !p.host.MatchString(strings.TrimSuffix(host, ".")) {
		return false
	}
	port := u.Port()
	if port == "" {
		port = defaultPort(u.Scheme)
	}
	if p.port != "*" && p.port != port {
		return false
	}
	if p.path == "" {
		return true
	}
	return doublestar.MatchUnvalidated(p.path, cleanPath(u))
}

// cleanPath resolves dot segments, so /api/../admin cannot pass for /api/**.
func cleanPath(u *url.URL) string {
	p := u.EscapedPath()
	if unesc, err := url.PathUnescape(p); err == nil {
		p = unesc
	}
	if p == "" {
		return "/"
	}
	return path.Clean("/" + p)
}

// Allowed reports whether any pattern matches the URL.
func Allowed(patterns []Pattern, u *url.URL) bool {
	for _, p := range patterns {
		if p.Match(u) {
			return true
		}
	}
	return false
}
