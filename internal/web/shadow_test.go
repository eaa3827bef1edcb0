package web

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/api"
)

// TestShadowPanel: a finished shadow run's page says what the subset would
// have concluded and names the failure it missed, escaped; other runs have
// no panel.
func TestShadowPanel(t *testing.T) {
	run := fixtureRun()
	var plain bytes.Buffer
	if err := WriteReport(&plain, run, time.Date(2026, 12, 6, 10, 1, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plain.String(), "Shadow run") {
		t.Error("a run that is not a shadow run shows a shadow panel")
	}
	var kept []string
	var left []api.ShadowLeft
	for _, m := range run.Members[1:] {
		left = append(left, api.ShadowLeft{Case: m.Case, Why: api.ShadowWhyNoEdge, Detail: "none of the 1 changed file matches its covers (<b>x</b>)"})
	}
	kept = append(kept, run.Members[0].Case)
	run.Selection.Shadow = &api.ShadowPlan{Scope: "changed", Effective: "changed", Selected: kept, Left: left}
	var b bytes.Buffer
	if err := WriteReport(&b, run, time.Date(2026, 12, 6, 10, 1, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{`<h2 id="shadow">Shadow run</h2>`, "scope <strong>changed</strong> alone would have run 1 of",
		"no_covers_edge: none of the 1 changed file matches its covers (&lt;b&gt;x&lt;/b&gt;)"} {
		if !strings.Contains(out, want) {
			t.Errorf("the shadow run's page lacks %q", want)
		}
	}
}
