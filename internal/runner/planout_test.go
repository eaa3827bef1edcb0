package runner

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/internal/diff"
	"github.com/zof-ai/zof-ci/internal/suite"
)

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
			if _, err := PlanSuite(s, "changed", "", d, "zof.yaml"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("select+json", func(b *testing.B) {
		b.ReportAllocs()
		var out bytes.Buffer
		for b.Loop() {
			p, err := PlanSuite(s, "changed", "", d, "zof.yaml")
			if err != nil {
				b.Fatal(err)
			}
			out.Reset()
			if err := WritePlanJSON(&out, p); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(out.Len()), "json-bytes/op")
	})
}
