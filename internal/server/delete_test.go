package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/zof-ai/zof-ci/api"
)

// TestDeleteRun: only an admin deletes, only a finished run, only of its own
// tenant; every attempt is audited with its principal.
func TestDeleteRun(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	run := h.create(tokAlphaRunner, runReq("shop", "staging", []api.Step{httpStep("wait:d")}))
	h.waitStatus(tokAlphaRunner, run.ID, api.StatusRunning)
	theirs := h.create(tokBetaRunner, runReq("shop", "staging", []api.Step{httpStep("a")}))
	h.waitStatus(tokBetaRunner, theirs.ID, api.StatusPassed)

	steps := []struct {
		name, token, id string
		want            int
		detail          string
	}{
		{"a running run", tokAlphaAdmin, run.ID, http.StatusConflict, "only a finished run can be deleted"},
		{"a viewer", tokAlphaViewer, run.ID, http.StatusForbidden, "needs admin"},
		{"a runner", tokAlphaRunner, run.ID, http.StatusForbidden, "needs admin"},
		{"another tenant's run", tokAlphaAdmin, theirs.ID, http.StatusNotFound, "not found"},
		{"no such run", tokAlphaAdmin, "r-missing", http.StatusNotFound, "not found"},
	}
	for _, st := range steps {
		r := h.do("DELETE", "/v1/runs/"+st.id, st.token, nil)
		if r.status != st.want || !strings.Contains(r.problem(t).Detail, st.detail) {
			t.Errorf("%s: %d %s; want %d with %q", st.name, r.status, r.body, st.want, st.detail)
		}
	}
	h.steps.open("d")
	h.waitStatus(tokAlphaRunner, run.ID, api.StatusPassed)
	if r := h.do("DELETE", "/v1/runs/"+run.ID, tokAlphaAdmin, nil); r.status != http.StatusNoContent || len(r.body) != 0 {
		t.Fatalf("delete of a finished run: %d %s", r.status, r.body)
	}
	if r := h.do("GET", "/v1/runs/"+run.ID, tokAlphaAdmin, nil); r.status != http.StatusNotFound {
		t.Errorf("GET after delete: %d", r.status)
	}
	if r := h.do("GET", "/v1/runs/"+theirs.ID, tokBetaRunner, nil); r.status != http.StatusOK {
		t.Errorf("the other tenant's run after a refused delete: %d", r.status)
	}

	var got []string
	for _, e := range h.auditEntries() {
		if e.Action == "delete" {
			got = append(got, e.Principal+" "+e.RunID+" "+http.StatusText(e.Status))
		}
	}
	want := []string{
		"ops " + run.ID + " Conflict",
		"dashboard " + run.ID + " Forbidden",
		"ci " + run.ID + " Forbidden",
		"ops " + theirs.ID + " Not Found",
		"ops r-missing Not Found",
		"ops " + run.ID + " No Content",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit of deletes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
