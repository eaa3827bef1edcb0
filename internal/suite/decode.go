package suite

// decode.go turns the top-level mapping into a Suite; each section of the
// file is decoded in its own file: decode_env.go (environments, serve,
// defaults), decode_selection.go, decode_gate.go, decode_case.go (cases,
// variants, references), decode_step.go (steps, http, run),
// decode_expect.go (expect, capture) and decode_json.go (JSON bodies).

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// decodeSuite walks the top-level mapping into a Suite.
func (d *decoder) decodeSuite(root *yaml.Node, opts Options) *Suite {
	s := &Suite{
		Defaults:  Defaults{Timeout: DefaultCaseTimeout},
		Selection: Selection{Unmapped: ScopeAll, MaxChangedFiles: DefaultMaxChangedFiles, OnUnknownDiff: ScopeAll},
		Gate:      Gate{FailOn: []string{GateFailed, GateBlocked, GateCancelled, GateTimeout}, OnEmpty: OnEmptyFail},
	}
	top := rootAt("top level")
	ps, ok := d.object(root, top, "suite")
	if !ok {
		return s
	}
	d.require(root, ps, top, "a suite starts with `version: 1` and has a `cases:` list", "version", "cases")
	var casesNode, setsNode, defEnvNode *yaml.Node
	var caseRetries, caseTimeout []*yaml.Node
	for p := range ps.all {
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
			if v, ok := d.scalar(p.v, rootAt("project"), "a string"); ok {
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
		s.Cases, s.byID, caseTimeout, caseRetries = d.cases(casesNode)
		for i := range s.Cases {
			if caseTimeout[i] == nil {
				s.Cases[i].Timeout = s.Defaults.Timeout
			}
			if caseRetries[i] == nil {
				s.Cases[i].Retries = s.Defaults.Retries
			}
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
