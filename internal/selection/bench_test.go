package selection

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/zof-ai/zof-ci/internal/diff"
)

// benchSuite is 2,000 cases over 200 services, 5 patterns each: tree
// patterns, single-directory globs, suffix globs under a prefix, an exclusion,
// and for some cases a pattern with no literal prefix (**/*.proto, **/*.sql).
func benchSuite() Suite {
	s := Suite{Rules: Rules{
		Global:          []string{"go.mod", "go.sum", ".github/workflows/**"},
		Ignore:          []string{"docs/**", "**/*.md"},
		Unmapped:        ModeNone,
		MaxChangedFiles: 20000,
	}}
	for svc := range 200 {
		for k := range 10 {
			covers := []string{
				fmt.Sprintf("services/svc%03d/comp%d/**", svc, k),
				fmt.Sprintf("services/svc%03d/shared/*.go", svc),
				fmt.Sprintf("web/svc%03d/**/*.ts", svc),
				fmt.Sprintf("!services/svc%03d/comp%d/testdata/**", svc, k),
			}
			switch k {
			case 0:
				covers = append(covers, "**/*.proto")
			case 1:
				covers = append(covers, fmt.Sprintf("libs/lib%02d/**", svc%20))
			case 2:
				covers = append(covers, "**/*.sql")
			case 3:
				covers = append(covers, fmt.Sprintf("api/svc%03d/{v1,v2}/**", svc))
			default:
				covers = append(covers, fmt.Sprintf("services/svc%03d/comp%d/*_test.go", svc, k))
			}
			tags := []string{fmt.Sprintf("svc%03d", svc)}
			if k == 0 {
				tags = append(tags, "smoke")
			}
			s.Cases = append(s.Cases, Case{ID: fmt.Sprintf("svc%03d-case%d", svc, k), Tags: tags, Covers: covers, Always: svc == 0 && k == 9})
		}
	}
	return s
}

// benchDiff is 10,000 changed paths, mostly under services/, some under
// web/, libs/, api/, some .sql/.proto anywhere, some ignored or unmapped.
func benchDiff() *diff.Result {
	r := rand.New(rand.NewPCG(1, 2))
	d := &diff.Result{Source: "git", Complete: true}
	seen := map[string]bool{}
	for len(d.Files) < 10000 {
		svc := r.IntN(200)
		var p string
		switch n := r.IntN(100); {
		case n < 60:
			p = fmt.Sprintf("services/svc%03d/comp%d/pkg%d/file%d.go", svc, r.IntN(12), r.IntN(8), r.IntN(50))
		case n < 65:
			p = fmt.Sprintf("services/svc%03d/comp%d/testdata/case%d.json", svc, r.IntN(10), r.IntN(50))
		case n < 70:
			p = fmt.Sprintf("services/svc%03d/shared/util%d.go", svc, r.IntN(50))
		case n < 80:
			p = fmt.Sprintf("web/svc%03d/src/components/c%d/view%d.ts", svc, r.IntN(10), r.IntN(50))
		case n < 85:
			p = fmt.Sprintf("libs/lib%02d/pkg%d/lib%d.go", r.IntN(25), r.IntN(5), r.IntN(50))
		case n < 90:
			p = fmt.Sprintf("api/svc%03d/v%d/schema%d.json", svc, 1+r.IntN(3), r.IntN(50))
		case n < 93:
			p = fmt.Sprintf("db/migrations/svc%03d/m%d.sql", svc, r.IntN(100))
		case n < 95:
			p = fmt.Sprintf("proto/svc%03d/service%d.proto", svc, r.IntN(50))
		case n < 97:
			p = fmt.Sprintf("docs/svc%03d/page%d.md", svc, r.IntN(100))
		default:
			p = fmt.Sprintf("tools/script%d.sh", r.IntN(1000))
		}
		if seen[p] {
			continue
		}
		seen[p] = true
		st := diff.Modified
		if n := r.IntN(10); n == 0 {
			st = diff.Deleted
		} else if n == 1 {
			st = diff.Added
		}
		d.Files = append(d.Files, diff.Change{Status: st, Path: p})
	}
	return d
}

func BenchmarkSelect10kFiles2kCases(b *testing.B) {
	sel, err := New(benchSuite())
	if err != nil {
		b.Fatal(err)
	}
	d := benchDiff()
	got, err := sel.Select(ScopeChanged, d)
	if err != nil {
		b.Fatal(err)
	}
	if len(got.Cases) < 1000 || len(got.Unmapped) == 0 || len(got.Ignored) == 0 || got.Effective != ScopeChanged {
		b.Fatalf("benchmark data does not exercise selection: %d cases, %d unmapped, %d ignored, effective %s",
			len(got.Cases), len(got.Unmapped), len(got.Ignored), got.Effective)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := sel.Select(ScopeChanged, d); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNew2kCases(b *testing.B) {
	s := benchSuite()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := New(s); err != nil {
			b.Fatal(err)
		}
	}
}
