package webhook_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/ci/github/githubtest"
	"github.com/zof-ai/zof-ci/internal/ci/gitlab/gitlabtest"
	"github.com/zof-ai/zof-ci/internal/eventually"
	"github.com/zof-ai/zof-ci/internal/server/webhook"
)

const (
	sha1 = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	sha2 = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	sha3 = "cccccccccccccccccccccccccccccccccccccccc"
)

// TestGitHubSignatureTestVector: GitHub's published example ("Validating
// webhook deliveries": secret "It's a Secret to Everybody", payload
// "Hello, World!").
func TestGitHubSignatureTestVector(t *testing.T) {
	const want = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
	secret, payload := "It's a Secret to Everybody", []byte("Hello, World!")
	if got := webhook.SignGitHub(secret, payload); got != want {
		t.Errorf("SignGitHub = %s, want %s", got, want)
	}
	tests := []struct {
		header, secret string
		body           string
		ok             bool
	}{
		{want, secret, "Hello, World!", true},
		{want, secret, "Hello, World?", false},
		{want, "another secret", "Hello, World!", false},
		{strings.TrimPrefix(want, "sha256="), secret, "Hello, World!", false},
		{"sha1=" + strings.TrimPrefix(want, "sha256="), secret, "Hello, World!", false},
		{want[:len(want)-2], secret, "Hello, World!", false},
		{"sha256=zz", secret, "Hello, World!", false},
		{"", secret, "Hello, World!", false},
		{want, "", "Hello, World!", false},
	}
	for _, tt := range tests {
		if got := webhook.VerifyGitHub(tt.header, []byte(tt.body), tt.secret); got != tt.ok {
			t.Errorf("VerifyGitHub(%q, %q, %q) = %v", tt.header, tt.body, tt.secret, got)
		}
	}
	if !webhook.VerifyGitLab("tok-123", "tok-123") || webhook.VerifyGitLab("tok-12", "tok-123") || webhook.VerifyGitLab("", "") {
		t.Error("VerifyGitLab")
	}
}

// TestRefusedDeliveriesStoreNothing: bad or missing signatures are 401,
// malformed payloads 400, oversized ones 413, and none of them stores a row.
func TestRefusedDeliveriesStoreNothing(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	payload := prPayload("synchronize", 7, sha1)
	big := make([]byte, webhook.MaxPayload+1)
	tests := []struct {
		name   string
		path   string
		header map[string]string
		body   []byte
		want   int
	}{
		{"no signature", "/v1/webhooks/github", map[string]string{"X-GitHub-Event": "pull_request", "X-GitHub-Delivery": "d1"}, payload, 401},
		{"wrong secret", "/v1/webhooks/github", map[string]string{"X-GitHub-Event": "pull_request", "X-GitHub-Delivery": "d1", "X-Hub-Signature-256": webhook.SignGitHub("nope-nope-nope-nope", payload)}, payload, 401},
		{"other body", "/v1/webhooks/github", map[string]string{"X-GitHub-Event": "pull_request", "X-GitHub-Delivery": "d1", "X-Hub-Signature-256": webhook.SignGitHub(hookSecret, []byte("{}"))}, payload, 401},
		{"another repository's secret", "/v1/webhooks/github", map[string]string{"X-GitHub-Event": "pull_request", "X-GitHub-Delivery": "d1", "X-Hub-Signature-256": webhook.SignGitHub(otherSecret, payload)}, payload, 401},
		{"malformed", "/v1/webhooks/github", map[string]string{"X-GitHub-Event": "pull_request", "X-GitHub-Delivery": "d1", "X-Hub-Signature-256": webhook.SignGitHub(hookSecret, []byte(`{"action":`))}, []byte(`{"action":`), 400},
		{"missing fields", "/v1/webhooks/github", map[string]string{"X-GitHub-Event": "pull_request", "X-GitHub-Delivery": "d1", "X-Hub-Signature-256": webhook.SignGitHub(hookSecret, []byte(`{"action":"opened"}`))}, []byte(`{"action":"opened"}`), 400},
		{"no delivery id", "/v1/webhooks/github", map[string]string{"X-GitHub-Event": "pull_request", "X-Hub-Signature-256": webhook.SignGitHub(hookSecret, payload)}, payload, 400},
		{"too large", "/v1/webhooks/github", map[string]string{"X-GitHub-Event": "pull_request", "X-GitHub-Delivery": "d1", "X-Hub-Signature-256": webhook.SignGitHub(hookSecret, big)}, big, 413},
		{"gitlab no token", "/v1/webhooks/gitlab", map[string]string{"X-Gitlab-Event": "Merge Request Hook", "Idempotency-Key": "g1"}, mrPayload("open", 3, sha1), 401},
		{"gitlab wrong token", "/v1/webhooks/gitlab", map[string]string{"X-Gitlab-Event": "Merge Request Hook", "Idempotency-Key": "g1", "X-Gitlab-Token": "wrong-token-0123456789"}, mrPayload("open", 3, sha1), 401},
		{"gitlab malformed", "/v1/webhooks/gitlab", map[string]string{"X-Gitlab-Event": "Merge Request Hook", "Idempotency-Key": "g1", "X-Gitlab-Token": hookSecret}, []byte(`[1,2`), 400},
		{"gitlab no delivery", "/v1/webhooks/gitlab", map[string]string{"X-Gitlab-Event": "Merge Request Hook", "X-Gitlab-Token": hookSecret}, mrPayload("open", 3, sha1), 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := h.post(tt.path, tt.header, tt.body)
			if res.status != tt.want {
				t.Errorf("status %d, want %d: %s", res.status, tt.want, res.body)
			}
			var p api.Problem
			if err := json.Unmarshal([]byte(res.body), &p); err != nil || p.Status != tt.want || p.Detail == "" {
				t.Errorf("problem body %s", res.body)
			}
		})
	}
	if n := len(h.triggers()); n != 0 {
		t.Errorf("%d triggers stored, want none", n)
	}
	if n := len(h.runs()); n != 0 {
		t.Errorf("%d runs created", n)
	}
	if h.api.fileReads() != 0 {
		t.Error("a refused delivery reached the repository API")
	}
}

// TestIgnoredDeliveries: unknown events and actions are acknowledged with
// 200, logged, and not stored.
func TestIgnoredDeliveries(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	tests := []struct {
		event   string
		payload []byte
		reason  string
	}{
		{"ping", []byte(`{"zen":"Keep it logically awesome.","hook_id":1}`), `event "ping" creates no run`},
		{"issues", []byte(`{"action":"opened"}`), `event "issues" creates no run`},
		{"pull_request", prPayload("closed", 7, sha1), `pull_request action "closed" creates no run`},
		{"pull_request", prPayload("labeled", 7, sha1), `action "labeled"`},
		{"merge_group", []byte(`{"action":"destroyed","merge_group":{"head_sha":"` + sha1 + `","base_sha":"` + sha2 + `"},"repository":{"full_name":"acme/shop"}}`), `merge_group action "destroyed"`},
		{"push", []byte(`{"ref":"refs/heads/gone","before":"` + sha1 + `","after":"0000000000000000000000000000000000000000","deleted":true,"repository":{"full_name":"acme/shop"}}`), "the push deleted refs/heads/gone"},
		{"push", []byte(`{"ref":"refs/tags/v1","before":"0000000000000000000000000000000000000000","after":"` + sha1 + `","repository":{"full_name":"acme/shop"}}`), "is not a branch"},
	}
	for i, tt := range tests {
		res := h.github(tt.event, "ignored-"+string(rune('a'+i)), tt.payload)
		if res.status != http.StatusOK || res.trigger.State != api.TriggerIgnored || !strings.Contains(res.trigger.Reason, tt.reason) {
			t.Errorf("%s: %d %s, want 200 ignored with %q", tt.event, res.status, res.body, tt.reason)
		}
	}
	// GitLab: a tag push and an update without new commits.
	res := h.gitlab("Tag Push Hook", "g-tag", []byte(`{"object_kind":"tag_push"}`))
	if res.status != 200 || res.trigger.State != api.TriggerIgnored {
		t.Errorf("tag push: %d %s", res.status, res.body)
	}
	upd := strings.Replace(string(mrPayload("update", 3, sha1)), `"oldrev": "2222222222222222222222222222222222222222",`, "", 1)
	if res := h.gitlab("Merge Request Hook", "g-upd", []byte(upd)); res.status != 200 || !strings.Contains(res.trigger.Reason, "without new commits") {
		t.Errorf("update: %d %s", res.status, res.body)
	}
	// A merge_group delivery without its merge_group is malformed.
	other := []byte(`{"ref":"refs/heads/main","before":"` + sha1 + `","after":"` + sha2 + `","repository":{"full_name":"acme/shop"}}`)
	if res := h.post("/v1/webhooks/github", map[string]string{"X-GitHub-Event": "merge_group", "X-GitHub-Delivery": "mg",
		"X-Hub-Signature-256": webhook.SignGitHub(hookSecret, other)}, other); res.status != 400 {
		t.Errorf("merge_group without merge_group: %d %s", res.status, res.body)
	}
	// A configured repository whose event kind is not listed (other/repo lists push only).
	mg := []byte(`{"action":"checks_requested","merge_group":{"head_sha":"` + sha2 + `","base_sha":"` + sha1 + `"},"repository":{"full_name":"other/repo"}}`)
	if res := h.post("/v1/webhooks/github", map[string]string{"X-GitHub-Event": "merge_group", "X-GitHub-Delivery": "mg2",
		"X-Hub-Signature-256": webhook.SignGitHub(otherSecret, mg)}, mg); res.status != 200 || !strings.Contains(res.trigger.Reason, "does not list merge_group") {
		t.Errorf("merge_group not listed: %d %s", res.status, res.body)
	}
	if n := len(h.triggers()); n != 0 {
		t.Errorf("%d triggers stored, want none", n)
	}
	if !strings.Contains(h.logs.String(), "webhook ignored") {
		t.Error("no log line for ignored deliveries")
	}
}

// TestUnconfiguredRepository: a delivery signed with a valid secret for a
// repository nobody configured is 422, not stored.
func TestUnconfiguredRepository(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	payload := []byte(strings.ReplaceAll(string(prPayload("opened", 1, sha1)), repoName, "acme/unknown"))
	res := h.github("pull_request", "d-unknown", payload)
	if res.status != http.StatusUnprocessableEntity || !strings.Contains(res.body, "acme/unknown") {
		t.Errorf("%d %s", res.status, res.body)
	}
	if n := len(h.triggers()); n != 0 {
		t.Errorf("%d triggers stored", n)
	}
}

// TestPullRequestEndToEnd: a PR push creates one run scoped to the PR's
// files, a check run in progress then completed with annotations; a
// redelivery creates nothing; a second push supersedes the first run.
func TestPullRequestEndToEnd(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.api.setSuite(sha1, suiteWith("/block"))
	h.api.setSuite(sha2, suiteWith("/fail"))
	h.api.gh.Files[7] = []githubtest.File{{Filename: "cart/checkout.go", Status: "modified"}}

	first := h.github("pull_request", "delivery-1", prPayload("synchronize", 7, sha1))
	if first.status != http.StatusAccepted || first.trigger.State != api.TriggerAccepted || !strings.HasPrefix(first.trigger.ID, "trg_") {
		t.Fatalf("first delivery: %d %s", first.status, first.body)
	}
	rec1 := h.waitState(first.trigger.ID, api.TriggerRunCreated)
	run1 := rec1.RunID
	// The check run is in progress while the run blocks.
	waitFor(t, "check run in progress", func() bool { return h.api.gh.Calls("POST", `/repos/acme/shop/check-runs`) == 1 })

	// A redelivery names the run and creates nothing.
	again := h.github("pull_request", "delivery-1", prPayload("synchronize", 7, sha1))
	if again.status != http.StatusOK || again.trigger.ID != first.trigger.ID || again.trigger.RunID != run1 {
		t.Fatalf("redelivery: %d %s, want 200 naming %s", again.status, again.body, run1)
	}

	// The second push supersedes the first run.
	second := h.github("pull_request", "delivery-2", prPayload("synchronize", 7, sha2))
	if second.status != http.StatusAccepted {
		t.Fatalf("second delivery: %d %s", second.status, second.body)
	}
	rec2 := h.waitTrigger(second.trigger.ID)
	h.waitTrigger(first.trigger.ID)
	r1, r2 := h.run(run1), h.run(rec2.RunID)
	if r1.Status != api.StatusCancelled || !strings.Contains(r1.Reason, "superseded by "+r2.ID) {
		t.Errorf("first run %s %q, want cancelled, superseded by %s", r1.Status, r1.Reason, r2.ID)
	}
	if n := len(h.runs()); n != 2 {
		t.Errorf("%d runs, want 2", n)
	}
	// The second run: scoped to the PR's files, with the webhook as its source.
	if got := memberIDs(r2); !cmp.Equal(got, []string{"cart"}) {
		t.Errorf("members %v, want [cart] (the PR touches cart/ only)", got)
	}
	wantSrc := api.Source{Provider: "github", Repo: repoName, SHA: sha2, Ref: "feature", PR: 7, Actor: "octocat", Trigger: api.TriggerWebhook, TriggerID: "delivery-2"}
	if diff := cmp.Diff(wantSrc, r2.Source); diff != "" {
		t.Errorf("source (-want +got):\n%s", diff)
	}
	if r2.Status != api.StatusFailed || r2.SuiteFile != "zof.yaml" {
		t.Errorf("second run %s, suite %q", r2.Status, r2.SuiteFile)
	}
	// Check runs: one per run, the first cancelled, the second a failure with an annotation on the suite.
	var cr1, cr2 *githubtest.CheckRun
	for id := range h.api.gh.CheckRuns {
		cr := h.api.gh.Run(id)
		switch cr.ExternalID {
		case run1:
			cr1 = cr
		case r2.ID:
			cr2 = cr
		}
	}
	if cr1 == nil || cr2 == nil {
		t.Fatalf("check runs %v", h.api.gh.CheckRuns)
	}
	if cr1.Status != "completed" || cr1.Conclusion != "cancelled" || cr1.HeadSHA != sha1 {
		t.Errorf("first check run %+v", cr1)
	}
	if cr2.Status != "completed" || cr2.Conclusion != "failure" || cr2.HeadSHA != sha2 || cr2.Name != "Zof · shop · staging" {
		t.Errorf("second check run %+v", cr2)
	}
	if len(cr2.Annotations) == 0 || cr2.Annotations[0].Path != "zof.yaml" || cr2.Annotations[0].AnnotationLevel != "failure" {
		t.Errorf("annotations %+v", cr2.Annotations)
	}
	if got := h.api.gh.Calls("GET", `/repos/acme/shop/pulls/7/files`); got != 2 {
		t.Errorf("PR files read %d times, want once per delivery", got)
	}
	// The suite was read at the head commit with the raw media type.
	for _, a := range h.api.accepted {
		if a != "application/vnd.github.raw+json" {
			t.Errorf("contents Accept %q", a)
		}
	}
	if rec := h.waitTrigger(first.trigger.ID); rec.State != api.TriggerRunCreated || !rec.Reported || rec.Attempts != 1 {
		t.Errorf("first trigger %+v", rec)
	}
}

func memberIDs(r *api.Run) []string {
	var out []string
	for _, m := range r.Members {
		out = append(out, m.ID)
	}
	return out
}

// TestSlowAPIDoesNotDelayTheAnswer: while the repository API hangs, the
// delivery is already answered 202; the run follows once it answers.
func TestSlowAPIDoesNotDelayTheAnswer(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.api.setSuite(sha1, suiteWith("/ok"))
	h.api.gh.Files[7] = []githubtest.File{{Filename: "auth/login.go", Status: "modified"}}
	block := make(chan struct{})
	h.api.mu.Lock()
	h.api.block = block
	h.api.mu.Unlock()
	res := h.github("pull_request", "slow-1", prPayload("opened", 7, sha1))
	if res.status != http.StatusAccepted {
		t.Fatalf("%d %s", res.status, res.body)
	}
	// The answer came while the API was still blocked: the trigger is not done.
	if rec := h.waitState(res.trigger.ID, api.TriggerProcessing); rec.RunID != "" {
		t.Fatalf("processed before the API answered: %+v", rec)
	}
	close(block)
	rec := h.waitTrigger(res.trigger.ID)
	if rec.State != api.TriggerRunCreated {
		t.Fatalf("%+v", rec)
	}
	if r := h.run(rec.RunID); r.Status != api.StatusPassed || !cmp.Equal(memberIDs(r), []string{"login"}) {
		t.Errorf("run %s %v", r.Status, memberIDs(r))
	}
}

// TestAPIFailureEndsAsAVisibleFailedTrigger: a repository API that keeps
// failing is retried, then the trigger fails: visible in GET /v1/triggers,
// logged, and posted as a failed check run.
func TestAPIFailureEndsAsAVisibleFailedTrigger(t *testing.T) {
	h := newHarness(t, harnessOpts{attempts: 3})
	h.api.setSuite(sha1, suiteWith("/ok"))
	h.api.mu.Lock()
	h.api.fail = 1000
	h.api.mu.Unlock()
	res := h.github("pull_request", "broken-1", prPayload("opened", 7, sha1))
	if res.status != http.StatusAccepted {
		t.Fatalf("%d %s", res.status, res.body)
	}
	rec := h.waitTrigger(res.trigger.ID)
	if rec.State != api.TriggerFailed || rec.Attempts != 3 || !strings.Contains(rec.Reason, "502") {
		t.Errorf("trigger %+v, want failed after 3 attempts with the 502", rec)
	}
	// Each attempt is the API client's try plus its retries of a 5xx (internal/retry:
	// until its budget, so more than one).
	if got := h.api.fileReads(); got <= 6 {
		t.Errorf("suite read %d times, want more than 6 (3 attempts, each retried)", got)
	}
	if n := len(h.runs()); n != 0 {
		t.Errorf("%d runs", n)
	}
	// Visible through the API (viewer, tenant-scoped).
	req, _ := http.NewRequest("GET", h.http.URL+"/v1/triggers?state=failed", nil)
	req.Header.Set("Authorization", "Bearer "+viewerToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list api.TriggerList
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /v1/triggers: %d %v", resp.StatusCode, err)
	}
	if len(list.Triggers) != 1 || list.Triggers[0].ID != rec.ID || list.Triggers[0].Reason == "" {
		t.Errorf("listed %+v", list.Triggers)
	}
	// The failed check run is posted after the trigger is stored as failed.
	eventually.Must(t, 10*time.Second, func() bool {
		runs := h.api.gh.Runs()
		return len(runs) == 1 && runs[0].Conclusion != ""
	}, "the failed delivery's check run")
	cr := h.api.gh.Only(t)
	if cr.Name != "Zof · webhook" || cr.Conclusion != "failure" || cr.HeadSHA != sha1 || !strings.Contains(cr.Output.Summary, "502") {
		t.Errorf("failed check run %+v", cr)
	}
	if !strings.Contains(h.logs.String(), "webhook delivery failed") {
		t.Error("the failure is not logged")
	}
	// A redelivery of a failed delivery names its state.
	again := h.github("pull_request", "broken-1", prPayload("opened", 7, sha1))
	if again.status != 200 || again.trigger.State != api.TriggerFailed || again.trigger.Reason == "" {
		t.Errorf("redelivery of a failed trigger: %d %s", again.status, again.body)
	}
}

// TestUnresolvedVarFailsVisibly: a suite ${VAR} the repository's vars do
// not define fails the trigger at once (no retries); the server's own
// environment is never consulted.
func TestUnresolvedVarFailsVisibly(t *testing.T) {
	h := newHarness(t, harnessOpts{attempts: 3, scope: "all"})
	t.Setenv("STAGING_TOKEN", "from-the-server-env")
	h.api.setSuite(sha1, strings.Replace(suiteWith("/ok"), "    url: ${SUT_URL}\n", "    url: ${SUT_URL}\n    headers: {Authorization: \"Bearer ${STAGING_TOKEN}\"}\n", 1))
	res := h.github("pull_request", "var-1", prPayload("opened", 7, sha1))
	rec := h.waitTrigger(res.trigger.ID)
	if rec.State != api.TriggerFailed || rec.Attempts != 1 || !strings.Contains(rec.Reason, "STAGING_TOKEN") {
		t.Errorf("trigger %+v", rec)
	}
}

// TestRedeliveryAfterRestart: the deduplication lives in the SQLite store,
// so a redelivery after a restart still names the first run.
func TestRedeliveryAfterRestart(t *testing.T) {
	h := newHarness(t, harnessOpts{scope: "all"})
	h.api.setSuite(sha1, suiteWith("/ok"))
	res := h.github("pull_request", "restart-1", prPayload("opened", 7, sha1))
	rec := h.waitTrigger(res.trigger.ID)
	h.restart()
	again := h.github("pull_request", "restart-1", prPayload("opened", 7, sha1))
	if again.status != http.StatusOK || again.trigger.RunID != rec.RunID || again.trigger.ID != rec.ID {
		t.Fatalf("after restart: %d %s, want 200 naming %s", again.status, again.body, rec.RunID)
	}
	if n := len(h.runs()); n != 1 {
		t.Errorf("%d runs, want 1", n)
	}
}

// TestResumeAfterRestart: a delivery accepted by a server that stopped
// before processing it is processed by the next start.
func TestResumeAfterRestart(t *testing.T) {
	h := newHarness(t, harnessOpts{scope: "all"})
	h.api.setSuite(sha1, suiteWith("/ok"))
	block := make(chan struct{})
	h.api.mu.Lock()
	h.api.block = block
	h.api.mu.Unlock()
	res := h.github("pull_request", "resume-1", prPayload("opened", 7, sha1))
	h.waitState(res.trigger.ID, api.TriggerProcessing)
	h.shutdown() // the blocked read ends with the stop; the trigger stays processing
	close(block)
	h.api.mu.Lock()
	h.api.block = nil
	h.api.mu.Unlock()
	h.start()
	rec := h.waitTrigger(res.trigger.ID)
	if rec.State != api.TriggerRunCreated || !rec.Reported {
		t.Fatalf("%+v", rec)
	}
	if r := h.run(rec.RunID); r.Status != api.StatusPassed {
		t.Errorf("run %s", r.Status)
	}
	if cr := h.api.gh.Only(t); cr.Conclusion != "success" {
		t.Errorf("check run %+v", cr)
	}
}

// TestGitLabMergeRequestEndToEnd: an MR event creates a run scoped to the
// MR's diffs, a commit status running then failed, and the MR note.
func TestGitLabMergeRequestEndToEnd(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.api.setSuite(sha1, suiteWith("/fail"))
	h.api.gl.Diffs[3] = []gitlabtest.Diff{{OldPath: "cart/a.go", NewPath: "cart/a.go"}}
	res := h.gitlab("Merge Request Hook", "gl-delivery-1", mrPayload("open", 3, sha1))
	if res.status != http.StatusAccepted {
		t.Fatalf("%d %s", res.status, res.body)
	}
	rec := h.waitTrigger(res.trigger.ID)
	if rec.State != api.TriggerRunCreated || rec.PR != 3 || rec.Event != "merge_request.open" {
		t.Fatalf("%+v", rec)
	}
	r := h.run(rec.RunID)
	if !cmp.Equal(memberIDs(r), []string{"cart"}) || r.Status != api.StatusFailed || r.Source.TriggerID != "gl-delivery-1" || r.Source.Provider != "gitlab" {
		t.Errorf("run %v %s %+v", memberIDs(r), r.Status, r.Source)
	}
	var states []string
	for _, s := range h.api.gl.Statuses {
		if s.SHA == sha1 {
			states = append(states, s.State)
		}
	}
	if !cmp.Equal(states, []string{"running", "failed"}) {
		t.Errorf("commit statuses %v", states)
	}
	notes := h.api.gl.NotesOf(3)
	if len(notes) != 1 || !strings.Contains(notes[0].Body, "<!-- zof:shop/staging -->") || !strings.Contains(notes[0].Body, "cart") {
		t.Errorf("notes %+v", notes)
	}
	// GitLab's retry of the same delivery (same Idempotency-Key) creates nothing.
	if again := h.gitlab("Merge Request Hook", "gl-delivery-1", mrPayload("open", 3, sha1)); again.status != 200 || again.trigger.RunID != rec.RunID {
		t.Errorf("redelivery %d %s", again.status, again.body)
	}
	// Older GitLab: the delivery is X-Gitlab-Event-UUID.
	res2 := h.post("/v1/webhooks/gitlab", map[string]string{"X-Gitlab-Event": "Merge Request Hook", "X-Gitlab-Event-UUID": "uuid-2", "X-Gitlab-Token": hookSecret}, mrPayload("reopen", 3, sha1))
	if res2.status != http.StatusAccepted || res2.trigger.Key != "uuid-2" {
		t.Errorf("event uuid delivery %d %s", res2.status, res2.body)
	}
	h.waitTrigger(res2.trigger.ID)
}

// TestShadowTrigger: `shadow: true` on an event makes its runs shadow runs:
// every case runs, and the run carries the subset scope changed selected.
func TestShadowTrigger(t *testing.T) {
	h := newHarness(t, harnessOpts{scope: "changed, shadow: true"})
	h.api.setSuite(sha2, suiteWith("/fail"))
	h.api.gh.Files[7] = []githubtest.File{{Filename: "cart/checkout.go", Status: "modified"}}
	d := h.github("pull_request", "delivery-1", prPayload("synchronize", 7, sha2))
	if d.status != http.StatusAccepted {
		t.Fatalf("delivery: %d %s", d.status, d.body)
	}
	rec := h.waitState(d.trigger.ID, api.TriggerRunCreated)
	r := h.run(rec.RunID)
	if sh := r.Selection.Shadow; sh == nil || !cmp.Equal(sh.Selected, []string{"cart"}) || sh.Scope != "changed" {
		t.Fatalf("selection %+v, want a shadow plan selecting [cart]", r.Selection)
	}
	if got := memberIDs(r); len(got) < 2 || !slices.Contains(got, "cart") {
		t.Errorf("members %v, want every case of the suite", got)
	}
}
