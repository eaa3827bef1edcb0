package step

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/secret"
)

// BenchmarkFailedStepEvidence is one failing http step (expect 201, get 500)
// whose response body is n bytes: the evidence (request, response, masked,
// the body cut at MaxEvidenceBody) is built on this path only. Its cost
// grows with the body up to the cap, then stays.
func BenchmarkFailedStepEvidence(b *testing.B) {
	for _, n := range []int{1 << 10, 64 << 10, 256 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("body=%dKiB", n>>10), func(b *testing.B) {
			body := strings.Repeat("x", n)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(http.StatusInternalServerError)
				_, _ = io.WriteString(w, body)
			}))
			defer srv.Close()
			ex := NewExecutor(ExecutorOptions{})
			defer ex.Close()
			st := api.Step{HTTP: &api.HTTPRequest{Method: "GET", Path: "/"}, Expect: &api.Expect{Status: []string{"201"}}}
			in := Input{BaseURL: srv.URL, Mask: secret.NewMasker([]string{"s3cret-token"})}
			b.ReportAllocs()
			for b.Loop() {
				if out := ex.Run(context.Background(), st, in); len(out.Evidence) != 2 {
					b.Fatalf("evidence: %d pieces", len(out.Evidence))
				}
			}
		})
	}
}
