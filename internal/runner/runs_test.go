package runner

import (
	"bytes"
	"testing"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/reporters/reporttest"
)

// TestWriteRunList: the `zof runs` table names each run's trigger.
func TestWriteRunList(t *testing.T) {
	sources := []api.Source{
		{Provider: "github", Repo: "acme/shop", PR: 7, Trigger: api.TriggerCI},
		{Provider: "github", Repo: "acme/shop", PR: 7, Trigger: api.TriggerWebhook, TriggerID: "72d3162e-cc78-11e3-81ab-4c9367dc0958"},
		{Provider: "local", Trigger: api.TriggerSchedule, TriggerID: "nightly@2025-03-01T02:00:00Z"},
		{Trigger: api.TriggerAPI},
		{},
	}
	var list api.RunList
	for i, src := range sources {
		r := passingLog(t).Run.Clone()
		r.ID = "run_" + string(rune('a'+i))
		r.Source = src
		list.Runs = append(list.Runs, *r)
	}
	list.Next = "42"
	var out bytes.Buffer
	if err := WriteRunList(&out, &list, reporttest.Now()); err != nil {
		t.Fatal(err)
	}
	out.WriteString("---\n")
	if err := WriteRunList(&out, &api.RunList{}, reporttest.Now()); err != nil {
		t.Fatal(err)
	}
	out.WriteString("---\n")
	hook := passingLog(t).Run
	hook.Source = sources[1]
	if err := WriteStatus(&out, hook, reporttest.Now()); err != nil {
		t.Fatal(err)
	}
	golden(t, "runs.golden", out.Bytes())
	if got := TriggerLabel(api.Source{Trigger: "webhook\x1b[31m", TriggerID: "a\nb"}); got != "webhook a b" {
		t.Errorf("TriggerLabel does not clean control characters: %q", got)
	}
}
