package gitlab

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"github.com/zof-ai/zof-ci/api"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	cigitlab "github.com/zof-ai/zof-ci/internal/ci/gitlab"
	"github.com/zof-ai/zof-ci/internal/ci/gitlab/gitlabtest"
	"github.com/zof-ai/zof-ci/internal/gate"
	"github.com/zof-ai/zof-ci/internal/reporters/report"
	"github.com/zof-ai/zof-ci/internal/reporters/reporttest"
	"github.com/zof-ai/zof-ci/internal/secret"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if d := cmp.Diff(string(want), got); d != "" {
		t.Errorf("%s differs (-want +got):\n%s", path, d)
	}
}

func pipeline(fake *gitlabtest.Fake) *cigitlab.Pipeline {
	return &cigitlab.Pipeline{Kind: cigitlab.MergeRequest, ProjectID: "1234", ProjectPath: "group/checkout", MRIID: 17, PipelineID: 987,
		CommitSHA: "0123456789abcdef0123456789abcdef01234567", APIURL: fake.APIURL(), ServerURL: "https://gitlab.example.com"}
}

// fast stubs the retry policy's waits out; its clock still moves by them.
func fast() cigitlab.Retry {
	return cigitlab.Retry{Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() }}
}

func TestNoteCreatedThenUpdatedInPlace(t *testing.T) {
	fake := gitlabtest.New(t)
	// Other people's notes, a system note quoting our marker, over three pages.
	for i := 0; i < 230; i++ {
		fake.AddNote(17, fmt.Sprintf("comment %d", i), "bob", false)
	}
	fake.AddNote(17, "<!-- zof:checkout-service/staging --> mentioned in a system note", "gitlab", true)
	var log strings.Builder
	note, _ := New(pipeline(fake), "glpat-api", &log, nil, fast())
	note.Now = reporttest.Now
	ctx := context.Background()
	if err := note.Report(ctx, reporttest.Failures(t)); err != nil {
		t.Fatal(err)
	}
	if n := fake.Calls("POST", `.*/notes`); n != 1 {
		t.Fatalf("%d creates", n)
	}
	if n := fake.Calls("GET", `.*/notes`); n != 3 {
		t.Errorf("%d list calls, want 3 (231 notes, 100 per page)", n)
	}
	// A second run (a new pipeline) updates the same note.
	if err := note.Report(ctx, reporttest.AllPassed(t)); err != nil {
		t.Fatal(err)
	}
	if n := fake.Calls("POST", `.*/notes`); n != 1 {
		t.Errorf("%d creates after the update, want still 1", n)
	}
	puts := fake.Bodies("PUT", `/api/v4/projects/1234/merge_requests/17/notes/\d+`)
	if len(puts) != 1 {
		t.Fatalf("%d updates", len(puts))
	}
	ours := 0
	for _, n := range fake.NotesOf(17) {
		if strings.HasPrefix(n.Body, "<!-- zof:checkout-service/staging -->\n") {
			ours++
			golden(t, "note-passed.md", n.Body)
		}
	}
	if ours != 1 {
		t.Errorf("%d notes of ours, want 1", ours)
	}
	var first struct{ Body string }
	if err := json.Unmarshal(fake.Bodies("POST", `.*/notes`)[0], &first); err != nil {
		t.Fatal(err)
	}
	golden(t, "note-failed.md", first.Body)
	if log.Len() != 0 {
		t.Errorf("log: %s", log.String())
	}
	for _, r := range fake.Requests {
		if r.Auth != "glpat-api" {
			t.Errorf("request without the token: %+v", r)
		}
	}
}

func TestNoteOtherEnvironmentIsSeparate(t *testing.T) {
	fake := gitlabtest.New(t)
	fake.AddNote(17, "<!-- zof:checkout-service/production -->\nold", "zof-bot", false)
	note, _ := New(pipeline(fake), "glpat-api", nil, nil, fast())
	if err := note.Report(context.Background(), reporttest.AllPassed(t)); err != nil {
		t.Fatal(err)
	}
	if n := fake.Calls("POST", `.*/notes`); n != 1 {
		t.Errorf("a staging run must not overwrite the production note: %d creates", n)
	}
}

func TestNoTokenSkipsWithOneNotice(t *testing.T) {
	fake := gitlabtest.New(t)
	var log strings.Builder
	note, status := New(pipeline(fake), "", &log, nil, fast())
	res := reporttest.Failures(t)
	if err := status.Start(context.Background(), res.Run); err != nil {
		t.Fatal(err)
	}
	if err := note.Report(context.Background(), res); err != nil {
		t.Fatal(err)
	}
	if err := status.Report(context.Background(), res); err != nil {
		t.Fatal(err)
	}
	if len(fake.Requests) != 0 {
		t.Errorf("%d requests without a token", len(fake.Requests))
	}
	if got := log.String(); strings.Count(got, "CI_JOB_TOKEN cannot post") != 1 {
		t.Errorf("log:\n%s", got)
	}
}

func TestRefusedTokenIsANotice(t *testing.T) {
	for _, tt := range []struct{ name, token string }{{"job token as private token: 401", "ci-job-token"}, {"read_api scope: 403", "glpat-read"}} {
		t.Run(tt.name, func(t *testing.T) {
			fake := gitlabtest.New(t)
			fake.Tokens["glpat-read"] = false
			var log strings.Builder
			note, status := New(pipeline(fake), tt.token, &log, nil, fast())
			res := reporttest.Failures(t)
			ctx := context.Background()
			if err := status.Start(ctx, res.Run); err != nil {
				t.Fatal(err)
			}
			if err := note.Report(ctx, res); err != nil {
				t.Fatal(err)
			}
			if err := status.Report(ctx, res); err != nil {
				t.Fatal(err)
			}
			if n := fake.Calls("POST", `.*/statuses/.*`); n != 1 {
				t.Errorf("%d status posts, want 1 (after a refusal the status stops trying)", n)
			}
			if got := log.String(); strings.Count(got, "GitLab refused the token") != 2 || !strings.Contains(got, "api scope") {
				t.Errorf("log:\n%s", got)
			}
		})
	}
}

func TestCommitStatus(t *testing.T) {
	tests := []struct {
		name  string
		res   func(testing.TB) *report.Result
		state string
	}{
		{"passed", reporttest.AllPassed, "success"},
		{"failed", reporttest.Failures, "failed"},
		{"blocked", reporttest.Blocked, "failed"},
		{"cancelled", reporttest.Cancelled, "canceled"},
		{"timeout", reporttest.Timeout, "failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := gitlabtest.New(t)
			_, status := New(pipeline(fake), "glpat-api", nil, nil, fast())
			res := tt.res(t)
			ctx := context.Background()
			if err := status.Start(ctx, res.Run); err != nil {
				t.Fatal(err)
			}
			if err := status.Report(ctx, res); err != nil {
				t.Fatal(err)
			}
			want := []gitlabtest.Status{
				{SHA: "0123456789abcdef0123456789abcdef01234567", State: "running", Name: "zof: checkout-service/staging", TargetURL: "https://zof.example.test/runs/r-0001", Description: "running 4 cases", PipelineID: 987},
				{SHA: "0123456789abcdef0123456789abcdef01234567", State: tt.state, Name: "zof: checkout-service/staging", TargetURL: "https://zof.example.test/runs/r-0001", Description: res.Verdict, PipelineID: 987},
			}
			if d := cmp.Diff(want, fake.Statuses); d != "" {
				t.Errorf("statuses (-want +got):\n%s", d)
			}
		})
	}
}

func TestCommitStatusDescriptionAndErrors(t *testing.T) {
	fake := gitlabtest.New(t)
	fake.Fail("POST", `.*/statuses/.*`, gitlabtest.Fault{Status: 502, Body: `{}`}, true)
	var log strings.Builder
	_, status := New(pipeline(fake), "glpat-api", &log, nil, fast())
	res := reporttest.Failures(t)
	res.Verdict = strings.Repeat("v", 400)
	if err := status.Report(context.Background(), res); err != nil {
		t.Fatal(err)
	}
	if n := fake.Calls("POST", `.*/statuses/.*`); n <= 2 {
		t.Errorf("%d posts, want more than 2 (a 5xx is retried until the budget)", n)
	}
	if !strings.Contains(log.String(), "could not post the commit status") {
		t.Errorf("log: %s", log.String())
	}
	fake2 := gitlabtest.New(t)
	_, status2 := New(pipeline(fake2), "glpat-api", nil, nil, fast())
	if err := status2.Report(context.Background(), res); err != nil {
		t.Fatal(err)
	}
	if d := fake2.Statuses[0].Description; len([]rune(d)) != maxDescription || !strings.HasSuffix(d, "…") {
		t.Errorf("description %d characters", len([]rune(d)))
	}
}

func TestNoteLimits(t *testing.T) {
	at := strings.Repeat("é", MaxNoteChars)
	if truncate(at, MaxNoteChars) != at {
		t.Error("a note at the limit is kept")
	}
	got := truncate(at+"x", MaxNoteChars)
	if n := len([]rune(got)); n != MaxNoteChars || !strings.HasSuffix(got, "_Truncated at GitLab's note size limit._\n") {
		t.Errorf("over the limit: %d characters", n)
	}
}

func TestNoteHostileAndMasked(t *testing.T) {
	fake := gitlabtest.New(t)
	note, _ := New(pipeline(fake), "glpat-api", nil, secret.NewMasker([]string{"hunter2"}), fast())
	res := reporttest.Hostile(t)
	res.Run.Members[0].Reason = "token hunter2"
	res.Run.Project = "p --> <script>"
	if err := note.Report(context.Background(), res); err != nil {
		t.Fatal(err)
	}
	body := fake.NotesOf(17)[0].Body
	first, _, _ := strings.Cut(body, "\n")
	if strings.Count(first, "-->") != 1 || !strings.HasSuffix(first, "-->") {
		t.Errorf("marker line %q can be closed early", first)
	}
	if strings.Contains(body, "hunter2") || strings.Contains(body, "<script>") || strings.Contains(body, "\x1b") {
		t.Errorf("body:\n%s", body)
	}
}

func TestNoteSkipsWithoutRunOrMR(t *testing.T) {
	fake := gitlabtest.New(t)
	p := pipeline(fake)
	p.MRIID = 0
	note, status := New(p, "glpat-api", nil, nil, fast())
	if note != nil {
		t.Error("no note outside a merge request")
	}
	if err := status.Report(context.Background(), &report.Result{Gate: gate.Empty, Exit: reporttest.Exits[gate.Empty]}); err != nil {
		t.Fatal(err)
	}
	if len(fake.Requests) != 0 {
		t.Errorf("%d requests", len(fake.Requests))
	}
}

// TestNoteIgnoresAPersonsNoteWithTheMarker: a person's note that starts with the marker (a
// copy of the bot's note, a quote) cannot be edited with the token (GitLab answers 403 to
// anyone but the author): the note of the token's own user is the one updated, and without
// one a new note is created. Before, the person's note was picked, the PUT got 403 and no
// note was posted at all.
func TestNoteIgnoresAPersonsNoteWithTheMarker(t *testing.T) {
	fake := gitlabtest.New(t)
	fake.AddNote(17, "<!-- zof:checkout-service/staging -->\nquoted by a person", "alice", false)
	var log strings.Builder
	note, _ := New(pipeline(fake), "glpat-api", &log, nil, fast())
	if err := note.Report(context.Background(), reporttest.Failures(t)); err != nil {
		t.Fatal(err)
	}
	if n := fake.Calls("PUT", `.*/notes/\d+`); n != 0 {
		t.Errorf("%d edits of the person's note", n)
	}
	if n := fake.Calls("POST", `.*/notes`); n != 1 {
		t.Fatalf("%d creates, want 1", n)
	}
	// The next pipeline updates the bot's note, still not the person's.
	if err := note.Report(context.Background(), reporttest.AllPassed(t)); err != nil {
		t.Fatal(err)
	}
	if n := fake.Calls("POST", `.*/notes`); n != 1 {
		t.Errorf("%d creates, want still 1", n)
	}
	if n := fake.Calls("PUT", `.*/notes/\d+`); n != 1 {
		t.Errorf("%d updates, want 1", n)
	}
	if n := fake.Calls("GET", `/api/v4/user`); n != 1 {
		t.Errorf("GET /user %d times, want once", n)
	}
	for _, n := range fake.NotesOf(17) {
		if n.Author.Username == "alice" && n.Body != "<!-- zof:checkout-service/staging -->\nquoted by a person" {
			t.Errorf("the person's note was changed: %q", n.Body)
		}
	}
	if log.Len() != 0 {
		t.Errorf("log: %s", log.String())
	}
}

// TestCommitStatusLinksTheJobWithoutARunURL: an embedded run has no run URL; its commit
// status links the CI job (CI_JOB_URL) instead of nothing.
func TestCommitStatusLinksTheJobWithoutARunURL(t *testing.T) {
	fake := gitlabtest.New(t)
	p := pipeline(fake)
	p.JobURL = "https://gitlab.example.com/group/checkout/-/jobs/55"
	_, status := New(p, "glpat-api", nil, nil, fast())
	res := reporttest.Failures(t)
	res.Run.URL = ""
	if err := status.Start(context.Background(), res.Run); err != nil {
		t.Fatal(err)
	}
	if err := status.Report(context.Background(), res); err != nil {
		t.Fatal(err)
	}
	got := fake.StatusList()
	if len(got) != 2 {
		t.Fatalf("%d statuses", len(got))
	}
	for _, s := range got {
		if s.TargetURL != p.JobURL {
			t.Errorf("%s status links %q, want the job %q", s.State, s.TargetURL, p.JobURL)
		}
	}
}

// TestNoteShadow: a shadow run's note says what the subset would have
// concluded and names the failures it would have missed, with why.
func TestNoteShadow(t *testing.T) {
	fake := gitlabtest.New(t)
	note, _ := New(pipeline(fake), "glpat-api", nil, nil, fast())
	note.Now = reporttest.Now
	res := reporttest.Failures(t)
	res.Shadow = &api.ShadowResult{Scope: "changed", Selected: []string{"cart"}, Verdict: "passed", TimeShare: 0.25, Members: 4, SelectedMembers: 1,
		Missed: []api.ShadowMiss{{Case: "search", Status: api.StatusFailed, Why: api.ShadowWhyNoEdge, Detail: "none of the 1 changed file matches its covers (services/search/**)"}}}
	if err := note.Report(context.Background(), res); err != nil {
		t.Fatal(err)
	}
	golden(t, "note-shadow.md", fake.NotesOf(17)[0].Body)
}
