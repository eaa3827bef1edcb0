package engine_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/step"
)

// TestFailedStepEvidenceIsKept: the evidence of a failed step becomes the
// run's artifacts (one per piece, named by member, attempt and step, masked
// with the run's secrets even if the step runner did not); a passing or
// retried-then-passing step's attempt keeps only what failed; another
// tenant cannot see them.
func TestFailedStepEvidenceIsKept(t *testing.T) {
	const secret = "hunter2-secret-value"
	h := newHarness(t, func(_ context.Context, c call) step.Output {
		if c.Step == "check" && c.N == 0 {
			return step.Output{Status: api.StepFailed, Failure: &api.Failure{Message: "status: expected 200, got 500"},
				Evidence: []engine.Evidence{
					{Kind: api.ArtifactRequest, Content: []byte("GET /x HTTP/1.1\nX-Key: " + secret + "\n")},
					{Kind: api.ArtifactResponse, ContentType: "text/plain; charset=utf-8", Content: []byte("HTTP/1.1 500 Internal Server Error\n\nboom"), Truncated: true},
				}}
		}
		if c.Step == "passes" {
			// Evidence of a passing step is ignored.
			return step.Output{Status: api.StepPassed, Evidence: []engine.Evidence{{Kind: api.ArtifactOutput, Content: []byte("x")}}}
		}
		return step.Output{Status: api.StepPassed}
	}, nil)
	c := tcase("pay", "passes", "check")
	c.Retries = 1
	req := runReq("u1", c, tcase("other", "passes"))
	req.Secrets = []string{secret}
	run := h.create("t1", req)
	final := h.wait("t1", run.ID)
	if m := final.Member("pay"); m.Status != api.StatusPassed || !m.Flaky {
		t.Fatalf("member pay: %s flaky=%v, want passed on retry", m.Status, m.Flaky)
	}
	ctx := context.Background()
	list, err := h.e.Artifacts(ctx, "t1", run.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := []api.Artifact{
		{Name: "1-pay-a1-s2-request.txt", Member: "pay", Step: 2, Attempt: 1, Kind: api.ArtifactRequest, Size: int64(len("GET /x HTTP/1.1\nX-Key: ***\n")), ContentType: "text/plain; charset=utf-8"},
		{Name: "1-pay-a1-s2-response.txt", Member: "pay", Step: 2, Attempt: 1, Kind: api.ArtifactResponse, Size: int64(len("HTTP/1.1 500 Internal Server Error\n\nboom")), ContentType: "text/plain; charset=utf-8", Truncated: true},
	}
	if len(list) != len(want) {
		t.Fatalf("artifacts = %+v, want %+v", list, want)
	}
	for i := range want {
		if list[i] != want[i] {
			t.Errorf("artifact %d = %+v, want %+v", i, list[i], want[i])
		}
	}
	a, err := h.e.Artifact(ctx, "t1", run.ID, want[0].Name)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(a.Content), secret) || !strings.Contains(string(a.Content), "X-Key: ***") {
		t.Fatalf("the request artifact is not masked: %q", a.Content)
	}
	if _, err := h.e.Artifacts(ctx, "t2", run.ID); !errors.As(err, new(*engine.NotFoundError)) {
		t.Fatalf("another tenant's list: %v, want NotFoundError", err)
	}
	if _, err := h.e.Artifact(ctx, "t2", run.ID, want[0].Name); !errors.As(err, new(*engine.NotFoundError)) {
		t.Fatalf("another tenant's download: %v, want NotFoundError", err)
	}
	if _, err := h.e.Artifact(ctx, "t1", run.ID, "nope.txt"); !errors.As(err, new(*engine.ArtifactNotFoundError)) {
		t.Fatalf("an unknown name: %v, want ArtifactNotFoundError", err)
	}
}

func TestCapArtifacts(t *testing.T) {
	art := func(n int) engine.Artifact {
		return engine.Artifact{Content: []byte(strings.Repeat("x", n))}
	}
	tests := []struct {
		name      string
		used      int64
		sizes     []int
		wantSizes []int64
		wantCut   []bool
	}{
		{"within the cap", 0, []int{10, 20}, []int64{10, 20}, []bool{false, false}},
		{"the one over keeps what fits", engine.MaxRunArtifactBytes - 15, []int{10, 20, 5}, []int64{10, int64(5 + len(engine.ArtifactCapMarker)), int64(len(engine.ArtifactCapMarker))}, []bool{false, true, true}},
		{"already full", engine.MaxRunArtifactBytes, []int{1}, []int64{int64(len(engine.ArtifactCapMarker))}, []bool{true}},
		{"over full (a cap lowered since)", engine.MaxRunArtifactBytes + 100, []int{0}, []int64{0}, []bool{false}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var in []engine.Artifact
			for _, n := range tc.sizes {
				in = append(in, art(n))
			}
			out := engine.CapArtifacts(tc.used, in)
			for i, a := range out {
				if a.Size != tc.wantSizes[i] || int64(len(a.Content)) != a.Size || a.Truncated != tc.wantCut[i] {
					t.Errorf("artifact %d: size %d (content %d) truncated %v; want %d, %v", i, a.Size, len(a.Content), a.Truncated, tc.wantSizes[i], tc.wantCut[i])
				}
			}
			for i := range in {
				if len(in[i].Content) != tc.sizes[i] {
					t.Errorf("CapArtifacts changed its input %d", i)
				}
			}
		})
	}
	if !strings.Contains(engine.ArtifactCapMarker, "8 MiB") || engine.MaxRunArtifactBytes != 8<<20 {
		t.Errorf("the cap marker must state the cap (%d bytes): %q", engine.MaxRunArtifactBytes, engine.ArtifactCapMarker)
	}
}
