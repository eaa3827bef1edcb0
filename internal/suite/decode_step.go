package suite

// Steps: http requests and run commands.

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/zof-ai/zof-ci/api"
)

func (d *decoder) steps(n *yaml.Node, path *at) []Step {
	items, ok := d.seq(n, path, "steps is a list: each item is `- http: ...` or `- run: ...`")
	if !ok {
		return nil
	}
	if len(items) == 0 {
		d.errAt(n, "add at least one `- http: ...` or `- run: ...` step", "%s: a case needs at least one step", path.String())
		return nil
	}
	d.inSteps = true
	defer func() { d.inSteps = false }()
	out := make([]Step, 0, len(items))
	for i, it := range items {
		d.step = i
		if st, ok := d.oneStep(it, path.item(i)); ok {
			out = append(out, st)
		}
	}
	return out
}

func (d *decoder) oneStep(n *yaml.Node, path *at) (Step, bool) {
	var st Step
	ps, ok := d.object(n, path, "step")
	if !ok {
		return st, false
	}
	st.Line, st.Col = n.Line, n.Column // an alias (- *step) is located where it is used
	n = deref(n)
	var httpNode, runNode, expectNode, captureNode *yaml.Node
	for p := range ps.all {
		fp := path.field(p.key)
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
		d.errAt(runNode, "split it into two steps", "%s: a step has either http or run, not both", path.String())
	case httpNode == nil && runNode == nil:
		d.errAt(n, "add `http: {method: GET, path: /}` or `run: <command>`", "%s: missing http or run", path.String())
	case runNode != nil && expectNode != nil:
		d.errAt(expectNode, "a run step passes on its exit code; set run.exit_code to expect another code", "%s: expect applies to http steps only", path.String())
	case runNode != nil && captureNode != nil:
		d.errAt(captureNode, "capture reads JSON from an http response", "%s: capture applies to http steps only", path.String())
	}
	return st, true
}

func (d *decoder) httpRequest(n *yaml.Node, path *at) *api.HTTPRequest {
	ps, ok := d.object(n, path, "http")
	if !ok {
		return nil
	}
	n = deref(n)
	h := &api.HTTPRequest{}
	var pathNode, urlNode *yaml.Node
	var bodies [2]*yaml.Node // the first two of json, body and form
	nbodies := 0
	for p := range ps.all {
		fp := path.field(p.key)
		switch p.key {
		case "method":
			if v, ok := d.scalar(p.v, fp, "an HTTP method"); ok {
				if !isToken(v) {
					d.errAt(p.v, "e.g. GET, POST, PUT, PATCH, DELETE", "%s: invalid HTTP method %s", fp.String(), quote(v))
				} else {
					h.Method = strings.ToUpper(v)
				}
			}
		case "path":
			pathNode = p.k
			if v, ok := d.text(p.v, fp, expanded); ok {
				if !strings.HasPrefix(v, "/") && !strings.HasPrefix(v, "${") {
					d.errAt(p.v, fmt.Sprintf("paths start with /: %q; use http.url for a full URL", "/"+v), "%s: path %s does not start with /", fp.String(), quote(v))
				} else {
					h.Path = v
				}
			}
		case "url":
			urlNode = p.k
			if v, ok := d.text(p.v, fp, expanded); ok {
				if !strings.HasPrefix(v, "${") && checkBaseURL(v) != "" {
					d.errAt(p.v, "write an absolute http(s) URL, or use http.path to join the environment url", "%s: %s", fp.String(), checkBaseURL(v))
				} else {
					h.URL = v
				}
			}
		case "headers":
			h.Headers = d.stringMap(p.v, fp, secretEx, true)
		case "query":
			h.Query = d.stringMap(p.v, fp, expanded, false)
		case "json":
			if nbodies < len(bodies) {
				bodies[nbodies] = p.k
			}
			nbodies++
			if raw, ok := d.toJSON(p.v, fp); ok {
				h.JSON = raw
			}
		case "body":
			if nbodies < len(bodies) {
				bodies[nbodies] = p.k
			}
			nbodies++
			if v, ok := d.text(p.v, fp, expanded); ok {
				h.Body = &v
			}
		case "form":
			if nbodies < len(bodies) {
				bodies[nbodies] = p.k
			}
			nbodies++
			h.Form = d.stringMap(p.v, fp, expanded, false)
		}
	}
	if pathNode != nil && urlNode != nil {
		d.errAt(urlNode, "keep one: path joins the environment url, url is used as is", "%s: path and url are exclusive", path.String())
	}
	if pathNode == nil && urlNode == nil {
		d.errAt(n, "add `path: /...` (joined to the environment url) or `url: https://...`", "%s: missing path or url", path.String())
	}
	if nbodies > 1 {
		d.errAt(bodies[1], "keep one of json, body and form", "%s: %s and %s are exclusive", path.String(), bodies[0].Value, bodies[1].Value)
	}
	return h
}

func (d *decoder) command(n *yaml.Node, path *at) *api.Command {
	v := deref(n)
	if v != nil && v.Kind == yaml.ScalarNode && v.Tag != "!!null" {
		s, ok := d.text(v, path, expanded)
		if !ok {
			return nil
		}
		if strings.TrimSpace(s) == "" {
			d.errAt(v, "write the shell command to run", "%s: empty command", path.String())
		}
		return &api.Command{Command: s}
	}
	ps, ok := d.object(n, path, "run")
	if !ok {
		return nil
	}
	d.require(n, ps, path, "write `run: <command>` or `run: {command: <command>, env: {...}}`", "command")
	c := &api.Command{}
	for p := range ps.all {
		fp := path.field(p.key)
		switch p.key {
		case "command":
			if s, ok := d.text(p.v, fp, expanded); ok {
				if strings.TrimSpace(s) == "" {
					d.errAt(p.v, "write the shell command to run", "%s: empty command", fp.String())
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
