package server

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/secret"
	"github.com/zof-ai/zof-ci/internal/server/config"
)

// refusals lists every reason to refuse a run before anything executes
// (api.md, Safety): what the engine cannot execute, commands the tenant does
// not allow, and http targets outside the tenant's allowed_targets. Empty
// means the run may be created.
func (s *Server) refusals(tenant string, req *api.RunRequest) []string {
	var probs []string
	if err := engine.Validate(req); err != nil {
		var ve *engine.ValidationError
		if errors.As(err, &ve) {
			probs = append(probs, ve.Problems...)
		} else {
			probs = append(probs, err.Error())
		}
	}
	if strings.TrimSpace(req.Project) == "" {
		probs = append(probs, "project is empty; runs are grouped, queued and listed by project")
	}
	if strings.TrimSpace(req.Environment.Name) == "" {
		probs = append(probs, "environment.name is empty; name the environment the run targets")
	}
	if len(req.Cases) == 0 {
		probs = append(probs, "the run has no cases; submit at least one (an empty selection is decided by the client's on_empty)")
	}
	t := s.cfg.Tenants[tenant]
	if t == nil { // cannot happen: the principal came from the config
		return append(probs, "tenant "+tenant+" is not configured")
	}
	// A run for a pool is checked against the pool's policy; one for the
	// local executor against the tenant's (agents.go).
	if pp, local := poolPolicy(t, req); local {
		probs = append(probs, safety(t, req)...)
	} else {
		probs = append(probs, pp...)
	}
	// A refused target quotes the step's URL, secret query or path values included.
	mask := secret.NewMasker(req.Secrets)
	for i, p := range probs {
		probs[i] = mask.String(p)
	}
	return probs
}

// safety checks commands and http targets against the tenant's settings.
func safety(t *config.Tenant, req *api.RunRequest) []string {
	var probs []string
	env := req.Environment
	if !t.AllowCommands {
		if env.Serve != nil {
			probs = append(probs, fmt.Sprintf("environment %s has a serve command; tenant %s may not run commands on this server (allow_commands: false in server.yaml)", env.Name, t.Name))
		}
		for _, c := range req.Cases {
			for i, st := range c.Steps {
				if st.Run != nil {
					probs = append(probs, fmt.Sprintf("case %s step %d (%s) is a run: step; tenant %s may not run commands on this server (allow_commands: false in server.yaml): run it with the embedded engine, or ask the operator", c.ID, i+1, st.Title(), t.Name))
				}
			}
		}
	}
	check := func(where, raw string) {
		if p := targetProblem(t, raw); p != "" {
			probs = append(probs, where+": "+p)
		}
	}
	if env.URL != "" {
		check("environment "+env.Name+" url", env.URL)
	}
	for _, c := range req.Cases {
		variants := c.Variants
		if len(variants) == 0 {
			variants = []api.Variant{{}}
		}
		for i, st := range c.Steps {
			if st.HTTP == nil {
				continue
			}
			seen := map[string]bool{}
			for _, v := range variants {
				where := fmt.Sprintf("case %s step %d (%s)", c.ID, i+1, st.Title())
				if v.Name != "" {
					where = fmt.Sprintf("case %s variant %s step %d (%s)", c.ID, v.Name, i+1, st.Title())
				}
				target, problem := stepTarget(env.URL, st.HTTP, v.Vars)
				if problem != "" {
					if !seen[problem] {
						probs = append(probs, where+": "+problem)
					}
					seen[problem] = true
					continue
				}
				if p := targetProblem(t, target); p != "" && !seen[p] {
					seen[p] = true
					probs = append(probs, where+": "+p)
				}
			}
		}
	}
	return probs
}

// varRef matches ${vars.NAME}, as the step executor substitutes it.
var varRef = regexp.MustCompile(`\$\{vars\.([^}]*)\}`)

// anyRef matches what the executor may still substitute at run time.
var anyRef = regexp.MustCompile(`\$\{(vars|capture)\.[^}]*\}`)

// stepTarget is the URL an http step will request, as the step executor
// builds it (step.requestURL): url as is; else a path that is itself an
// absolute http(s) URL; else the path joined to the environment URL.
// ${vars.X} are resolved with the variant's vars (known at submission); a
// ${capture.X} (known only at run time) may appear only where it cannot change
// the scheme, host or port.
func stepTarget(base string, h *api.HTTPRequest, vars map[string]string) (string, string) {
	expand := func(s string) string {
		return varRef.ReplaceAllStringFunc(s, func(m string) string {
			name := varRef.FindStringSubmatch(m)[1]
			if v, ok := vars[name]; ok {
				return v
			}
			return m // the executor fails the step; the host check below still applies
		})
	}
	full, path := expand(h.URL), expand(h.Path)
	if full == "" {
		if strings.HasPrefix(path, "http://") || strings.HasPrefix(path, "https://") {
			full = path
		} else if anyRef.MatchString(path) && anyRef.FindStringIndex(path)[0] == 0 {
			// A path starting with a substitution could become an absolute URL.
			return "", fmt.Sprintf("path %q starts with a substitution that could make it a full URL at run time; start the path with a literal /", h.Path)
		} else {
			if base == "" {
				return "", "" // the executor fails the step; nothing is reached
			}
			b, _, _ := strings.Cut(base, "?")
			full = strings.TrimRight(b, "/")
			if path != "" {
				full += "/" + strings.TrimLeft(path, "/")
			}
		}
	}
	if loc := anyRef.FindStringIndex(full); loc != nil {
		u, err := url.Parse(full[:loc[0]])
		if err != nil || u.Host == "" || strings.Contains(full[:loc[0]], "${") || !strings.Contains(full[len(u.Scheme)+3:loc[0]], "/") {
			return "", fmt.Sprintf("url %q has a substitution in its scheme, host or port; only the path may hold ${capture.X} or an unknown ${vars.X}, so the target can be checked before the run", orOriginal(h))
		}
	}
	return anyRef.ReplaceAllString(full, "x"), ""
}

func orOriginal(h *api.HTTPRequest) string {
	if h.URL != "" {
		return h.URL
	}
	return h.Path
}

// targetProblem says why a URL may not be requested by the tenant, or "".
func targetProblem(t *config.Tenant, raw string) string {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Sprintf("target %q is not an absolute http(s) URL", raw)
	}
	if u.User != nil {
		return fmt.Sprintf("target %s carries user info in its URL; send credentials in a header instead", redact(u))
	}
	if config.Allowed(t.AllowedTargets, u) {
		return ""
	}
	if len(t.AllowedTargets) == 0 {
		return fmt.Sprintf("target %s is not allowed: tenant %s has no allowed_targets in server.yaml, so its http steps may reach nothing; ask the operator to add a pattern", redact(u), t.Name)
	}
	pats := make([]string, len(t.AllowedTargets))
	for i, p := range t.AllowedTargets {
		pats[i] = p.String()
	}
	return fmt.Sprintf("target %s is not allowed for tenant %s (allowed_targets: %s); point the environment at an allowed host or ask the operator to add a pattern", redact(u), t.Name, strings.Join(pats, ", "))
}

// redact drops the query (it may hold secrets) from a URL shown in an error.
func redact(u *url.URL) string {
	c := *u
	c.User = nil
	c.RawQuery, c.ForceQuery, c.Fragment = "", false, ""
	return c.String()
}
