package step

import (
	"encoding/json"
	"fmt"

	"github.com/zof-ai/zof-ci/internal/jsonpath"
)

// parseJSONPath parses an assertion's or capture's path with the one grammar
// the suite also validates with (internal/jsonpath), so a path that loads is
// a path that runs.
func parseJSONPath(p string) (jsonpath.Path, error) { return jsonpath.Parse(p) }

func kindOf(v any) string { return jsonpath.KindOf(v) }

// stringForm is how a JSON value reads in messages, captures and matches:
// strings as themselves, everything else as compact JSON.
func stringForm(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
