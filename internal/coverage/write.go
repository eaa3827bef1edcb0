package coverage

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
)

// MaxTextUncovered is how many uncovered files the text output lists; the
// JSON report lists every one (docs/coverage.md).
const MaxTextUncovered = 100

// WriteJSON writes the report as indented JSON (version 1, docs/coverage.md).
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the totals, a table by module and the uncovered files
// (the first MaxTextUncovered), in plain stable lines.
func WriteText(w io.Writer, r *Report) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "%d files: %d covered, %d global, %d ignored, %d uncovered; %.1f%% of the files that select covered by a case\n\n",
		r.Files, r.Covered, r.Global, r.Ignored, r.Counts.Uncovered, r.CoveredPercent)
	// Numbers align right; names are padded to one width so they align left.
	width := len("MODULE")
	for _, m := range r.Modules {
		width = max(width, len(m.Name))
	}
	tw := tabwriter.NewWriter(bw, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-*s\tFILES\tCOVERED\tGLOBAL\tIGNORED\tUNCOVERED\tCOVERED %%\t\n", width, "MODULE")
	for _, m := range r.Modules {
		fmt.Fprintf(tw, "%-*s\t%d\t%d\t%d\t%d\t%d\t%.1f\t\n", width, m.Name, m.Files, m.Covered, m.Global, m.Ignored, m.Uncovered, m.CoveredPercent)
	}
	fmt.Fprintf(tw, "%-*s\t%d\t%d\t%d\t%d\t%d\t%.1f\t\n", width, "total", r.Files, r.Covered, r.Global, r.Ignored, r.Counts.Uncovered, r.CoveredPercent)
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Uncovered) == 0 {
		fmt.Fprintln(bw, "\nno uncovered files: every file a change can touch selects cases or is global or ignored")
		return bw.Flush()
	}
	fmt.Fprintf(bw, "\nuncovered (%d): a change to these falls back to selection.unmapped; add them to a case's covers, or to selection.ignore\n", len(r.Uncovered))
	for i, f := range r.Uncovered {
		if i == MaxTextUncovered {
			fmt.Fprintf(bw, "  ... and %d more (--output json lists every one)\n", len(r.Uncovered)-i)
			break
		}
		fmt.Fprintf(bw, "  %s\n", f)
	}
	return bw.Flush()
}
