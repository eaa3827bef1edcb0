package suite_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/suite"
)

func TestQuarantine(t *testing.T) {
	src := func(q string) string {
		return "version: 1\ncases:\n  - id: a\n    steps: [{run: x}]\n    quarantine: " + q + "\n"
	}
	tests := []struct {
		name, q string
		want    *api.Quarantine
		problem string
	}{
		{"date", `{owner: team-cart, reason: "flaky since #12", until: 2026-07-01}`,
			&api.Quarantine{Owner: "team-cart", Reason: "flaky since #12", Until: time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)}, ""},
		{"rfc3339, converted to UTC", `{owner: o, reason: r, until: "2026-07-01T12:00:00+02:00"}`,
			&api.Quarantine{Owner: "o", Reason: "r", Until: time.Date(2026, 7, 1, 10, 0, 0, 0, time.UTC)}, ""},
		{"no expiry", `{owner: o, reason: r}`, &api.Quarantine{Owner: "o", Reason: "r"}, ""},
		{"owner missing", `{reason: r}`, nil, "owner"},
		{"bad date", `{owner: o, reason: r, until: next week}`, nil, `"next week" is not a date`},
		{"unknown field", `{owner: o, reason: r, expires: 2026-07-01}`, nil, `unknown field "expires" in a quarantine`},
		{"true is not enough", `true`, nil, "quarantine"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := suite.Parse("zof.yaml", strings.NewReader(src(tt.q)), suite.Options{})
			if tt.problem != "" {
				if err == nil || !strings.Contains(err.Error(), tt.problem) {
					t.Fatalf("err = %v, want a problem naming %q", err, tt.problem)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, s.Cases[0].Quarantine); d != "" {
				t.Fatalf("(-want +got):\n%s", d)
			}
			req, err := s.Request("", []string{"a"})
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, req.Cases[0].Quarantine); d != "" {
				t.Fatalf("request (-want +got):\n%s", d)
			}
			// The member is quarantined while the quarantine holds, not after.
			if tt.want.Until.IsZero() {
				return
			}
			if m := api.NewRun("r", req, tt.want.Until.Add(-time.Hour)).Members[0]; !m.Quarantined {
				t.Errorf("member before until is not quarantined")
			}
			if m := api.NewRun("r", req, tt.want.Until).Members[0]; m.Quarantined {
				t.Errorf("member at until is still quarantined")
			}
		})
	}
}
