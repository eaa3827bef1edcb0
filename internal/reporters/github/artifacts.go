package github

import (
	"fmt"
	"strings"

	"github.com/zof-ai/zof-ci/internal/reporters/report"
	"github.com/zof-ai/zof-ci/internal/secret"
)

// maxEvidenceMembers bounds the members whose evidence the summary links;
// the run's artifact list (GET /v1/runs/{id}/artifacts) has every one.
const maxEvidenceMembers = 50

// writeEvidence links the evidence of each failed step (request, response,
// output) when a server ran the run: the download URLs under its public URL.
func writeEvidence(b *strings.Builder, m *secret.Masker, res *report.Result) {
	report.WriteEvidence(b, m, res, report.EvidenceList{
		Heading:    "#### Evidence of failed steps\n\n",
		MaxMembers: maxEvidenceMembers,
		Escape:     cell,
		Link: func(label, u string) string {
			if !isHTTP(u) {
				return ""
			}
			return fmt.Sprintf("[%s](%s)", label, u)
		},
	})
}
