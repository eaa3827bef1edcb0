package coverage_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/zof-ai/zof-ci/internal/coverage"
	"github.com/zof-ai/zof-ci/internal/coverage/coveragetest"
)

// BenchmarkTrackedFiles is the git half of zof coverage: rev-parse and
// ls-files -z over a repository of N tracked files (docs/benchmarks.md).
func BenchmarkTrackedFiles(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		dir := b.TempDir()
		coveragetest.FakeRepo(b, dir, n)
		b.Run(fmt.Sprintf("files=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				files, err := coverage.TrackedFiles(context.Background(), dir, nil)
				if err != nil || len(files) != n {
					b.Fatalf("%d files, %v", len(files), err)
				}
			}
		})
	}
}
