package suite

// Expectations of http steps and captures.

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/jsonpath"
)

func (d *decoder) expect(n *yaml.Node, path *at) *api.Expect {
	ps, ok := d.object(n, path, "expect")
	if !ok {
		return nil
	}
	e := &api.Expect{}
	for p := range ps.all {
		fp := path.field(p.key)
		switch p.key {
		case "status":
			e.Status = d.status(p.v, fp)
		case "headers":
			e.Headers = d.stringMap(p.v, fp, expanded, true)
		case "body_contains":
			v := deref(p.v)
			if v.Kind == yaml.SequenceNode {
				for i, it := range v.Content {
					if s, ok := d.text(it, fp.item(i), expanded); ok {
						e.BodyContains = append(e.BodyContains, s)
					}
				}
			} else if s, ok := d.text(v, fp, expanded); ok {
				e.BodyContains = []string{s}
			}
		case "body_matches":
			if s, ok := d.text(p.v, fp, expanded); ok {
				if d.regexp(p.v, fp, s) {
					e.BodyMatches = s
				}
			}
		case "json":
			e.JSON = d.jsonAsserts(p.v, fp)
		case "max_duration":
			if v, ok := d.duration(p.v, fp); ok {
				e.MaxDuration = api.Duration(v)
			}
		}
	}
	return e
}

// regexp checks that s compiles as a Go regexp; runtime placeholders are
// replaced by a literal first, since the engine fills them in later.
func (d *decoder) regexp(n *yaml.Node, path *at, s string) bool {
	probe := s
	if strings.Contains(probe, "${") {
		probe = placeholderRE.ReplaceAllString(probe, "x")
	}
	if _, err := regexp.Compile(probe); err != nil {
		msg := err.Error()
		msg = strings.TrimPrefix(msg, "error parsing regexp: ")
		d.errAt(n, "Go RE2 syntax: https://pkg.go.dev/regexp/syntax (no lookaround or backreferences)", "%s: invalid regexp: %s", path.String(), msg)
		return false
	}
	return true
}

var placeholderRE = regexp.MustCompile(`\$\{(vars|capture)\.[A-Za-z0-9_]+\}`)

// status reads a code (200), a class ("2xx"), or a list of them.
func (d *decoder) status(n *yaml.Node, path *at) []string {
	n = deref(n)
	items := []*yaml.Node{n}
	if n != nil && n.Kind == yaml.SequenceNode {
		items = n.Content
		if len(items) == 0 {
			d.errAt(n, "write a code (200), a class (\"2xx\") or a list of them", "%s: empty list", path.String())
		}
	}
	out := make([]string, 0, len(items))
	for i, it := range items {
		ip := path
		if n.Kind == yaml.SequenceNode {
			ip = path.item(i)
		}
		it = deref(it)
		if it == nil || it.Kind != yaml.ScalarNode || it.Tag == "!!null" || it.Tag == "!!bool" || it.Tag == "!!float" {
			d.errAt(it, "write a code (200), a class (\"2xx\") or a list of them", "%s: expected a status code, got %s", ip.String(), describe(it))
			continue
		}
		v := strings.ToLower(strings.TrimSpace(it.Value))
		if len(v) == 3 && v[0] >= '1' && v[0] <= '5' && v[1:] == "xx" {
			out = append(out, v)
			continue
		}
		code, err := strconv.Atoi(v)
		if err != nil || code < 100 || code > 599 {
			d.errAt(it, "a code is 100..599 (200, 404) and a class is 1xx..5xx", "%s: invalid status %s", ip.String(), quote(it.Value))
			continue
		}
		if len(v) == 3 { // already written as it is sent: "200", not "0200" or "+200"
			out = append(out, v)
			continue
		}
		out = append(out, strconv.Itoa(code))
	}
	return out
}

func (d *decoder) jsonAsserts(n *yaml.Node, path *at) []api.JSONAssert {
	ps, ok := d.pairs(n, path, "a mapping of JSONPath to checks, e.g. {$.token: {exists: true}}")
	if !ok {
		return nil
	}
	out := make([]api.JSONAssert, 0, ps.len())
	for p := range ps.all {
		fp := path.bracket(p.key)
		if hint, ok := d.checkJSONPath(p.key); !ok {
			d.errAt(p.k, hint, "%s: invalid JSONPath %s", path.String(), quote(p.key))
			continue
		}
		a := api.JSONAssert{Path: p.key}
		v := deref(p.v)
		if v.Kind != yaml.MappingNode {
			d.errAt(v, fmt.Sprintf("write {equals: %s}, or {exists: true}, {contains: ...}, {matches: ...}", v.Value), "%s: expected a mapping of checks, got %s", fp.String(), describe(v))
			continue
		}
		qs, ok := d.object(v, fp, "json_assert")
		if !ok {
			continue
		}
		for q := range qs.all {
			qp := fp.field(q.key)
			switch q.key {
			case "equals":
				if raw, ok := d.toJSON(q.v, qp); ok {
					a.Equals = raw
				}
			case "exists":
				if b, ok := d.boolean(q.v, qp); ok {
					a.Exists = &b
				}
			case "contains":
				if s, ok := d.text(q.v, qp, expanded); ok {
					a.Contains = &s
				}
			case "matches":
				if s, ok := d.text(q.v, qp, expanded); ok && d.regexp(q.v, qp, s) {
					a.Matches = &s
				}
			}
		}
		out = append(out, a)
	}
	return out
}

func (d *decoder) capture(n *yaml.Node, path *at) map[string]string {
	ps, ok := d.pairs(n, path, "a mapping of names to JSONPaths, e.g. {token: $.token}")
	if !ok {
		return nil
	}
	out := make(map[string]string, ps.len())
	for p := range ps.all {
		fp := path.field(p.key)
		if !isIdent(p.key) {
			d.errAt(p.k, "names use letters, digits and _ (later steps use ${capture.NAME})", "%s: invalid capture name %s", path.String(), quote(p.key))
			continue
		}
		v, ok := d.scalar(p.v, fp, "a JSONPath")
		if !ok {
			continue
		}
		if hint, ok := d.checkJSONPath(v); !ok {
			d.errAt(p.v, hint, "%s: invalid JSONPath %s", fp.String(), quote(v))
			continue
		}
		out[p.key] = v
	}
	return out
}

// checkJSONPath is checkJSONPathOnce, once per distinct JSONPath.
func (d *decoder) checkJSONPath(p string) (hint string, ok bool) {
	if c, seen := d.jsonPathChecks[p]; seen {
		return c.hint, c.ok
	}
	hint, ok = checkJSONPathOnce(p)
	if d.jsonPathChecks == nil {
		d.jsonPathChecks = map[string]jsonPathCheck{}
	}
	d.jsonPathChecks[p] = jsonPathCheck{hint, ok}
	return hint, ok
}

type jsonPathCheck struct {
	hint string
	ok   bool
}

// checkJSONPathOnce validates p with the parser the http step evaluates it with
// (internal/jsonpath), so the two cannot disagree; the hint is the reason.
func checkJSONPathOnce(p string) (hint string, ok bool) {
	if _, err := jsonpath.Parse(p); err != nil {
		var se *jsonpath.SyntaxError
		if errors.As(err, &se) {
			return se.Reason, false
		}
		return err.Error(), false
	}
	return "", true
}
