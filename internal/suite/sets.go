package suite

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// sets reads the sets and resolves their members against the cases and each
// other, reporting unknown references and cycles.
func (d *decoder) sets(n *yaml.Node, s *Suite) []Set {
	ps, ok := d.pairs(n, rootAt("sets"), "a mapping of set names to sets")
	if !ok {
		return nil
	}
	out := make([]Set, 0, ps.len())
	for p := range ps.all {
		path := rootAt("sets").field(p.key)
		if !d.checkID(p.k, p.key, rootAt("sets"), "set name") {
			continue
		}
		set := Set{Name: p.key, Line: p.k.Line, Col: p.k.Column}
		qs, ok := d.object(p.v, path, "set")
		if !ok {
			continue
		}
		if !qs.has("cases") && !qs.has("sets") && !qs.has("tags") {
			d.errAt(deref(p.v), "list members with `cases: [id, ...]`, `sets: [name, ...]` or `tags: [tag, ...]`", "%s: a set needs members", path.String())
		}
		for q := range qs.all {
			fp := path.field(q.key)
			switch q.key {
			case "cases", "sets", "tags":
				kind := map[string]string{"cases": MemberCase, "sets": MemberSet, "tags": MemberTag}[q.key]
				names, nodes := d.idList(q.v, fp, map[string]string{"cases": "case id", "sets": "set name", "tags": "tag"}[q.key])
				for i, name := range names {
					set.Members = append(set.Members, SetMember{Kind: kind, Name: name, Line: nodes[i].Line, Col: nodes[i].Column})
				}
			case "order":
				if v, ok := d.enum(q.v, fp, "parallel", "sequential"); ok {
					set.Sequential = v == "sequential"
				}
			}
		}
		out = append(out, set)
	}
	r := setResolver{d: d, s: s, sets: out, state: make([]int, len(out)), byName: map[string]int{}}
	for i := range out {
		r.byName[out[i].Name] = i
	}
	for i := range out {
		r.resolve(i)
	}
	return out
}

type setResolver struct {
	d      *decoder
	s      *Suite
	sets   []Set
	byName map[string]int
	state  []int // 0 new, 1 resolving, 2 done
	stack  []string
}

// resolve flattens set i into its Cases, depth first.
func (r *setResolver) resolve(i int) {
	if r.state[i] != 0 {
		return
	}
	r.state[i] = 1
	r.stack = append(r.stack, r.sets[i].Name)
	set := &r.sets[i]
	var cases []string
	seen := map[string]bool{}
	addCase := func(id string) {
		if !seen[id] {
			seen[id] = true
			cases = append(cases, id)
		}
	}
	where := "sets." + set.Name
	for _, m := range set.Members {
		switch m.Kind {
		case MemberCase:
			if r.s.Case(m.Name) == nil {
				r.d.add(SeverityError, m.Line, m.Col, fmt.Sprintf("%s.cases: unknown case %q", where, m.Name), refHint(m.Name, r.s.CaseIDs(), "case ids"))
				continue
			}
			addCase(m.Name)
		case MemberTag:
			ids := r.s.Tagged(m.Name)
			if len(ids) == 0 {
				r.d.add(SeverityError, m.Line, m.Col, fmt.Sprintf("%s.tags: no case has tag %q", where, m.Name), refHint(m.Name, r.s.Tags(), "tags in use"))
				continue
			}
			for _, id := range ids {
				addCase(id)
			}
		case MemberSet:
			j, ok := r.byName[m.Name]
			if !ok {
				names := make([]string, len(r.sets))
				for k := range r.sets {
					names[k] = r.sets[k].Name
				}
				r.d.add(SeverityError, m.Line, m.Col, fmt.Sprintf("%s.sets: unknown set %q", where, m.Name), refHint(m.Name, names, "sets"))
				continue
			}
			if j == i {
				r.d.add(SeverityError, m.Line, m.Col, fmt.Sprintf("%s.sets: set %q includes itself", where, m.Name), "remove the reference; list its cases directly")
				continue
			}
			if r.state[j] == 1 {
				cycle := append(r.cycleFrom(m.Name), m.Name)
				r.d.add(SeverityError, m.Line, m.Col, fmt.Sprintf("%s.sets: cycle between sets: %s", where, strings.Join(cycle, " → ")), "a set cannot include a set that includes it; break the cycle")
				continue
			}
			r.resolve(j)
			for _, id := range r.sets[j].Cases {
				addCase(id)
			}
		}
	}
	set.Cases = cases
	r.stack = r.stack[:len(r.stack)-1]
	r.state[i] = 2
}

// cycleFrom is the part of the resolution stack from name on.
func (r *setResolver) cycleFrom(name string) []string {
	for k, n := range r.stack {
		if n == name {
			return append([]string(nil), r.stack[k:]...)
		}
	}
	return []string{name}
}

func refHint(name string, known []string, what string) string {
	if c := closest(name, known); c != "" {
		return fmt.Sprintf("did you mean %q?", c)
	}
	if len(known) == 0 {
		return "there are none"
	}
	if len(known) > 10 {
		return fmt.Sprintf("%s: %s, … (%d in all)", what, strings.Join(known[:10], ", "), len(known))
	}
	return what + ": " + strings.Join(known, ", ")
}
