package webhook_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/ci/github/githubtest"
	"github.com/zof-ai/zof-ci/internal/server/config"
)

// withInstallation adds the installation a GitHub App's webhook sends.
func withInstallation(payload []byte, id int64) []byte {
	return []byte(fmt.Sprintf(`{"installation": {"id": %d, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uNzc="},`, id) + strings.TrimPrefix(strings.TrimSpace(string(payload)), "{"))
}

// checkRuns are the check runs the fake stored, by external id (run id).
func checkRuns(f *githubtest.Fake) map[string]githubtest.CheckRun {
	out := map[string]githubtest.CheckRun{}
	for _, cr := range f.Runs() {
		out[cr.ExternalID] = cr
	}
	return out
}

// TestGitHubAppEndToEnd: a repository configured with a GitHub App reads
// the suite, the PR files and writes check runs with an installation token
// from the payload's installation; one token serves every call and later
// deliveries, a new one is made shortly before it expires; neither the key
// nor a token reaches the log.
func TestGitHubAppEndToEnd(t *testing.T) {
	h := newHarness(t, harnessOpts{app: true})
	app := h.api.gh.App
	for _, sha := range []string{sha1, sha2, sha3} {
		h.api.setSuite(sha, suiteWith("/fail"))
	}
	h.api.gh.SetFiles(7, []githubtest.File{{Filename: "cart/checkout.go", Status: "modified"}})

	deliver := func(delivery, sha string) *api.Run {
		t.Helper()
		res := h.github("pull_request", delivery, withInstallation(prPayload("synchronize", 7, sha), installationID))
		if res.status != http.StatusAccepted {
			t.Fatalf("%s: %d %s", delivery, res.status, res.body)
		}
		rec := h.waitTrigger(res.trigger.ID)
		if rec.State != api.TriggerRunCreated || rec.Reason != "" {
			t.Fatalf("%s: trigger %+v\nlogs:\n%s", delivery, rec, h.logs.String())
		}
		return h.run(rec.RunID)
	}
	r1 := deliver("app-1", sha1)
	if got := memberIDs(r1); len(got) != 1 || got[0] != "cart" {
		t.Errorf("members %v, want [cart] (the PR files were read with the App's token)", got)
	}
	cr, ok := checkRuns(h.api.gh)[r1.ID]
	if !ok || cr.Status != "completed" || cr.Conclusion != "failure" || cr.HeadSHA != sha1 || len(cr.Annotations) == 0 {
		t.Fatalf("check run %+v (found %v): the App may create check runs", cr, ok)
	}
	if e, l := app.Exchanges(), app.Lookups(); e != 1 || l != 0 {
		t.Errorf("after one delivery: %d exchanges, %d lookups; want 1 and 0 (installation from the payload)", e, l)
	}

	deliver("app-2", sha2)
	if e := app.Exchanges(); e != 1 {
		t.Errorf("after a second delivery: %d exchanges, want 1 (the token is cached)", e)
	}

	// 56 minutes on, the hour-long token is within the refresh margin: a new one.
	h.clock.Add(56 * time.Minute)
	deliver("app-3", sha3)
	if e := app.Exchanges(); e != 2 {
		t.Errorf("after the clock passed the refresh margin: %d exchanges, want 2", e)
	}
	toks := app.Tokens()
	for _, tok := range toks {
		if tok.Installation != installationID || len(tok.Repositories) != 1 || tok.Repositories[0] != "shop" {
			t.Errorf("token %+v: want installation %d, scoped to shop", tok, installationID)
		}
	}
	// Every call carried an installation token; the fake verified each JWT.
	for _, r := range h.api.gh.Requests {
		if strings.HasPrefix(r.Path, "/repos/") && !strings.HasPrefix(r.Auth, "Bearer ghs_fake") {
			t.Errorf("%s %s: Authorization %q", r.Method, r.Path, r.Auth)
		}
	}
	h.api.mu.Lock()
	for _, a := range h.api.auths {
		if !strings.HasPrefix(a, "Bearer ghs_fake") {
			t.Errorf("suite read with Authorization %q", a)
		}
	}
	h.api.mu.Unlock()
	if r := app.Refused(); len(r) != 0 {
		t.Errorf("the fake refused JWTs: %q", r)
	}
	logs := h.logs.String()
	for _, secret := range append([]string{"PRIVATE KEY", "ghs_fake"}, githubtest.TestKey().D.String()[:16]) {
		if strings.Contains(logs, secret) {
			t.Errorf("the log shows %q", secret)
		}
	}
}

// TestGitHubAppInstallationLookup: a delivery without installation (a
// repository webhook) and a schedule's suite read find the installation
// through GET /repos/{owner}/{repo}/installation, once.
func TestGitHubAppInstallationLookup(t *testing.T) {
	h := newHarness(t, harnessOpts{app: true, scope: "all"})
	app := h.api.gh.App
	h.api.setSuite(sha1, suiteWith("/ok"))
	h.api.setSuite("main", suiteWith("/ok"))
	res := h.github("pull_request", "lookup-1", prPayload("opened", 7, sha1))
	if rec := h.waitTrigger(res.trigger.ID); rec.State != api.TriggerRunCreated {
		t.Fatalf("trigger %+v\nlogs:\n%s", rec, h.logs.String())
	}
	// The scheduler reads through the receiver's Repos: same App, same token.
	repo := h.cfg.FindRepository(config.ProviderGitHub, repoName)
	data, err := h.recv.Repos().ReadSuite(context.Background(), repo, "main")
	if err != nil || !strings.Contains(string(data), "project: shop") {
		t.Fatalf("ReadSuite: %v", err)
	}
	if l, e := app.Lookups(), app.Exchanges(); l != 1 || e != 1 {
		t.Errorf("%d lookups, %d exchanges; want 1 and 1", l, e)
	}
	if toks := app.Tokens(); len(toks) != 1 || toks[0].Installation != installationID {
		t.Errorf("tokens %+v", toks)
	}
}

// TestGitHubAppNotInstalled: an App that is not installed on the repository
// fails the trigger at once, saying so.
func TestGitHubAppNotInstalled(t *testing.T) {
	h := newHarness(t, harnessOpts{app: true, attempts: 3})
	h.api.gh.App.Uninstall(repoName)
	h.api.setSuite(sha1, suiteWith("/ok"))
	res := h.github("pull_request", "uninstalled-1", prPayload("opened", 7, sha1))
	rec := h.waitTrigger(res.trigger.ID)
	if rec.State != api.TriggerFailed || rec.Attempts != 1 || !strings.Contains(rec.Reason, "not installed on acme/shop") {
		t.Errorf("trigger %+v, want failed at once naming the missing installation", rec)
	}
	if n := len(h.runs()); n != 0 {
		t.Errorf("%d runs", n)
	}
}

// TestPATRepositoryStillWorks: with token_env, the suite and the PR files
// are read as before; GitHub refuses the check run to a personal access
// token, which is logged with what to configure, and the run is unaffected.
func TestPATRepositoryStillWorks(t *testing.T) {
	h := newHarness(t, harnessOpts{appChecksOnly: true})
	h.api.setSuite(sha1, suiteWith("/fail"))
	h.api.gh.SetFiles(7, []githubtest.File{{Filename: "auth/login.go", Status: "modified"}})
	res := h.github("pull_request", "pat-1", prPayload("opened", 7, sha1))
	rec := h.waitTrigger(res.trigger.ID)
	if rec.State != api.TriggerRunCreated || !rec.Reported {
		t.Fatalf("trigger %+v\nlogs:\n%s", rec, h.logs.String())
	}
	if r := h.run(rec.RunID); r.Status != api.StatusPassed || len(memberIDs(r)) != 1 || memberIDs(r)[0] != "login" {
		t.Errorf("run %s %v", r.Status, memberIDs(r))
	}
	if n := len(h.api.gh.Runs()); n != 0 {
		t.Errorf("%d check runs stored with a PAT", n)
	}
	if n := h.api.gh.Calls("GET", `/repos/acme/shop/commits/.*/check-runs`) + h.api.gh.Calls("POST", `/repos/acme/shop/check-runs`); n == 0 {
		t.Error("no check run was tried")
	}
	if e := h.api.gh.App.Exchanges(); e != 0 {
		t.Errorf("%d token exchanges for a PAT repository", e)
	}
	if logs := h.logs.String(); !strings.Contains(logs, "no checks: write permission") || !strings.Contains(logs, "only GitHub Apps create check runs") {
		t.Errorf("the refusal is not logged with its hint:\n%s", logs)
	}
	// A server log is slog lines: no workflow commands, no CI hints.
	for _, s := range []string{"::notice", "::error", "::warning", "fork", "annotations go to the log"} {
		if logs := h.logs.String(); strings.Contains(logs, s) {
			t.Errorf("the server log holds %q:\n%s", s, logs)
		}
	}
}
