package config

import (
	"fmt"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ShadowOption is a trigger's `shadow:` (docs/triggers.md, "Shadow runs"):
// off, `true` (every run a shadow run), or `sample:N` (one in N pull
// requests or branches, as zof run --shadow=sample:N decides).
type ShadowOption struct {
	On bool
	// Sample is N of sample:N; 0 with `true`.
	Sample int
}

// UnmarshalYAML reads true, false or "sample:N".
func (o *ShadowOption) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: shadow: use true, false or sample:N", n.Line)
	}
	if v, ok := strings.CutPrefix(n.Value, "sample:"); ok {
		k, err := strconv.Atoi(v)
		if err != nil || k < 1 {
			return fmt.Errorf("line %d: shadow: sample:N needs a whole number N ≥ 1 (a shadow run on one in N pull requests), got %q", n.Line, v)
		}
		o.On, o.Sample = true, k
		return nil
	}
	b, err := strconv.ParseBool(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: shadow: use true, false or sample:N, not %q", n.Line, n.Value)
	}
	o.On, o.Sample = b, 0
	return nil
}

// String is the option as written.
func (o ShadowOption) String() string {
	switch {
	case !o.On:
		return "false"
	case o.Sample > 0:
		return fmt.Sprintf("sample:%d", o.Sample)
	}
	return "true"
}

// ShadowScopes are the scopes a shadow run measures (gate.ShadowScopes).
var shadowScopes = []string{"changed", "smoke"}

// checkShadow refuses shadow with a scope that selects no subset by rules.
func checkShadow(o ShadowOption, scope string) error {
	if !o.On || scope == shadowScopes[0] || scope == shadowScopes[1] {
		return nil
	}
	return fmt.Errorf("shadow applies to scope changed or smoke, not %q: a shadow run measures the subset those scopes select against a run of every case", scope)
}
