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

// BenchmarkHTTPStepBody is one passing http step (GET, expect 200, a run
// with one secret) whose response body is n bytes, sent with its length
// (Content-Length) or chunked (length unknown): the executor's own cost per
// request, B/op and allocs/op including the loopback server's side. Its
// cost grows with the body it must read; the log keeps 2 KiB of it.
func BenchmarkHTTPStepBody(b *testing.B) {
	for _, n := range []int{11, 4 << 10, 64 << 10, 1 << 20} {
		for _, chunked := range []bool{false, true} {
			how := "length"
			if chunked {
				how = "chunked"
			}
			b.Run(fmt.Sprintf("body=%d/%s", n, how), func(b *testing.B) {
				body := strings.Repeat("x", n)
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
					if !chunked {
						w.Header().Set("Content-Length", fmt.Sprint(n))
					}
					_, _ = io.WriteString(w, body)
					if chunked {
						w.(http.Flusher).Flush()
					}
				}))
				defer srv.Close()
				ex := NewExecutor(ExecutorOptions{})
				defer ex.Close()
				st := api.Step{Name: "get", HTTP: &api.HTTPRequest{Method: "GET", Path: "/"}, Expect: &api.Expect{Status: []string{"200"}}}
				in := Input{BaseURL: srv.URL, Mask: secret.NewMasker([]string{"s3cret-token"})}
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for b.Loop() {
					if out := ex.Run(context.Background(), st, in); out.Status != api.StepPassed {
						b.Fatal(out.Failure, out.Output)
					}
				}
			})
		}
	}
}
