// Package jsonreport writes the run result as JSON (`zof run --json PATH`), in
// a stable, documented shape (schema "zof.run-result/v1"):
//
//	{
//	  "schema":    "zof.run-result/v1",
//	  "exit_code": 1,                  // the gate's exit code (cli.md)
//	  "exit":      "failed",           // its name: ok failed blocked cancelled timeout empty usage unavailable noperm interrupted
//	  "verdict":   "gate failed: 2 of 4 members failed",
//	  "notices":   ["..."],            // always an array, possibly empty
//	  "counts": {                      // members by outcome; the first six add up to total
//	    "total": 4, "passed": 2, "failed": 2, "blocked": 0,
//	    "cancelled": 0,                // cancelled after it started
//	    "skipped": 0,                  // never ran: cancelled before start, or not started when written
//	    "unfinished": 0,               // started, not finished when written (timeout, interrupt)
//	    "flaky": 0                     // passed members that needed a retry
//	  },
//	  "duration": "755ms",             // the run's duration so far, Go duration syntax
//	  "run": { ... },                  // the run snapshot, exactly as GET /v1/runs/{id} returns it (api.Run)
//	  "shadow": { ... }                // shadow runs only (api.ShadowResult): scope, selected, missed, verdict, time_share
//	}
//
// Additions within v1 only add fields; a change that removes or renames one
// bumps the schema to v2. Every string is masked with Options.Mask and
// sanitised like every report's text (report.Sanitize: ANSI escapes and control
// characters removed, "\r" made "\n", invalid UTF-8 made U+FFFD), so a secret
// split by an escape sequence cannot show whole when a field is printed. The
// event log is not included: it is the API's (GET /v1/runs/{id}/events). The
// file is written atomically.
package jsonreport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/reporters/report"
	"github.com/zof-ai/zof-ci/internal/secret"
)

// Name is the reporter's name in messages ("could not write the json report").
const Name = "json"

// Schema names the document's shape.
const Schema = "zof.run-result/v1"

// Document is the JSON written.
type Document struct {
	Schema   string        `json:"schema"`
	ExitCode int           `json:"exit_code"`
	Exit     string        `json:"exit"`
	Verdict  string        `json:"verdict"`
	Notices  []string      `json:"notices"`
	Counts   report.Counts `json:"counts"`
	Duration api.Duration  `json:"duration"`
	Run      *api.Run      `json:"run"`
	// Shadow is set on a shadow run (zof run --shadow): what the subset would
	// have concluded; the gate above is always the full run's.
	Shadow *api.ShadowResult `json:"shadow,omitempty"`
}

// Reporter writes the JSON file.
type Reporter struct {
	path string
	mask *secret.Masker
	now  func() time.Time
}

var _ report.Reporter = (*Reporter)(nil)

// New returns a JSON reporter writing to o.Path.
func New(o report.Options) (report.Reporter, error) {
	if o.Path == "" {
		return nil, errors.New("json reporter needs a file path: pass --json PATH")
	}
	return &Reporter{path: o.Path, mask: o.Mask, now: o.Clock}, nil
}

// Build makes the document of a result, masked.
func Build(res *report.Result, mask *secret.Masker, now time.Time) *Document {
	run := report.CleanRun(mask, res.Run)
	d := &Document{
		Schema:   Schema,
		ExitCode: res.Exit.Code,
		Exit:     res.Exit.Name,
		Verdict:  report.Clean(mask, res.Verdict),
		Notices:  make([]string, 0, len(res.Notices)),
		Counts:   report.Tally(run),
		Run:      run,
	}
	for _, n := range res.Notices {
		d.Notices = append(d.Notices, report.Clean(mask, n))
	}
	d.Shadow = report.CleanShadow(mask, res.Shadow)
	if run != nil {
		d.Duration = api.Duration(run.Duration(now))
	}
	return d
}

// Write encodes a document, indented, with a trailing newline.
func Write(w io.Writer, d *Document) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(d); err != nil {
		return fmt.Errorf("encode json report: %w", err)
	}
	return nil
}

// Report writes res to the reporter's path, atomically.
func (r *Reporter) Report(ctx context.Context, res *report.Result) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d := Build(res, r.mask, r.now())
	return report.WriteFileAtomic(r.path, func(w io.Writer) error { return Write(w, d) })
}
