package github

import (
	"strings"
	"testing"

	"github.com/zof-ai/zof-ci/internal/reporters/reporttest"
)

// TestSummaryLinksEvidence: a run on a server links each failed step's
// artifacts under its URL; an embedded run (files only, no URL) adds no
// section, and neither does a run without artifacts.
func TestSummaryLinksEvidence(t *testing.T) {
	md := Markdown(reporttest.WithArtifacts(reporttest.Failures(t), "", true), MarkdownOptions{Now: reporttest.Now, BlobBase: blob})
	golden(t, "summary/artifacts.md", md)
	for _, want := range []string{
		"#### Evidence of failed steps\n",
		"- checkout \\[eur\\]: [step 2 request](" + reporttest.ServerURL + "/v1/runs/r-0001/artifacts/2-checkout_eur-a1-s2-request.txt) · [step 2 response](",
		"- contract-tests: [step 1 output](" + reporttest.ServerURL + "/v1/runs/r-0001/artifacts/4-contract-tests-a1-s1-output.txt)\n",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("summary lacks %q:\n%s", want, md)
		}
	}
	if md := Markdown(reporttest.WithArtifacts(reporttest.Failures(t), "zof-artifacts", false), MarkdownOptions{Now: reporttest.Now}); strings.Contains(md, "Evidence") {
		t.Errorf("an embedded run's summary links evidence it cannot reach:\n%s", md)
	}
}
