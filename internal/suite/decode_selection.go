package suite

// The selection section and path patterns.

import (
	"math"

	"go.yaml.in/yaml/v3"

	"github.com/zof-ai/zof-ci/internal/pathmatch"
)

func (d *decoder) selection(n *yaml.Node, sel *Selection) {
	ps, ok := d.object(n, rootAt("selection"), "selection")
	if !ok {
		return
	}
	for p := range ps.all {
		fp := rootAt("selection").field(p.key)
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
		case "modules":
			sel.Modules = d.modules(p.v, fp)
		}
	}
}

// modules reads selection.modules: a mapping of module names to the path
// patterns of their files, in the file's order (docs/coverage.md).
func (d *decoder) modules(n *yaml.Node, path *at) []Module {
	ps, ok := d.pairs(n, path, `a mapping of module names to path patterns, e.g. cart: ["services/cart/**"]`)
	if !ok {
		return nil
	}
	out := make([]Module, 0, ps.len())
	for p := range ps.all {
		mp := path.field(p.key)
		if !d.checkID(p.k, p.key, path, "module name") {
			continue
		}
		pats := d.patterns(p.v, mp)
		if len(pats) == 0 {
			if v := deref(p.v); v != nil && v.Kind == yaml.SequenceNode && len(v.Content) == 0 {
				d.errAt(v, `list the module's files: ["services/cart/**"]`, "%s: a module needs at least one pattern", mp.String())
			}
			continue
		}
		out = append(out, Module{Name: p.key, Patterns: pats, Line: p.k.Line, Col: p.k.Column})
	}
	return out
}

// patterns reads a list of path patterns, checked by pathmatch.Check.
func (d *decoder) patterns(n *yaml.Node, path *at) []Pattern {
	items, ok := d.seq(n, path, `write a list of patterns: ["src/**", "go.mod"]`)
	if !ok {
		return nil
	}
	out := make([]Pattern, 0, len(items))
	for i, it := range items {
		ip := path.item(i)
		v, ok := d.scalar(it, ip, "a path pattern")
		if !ok {
			continue
		}
		it = deref(it)
		warning, err := d.checkPattern(v)
		if err != nil {
			d.errAt(it, "", "%s: %v", ip.String(), err)
			continue
		}
		if warning != "" {
			d.warnAt(it, "", "%s: pattern %s: %s", ip.String(), quote(v), warning)
		}
		out = append(out, Pattern{Value: v, Line: it.Line, Col: it.Column})
	}
	return out
}

// patternCheck is pathmatch.Check's verdict on one pattern.
type patternCheck struct {
	warning string
	err     error
}

// checkPattern is pathmatch.Check, once per distinct pattern.
func (d *decoder) checkPattern(v string) (string, error) {
	if c, ok := d.patternChecks[v]; ok {
		return c.warning, c.err
	}
	warning, err := pathmatch.Check(v)
	if d.patternChecks == nil {
		d.patternChecks = map[string]patternCheck{}
	}
	d.patternChecks[v] = patternCheck{warning, err}
	return warning, err
}
