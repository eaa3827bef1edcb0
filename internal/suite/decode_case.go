package suite

// Cases, their variants, and the ${vars.X}/${capture.X} references of their steps.

import (
	"time"

	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/zof-ai/zof-ci/api"
)

// cases reads the case list; it also returns the index of each case id and
// each case's timeout and retries nodes (nil when unset), so defaults can
// fill them in.
func (d *decoder) cases(n *yaml.Node) ([]Case, map[string]int, []*yaml.Node, []*yaml.Node) {
	items, ok := d.seq(n, rootAt("cases"), "cases is a list: each item starts with `- id: ...`")
	if !ok {
		return nil, nil, nil, nil
	}
	out := make([]Case, 0, len(items))
	timeouts := make([]*yaml.Node, 0, len(items))
	retries := make([]*yaml.Node, 0, len(items))
	byID := make(map[string]int, len(items)) // index in out
	idLines := make([]int, 0, len(items))
	for i := range items {
		if !d.size.walkItem(n, i) {
			break // the file is refused as too big or deep; see parseBytes
		}
		it := items[i] // a streamed item is there once walkItem returns
		path := rootAt("cases").item(i)
		c, t, r, idNode, ok := d.oneCase(it, path)
		if d.size.stream != nil {
			// Nothing reads a streamed item again: let the collector have
			// its nodes rather than mark the whole file's tree (stream.go).
			items[i] = nil
		}
		if !ok {
			continue
		}
		if c.ID == "" {
			continue // already reported: missing or invalid id
		}
		if i, dup := byID[c.ID]; dup {
			d.errAt(idNode, fmt.Sprintf("case ids are unique; the first %q is at line %d", c.ID, idLines[i]), "%s.id: duplicate case id %q", path.String(), c.ID)
			continue
		}
		byID[c.ID] = len(out)
		idLines = append(idLines, idNode.Line)
		out = append(out, c)
		timeouts = append(timeouts, t)
		retries = append(retries, r)
	}
	return out, byID, timeouts, retries
}

func (d *decoder) oneCase(n *yaml.Node, path *at) (c Case, timeout, retries, idNode *yaml.Node, ok bool) {
	ps, ok := d.object(n, path, "case")
	if !ok {
		return c, nil, nil, nil, false
	}
	c.Line, c.Col = n.Line, n.Column
	n = deref(n)
	d.require(n, ps, path, "every case needs an `id` and a list of `steps`", "id", "steps")
	var variantsNode, stepsNode *yaml.Node
	for p := range ps.all {
		fp := path.field(p.key)
		switch p.key {
		case "id":
			if v, ok := d.id(p.v, fp, "case id"); ok {
				c.ID, idNode = v, deref(p.v)
			}
		case "name":
			c.Name, _ = d.scalar(p.v, fp, "a string")
		case "tags":
			items, ok := d.seq(p.v, fp, "write a list: [a, b]")
			if !ok {
				continue
			}
			tags := make([]string, 0, len(items))
			for i, it := range items {
				t, ok := d.id(it, fp.item(i), "tag")
				if !ok {
					continue
				}
				if slices.Contains(tags, t) {
					d.warnAt(deref(it), "remove the repeat", "%s: tag %q is listed twice", fp.String(), t)
					continue
				}
				tags = append(tags, t)
			}
			if len(tags) > 0 {
				c.Tags = tags
			}
		case "covers":
			pts := d.patterns(p.v, fp)
			if len(pts) > 0 {
				c.Covers = make([]string, len(pts))
				for i, pt := range pts {
					c.Covers[i] = pt.Value
				}
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
		case "quarantine":
			c.Quarantine = d.quarantine(p.v, fp)
		}
	}
	d.secrets = &c.secrets
	defer func() { d.secrets = nil }()
	var varNames []map[string]bool
	if variantsNode != nil {
		c.Variants, varNames = d.variants(variantsNode, path.field("variants"))
	}
	if stepsNode != nil {
		d.refs = d.refs[:0]
		c.Steps = d.steps(stepsNode, path.field("steps"))
		d.checkRefs(path, c, varNames, d.refs)
	}
	return c, timeout, retries, idNode, true
}

func (d *decoder) variants(n *yaml.Node, path *at) ([]api.Variant, []map[string]bool) {
	items, ok := d.seq(n, path, "write a list: - {name: eur, vars: {currency: EUR}}")
	if !ok {
		return nil, nil
	}
	if len(items) == 0 {
		d.warnAt(n, "remove `variants:` or add variants", "%s: empty list: the case runs once without vars", path.String())
	}
	var out []api.Variant
	var names []map[string]bool
	seen := map[string]int{}
	for i, it := range items {
		ip := path.item(i)
		ps, ok := d.object(it, ip, "variant")
		if !ok {
			continue
		}
		d.require(it, ps, ip, "every variant needs a `name` (it becomes part of the member id, case/name)", "name")
		var v api.Variant
		keys := map[string]bool{}
		good := true
		for p := range ps.all {
			fp := ip.field(p.key)
			switch p.key {
			case "name":
				s, ok := d.id(p.v, fp, "variant name")
				if !ok {
					good = false
					continue
				}
				if line, dup := seen[s]; dup {
					d.errAt(p.v, fmt.Sprintf("the first %q is at line %d", s, line), "%s: duplicate variant name %q", fp.String(), s)
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
				for q := range vp.all {
					if !isIdent(q.key) {
						d.errAt(q.k, "var names use letters, digits and _ (they are used as ${vars.NAME})", "%s: invalid var name %s", fp.String(), quote(q.key))
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

// checkRefs validates ${vars.X} against every variant and ${capture.X}
// against captures of earlier steps.
func (d *decoder) checkRefs(path *at, c Case, vars []map[string]bool, refs []refUse) {
	for _, r := range refs {
		// The reference's text, path and position are only built when it is
		// reported: finding a position indexes the file's lines.
		ref := func() string { return "${" + r.kind + "." + r.name + "}" }
		at := func() (string, int, int) {
			line, col := d.posAt(r.node, r.off)
			return path.field("steps").item(r.step).String(), line, col
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

// quarantine reads a case's quarantine: who owns the fix, why, and until
// when (a date, 2026-07-01, or an RFC 3339 time; a date ends at its start,
// UTC). Owner and reason are required: a quarantine nobody owns is forgotten.
func (d *decoder) quarantine(n *yaml.Node, path *at) *api.Quarantine {
	ps, ok := d.object(n, path, "quarantine")
	if !ok {
		return nil
	}
	d.require(deref(n), ps, path, "say who fixes it and why: quarantine: {owner: team-x, reason: \"flaky since #123\", until: 2026-07-01}", "owner", "reason")
	q := &api.Quarantine{}
	for p := range ps.all {
		fp := path.field(p.key)
		switch p.key {
		case "owner":
			q.Owner, _ = d.scalar(p.v, fp, "a string")
		case "reason":
			q.Reason, _ = d.scalar(p.v, fp, "a string")
		case "until":
			v, ok := d.scalar(p.v, fp, "a date")
			if !ok {
				continue
			}
			t, err := time.Parse(time.DateOnly, v)
			if err != nil {
				t, err = time.Parse(time.RFC3339, v)
			}
			if err != nil {
				d.errAt(p.v, "write a date like 2026-07-01 (or an RFC 3339 time)", "%s: %q is not a date", fp.String(), v)
				continue
			}
			q.Until = t.UTC()
		}
	}
	return q
}
