package runner

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/diff"
	"github.com/zof-ai/zof-ci/internal/gate"
	"github.com/zof-ai/zof-ci/internal/suite"
)

// TestPlanEvidenceBounded: a case's reasons are cut to PlanReasons unless
// all are asked for, and the counts always describe the whole list.
func TestPlanEvidenceBounded(t *testing.T) {
	reasons := func(files, patterns int) []api.Reason {
		var rs []api.Reason
		for f := range files {
			for p := range patterns {
				rs = append(rs, api.Reason{Kind: api.ReasonCovers, File: fmt.Sprintf("src/f%d.go", f), Pattern: fmt.Sprintf("src/**/p%d", p)})
			}
		}
		return rs
	}
	tests := []struct {
		name                    string
		reasons                 []api.Reason
		all                     bool
		shown, total, files, ps int
		more                    string // the text line under the case, "" for none
	}{
		{name: "always", reasons: []api.Reason{{Kind: api.ReasonAlways}}, shown: 1, total: 1},
		{name: "exactly the bound", reasons: reasons(5, 1), shown: 5, total: 5, files: 5, ps: 1},
		{name: "one over", reasons: reasons(3, 2), shown: 5, total: 6, files: 3, ps: 2, more: "… 1 more reason (3 files, 2 patterns in all; --all-reasons lists them)"},
		{name: "files × patterns", reasons: reasons(300, 2), shown: 5, total: 600, files: 300, ps: 2, more: "… 595 more reasons (300 files, 2 patterns in all;"},
		{name: "all asked for", reasons: reasons(300, 2), all: true, shown: 600, total: 600, files: 300, ps: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &gate.Plan{
				Suite:     &suite.Suite{Cases: []suite.Case{{ID: "a"}}},
				Selection: api.Selection{Scope: "changed", Effective: "changed", Cases: []api.SelectedCase{{ID: "a", Reasons: tt.reasons}}},
				Request:   &api.RunRequest{Cases: []api.Case{{ID: "a", Name: "A"}}},
			}
			var js bytes.Buffer
			if err := WritePlanJSON(&js, p, PlanOutput{AllReasons: tt.all}); err != nil {
				t.Fatal(err)
			}
			var got PlanJSON
			if err := json.Unmarshal(js.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			c := got.Cases[0]
			if got.Schema != "zof.plan/v2" || len(c.Reasons) != tt.shown || c.ReasonsTotal != tt.total || c.Files != tt.files || c.Patterns != tt.ps {
				t.Errorf("schema %s, %d reasons shown, total %d, files %d, patterns %d; want %d, %d, %d, %d",
					got.Schema, len(c.Reasons), c.ReasonsTotal, c.Files, c.Patterns, tt.shown, tt.total, tt.files, tt.ps)
			}
			var text strings.Builder
			if err := WritePlanText(&text, p, PlanOutput{AllReasons: tt.all}); err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(text.String(), " matches "); n != min(tt.shown, len(tt.reasons)) && tt.reasons[0].Kind == api.ReasonCovers {
				t.Errorf("text shows %d reasons, want %d:\n%s", n, tt.shown, text.String())
			}
			if has := strings.Contains(text.String(), "more reason"); has != (tt.more != "") || tt.more != "" && !strings.Contains(text.String(), tt.more) {
				t.Errorf("text does not say %q:\n%s", tt.more, text.String())
			}
		})
	}
}

// bigPlanInput is the worst case for plan evidence: 2,000 cases over
// 200 services with broad covers (a service tree, its web tree, **/*.proto)
// and 10,000 changed files, so most selected cases match hundreds of files.
func bigPlanInput() (*suite.Suite, *diff.Result) {
	s := &suite.Suite{
		File: "zof.yaml", Project: "big",
		Defaults:  suite.Defaults{Timeout: time.Minute},
		Selection: suite.Selection{Unmapped: "none", MaxChangedFiles: 20000, OnUnknownDiff: "all"},
		Gate:      suite.Gate{OnEmpty: "fail"},
	}
	for svc := range 200 {
		for k := range 10 {
			s.Cases = append(s.Cases, suite.Case{
				ID: fmt.Sprintf("svc%03d-case%d", svc, k), Name: fmt.Sprintf("Service %d case %d", svc, k),
				Covers: []string{fmt.Sprintf("services/svc%03d/**", svc), fmt.Sprintf("web/svc%03d/**/*.ts", svc), "**/*.proto"},
			})
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	d := &diff.Result{Source: "override", Complete: true}
	seen := map[string]bool{}
	for len(d.Files) < 10000 {
		svc := r.IntN(200)
		var p string
		switch n := r.IntN(100); {
		case n < 70:
			p = fmt.Sprintf("services/svc%03d/comp%d/pkg%d/file%d.go", svc, r.IntN(10), r.IntN(8), r.IntN(50))
		case n < 90:
			p = fmt.Sprintf("web/svc%03d/src/c%d/view%d.ts", svc, r.IntN(10), r.IntN(50))
		case n < 91:
			p = fmt.Sprintf("proto/svc%03d/service%d.proto", svc, r.IntN(50))
		default:
			p = fmt.Sprintf("tools/script%d.sh", r.IntN(1000))
		}
		if !seen[p] {
			seen[p] = true
			d.Files = append(d.Files, diff.Change{Path: p})
		}
	}
	return s, d
}

// BenchmarkPlan10k: the selection alone, then the selection plus the JSON
// of `zof plan --output json` (bytes written reported as json-bytes/op).
func BenchmarkPlan10k(b *testing.B) {
	s, d := bigPlanInput()
	b.Run("select", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := gate.PlanSuite(s, "changed", "", d, "zof.yaml"); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, o := range []struct {
		name string
		out  PlanOutput
	}{{"select+json", PlanOutput{}}, {"select+json-all-reasons", PlanOutput{AllReasons: true}}} {
		b.Run(o.name, func(b *testing.B) {
			b.ReportAllocs()
			var out bytes.Buffer
			for b.Loop() {
				p, err := gate.PlanSuite(s, "changed", "", d, "zof.yaml")
				if err != nil {
					b.Fatal(err)
				}
				out.Reset()
				if err := WritePlanJSON(&out, p, o.out); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(out.Len()), "json-bytes/op")
		})
	}
}
