package suite_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/zof-ai/zof-ci/internal/suite"
)

// TestSelectionModules: selection.modules keeps the file's order, each
// pattern's position, and reports a bad entry at its line.
func TestSelectionModules(t *testing.T) {
	src := head + "selection:\n  modules:\n    cart: [\"services/cart/**\", \"!services/cart/legacy/**\"]\n    web-ui: [\"web/**\"]\ncases: []\n"
	s, err := suite.Parse("zof.yaml", strings.NewReader(src), suite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []suite.Module{
		{Name: "cart", Line: 4, Col: 5, Patterns: []suite.Pattern{{Value: "services/cart/**", Line: 4, Col: 12}, {Value: "!services/cart/legacy/**", Line: 4, Col: 32}}},
		{Name: "web-ui", Line: 5, Col: 5, Patterns: []suite.Pattern{{Value: "web/**", Line: 5, Col: 14}}},
	}
	if d := cmp.Diff(want, s.Selection.Modules); d != "" {
		t.Errorf("modules (-want +got):\n%s", d)
	}

	tests := []struct{ name, modules, want string }{
		{"not a mapping", "modules: [a]", `zof.yaml:3:12: selection.modules: expected a mapping of module names to path patterns, e.g. cart: ["services/cart/**"], got a list`},
		{"bad name", `modules: {"Cart UI": [a/**]}`, `zof.yaml:3:13: selection.modules: invalid module name "Cart UI" — use lowercase letters, digits, '.', '_' and '-', starting with a letter or digit, e.g. "cart-ui"`},
		{"empty list", "modules: {cart: []}", `zof.yaml:3:19: selection.modules.cart: a module needs at least one pattern — list the module's files: ["services/cart/**"]`},
		{"bad pattern", `modules: {cart: ["../x"]}`, `zof.yaml:3:20: selection.modules.cart[0]: invalid path pattern "../x": ".." segment; a pattern cannot leave the repository, write the path from the repository root`},
		{"not a list", "modules: {cart: services/cart}", `zof.yaml:3:19: selection.modules.cart: expected a list, got a string ("services/cart") — write a list of patterns: ["src/**", "go.mod"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := problems(t, head+"selection:\n  "+tt.modules+"\ncases: []\n", suite.Options{})
			if d := cmp.Diff([]string{tt.want}, got); d != "" {
				t.Errorf("problems (-want +got):\n%s", d)
			}
		})
	}
}
