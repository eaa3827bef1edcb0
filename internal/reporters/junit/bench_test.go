package junit_test

import (
	"io"
	"testing"

	"github.com/zof-ai/zof-ci/internal/reporters/junit"
	"github.com/zof-ai/zof-ci/internal/reporters/reporttest"
	"github.com/zof-ai/zof-ci/internal/secret"
)

// BenchmarkBuildWrite500 builds and encodes the JUnit XML of a 500-member run, masking one secret.
func BenchmarkBuildWrite500(b *testing.B) {
	res := reporttest.Large(b, 500)
	mask := secret.NewMasker([]string{"hunter2"})
	b.ReportAllocs()
	for b.Loop() {
		if err := junit.Write(io.Discard, junit.Build(res, mask, reporttest.Now())); err != nil {
			b.Fatal(err)
		}
	}
}
