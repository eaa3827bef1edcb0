package suite

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/jsonpath"
	"github.com/zof-ai/zof-ci/internal/pathmatch"
)

// decodeSuite walks the top-level mapping into a Suite.
func (d *decoder) decodeSuite(root *yaml.Node, opts Options) *Suite {
	s := &Suite{
		Defaults:  Defaults{Timeout: DefaultCaseTimeout},
		Selection: Selection{Unmapped: ScopeAll, MaxChangedFiles: DefaultMaxChangedFiles, OnUnknownDiff: ScopeAll},
		Gate:      Gate{FailOn: []string{GateFailed, GateBlocked, GateCancelled, GateTimeout}, OnEmpty: OnEmptyFail},
	}
	ps, ok := d.object(root, "top level", "suite")
	if !ok {
		return s
	}
	d.require(root, ps, "top level", "a suite starts with `version: 1` and has a `cases:` list", "version", "cases")
	var casesNode, setsNode, defEnvNode *yaml.Node
	var caseRetries, caseTimeout []*yaml.Node
	for _, p := range ps {
		switch p.key {
		case "version":
			v := deref(p.v)
			if v.Kind == yaml.ScalarNode && v.Tag == "!!int" && v.Value == "1" {
				s.Version = 1
			} else if v.Kind == yaml.ScalarNode && (v.Tag == "!!int" || v.Tag == "!!float") {
				d.errAt(v, "write `version: 1`, or upgrade zof if the file needs a newer format", "version: unsupported version %s: this zof reads version 1", v.Value)
			} else {
				d.errAt(v, "write `version: 1`", "version: expected the number 1, got %s", describe(v))
			}
		case "project":
			if v, ok := d.scalar(p.v, "project", "a string"); ok {
				if strings.TrimSpace(v) == "" || strings.ContainsAny(v, "\n\r") {
					d.errAt(p.v, "a short name such as checkout-service", "project: must be one non-empty line")
				} else {
					s.Project = v
				}
			}
		case "environments":
			s.Environments = d.environments(p.v)
		case "defaults":
			defEnvNode = d.defaults(p.v, &s.Defaults)
		case "selection":
			d.selection(p.v, &s.Selection)
		case "cases":
			casesNode = p.v
		case "sets":
			setsNode = p.v
		case "gate":
			d.gate(p.v, &s.Gate)
		}
	}
	if casesNode != nil {
		s.Cases, caseTimeout, caseRetries = d.cases(casesNode)
		s.byID = make(map[string]int, len(s.Cases))
		for i := range s.Cases {
			if caseTimeout[i] == nil {
				s.Cases[i].Timeout = s.Defaults.Timeout
			}
			if caseRetries[i] == nil {
				s.Cases[i].Retries = s.Defaults.Retries
			}
			s.byID[s.Cases[i].ID] = i
		}
	}
	if setsNode != nil {
		s.Sets = d.sets(setsNode, s)
	}
	d.resolveEnvironment(s, opts, defEnvNode)
	return s
}

// resolveEnvironment picks the environment the run uses and makes its
// unknown ${VAR}s errors.
func (d *decoder) resolveEnvironment(s *Suite, opts Options, defNode *yaml.Node) {
	names := s.EnvironmentNames()
	if s.Defaults.Environment != "" && s.Env(s.Defaults.Environment) == nil {
		d.errAt(defNode, envHint(s.Defaults.Environment, names), "defaults.environment: unknown environment %q", s.Defaults.Environment)
	}
	name := opts.Environment
	if name == "" {
		name = s.Defaults.Environment
	}
	if name == "" && len(s.Environments) == 1 {
		name = s.Environments[0].Name
	}
	if name == "" {
		return
	}
	env := s.Env(name)
	if env == nil {
		if opts.Environment != "" {
			d.add(SeverityError, 0, 0, fmt.Sprintf("environment %q is not defined in the suite", opts.Environment), envHint(opts.Environment, names))
		}
		return
	}
	s.Environment = name
	for _, p := range env.unresolved {
		d.push(p)
	}
	if !env.hasURL {
		for _, c := range s.Cases {
			for _, st := range c.Steps {
				if st.HTTP != nil && st.HTTP.URL == "" && st.HTTP.Path != "" {
					d.add(SeverityError, st.Line, st.Col,
						fmt.Sprintf("cases: step uses http.path but environment %q has no url", name),
						"set environments."+name+".url, or give the step a full http.url")
					return
				}
			}
		}
	}
}

func envHint(name string, names []string) string {
	if len(names) == 0 {
		return "the suite defines no environments; add one under `environments:`"
	}
	if c := closest(name, names); c != "" {
		return fmt.Sprintf("did you mean %q?", c)
	}
	return "defined: " + strings.Join(names, ", ")
}

func (d *decoder) environments(n *yaml.Node) []Environment {
	ps, ok := d.pairs(n, "environments", "a mapping of environment names to environments")
	if !ok {
		return nil
	}
	out := make([]Environment, 0, len(ps))
	for _, p := range ps {
		path := "environments." + p.key
		d.checkID(p.k, p.key, "environments", "environment name")
		env := Environment{Name: p.key, Line: p.k.Line, Col: p.k.Column}
		d.unset, d.secrets = &env.unresolved, &env.secrets
		d.environment(p.v, path, &env)
		d.unset, d.secrets = nil, nil
		out = append(out, env)
	}
	return out
}

func (d *decoder) environment(n *yaml.Node, path string, env *Environment) {
	ps, ok := d.object(n, path, "environment")
	if !ok {
		return
	}
	for _, p := range ps {
		fp := join(path, p.key)
		switch p.key {
		case "url":
			env.hasURL = true
			before := len(env.unresolved)
			if u, ok := d.text(p.v, fp, expanded); ok && len(env.unresolved) == before {
				if msg := checkBaseURL(u); msg != "" {
					d.errAt(p.v, "write an absolute URL such as http://127.0.0.1:8080 or https://staging.example.com", "%s: %s", fp, msg)
				} else {
					env.URL = u
				}
			}
		case "headers":
			env.Headers = d.stringMap(p.v, fp, secretEx, true)
		case "exclusive":
			env.Exclusive, _ = d.boolean(p.v, fp)
		case "serve":
			env.Serve = d.serve(p.v, fp)
		}
	}
}

// checkBaseURL validates an expanded URL; it returns why it is unusable, or "".
func checkBaseURL(u string) string {
	pu, err := url.Parse(u)
	if err != nil {
		return "invalid URL"
	}
	if pu.Scheme != "http" && pu.Scheme != "https" {
		return "URL must start with http:// or https://"
	}
	if pu.Host == "" {
		return "URL has no host"
	}
	return ""
}

func (d *decoder) serve(n *yaml.Node, path string) *Serve {
	ps, ok := d.object(n, path, "serve")
	if !ok {
		return nil
	}
	d.require(n, ps, path, "the command that starts the system under test, e.g. `go run ./cmd/app`", "command")
	sv := &Serve{}
	for _, p := range ps {
		fp := join(path, p.key)
		switch p.key {
		case "command":
			if v, ok := d.text(p.v, fp, expanded); ok {
				if strings.TrimSpace(v) == "" {
					d.errAt(p.v, "", "%s: empty command", fp)
				}
				sv.Command = v
			}
		case "dir":
			sv.Dir, _ = d.text(p.v, fp, expanded)
		case "env":
			sv.Env = d.stringMap(p.v, fp, secretEx, false)
		case "ready":
			if v, ok := d.text(p.v, fp, expanded); ok {
				if !strings.HasPrefix(v, "/") && checkBaseURL(v) != "" {
					d.errAt(p.v, "a path on the environment url such as /healthz, or an absolute http(s) URL", "%s: invalid ready check %s", fp, quote(v))
				} else {
					sv.Ready = v
				}
			}
		case "timeout":
			sv.Timeout, _ = d.duration(p.v, fp)
		}
	}
	return sv
}

func (d *decoder) defaults(n *yaml.Node, def *Defaults) (envNode *yaml.Node) {
	ps, ok := d.object(n, "defaults", "defaults")
	if !ok {
		return nil
	}
	for _, p := range ps {
		fp := join("defaults", p.key)
		switch p.key {
		case "environment":
			if v, ok := d.scalar(p.v, fp, "an environment name"); ok {
				def.Environment, envNode = v, deref(p.v)
			}
		case "timeout":
			if v, ok := d.duration(p.v, fp); ok {
				def.Timeout = v
			}
		case "retries":
			def.Retries, _ = d.integer(p.v, fp, 0, MaxRetries)
		}
	}
	return envNode
}

func (d *decoder) selection(n *yaml.Node, sel *Selection) {
	ps, ok := d.object(n, "selection", "selection")
	if !ok {
		return
	}
	for _, p := range ps {
		fp := join("selection", p.key)
		switch p.key {
		case "global":
			sel.Global = d.patterns(p.v, fp)
		case "ignore":
			sel.Ignore = d.patterns(p.v, fp)
		case "unmapped":
			if v, ok := d.enum(p.v, fp, ScopeAll, ScopeSmoke, ScopeNone); ok {
				sel.Unmapped = v
			}
		case "max_changed_files":
			if v, ok := d.integer(p.v, fp, 1, math.MaxInt32); ok {
				sel.MaxChangedFiles = v
			}
		case "on_unknown_diff":
			if v, ok := d.enum(p.v, fp, ScopeAll, ScopeSmoke, ScopeFail); ok {
				sel.OnUnknownDiff = v
			}
		}
	}
}

// patterns reads a list of path patterns, checked by pathmatch.Check.
func (d *decoder) patterns(n *yaml.Node, path string) []Pattern {
	items, ok := d.seq(n, path, `write a list of patterns: ["src/**", "go.mod"]`)
	if !ok {
		return nil
	}
	out := make([]Pattern, 0, len(items))
	for i, it := range items {
		ip := index(path, i)
		v, ok := d.scalar(it, ip, "a path pattern")
		if !ok {
			continue
		}
		it = deref(it)
		warning, err := pathmatch.Check(v)
		if err != nil {
			d.errAt(it, "", "%s: %v", ip, err)
			continue
		}
		if warning != "" {
			d.warnAt(it, "", "%s: pattern %s: %s", ip, quote(v), warning)
		}
		out = append(out, Pattern{Value: v, Line: it.Line, Col: it.Column})
	}
	return out
}

func (d *decoder) gate(n *yaml.Node, g *Gate) {
	ps, ok := d.object(n, "gate", "gate")
	if !ok {
		return
	}
	for _, p := range ps {
		fp := join("gate", p.key)
		switch p.key {
		case "fail_on":
			items, ok := d.seq(p.v, fp, "write a list: [failed, blocked, cancelled, timeout]")
			if !ok {
				continue
			}
			g.FailOn = []string{}
			for i, it := range items {
				v, ok := d.enum(it, index(fp, i), GateFailed, GateBlocked, GateCancelled, GateTimeout)
				if !ok {
					continue
				}
				if contains(g.FailOn, v) {
					d.warnAt(it, "remove the repeat", "%s: %q is listed twice", index(fp, i), v)
					continue
				}
				g.FailOn = append(g.FailOn, v)
			}
			if len(items) == 0 {
				d.warnAt(p.v, "list the statuses that fail the gate, usually [failed, blocked, cancelled, timeout]", "%s: empty: the gate passes whatever happens", fp)
			}
		case "on_empty":
			if v, ok := d.enum(p.v, fp, OnEmptyFail, OnEmptyPass); ok {
				g.OnEmpty = v
			}
		}
	}
}

// cases reads the case list; it also returns each case's timeout and retries
// nodes (nil when unset) so defaults can fill them in.
func (d *decoder) cases(n *yaml.Node) ([]Case, []*yaml.Node, []*yaml.Node) {
	items, ok := d.seq(n, "cases", "cases is a list: each item starts with `- id: ...`")
	if !ok {
		return nil, nil, nil
	}
	out := make([]Case, 0, len(items))
	timeouts := make([]*yaml.Node, 0, len(items))
	retries := make([]*yaml.Node, 0, len(items))
	first := make(map[string]int, len(items))
	for i, it := range items {
		path := index("cases", i)
		c, t, r, idNode, ok := d.oneCase(it, path)
		if !ok {
			continue
		}
		if c.ID == "" {
			continue // already reported: missing or invalid id
		}
		if line, dup := first[c.ID]; dup {
			d.errAt(idNode, fmt.Sprintf("case ids are unique; the first %q is at line %d", c.ID, line), "%s.id: duplicate case id %q", path, c.ID)
			continue
		}
		first[c.ID] = idNode.Line
		out = append(out, c)
		timeouts = append(timeouts, t)
		retries = append(retries, r)
	}
	return out, timeouts, retries
}

func (d *decoder) oneCase(n *yaml.Node, path string) (c Case, timeout, retries, idNode *yaml.Node, ok bool) {
	ps, ok := d.object(n, path, "case")
	if !ok {
		return c, nil, nil, nil, false
	}
	c.Line, c.Col = n.Line, n.Column
	n = deref(n)
	d.require(n, ps, path, "every case needs an `id` and a list of `steps`", "id", "steps")
	var variantsNode, stepsNode *yaml.Node
	for _, p := range ps {
		fp := join(path, p.key)
		switch p.key {
		case "id":
			if v, ok := d.id(p.v, fp, "case id"); ok {
				c.ID, idNode = v, deref(p.v)
			}
		case "name":
			c.Name, _ = d.scalar(p.v, fp, "a string")
		case "tags":
			tags, nodes := d.idList(p.v, fp, "tag")
			for i, t := range tags {
				if contains(c.Tags, t) {
					d.warnAt(nodes[i], "remove the repeat", "%s: tag %q is listed twice", fp, t)
					continue
				}
				c.Tags = append(c.Tags, t)
			}
		case "covers":
			for _, pt := range d.patterns(p.v, fp) {
				c.Covers = append(c.Covers, pt.Value)
			}
		case "always":
			c.Always, _ = d.boolean(p.v, fp)
		case "timeout":
			if v, ok := d.duration(p.v, fp); ok {
				c.Timeout, timeout = v, p.v
			}
		case "retries":
			if v, ok := d.integer(p.v, fp, 0, MaxRetries); ok {
				c.Retries, retries = v, p.v
			}
		case "variants":
			variantsNode = p.v
		case "steps":
			stepsNode = p.v
		}
	}
	d.secrets = &c.secrets
	defer func() { d.secrets = nil }()
	var varNames []map[string]bool
	if variantsNode != nil {
		c.Variants, varNames = d.variants(variantsNode, join(path, "variants"))
	}
	if stepsNode != nil {
		var refs []refUse
		c.Steps = d.steps(stepsNode, join(path, "steps"), &refs)
		d.checkRefs(path, c, varNames, refs)
	}
	return c, timeout, retries, idNode, true
}

func (d *decoder) variants(n *yaml.Node, path string) ([]api.Variant, []map[string]bool) {
	items, ok := d.seq(n, path, "write a list: - {name: eur, vars: {currency: EUR}}")
	if !ok {
		return nil, nil
	}
	if len(items) == 0 {
		d.warnAt(n, "remove `variants:` or add variants", "%s: empty list: the case runs once without vars", path)
	}
	var out []api.Variant
	var names []map[string]bool
	seen := map[string]int{}
	for i, it := range items {
		ip := index(path, i)
		ps, ok := d.object(it, ip, "variant")
		if !ok {
			continue
		}
		d.require(it, ps, ip, "every variant needs a `name` (it becomes part of the member id, case/name)", "name")
		var v api.Variant
		keys := map[string]bool{}
		good := true
		for _, p := range ps {
			fp := join(ip, p.key)
			switch p.key {
			case "name":
				s, ok := d.id(p.v, fp, "variant name")
				if !ok {
					good = false
					continue
				}
				if line, dup := seen[s]; dup {
					d.errAt(p.v, fmt.Sprintf("the first %q is at line %d", s, line), "%s: duplicate variant name %q", fp, s)
					good = false
					continue
				}
				seen[s] = deref(p.v).Line
				v.Name = s
			case "vars":
				vp, ok := d.pairs(p.v, fp, "a mapping of names to values")
				if !ok {
					continue
				}
				for _, q := range vp {
					if !isIdent(q.key) {
						d.errAt(q.k, "var names use letters, digits and _ (they are used as ${vars.NAME})", "%s: invalid var name %s", fp, quote(q.key))
					}
					keys[q.key] = true
				}
				v.Vars = d.stringMap(p.v, fp, expanded, false)
			}
		}
		if good && v.Name != "" {
			out = append(out, v)
			names = append(names, keys)
		}
	}
	return out, names
}

func (d *decoder) steps(n *yaml.Node, path string, refs *[]refUse) []Step {
	items, ok := d.seq(n, path, "steps is a list: each item is `- http: ...` or `- run: ...`")
	if !ok {
		return nil
	}
	if len(items) == 0 {
		d.errAt(n, "add at least one `- http: ...` or `- run: ...` step", "%s: a case needs at least one step", path)
		return nil
	}
	d.refs = refs
	defer func() { d.refs = nil }()
	out := make([]Step, 0, len(items))
	for i, it := range items {
		d.step = i
		if st, ok := d.oneStep(it, index(path, i)); ok {
			out = append(out, st)
		}
	}
	return out
}

func (d *decoder) oneStep(n *yaml.Node, path string) (Step, bool) {
	var st Step
	ps, ok := d.object(n, path, "step")
	if !ok {
		return st, false
	}
	st.Line, st.Col = n.Line, n.Column // an alias (- *step) is located where it is used
	n = deref(n)
	var httpNode, runNode, expectNode, captureNode *yaml.Node
	for _, p := range ps {
		fp := join(path, p.key)
		switch p.key {
		case "name":
			st.Name, _ = d.scalar(p.v, fp, "a string")
		case "http":
			httpNode = p.k
			st.HTTP = d.httpRequest(p.v, fp)
		case "run":
			runNode = p.k
			st.Run = d.command(p.v, fp)
		case "timeout":
			st.Timeout, _ = d.duration(p.v, fp)
		case "expect":
			expectNode = p.k
			st.Expect = d.expect(p.v, fp)
		case "capture":
			captureNode = p.k
			st.Capture = d.capture(p.v, fp)
		}
	}
	switch {
	case httpNode != nil && runNode != nil:
		d.errAt(runNode, "split it into two steps", "%s: a step has either http or run, not both", path)
	case httpNode == nil && runNode == nil:
		d.errAt(n, "add `http: {method: GET, path: /}` or `run: <command>`", "%s: missing http or run", path)
	case runNode != nil && expectNode != nil:
		d.errAt(expectNode, "a run step passes on its exit code; set run.exit_code to expect another code", "%s: expect applies to http steps only", path)
	case runNode != nil && captureNode != nil:
		d.errAt(captureNode, "capture reads JSON from an http response", "%s: capture applies to http steps only", path)
	}
	return st, true
}

func (d *decoder) httpRequest(n *yaml.Node, path string) *api.HTTPRequest {
	ps, ok := d.object(n, path, "http")
	if !ok {
		return nil
	}
	n = deref(n)
	h := &api.HTTPRequest{}
	var pathNode, urlNode *yaml.Node
	var bodies []*yaml.Node
	for _, p := range ps {
		fp := join(path, p.key)
		switch p.key {
		case "method":
			if v, ok := d.scalar(p.v, fp, "an HTTP method"); ok {
				if !isToken(v) {
					d.errAt(p.v, "e.g. GET, POST, PUT, PATCH, DELETE", "%s: invalid HTTP method %s", fp, quote(v))
				} else {
					h.Method = strings.ToUpper(v)
				}
			}
		case "path":
			pathNode = p.k
			if v, ok := d.text(p.v, fp, expanded); ok {
				if !strings.HasPrefix(v, "/") && !strings.HasPrefix(v, "${") {
					d.errAt(p.v, fmt.Sprintf("paths start with /: %q; use http.url for a full URL", "/"+v), "%s: path %s does not start with /", fp, quote(v))
				} else {
					h.Path = v
				}
			}
		case "url":
			urlNode = p.k
			if v, ok := d.text(p.v, fp, expanded); ok {
				if !strings.HasPrefix(v, "${") && checkBaseURL(v) != "" {
					d.errAt(p.v, "write an absolute http(s) URL, or use http.path to join the environment url", "%s: %s", fp, checkBaseURL(v))
				} else {
					h.URL = v
				}
			}
		case "headers":
			h.Headers = d.stringMap(p.v, fp, secretEx, true)
		case "query":
			h.Query = d.stringMap(p.v, fp, expanded, false)
		case "json":
			bodies = append(bodies, p.k)
			if raw, ok := d.toJSON(p.v, fp); ok {
				h.JSON = raw
			}
		case "body":
			bodies = append(bodies, p.k)
			if v, ok := d.text(p.v, fp, expanded); ok {
				h.Body = &v
			}
		case "form":
			bodies = append(bodies, p.k)
			h.Form = d.stringMap(p.v, fp, expanded, false)
		}
	}
	if pathNode != nil && urlNode != nil {
		d.errAt(urlNode, "keep one: path joins the environment url, url is used as is", "%s: path and url are exclusive", path)
	}
	if pathNode == nil && urlNode == nil {
		d.errAt(n, "add `path: /...` (joined to the environment url) or `url: https://...`", "%s: missing path or url", path)
	}
	if len(bodies) > 1 {
		d.errAt(bodies[1], "keep one of json, body and form", "%s: %s and %s are exclusive", path, bodies[0].Value, bodies[1].Value)
	}
	return h
}

func (d *decoder) command(n *yaml.Node, path string) *api.Command {
	v := deref(n)
	if v != nil && v.Kind == yaml.ScalarNode && v.Tag != "!!null" {
		s, ok := d.text(v, path, expanded)
		if !ok {
			return nil
		}
		if strings.TrimSpace(s) == "" {
			d.errAt(v, "write the shell command to run", "%s: empty command", path)
		}
		return &api.Command{Command: s}
	}
	ps, ok := d.object(n, path, "run")
	if !ok {
		return nil
	}
	d.require(n, ps, path, "write `run: <command>` or `run: {command: <command>, env: {...}}`", "command")
	c := &api.Command{}
	for _, p := range ps {
		fp := join(path, p.key)
		switch p.key {
		case "command":
			if s, ok := d.text(p.v, fp, expanded); ok {
				if strings.TrimSpace(s) == "" {
					d.errAt(p.v, "write the shell command to run", "%s: empty command", fp)
				}
				c.Command = s
			}
		case "env":
			c.Env = d.stringMap(p.v, fp, secretEx, false)
		case "dir":
			c.Dir, _ = d.text(p.v, fp, expanded)
		case "exit_code":
			c.ExitCode, _ = d.integer(p.v, fp, 0, 255)
		}
	}
	return c
}

func (d *decoder) expect(n *yaml.Node, path string) *api.Expect {
	ps, ok := d.object(n, path, "expect")
	if !ok {
		return nil
	}
	e := &api.Expect{}
	for _, p := range ps {
		fp := join(path, p.key)
		switch p.key {
		case "status":
			e.Status = d.status(p.v, fp)
		case "headers":
			e.Headers = d.stringMap(p.v, fp, expanded, true)
		case "body_contains":
			v := deref(p.v)
			if v.Kind == yaml.SequenceNode {
				for i, it := range v.Content {
					if s, ok := d.text(it, index(fp, i), expanded); ok {
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
func (d *decoder) regexp(n *yaml.Node, path, s string) bool {
	probe := s
	if strings.Contains(probe, "${") {
		probe = placeholderRE.ReplaceAllString(probe, "x")
	}
	if _, err := regexp.Compile(probe); err != nil {
		msg := err.Error()
		msg = strings.TrimPrefix(msg, "error parsing regexp: ")
		d.errAt(n, "Go RE2 syntax: https://pkg.go.dev/regexp/syntax (no lookaround or backreferences)", "%s: invalid regexp: %s", path, msg)
		return false
	}
	return true
}

var placeholderRE = regexp.MustCompile(`\$\{(vars|capture)\.[A-Za-z0-9_]+\}`)

// status reads a code (200), a class ("2xx"), or a list of them.
func (d *decoder) status(n *yaml.Node, path string) []string {
	n = deref(n)
	items := []*yaml.Node{n}
	if n != nil && n.Kind == yaml.SequenceNode {
		items = n.Content
		if len(items) == 0 {
			d.errAt(n, "write a code (200), a class (\"2xx\") or a list of them", "%s: empty list", path)
		}
	}
	var out []string
	for i, it := range items {
		ip := path
		if n.Kind == yaml.SequenceNode {
			ip = index(path, i)
		}
		it = deref(it)
		if it == nil || it.Kind != yaml.ScalarNode || it.Tag == "!!null" || it.Tag == "!!bool" || it.Tag == "!!float" {
			d.errAt(it, "write a code (200), a class (\"2xx\") or a list of them", "%s: expected a status code, got %s", ip, describe(it))
			continue
		}
		v := strings.ToLower(strings.TrimSpace(it.Value))
		if len(v) == 3 && v[0] >= '1' && v[0] <= '5' && v[1:] == "xx" {
			out = append(out, v)
			continue
		}
		code, err := strconv.Atoi(v)
		if err != nil || code < 100 || code > 599 {
			d.errAt(it, "a code is 100..599 (200, 404) and a class is 1xx..5xx", "%s: invalid status %s", ip, quote(it.Value))
			continue
		}
		out = append(out, strconv.Itoa(code))
	}
	return out
}

func (d *decoder) jsonAsserts(n *yaml.Node, path string) []api.JSONAssert {
	ps, ok := d.pairs(n, path, "a mapping of JSONPath to checks, e.g. {$.token: {exists: true}}")
	if !ok {
		return nil
	}
	var out []api.JSONAssert
	for _, p := range ps {
		fp := path + "[" + p.key + "]"
		if hint, ok := checkJSONPath(p.key); !ok {
			d.errAt(p.k, hint, "%s: invalid JSONPath %s", path, quote(p.key))
			continue
		}
		a := api.JSONAssert{Path: p.key}
		v := deref(p.v)
		if v.Kind != yaml.MappingNode {
			d.errAt(v, fmt.Sprintf("write {equals: %s}, or {exists: true}, {contains: ...}, {matches: ...}", v.Value), "%s: expected a mapping of checks, got %s", fp, describe(v))
			continue
		}
		qs, ok := d.object(v, fp, "json_assert")
		if !ok {
			continue
		}
		for _, q := range qs {
			qp := join(fp, q.key)
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

func (d *decoder) capture(n *yaml.Node, path string) map[string]string {
	ps, ok := d.pairs(n, path, "a mapping of names to JSONPaths, e.g. {token: $.token}")
	if !ok {
		return nil
	}
	out := make(map[string]string, len(ps))
	for _, p := range ps {
		fp := join(path, p.key)
		if !isIdent(p.key) {
			d.errAt(p.k, "names use letters, digits and _ (later steps use ${capture.NAME})", "%s: invalid capture name %s", path, quote(p.key))
			continue
		}
		v, ok := d.scalar(p.v, fp, "a JSONPath")
		if !ok {
			continue
		}
		if hint, ok := checkJSONPath(v); !ok {
			d.errAt(p.v, hint, "%s: invalid JSONPath %s", fp, quote(v))
			continue
		}
		out[p.key] = v
	}
	return out
}

// checkRefs validates ${vars.X} against every variant and ${capture.X}
// against captures of earlier steps.
func (d *decoder) checkRefs(path string, c Case, vars []map[string]bool, refs []refUse) {
	for _, r := range refs {
		// The reference's text, path and position are only built when it is
		// reported: finding a position indexes the file's lines.
		ref := func() string { return "${" + r.kind + "." + r.name + "}" }
		at := func() (string, int, int) {
			line, col := d.posAt(r.node, r.off)
			return index(join(path, "steps"), r.step), line, col
		}
		switch r.kind {
		case refVars:
			if len(c.Variants) == 0 {
				path, line, col := at()
				d.add(SeverityError, line, col, fmt.Sprintf("%s: %s is used but the case has no variants", path, ref()),
					"add `variants: [{name: a, vars: {"+r.name+": ...}}]` to the case")
				continue
			}
			var missing []string
			for i, v := range c.Variants {
				if !vars[i][r.name] {
					missing = append(missing, v.Name)
				}
			}
			if len(missing) > 0 {
				path, line, col := at()
				d.add(SeverityError, line, col, fmt.Sprintf("%s: %s is not defined by variant %s", path, ref(), strings.Join(missing, ", ")),
					"define "+r.name+" in the vars of every variant")
			}
		case refCapture:
			found, later := false, false
			for i, st := range c.Steps {
				if _, ok := st.Capture[r.name]; ok {
					if i < r.step {
						found = true
					} else {
						later = true
					}
				}
			}
			if !found {
				hint := "capture it in an earlier step: `capture: {" + r.name + ": $.path}`"
				if later {
					hint = "it is captured by this or a later step; steps run in order, so move the capture earlier"
				}
				path, line, col := at()
				d.add(SeverityError, line, col, fmt.Sprintf("%s: %s is not captured by an earlier step", path, ref()), hint)
			}
		}
	}
}

// toJSON converts a YAML value to JSON, keeping mapping order; strings are expanded.
func (d *decoder) toJSON(n *yaml.Node, path string) (json.RawMessage, bool) {
	var b bytes.Buffer
	before := len(d.probs)
	d.writeJSON(&b, n, path)
	if len(d.probs) > before && hasErrors(d.probs[before:]) {
		return nil, false
	}
	return b.Bytes(), true
}

func (d *decoder) writeJSON(b *bytes.Buffer, n *yaml.Node, path string) {
	n = deref(n)
	switch n.Kind {
	case yaml.MappingNode:
		ps, _ := d.pairs(n, path, "")
		b.WriteByte('{')
		for i, p := range ps {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSONString(b, p.key)
			b.WriteByte(':')
			d.writeJSON(b, p.v, join(path, p.key))
		}
		b.WriteByte('}')
	case yaml.SequenceNode:
		b.WriteByte('[')
		for i, it := range n.Content {
			if i > 0 {
				b.WriteByte(',')
			}
			d.writeJSON(b, it, index(path, i))
		}
		b.WriteByte(']')
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			b.WriteString("null")
			return
		case "!!bool", "!!int", "!!float":
			if plainJSON(n.Tag, n.Value) {
				b.WriteString(n.Value)
				return
			}
			var v any
			if err := n.Decode(&v); err == nil {
				if f, isF := v.(float64); isF && (math.IsNaN(f) || math.IsInf(f, 0)) {
					d.errAt(n, "quote it to send a string", "%s: %s has no JSON form", path, n.Value)
					b.WriteString("null")
					return
				}
				if out, err := json.Marshal(v); err == nil {
					b.Write(out)
					return
				}
			}
		}
		s, _ := d.text(n, path, expanded)
		writeJSONString(b, s)
	default:
		b.WriteString("null")
	}
}

// checkJSONPath validates p with the parser the http step evaluates it with
// (internal/jsonpath), so the two cannot disagree; the hint is the reason.
func checkJSONPath(p string) (hint string, ok bool) {
	if _, err := jsonpath.Parse(p); err != nil {
		var se *jsonpath.SyntaxError
		if errors.As(err, &se) {
			return se.Reason, false
		}
		return err.Error(), false
	}
	return "", true
}

// plainJSON reports whether a YAML bool or int scalar is already written the
// way encoding/json writes the value the YAML library gives it: true, false,
// or a decimal integer without + or leading zeros that fits an int64.
// Anything else (0x1F, 1_000, +1, 1.50, .inf, yes) goes through the YAML
// library and encoding/json.
func plainJSON(tag, s string) bool {
	switch tag {
	case "!!bool":
		return s == "true" || s == "false"
	case "!!int":
		return isDecimal(s)
	}
	return false
}

// isDecimal: -?(0|[1-9][0-9]*) with at most 18 digits, and not -0.
func isDecimal(s string) bool {
	digits := strings.TrimPrefix(s, "-")
	if digits == "" || len(digits) > 18 || digits[0] == '0' && (len(digits) > 1 || len(s) > 1) {
		return false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return false
		}
	}
	return true
}

// writeJSONString writes s as encoding/json.Marshal does; strings of plain
// printable ASCII (the usual case) skip the encoder.
func writeJSONString(b *bytes.Buffer, s string) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			out, _ := json.Marshal(s)
			b.Write(out)
			return
		}
	}
	b.WriteByte('"')
	b.WriteString(s)
	b.WriteByte('"')
}
