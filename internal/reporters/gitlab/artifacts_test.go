package gitlab

import (
	"strings"
	"testing"

	"github.com/zof-ai/zof-ci/internal/reporters/reporttest"
)

// TestNoteLinksEvidence: the merge request note of a run on a server links
// each failed step's artifacts; without URLs it has no such section.
func TestNoteLinksEvidence(t *testing.T) {
	body := noteBody(reporttest.WithArtifacts(reporttest.Failures(t), "", true), nil, reporttest.Now, "")
	for _, want := range []string{
		"Evidence of failed steps:\n\n",
		"- checkout \\[eur\\]: [step 2 request](" + reporttest.ServerURL + "/v1/runs/r-0001/artifacts/2-checkout_eur-a1-s2-request.txt) · [step 2 response](" + reporttest.ServerURL + "/v1/runs/r-0001/artifacts/2-checkout_eur-a1-s2-response.txt)\n",
		"- contract-tests: [step 1 output](",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("note lacks %q:\n%s", want, body)
		}
	}
	if body := noteBody(reporttest.Failures(t), nil, reporttest.Now, ""); strings.Contains(body, "Evidence") {
		t.Errorf("a note without artifacts has an evidence section:\n%s", body)
	}
}
