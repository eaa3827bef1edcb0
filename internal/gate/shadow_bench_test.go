package gate

import (
	"fmt"
	"testing"

	"github.com/zof-ai/zof-ci/api"
)

// BenchmarkShadowOf computes a shadow run's result for a run of N members
// (one per case) whose subset is a third of the cases (docs/benchmarks.md).
func BenchmarkShadowOf(b *testing.B) {
	for _, n := range []int{1_000, 10_000} {
		sp := &api.ShadowPlan{Scope: "changed"}
		r := &api.Run{Status: api.StatusFailed, Selection: api.Selection{Shadow: sp}}
		for i := range n {
			id := fmt.Sprintf("c%d", i)
			if i%3 == 0 {
				sp.Selected = append(sp.Selected, id)
			} else {
				sp.Left = append(sp.Left, api.ShadowLeft{Case: id, Why: api.ShadowWhyNoEdge})
			}
			st := api.StatusPassed
			if i%10 == 0 {
				st = api.StatusFailed
			}
			r.Members = append(r.Members, api.Member{ID: id, Case: id, Status: st})
		}
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ShadowOf(r, AllOutcomes)
			}
		})
	}
}
