package server_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/server"
)

// TestListRunsBySource: GET /v1/runs filters by branch, pull request,
// trigger and flaky, and refuses malformed values with 400.
func TestListRunsBySource(t *testing.T) {
	h := newHarness(t, harnessOpts{noEngine: true})
	mk := func(ref string, pr int, trigger string) string {
		req := runReq("shop", "staging", []api.Step{httpStep("a")})
		req.Source = api.Source{Provider: "github", Repo: "o/r", Ref: ref, PR: pr, Trigger: trigger}
		return h.create(tokAlphaRunner, req).ID
	}
	main1 := mk("main", 0, "ci")
	pr7 := mk("feature", 7, "webhook")
	main2 := mk("main", 0, "schedule")

	list := func(query string) (int, []string) {
		r := h.do("GET", "/v1/runs?"+query, tokAlphaViewer, nil)
		if r.status != http.StatusOK {
			return r.status, nil
		}
		var l api.RunList
		if err := json.Unmarshal(r.body, &l); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, run := range l.Runs {
			ids = append(ids, run.ID)
		}
		return r.status, ids
	}
	for _, tt := range []struct {
		query string
		want  int
		ids   []string
	}{
		{"branch=main", 200, []string{main2, main1}},
		{"pr=7", 200, []string{pr7}},
		{"trigger=schedule", 200, []string{main2}},
		{"branch=main&trigger=ci", 200, []string{main1}},
		{"flaky=true", 200, nil},
		{"flaky=false&branch=feature", 200, []string{pr7}},
		{"pr=x", 400, nil},
		{"pr=0", 400, nil},
		{"trigger=cron", 400, nil},
		{"flaky=maybe", 400, nil},
		{"branch=a&branch=b", 400, nil},
	} {
		status, ids := list(tt.query)
		if status != tt.want || !slices.Equal(ids, tt.ids) {
			t.Errorf("?%s: %d %v, want %d %v", tt.query, status, ids, tt.want, tt.ids)
		}
	}
}

// FuzzSourceFilter: any query either parses into a filter within the
// documented values or is refused with a reason; it never panics.
func FuzzSourceFilter(f *testing.F) {
	for _, s := range []string{"branch=main&pr=7&trigger=ci&flaky=true", "pr=-1", "pr=99999999999999999999", "trigger=%00", "flaky=TRUE", "branch=%F0%9F"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		var lf engine.ListFilter
		if err := server.SourceFilter(q, &lf); err != nil {
			if err.Error() == "" {
				t.Fatal("a refusal without a reason")
			}
			return
		}
		if lf.PR < 0 || (lf.Trigger != "" && !slices.Contains(server.Triggers, lf.Trigger)) || lf.Branch != q.Get("branch") {
			t.Fatalf("%q parsed to %+v", raw, lf)
		}
	})
}
