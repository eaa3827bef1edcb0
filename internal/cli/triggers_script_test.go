package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/ci/github/githubtest"
	"github.com/zof-ai/zof-ci/internal/server/webhook"
)

// The commands of the trigger scripts (serve_triggers.txtar).

// ghdeliver SECRET EVENT DELIVERY FILE URL...: post FILE as one GitHub webhook delivery
// (X-GitHub-Event EVENT, X-GitHub-Delivery DELIVERY, X-Hub-Signature-256 made with SECRET,
// as GitHub signs) to every URL at once, as GitHub redelivering it to several replicas
// would. It prints one line per answer, "STATUS TRIGGER STATE RUN" (RUN "-" when none),
// highest status first, then "distinct triggers: N".
func ghdeliver(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 5 {
		ts.Fatalf("usage: ghdeliver SECRET EVENT DELIVERY FILE URL...")
	}
	secret, event, delivery := args[0], args[1], args[2]
	body := []byte(ts.ReadFile(args[3]))
	urls := args[4:]
	type answer struct {
		status int
		trg    api.Trigger
	}
	answers := make([]answer, len(urls))
	errs := make([]error, len(urls))
	c := &http.Client{Timeout: 30 * time.Second}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, u := range urls {
		wg.Go(func() {
			req, err := http.NewRequest(http.MethodPost, u, bytes.NewReader(body))
			if err != nil {
				errs[i] = err
				return
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-GitHub-Event", event)
			req.Header.Set("X-GitHub-Delivery", delivery)
			req.Header.Set("X-Hub-Signature-256", webhook.SignGitHub(secret, body))
			<-start
			resp, err := c.Do(req)
			if err != nil {
				errs[i] = err
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			if err != nil {
				errs[i] = err
				return
			}
			answers[i].status = resp.StatusCode
			if err := json.Unmarshal(b, &answers[i].trg); err != nil {
				errs[i] = fmt.Errorf("%s answered %d %s: %w", u, resp.StatusCode, b, err)
			}
		})
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		ts.Check(err)
	}
	slices.SortStableFunc(answers, func(a, b answer) int { return b.status - a.status })
	ids := map[string]bool{}
	for _, a := range answers {
		run := a.trg.RunID
		if run == "" {
			run = "-"
		}
		fmt.Fprintf(ts.Stdout(), "%d %s %s %s\n", a.status, a.trg.ID, a.trg.State, run)
		ids[a.trg.ID] = true
	}
	fmt.Fprintf(ts.Stdout(), "distinct triggers: %d\n", len(ids))
}

// waitget SECS URL REGEXP: GET URL (with ZOF_TOKEN as the bearer token when set) until
// its body matches REGEXP, for at most SECS seconds; the matching body is the stdout.
func waitget(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: waitget SECS URL REGEXP")
	}
	secs, err := strconv.Atoi(args[0])
	ts.Check(err)
	re, err := regexp.Compile(args[2])
	ts.Check(err)
	c := &http.Client{Timeout: 10 * time.Second}
	var last string
	for end := time.Now().Add(time.Duration(secs) * time.Second); ; time.Sleep(100 * time.Millisecond) {
		req, err := http.NewRequest(http.MethodGet, args[1], nil)
		ts.Check(err)
		if tok := ts.Getenv("ZOF_TOKEN"); tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		if resp, err := c.Do(req); err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			last = fmt.Sprintf("%d %s", resp.StatusCode, b)
			if resp.StatusCode == http.StatusOK && re.Match(b) {
				fmt.Fprintf(ts.Stdout(), "%s\n", b)
				return
			}
		} else {
			last = err.Error()
		}
		if time.Now().After(end) {
			ts.Fatalf("%s did not match %q within %ds; last answer: %s", args[1], args[2], secs, last)
		}
	}
}

// ghfakeWaitCheckRuns is ghfake waitcheckruns N STATUS [SECS]: wait (60s unless SECS)
// until N check runs have STATUS, and print them.
func ghfakeWaitCheckRuns(ts *testscript.TestScript, f *githubtest.Fake, a []string) {
	if len(a) != 2 && len(a) != 3 {
		ts.Fatalf("usage: ghfake waitcheckruns N STATUS [SECS]")
	}
	n, err := strconv.Atoi(a[0])
	ts.Check(err)
	secs := 60
	if len(a) == 3 {
		secs, err = strconv.Atoi(a[2])
		ts.Check(err)
	}
	var got []string
	for end := time.Now().Add(time.Duration(secs) * time.Second); ; time.Sleep(50 * time.Millisecond) {
		got = got[:0]
		matched := 0
		for _, cr := range f.Runs() {
			got = append(got, fmt.Sprintf("%s %s %s %s", cr.Name, cr.ExternalID, cr.Status, cr.Conclusion))
			if cr.Status == a[1] {
				matched++
			}
		}
		if matched == n {
			fmt.Fprintf(ts.Stdout(), "%s\n", strings.Join(got, "\n"))
			return
		}
		if time.Now().After(end) {
			ts.Fatalf("%d check runs %s within %ds, want %d; check runs:\n%s", matched, a[1], secs, n, strings.Join(got, "\n"))
		}
	}
}

// waitmatch SECS FILE REGEXP: wait (at most SECS seconds) until FILE, e.g. the log a
// background command writes, matches REGEXP.
func waitmatch(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: waitmatch SECS FILE REGEXP")
	}
	secs, err := strconv.Atoi(args[0])
	ts.Check(err)
	re, err := regexp.Compile(args[2])
	ts.Check(err)
	for end := time.Now().Add(time.Duration(secs) * time.Second); ; time.Sleep(50 * time.Millisecond) {
		b, _ := os.ReadFile(ts.MkAbs(args[1]))
		if re.Match(b) {
			return
		}
		if time.Now().After(end) {
			ts.Fatalf("%s did not match %q within %ds", args[1], args[2], secs)
		}
	}
}
