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

// writeEvidence links the evidence of each failed step (request, response,
// output) when a server ran the run: the download URLs under its public URL.
func writeEvidence(b *strings.Builder, m *secret.Masker, res *report.Result) {
	ev := report.Evidence(res.Run, res.Artifacts)
	if len(ev) == 0 {
		return
	}
	b.WriteString("Evidence of failed steps:\n\n")
	for i, e := range ev {
		if i == maxEvidenceMembers {
			fmt.Fprintf(b, "\nand %d more (the run lists every artifact)\n", len(ev)-i)
			break
		}
		var links []string
		for _, l := range e.Links {
			if u := report.Line(m, l.URL); strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://") {
				links = append(links, fmt.Sprintf("[%s](%s)", cell(l.Label), strings.NewReplacer(" ", "%20", "(", "%28", ")", "%29").Replace(u)))
			}
		}
		if len(links) > 0 {
			fmt.Fprintf(b, "- %s: %s\n", cell(report.Line(m, report.DisplayName(e.Member))), strings.Join(links, " · "))
		}
	}
	b.WriteString("\n")
}
