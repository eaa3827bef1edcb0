package gitlab

import (
	"fmt"
	"strings"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/gate"
	"github.com/zof-ai/zof-ci/internal/reporters/report"
	"github.com/zof-ai/zof-ci/internal/secret"
)

// maxShadowMissed bounds the missed failures the note lists (a note is
// limited in size: maxNote); the JSON result lists every one.
const maxShadowMissed = 20

// writeShadow is a shadow run's subset result in the note: what the subset
// would have concluded and the failures it would have missed, with why.
func writeShadow(b *strings.Builder, m *secret.Masker, sh *api.ShadowResult) {
	if sh == nil {
		return
	}
	fmt.Fprintf(b, "**Shadow run.** %s — the gate judged every case; this is what scope %s alone would have concluded.\n\n",
		cell(report.Line(m, gate.ShadowLine(sh))), cell(report.Line(m, sh.Scope)))
	if len(sh.Missed) == 0 {
		return
	}
	b.WriteString("| missed | status | not selected because |\n|---|---|---|\n")
	for i, x := range sh.Missed {
		if i == maxShadowMissed {
			fmt.Fprintf(b, "\nand %d more (the JSON result lists every one)\n", len(sh.Missed)-i)
			break
		}
		fmt.Fprintf(b, "| %s | %s | %s |\n", cell(report.Line(m, api.MemberID(x.Case, x.Variant))), x.Status.Display(), cell(report.Line(m, x.Why+": "+x.Detail)))
	}
	b.WriteString("\n")
}
