// Package gitlabtest is a fake of the parts of GitLab's REST API v4 zof uses
// (merge request diffs, merge request notes, commit statuses), for tests: it
// follows the documented shapes, pagination headers and limits, checks the
// token's scope, counts calls, stores bodies, and can be told to fail.
package gitlabtest

import (
	"encoding/json"
	"fmt"
	"github.com/zof-ai/zof-ci/internal/apifake"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Limits as GitLab documents them.
const (
	MaxPerPage     = 100 // https://docs.gitlab.com/api/rest/#offset-based-pagination
	DefaultPerPage = 20
	// MaxNoteChars: a note body is at most 1,000,000 characters
	// (https://docs.gitlab.com/api/notes/).
	MaxNoteChars = 1_000_000
)

// Diff is one entry of GET /projects/:id/merge_requests/:iid/diffs.
type Diff struct {
	OldPath     string `json:"old_path"`
	NewPath     string `json:"new_path"`
	NewFile     bool   `json:"new_file"`
	RenamedFile bool   `json:"renamed_file"`
	DeletedFile bool   `json:"deleted_file"`
	Diff        string `json:"diff"`
}

// Note is a stored merge request note.
type Note struct {
	ID        int64     `json:"id"`
	Body      string    `json:"body"`
	System    bool      `json:"system"`
	Author    User      `json:"author"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// User is a GitLab user as the API shows it.
type User struct {
	ID       int64  `json:"id"`
	Username string `json:"username"`
}

// Bot is the user behind every token of the fake (a project access token's bot user).
var Bot = User{ID: 1, Username: "zof-bot"}

// Status is a stored commit status.
type Status struct {
	SHA         string `json:"sha"`
	State       string `json:"state"`
	Name        string `json:"name"`
	TargetURL   string `json:"target_url"`
	Description string `json:"description"`
	PipelineID  int64  `json:"pipeline_id"`
	Ref         string `json:"ref"`
}

// Request is one call the fake received.
type Request = apifake.Request

// Fault is a canned failure.
type Fault = apifake.Fault

// Fake is the fake API; its URL + "/api/v4" is CI_API_V4_URL.
type Fake struct {
	*httptest.Server
	mu sync.Mutex
	// Tokens maps a PRIVATE-TOKEN to whether it has api scope; unknown tokens get 401.
	Tokens map[string]bool
	// Diffs by merge request iid; MaxDiffFiles cuts the listing (the instance limit).
	Diffs        map[int64][]Diff
	MaxDiffFiles int
	// Notes by merge request iid.
	Notes    map[int64][]*Note
	Statuses []Status
	nextID   int64
	// Log has the requests received (Requests, Calls, Bodies; Auth is the
	// PRIVATE-TOKEN) and the faults served instead of the real answer (Fail).
	apifake.Log
}

// Cleaner is the part of testing.TB New needs, so a testscript command (or a
// benchmark) can start a fake too.
type Cleaner interface {
	Cleanup(func())
}

var _ Cleaner = (testing.TB)(nil)

// New starts a fake with one token, "glpat-api", that has api scope.
func New(t Cleaner) *Fake {
	f := &Fake{Tokens: map[string]bool{"glpat-api": true}, Diffs: map[int64][]Diff{}, Notes: map[int64][]*Note{}, MaxDiffFiles: 1000, nextID: 500}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Server.Close)
	return f
}

// APIURL is what CI_API_V4_URL would be.
func (f *Fake) APIURL() string { return f.URL + "/api/v4" }

// AddNote stores a note as if someone had written it.
func (f *Fake) AddNote(iid int64, body, author string, system bool) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	n := &Note{ID: f.nextID, Body: body, System: system, Author: User{ID: 1000 + f.nextID, Username: author}}
	if author == Bot.Username {
		n.Author = Bot
	}
	f.Notes[iid] = append(f.Notes[iid], n)
	return n.ID
}

// SetDiffs sets merge request iid's diffs (safe while the fake serves).
func (f *Fake) SetDiffs(iid int64, diffs []Diff) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Diffs[iid] = diffs
}

// StatusList returns a copy of the commit statuses posted, in order.
func (f *Fake) StatusList() []Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Status(nil), f.Statuses...)
}

// NotesOf returns copies of the merge request's notes.
func (f *Fake) NotesOf(iid int64) []Note {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Note
	for _, n := range f.Notes[iid] {
		out = append(out, *n)
	}
	return out
}

var (
	diffsPath    = regexp.MustCompile(`^/api/v4/projects/([^/]+)/merge_requests/(\d+)/diffs$`)
	notesPath    = regexp.MustCompile(`^/api/v4/projects/([^/]+)/merge_requests/(\d+)/notes$`)
	notePath     = regexp.MustCompile(`^/api/v4/projects/([^/]+)/merge_requests/(\d+)/notes/(\d+)$`)
	statusesPath = regexp.MustCompile(`^/api/v4/projects/([^/]+)/statuses/([0-9a-f]+)$`)
)

func (f *Fake) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	path := r.URL.EscapedPath()
	token := r.Header.Get("PRIVATE-TOKEN")
	if ft, ok := f.Record(r, path, body, token); ok {
		ft.Write(w)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	api, known := f.Tokens[token]
	if !known {
		raw(w, 401, `{"message":"401 Unauthorized"}`)
		return
	}
	if !api && r.Method != http.MethodGet {
		raw(w, 403, `{"error":"insufficient_scope","error_description":"The request requires higher privileges than provided by the access token.","scope":"api"}`)
		return
	}
	switch {
	case r.Method == http.MethodGet && path == "/api/v4/user":
		js(w, 200, Bot)
	case r.Method == http.MethodGet && diffsPath.MatchString(path):
		iid, _ := strconv.ParseInt(diffsPath.FindStringSubmatch(path)[2], 10, 64)
		diffs := f.Diffs[iid]
		if f.MaxDiffFiles > 0 && len(diffs) > f.MaxDiffFiles {
			diffs = diffs[:f.MaxDiffFiles]
		}
		page(w, r, diffs)
	case r.Method == http.MethodGet && notesPath.MatchString(path):
		iid, _ := strconv.ParseInt(notesPath.FindStringSubmatch(path)[2], 10, 64)
		page(w, r, f.Notes[iid])
	case r.Method == http.MethodPost && notesPath.MatchString(path):
		iid, _ := strconv.ParseInt(notesPath.FindStringSubmatch(path)[2], 10, 64)
		b, ok := noteBody(w, r, body)
		if !ok {
			return
		}
		f.nextID++
		n := &Note{ID: f.nextID, Body: b, CreatedAt: time.Unix(1_700_000_000, 0).UTC(), Author: Bot}
		f.Notes[iid] = append(f.Notes[iid], n)
		js(w, 201, n)
	case r.Method == http.MethodPut && notePath.MatchString(path):
		m := notePath.FindStringSubmatch(path)
		iid, _ := strconv.ParseInt(m[2], 10, 64)
		id, _ := strconv.ParseInt(m[3], 10, 64)
		b, ok := noteBody(w, r, body)
		if !ok {
			return
		}
		for _, n := range f.Notes[iid] {
			if n.ID == id {
				if n.Author.ID != Bot.ID {
					// GitLab lets only a note's author edit it.
					raw(w, 403, `{"message":"403 Forbidden"}`)
					return
				}
				n.Body = b
				n.UpdatedAt = time.Unix(1_700_000_100, 0).UTC()
				js(w, 200, n)
				return
			}
		}
		raw(w, 404, `{"message":"404 Not found"}`)
	case r.Method == http.MethodPost && statusesPath.MatchString(path):
		var s Status
		if err := decode(r, body, &s); err != nil {
			raw(w, 400, `{"message":"400 Bad request"}`)
			return
		}
		s.SHA = statusesPath.FindStringSubmatch(path)[2]
		switch s.State {
		case "pending", "running", "success", "failed", "canceled", "skipped":
		default:
			raw(w, 400, `{"error":"state does not have a valid value"}`)
			return
		}
		f.Statuses = append(f.Statuses, s)
		js(w, 201, s)
	default:
		raw(w, 404, `{"message":"404 Not Found"}`)
	}
}

// decode reads a JSON body, or a form / query as client-go may send either.
func decode(r *http.Request, body []byte, v any) error {
	if len(body) > 0 && body[0] == '{' {
		return json.Unmarshal(body, v)
	}
	vals, err := url.ParseQuery(string(body))
	if err != nil {
		return err
	}
	if len(vals) == 0 {
		vals = r.URL.Query()
	}
	m := map[string]any{}
	for k := range vals {
		m[k] = vals.Get(k)
		if n, err := strconv.ParseInt(vals.Get(k), 10, 64); err == nil && k == "pipeline_id" {
			m[k] = n
		}
	}
	b, _ := json.Marshal(m)
	return json.Unmarshal(b, v)
}

func noteBody(w http.ResponseWriter, r *http.Request, body []byte) (string, bool) {
	var in struct {
		Body string `json:"body"`
	}
	if err := decode(r, body, &in); err != nil || in.Body == "" {
		raw(w, 400, `{"message":"400 Bad request - body is missing"}`)
		return "", false
	}
	if len([]rune(in.Body)) > MaxNoteChars {
		raw(w, 400, `{"message":{"note":["is too long (maximum is 1000000 characters)"]}}`)
		return "", false
	}
	return in.Body, true
}

func page[T any](w http.ResponseWriter, r *http.Request, items []T) {
	q := r.URL.Query()
	p, per := atoi(q.Get("page"), 1), atoi(q.Get("per_page"), DefaultPerPage)
	per = min(max(per, 1), MaxPerPage)
	p = max(p, 1)
	lo := min((p-1)*per, len(items))
	hi := min(lo+per, len(items))
	pages := (len(items) + per - 1) / per
	w.Header().Set("X-Page", strconv.Itoa(p))
	w.Header().Set("X-Per-Page", strconv.Itoa(per))
	w.Header().Set("X-Total", strconv.Itoa(len(items)))
	w.Header().Set("X-Total-Pages", strconv.Itoa(pages))
	next := ""
	if hi < len(items) {
		next = strconv.Itoa(p + 1)
	}
	w.Header().Set("X-Next-Page", next)
	out := items[lo:hi]
	if out == nil {
		out = []T{}
	}
	js(w, 200, out)
}

func atoi(s string, def int) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return def
	}
	return n
}

func js(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	raw(w, status, string(b))
}

func raw(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// Diffs makes n modified files "src/f-0001.go" ….
func Diffs(n int) []Diff {
	out := make([]Diff, n)
	for i := range out {
		p := fmt.Sprintf("src/f-%04d.go", i+1)
		out[i] = Diff{OldPath: p, NewPath: p, Diff: "@@ -1 +1 @@\n-a\n+b\n"}
	}
	return out
}
