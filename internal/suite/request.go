package suite

import (
	"encoding/json"
	"fmt"
	"maps"
	"sort"
	"strings"

	"github.com/zof-ai/zof-ci/api"
)

// Request builds the resolved run definition for environment env ("" = the
// environment chosen at load) and the given case ids, in suite order. The
// caller fills Selection, Source and the other run options. Unknown case ids,
// an unknown environment, or an environment whose ${VAR}s did not resolve
// are a *Error (exit code 64). A suite without environments yields an
// unnamed Environment (run steps and http steps with a full url need none).
// An empty caseIDs yields a request with no cases; the caller applies
// gate.on_empty.
func (s *Suite) Request(env string, caseIDs []string) (*api.RunRequest, error) {
	req := &api.RunRequest{Project: s.Project, SuiteFile: s.File, Cases: []api.Case{}}
	var probs []Problem
	fail := func(msg, hint string) {
		probs = append(probs, Problem{File: s.File, Message: msg, Hint: hint})
	}
	name := env
	if name == "" {
		name = s.Environment
	}
	var secrets []string
	switch e := s.Env(name); {
	case e != nil:
		if len(e.unresolved) > 0 {
			probs = append(probs, e.unresolved...)
			break
		}
		req.Environment = e.toAPI()
		secrets = append(secrets, e.secrets...)
	case name != "":
		fail(fmt.Sprintf("environment %q is not defined in the suite", name), envHint(name, s.EnvironmentNames()))
	case len(s.Environments) > 1:
		fail("no environment chosen: the suite defines several and no defaults.environment",
			"pass --env NAME (or ZOF_ENV), or set defaults.environment; defined: "+strings.Join(s.EnvironmentNames(), ", "))
	}

	want := make(map[string]bool, len(caseIDs))
	for _, id := range caseIDs {
		if s.Case(id) == nil {
			fail(fmt.Sprintf("unknown case %q", id), refHint(id, s.CaseIDs(), "case ids"))
			continue
		}
		want[id] = true
	}
	if len(probs) > 0 {
		return nil, &Error{Problems: sortProblems(probs)}
	}
	for i := range s.Cases {
		c := &s.Cases[i]
		if !want[c.ID] {
			continue
		}
		req.Cases = append(req.Cases, c.toAPI())
		secrets = append(secrets, c.secrets...)
	}
	if req.Environment.URL == "" {
		if p, bad := s.pathWithoutURL(want, req.Environment.Name); bad {
			return nil, &Error{Problems: []Problem{p}}
		}
	}
	for _, set := range s.Sets {
		var members []string
		for _, id := range set.Cases {
			if want[id] {
				members = append(members, id)
			}
		}
		if len(members) > 0 {
			req.Sets = append(req.Sets, api.Set{Name: set.Name, Cases: members, Sequential: set.Sequential})
		}
	}
	req.Secrets = dedupe(secrets)
	return req, nil
}

func dedupe(vs []string) []string {
	if len(vs) == 0 {
		return nil
	}
	out := append([]string(nil), vs...)
	sort.Strings(out)
	k := 0
	for i, v := range out {
		if i == 0 || v != out[k-1] {
			out[k] = v
			k++
		}
	}
	return out[:k]
}

func (e *Environment) toAPI() api.Environment {
	out := api.Environment{Name: e.Name, URL: e.URL, Headers: maps.Clone(e.Headers), Exclusive: e.Exclusive}
	if e.Serve != nil {
		out.Serve = &api.Serve{
			Command: e.Serve.Command,
			Dir:     e.Serve.Dir,
			Env:     maps.Clone(e.Serve.Env),
			Ready:   e.Serve.Ready,
			Timeout: api.Duration(e.Serve.Timeout),
		}
	}
	return out
}

// toAPI copies the case so a request never shares maps with the suite.
func (c *Case) toAPI() api.Case {
	out := api.Case{
		ID:      c.ID,
		Name:    c.Name,
		Tags:    append([]string(nil), c.Tags...),
		Timeout: api.Duration(c.Timeout),
		Retries: c.Retries,
		Line:    c.Line,
		Steps:   make([]api.Step, len(c.Steps)),
	}
	if c.Quarantine != nil {
		q := *c.Quarantine
		out.Quarantine = &q
	}
	for _, v := range c.Variants {
		out.Variants = append(out.Variants, api.Variant{Name: v.Name, Vars: maps.Clone(v.Vars)})
	}
	for i, st := range c.Steps {
		out.Steps[i] = st.toAPI()
	}
	return out
}

func (st *Step) toAPI() api.Step {
	out := api.Step{Name: st.Name, Timeout: api.Duration(st.Timeout), Capture: maps.Clone(st.Capture), Line: st.Line}
	if h := st.HTTP; h != nil {
		c := *h
		c.Headers, c.Query, c.Form = maps.Clone(h.Headers), maps.Clone(h.Query), maps.Clone(h.Form)
		c.JSON = append(json.RawMessage(nil), h.JSON...)
		if h.JSON == nil {
			c.JSON = nil
		}
		if h.Body != nil {
			b := *h.Body
			c.Body = &b
		}
		out.HTTP = &c
	}
	if r := st.Run; r != nil {
		c := *r
		c.Env = maps.Clone(r.Env)
		out.Run = &c
	}
	if e := st.Expect; e != nil {
		c := *e
		c.Status = append([]string(nil), e.Status...)
		c.Headers = maps.Clone(e.Headers)
		c.BodyContains = append([]string(nil), e.BodyContains...)
		c.JSON = append([]api.JSONAssert(nil), e.JSON...)
		out.Expect = &c
	}
	return out
}

// pathWithoutURL finds a selected http step that has only a path while the
// environment has no url to join it to.
func (s *Suite) pathWithoutURL(want map[string]bool, env string) (Problem, bool) {
	where := "the suite defines no environments"
	if env != "" {
		where = fmt.Sprintf("environment %q has no url", env)
	}
	for _, c := range s.Cases {
		if !want[c.ID] {
			continue
		}
		for _, st := range c.Steps {
			if st.HTTP != nil && st.HTTP.URL == "" {
				return Problem{File: s.File, Line: st.Line, Col: st.Col,
					Message: fmt.Sprintf("case %q: an http step uses a path but %s", c.ID, where),
					Hint:    "set the environment's url, or give the step a full http.url"}, true
			}
		}
	}
	return Problem{}, false
}
