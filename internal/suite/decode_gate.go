package suite

// The gate section.

import (
	"go.yaml.in/yaml/v3"
	"slices"
)

func (d *decoder) gate(n *yaml.Node, g *Gate) {
	ps, ok := d.object(n, rootAt("gate"), "gate")
	if !ok {
		return
	}
	for p := range ps.all {
		fp := rootAt("gate").field(p.key)
		switch p.key {
		case "fail_on":
			items, ok := d.seq(p.v, fp, "write a list: [failed, blocked, cancelled, timeout]")
			if !ok {
				continue
			}
			g.FailOn = []string{}
			for i, it := range items {
				v, ok := d.enum(it, fp.item(i), GateFailed, GateBlocked, GateCancelled, GateTimeout)
				if !ok {
					continue
				}
				if slices.Contains(g.FailOn, v) {
					d.warnAt(it, "remove the repeat", "%s: %q is listed twice", fp.item(i).String(), v)
					continue
				}
				g.FailOn = append(g.FailOn, v)
			}
			if len(items) == 0 {
				d.warnAt(p.v, "list the statuses that fail the gate, usually [failed, blocked, cancelled, timeout]", "%s: empty: the gate passes whatever happens", fp.String())
			}
		case "on_empty":
			if v, ok := d.enum(p.v, fp, OnEmptyFail, OnEmptyPass); ok {
				g.OnEmpty = v
			}
		}
	}
}
