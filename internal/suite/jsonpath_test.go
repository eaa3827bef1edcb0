package suite_test

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/zof-ai/zof-ci/internal/jsonpath"
	"github.com/zof-ai/zof-ci/internal/suite"
)

// TestJSONPathAgreesWithStep: a path in expect.json or capture loads exactly
// when the http step's parser (internal/jsonpath) accepts it, with its reason
// as the hint. `$.items[-1]` used to be rejected here while the step
// documented and evaluated it.
func TestJSONPathAgreesWithStep(t *testing.T) {
	for _, p := range []string{"$", "$.token", "$.items[-1]", "$.items[-1].id", "$['odd key'][0]", `$['it\'s']`, "$.é",
		"token", "$..a", "$.*", "$[*]", "$[+1]", "$[1:2]", "$.a b", "$['a]"} {
		_, perr := jsonpath.Parse(p)
		for _, where := range []string{"json", "capture"} {
			step := fmt.Sprintf("      - http: {path: /}\n        expect: {json: {%s: {exists: true}}}\n", strconv.Quote(p))
			if where == "capture" {
				step = fmt.Sprintf("      - http: {path: /}\n        capture: {v: %s}\n", strconv.Quote(p))
			}
			src := head + "cases:\n  - id: a\n    steps:\n" + step
			s, err := suite.Parse("zof.yaml", strings.NewReader(src), suite.Options{Lookup: lookup(nil)})
			switch {
			case perr == nil && err != nil:
				t.Errorf("%s %q: the step accepts it, the suite says %v", where, p, err)
			case perr != nil && err == nil:
				t.Errorf("%s %q: the step rejects it (%v), the suite loads it", where, p, perr)
			case perr != nil:
				var se *jsonpath.SyntaxError
				errors.As(perr, &se)
				if !strings.Contains(err.Error(), "invalid JSONPath "+strconv.Quote(p)+" — "+se.Reason) {
					t.Errorf("%s %q: problem %q does not carry the parser's reason %q", where, p, err, se.Reason)
				}
			default:
				st := s.Cases[0].Steps[0]
				got := ""
				if where == "json" {
					got = st.Expect.JSON[0].Path
				} else {
					got = st.Capture["v"]
				}
				if got != p {
					t.Errorf("%s %q loaded as %q", where, p, got)
				}
			}
		}
	}
}
