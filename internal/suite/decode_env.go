package suite

// Environments, the serve block and defaults.

import (
	"net/url"
	"strings"

	"go.yaml.in/yaml/v3"
)

func (d *decoder) environments(n *yaml.Node) []Environment {
	ps, ok := d.pairs(n, rootAt("environments"), "a mapping of environment names to environments")
	if !ok {
		return nil
	}
	out := make([]Environment, 0, ps.len())
	for p := range ps.all {
		path := rootAt("environments").field(p.key)
		d.checkID(p.k, p.key, rootAt("environments"), "environment name")
		env := Environment{Name: p.key, Line: p.k.Line, Col: p.k.Column}
		d.unset, d.secrets = &env.unresolved, &env.secrets
		d.environment(p.v, path, &env)
		d.unset, d.secrets = nil, nil
		out = append(out, env)
	}
	return out
}

func (d *decoder) environment(n *yaml.Node, path *at, env *Environment) {
	ps, ok := d.object(n, path, "environment")
	if !ok {
		return
	}
	for p := range ps.all {
		fp := path.field(p.key)
		switch p.key {
		case "url":
			env.hasURL = true
			before := len(env.unresolved)
			if u, ok := d.text(p.v, fp, expanded); ok && len(env.unresolved) == before {
				if msg := checkBaseURL(u); msg != "" {
					d.errAt(p.v, "write an absolute URL such as http://127.0.0.1:8080 or https://staging.example.com", "%s: %s", fp.String(), msg)
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

func (d *decoder) serve(n *yaml.Node, path *at) *Serve {
	ps, ok := d.object(n, path, "serve")
	if !ok {
		return nil
	}
	d.require(n, ps, path, "the command that starts the system under test, e.g. `go run ./cmd/app`", "command")
	sv := &Serve{}
	for p := range ps.all {
		fp := path.field(p.key)
		switch p.key {
		case "command":
			if v, ok := d.text(p.v, fp, expanded); ok {
				if strings.TrimSpace(v) == "" {
					d.errAt(p.v, "", "%s: empty command", fp.String())
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
					d.errAt(p.v, "a path on the environment url such as /healthz, or an absolute http(s) URL", "%s: invalid ready check %s", fp.String(), quote(v))
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
	ps, ok := d.object(n, rootAt("defaults"), "defaults")
	if !ok {
		return nil
	}
	for p := range ps.all {
		fp := rootAt("defaults").field(p.key)
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
