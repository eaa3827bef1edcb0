package gitlab

import (
	"fmt"
	"strings"

	"github.com/zof-ai/zof-ci/internal/reporters/report"
	"github.com/zof-ai/zof-ci/internal/secret"
)

// maxEvidenceMembers bounds the members whose evidence the note links; the
// run's artifact list (GET /v1/runs/{id}/artifacts) has every one.
const maxEvidenceMembers = 50

// urlEscaper keeps a link's URL in one Markdown link target.
var urlEscaper = strings.NewReplacer(" ", "%20", "(", "%28", ")", "%29")

// writeEvidence links the evidence of each failed step (request, response,
// output) when a server ran the run: the download URLs under its public URL.
func writeEvidence(b *strings.Builder, m *secret.Masker, res *report.Result) {
	report.WriteEvidence(b, m, res, report.EvidenceList{
		Heading:    "Evidence of failed steps:\n\n",
		MaxMembers: maxEvidenceMembers,
		Escape:     cell,
		Link: func(label, u string) string {
			if !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
				return ""
			}
			return fmt.Sprintf("[%s](%s)", label, urlEscaper.Replace(u))
		},
	})
}
