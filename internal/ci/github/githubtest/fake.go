// Package githubtest is a fake of the parts of GitHub's REST API zof uses (pull
// request files, comparisons, file contents, check runs, GitHub App tokens), for tests: it follows the documented request and
// response shapes and limits, counts calls, stores bodies, and can be told to
// fail like the real one (403 without permission, rate limits, 5xx).
package githubtest

import (
	"encoding/json"
	"fmt"
	"github.com/zof-ai/zof-ci/internal/apifake"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

// Limits the fake enforces, as GitHub documents them
// (https://docs.github.com/rest/checks/runs, https://docs.github.com/rest/pulls/pulls#list-pull-requests-files).
const (
	MaxAnnotationsPerRequest = 50
	// MaxOutputBytes: GitHub counts output.summary and output.text in bytes ("text
	// exceeds a maximum bytesize of 65535"), although its reference says characters.
	MaxOutputBytes = 65535
	MaxFiles       = 3000
	MaxPerPage     = 100
	DefaultPerPage = 30
)

// File is one entry of a pull request's files.
type File struct {
	Filename         string `json:"filename"`
	Status           string `json:"status"`
	PreviousFilename string `json:"previous_filename,omitempty"`
}

// Request is one call the fake received.
type Request = apifake.Request

// Annotation is a check run annotation as stored.
type Annotation struct {
	Path            string `json:"path"`
	StartLine       int    `json:"start_line"`
	EndLine         int    `json:"end_line"`
	AnnotationLevel string `json:"annotation_level"`
	Message         string `json:"message"`
	Title           string `json:"title,omitempty"`
	RawDetails      string `json:"raw_details,omitempty"`
}

// Output is a check run's output as stored (annotations accumulate over updates).
type Output struct {
	Title       string       `json:"title"`
	Summary     string       `json:"summary"`
	Text        string       `json:"text,omitempty"`
	Annotations []Annotation `json:"annotations,omitempty"`
}

// CheckRun is a stored check run.
type CheckRun struct {
	ID          int64  `json:"id"`
	Name        string `json:"name"`
	HeadSHA     string `json:"head_sha"`
	Status      string `json:"status"`
	Conclusion  string `json:"conclusion,omitempty"`
	DetailsURL  string `json:"details_url,omitempty"`
	ExternalID  string `json:"external_id,omitempty"`
	Output      Output `json:"output"`
	Annotations []Annotation
}

// Fault is a canned failure: status, headers and a JSON body.
type Fault = apifake.Fault

// Forbidden is GitHub's answer to a token without the permission (a fork's
// read-only GITHUB_TOKEN, or no `checks: write`).
var Forbidden = Fault{Status: 403, Body: `{"message":"Resource not accessible by integration","documentation_url":"https://docs.github.com/rest/checks/runs#create-a-check-run"}`}

// ServerError is a 502 as GitHub's front end gives it.
var ServerError = Fault{Status: 502, Body: `{"message":"Server Error"}`}

// Fake is the fake API. Set fields before the first request.
type Fake struct {
	*httptest.Server

	mu sync.Mutex
	// Files are the pull requests' files by number.
	Files map[int][]File
	// CheckRuns by id.
	CheckRuns map[int64]*CheckRun
	nextID    int64
	// Log has the requests received (Requests, Calls, Bodies) and the faults
	// served instead of the real answer (Fail).
	apifake.Log
	// App, when set (EnableApp), makes the fake authenticate like GitHub
	// with a GitHub App; nil accepts any token.
	App *App
	// compares answers the compare endpoint, by "base...head" (SetCompare).
	compares map[string]Comparison
	// contents answers the contents endpoint, by "owner/repo@ref:path" (SetContent).
	contents map[string][]byte
}

// Cleaner is the part of testing.TB New needs, so a testscript command (or a
// benchmark) can start a fake too.
type Cleaner interface {
	Cleanup(func())
}

var _ Cleaner = (testing.TB)(nil)

// New starts a fake; it is closed when the test ends.
func New(t Cleaner) *Fake {
	f := &Fake{Files: map[int][]File{}, CheckRuns: map[int64]*CheckRun{}, nextID: 1000}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Server.Close)
	return f
}

// Run returns a copy of the check run with id, or nil.
func (f *Fake) Run(id int64) *CheckRun {
	f.mu.Lock()
	defer f.mu.Unlock()
	cr, ok := f.CheckRuns[id]
	if !ok {
		return nil
	}
	c := *cr
	c.Annotations = append([]Annotation(nil), cr.Annotations...)
	return &c
}

// Only returns the only check run, failing the test if there is not exactly one.
func (f *Fake) Only(t testing.TB) *CheckRun {
	t.Helper()
	f.mu.Lock()
	ids := make([]int64, 0, len(f.CheckRuns))
	for id := range f.CheckRuns {
		ids = append(ids, id)
	}
	f.mu.Unlock()
	if len(ids) != 1 {
		t.Fatalf("want exactly one check run, have %d", len(ids))
	}
	return f.Run(ids[0])
}

// SetFiles sets pull request n's files (safe while the fake serves).
func (f *Fake) SetFiles(n int, files []File) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Files[n] = files
}

// Runs returns copies of every check run, by id.
func (f *Fake) Runs() []CheckRun {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]CheckRun, 0, len(f.CheckRuns))
	for _, cr := range f.CheckRuns {
		c := *cr
		c.Annotations = append([]Annotation(nil), cr.Annotations...)
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// AddRun stores a check run as if created earlier (a retried step finds it).
func (f *Fake) AddRun(cr CheckRun) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	cr.ID = f.nextID
	f.CheckRuns[cr.ID] = &cr
	return cr.ID
}

// APIVersions are the REST API versions GitHub accepts in X-GitHub-Api-Version; another is
// refused with 400 (https://docs.github.com/rest/about-the-rest-api/api-versions).
var APIVersions = []string{"2022-11-28"}

// checkHeaders enforces what GitHub's REST API does with every request's headers: an
// X-GitHub-Api-Version it does not support is refused with 400 (none means the default,
// 2022-11-28), and an Accept that admits no JSON with 415 (application/vnd.github+json is
// recommended; go-github sends application/vnd.github.v3+json).
func checkHeaders(r *http.Request) (string, int) {
	if v := r.Header.Get("X-GitHub-Api-Version"); v != "" && !oneOf(v, APIVersions...) {
		return fmt.Sprintf("API version %s is not supported.", v), http.StatusBadRequest
	}
	accept := r.Header.Get("Accept")
	if accept != "" && !strings.Contains(accept, "application/vnd.github") && !strings.Contains(accept, "application/json") && !strings.Contains(accept, "*/*") {
		return fmt.Sprintf("Unsupported 'Accept' header: %q. Must accept 'application/json'.", accept), http.StatusUnsupportedMediaType
	}
	return "", 0
}

var (
	filesPath  = regexp.MustCompile(`^/repos/([^/]+)/([^/]+)/pulls/(\d+)/files$`)
	createPath = regexp.MustCompile(`^/repos/([^/]+)/([^/]+)/check-runs$`)
	updatePath = regexp.MustCompile(`^/repos/([^/]+)/([^/]+)/check-runs/(\d+)$`)
	listPath   = regexp.MustCompile(`^/repos/([^/]+)/([^/]+)/commits/([^/]+)/check-runs$`)
)

func (f *Fake) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if ft, ok := f.Record(r, r.URL.Path, body, r.Header.Get("Authorization")); ok {
		ft.Write(w)
		return
	}
	if msg, status := checkHeaders(r); msg != "" {
		writeJSONRaw(w, status, fmt.Sprintf(`{"message":%q}`, msg))
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.App != nil && (f.App.serve(w, r, body) || !f.App.authorize(w, r)) {
		return
	}
	switch {
	case r.Method == http.MethodGet && comparePath.MatchString(r.URL.Path):
		f.compare(w, r, comparePath.FindStringSubmatch(r.URL.Path)[3])
	case r.Method == http.MethodGet && contentsPath.MatchString(r.URL.EscapedPath()):
		f.content(w, r, contentsPath.FindStringSubmatch(r.URL.EscapedPath()))
	case r.Method == http.MethodGet && filesPath.MatchString(r.URL.Path):
		m := filesPath.FindStringSubmatch(r.URL.Path)
		n, _ := strconv.Atoi(m[3])
		f.listFiles(w, r, n)
	case r.Method == http.MethodPost && createPath.MatchString(r.URL.Path):
		f.createRun(w, body)
	case r.Method == http.MethodPatch && updatePath.MatchString(r.URL.Path):
		id, _ := strconv.ParseInt(updatePath.FindStringSubmatch(r.URL.Path)[3], 10, 64)
		f.updateRun(w, id, body)
	case r.Method == http.MethodGet && listPath.MatchString(r.URL.Path):
		f.listRuns(w, r, listPath.FindStringSubmatch(r.URL.Path)[3])
	default:
		writeJSONRaw(w, 404, `{"message":"Not Found","documentation_url":"https://docs.github.com/rest"}`)
	}
}

func (f *Fake) listFiles(w http.ResponseWriter, r *http.Request, n int) {
	files, ok := f.Files[n]
	if !ok {
		writeJSONRaw(w, 404, `{"message":"Not Found"}`)
		return
	}
	page, per := atoiOr(r.URL.Query().Get("page"), 1), atoiOr(r.URL.Query().Get("per_page"), DefaultPerPage)
	per = min(max(per, 1), MaxPerPage)
	page = max(page, 1)
	if len(files) > MaxFiles {
		files = files[:MaxFiles] // the silent cap
	}
	lo := min((page-1)*per, len(files))
	hi := min(lo+per, len(files))
	if hi < len(files) {
		w.Header().Set("Link", fmt.Sprintf(`<%s%s?page=%d&per_page=%d>; rel="next"`, f.URL, r.URL.Path, page+1, per))
	}
	writeJSON(w, 200, files[lo:hi])
}

type runBody struct {
	Name        *string `json:"name"`
	HeadSHA     *string `json:"head_sha"`
	Status      *string `json:"status"`
	Conclusion  *string `json:"conclusion"`
	DetailsURL  *string `json:"details_url"`
	ExternalID  *string `json:"external_id"`
	StartedAt   *string `json:"started_at"`
	CompletedAt *string `json:"completed_at"`
	Output      *Output `json:"output"`
}

// validate applies the documented rules; it returns a 422 message or "".
func validate(b *runBody) string {
	if b.Status != nil && !oneOf(*b.Status, "queued", "in_progress", "completed") {
		return "status is not included in the list"
	}
	if b.Conclusion != nil && !oneOf(*b.Conclusion, "action_required", "cancelled", "failure", "neutral", "success", "skipped", "stale", "timed_out") {
		return "conclusion is not included in the list"
	}
	if b.Status != nil && *b.Status == "completed" && b.Conclusion == nil {
		return "conclusion is required when status is completed"
	}
	o := b.Output
	if o == nil {
		return ""
	}
	if o.Title == "" || o.Summary == "" {
		return "output requires title and summary"
	}
	for name, s := range map[string]string{"title": o.Title, "summary": o.Summary, "text": o.Text} {
		if name != "title" && len(s) > MaxOutputBytes {
			return fmt.Sprintf("%s exceeds a maximum bytesize of %d", name, MaxOutputBytes)
		}
	}
	if len(o.Annotations) > MaxAnnotationsPerRequest {
		return fmt.Sprintf("only %d annotations are allowed per request", MaxAnnotationsPerRequest)
	}
	for _, a := range o.Annotations {
		if a.Path == "" || a.StartLine < 1 || a.EndLine < a.StartLine || a.Message == "" {
			return "annotation requires path, start_line, end_line and message"
		}
		if !oneOf(a.AnnotationLevel, "notice", "warning", "failure") {
			return "annotation_level is not included in the list"
		}
		if utf8.RuneCountInString(a.Title) > 255 {
			return "annotation title is too long (maximum is 255 characters)"
		}
		if len(a.Message) > 64*1024 || len(a.RawDetails) > 64*1024 {
			return "annotation message is too long (maximum is 64 KB)"
		}
	}
	return ""
}

func (f *Fake) createRun(w http.ResponseWriter, body []byte) {
	var b runBody
	if err := json.Unmarshal(body, &b); err != nil {
		writeJSONRaw(w, 400, `{"message":"Problems parsing JSON"}`)
		return
	}
	if b.Name == nil || *b.Name == "" || b.HeadSHA == nil || *b.HeadSHA == "" {
		writeJSONRaw(w, 422, `{"message":"Invalid request.\n\nname and head_sha are required."}`)
		return
	}
	if msg := validate(&b); msg != "" {
		writeJSON(w, 422, map[string]string{"message": msg})
		return
	}
	f.nextID++
	cr := &CheckRun{ID: f.nextID, Name: *b.Name, HeadSHA: *b.HeadSHA, Status: "queued"}
	apply(cr, &b)
	f.CheckRuns[cr.ID] = cr
	writeJSON(w, 201, cr)
}

func (f *Fake) updateRun(w http.ResponseWriter, id int64, body []byte) {
	cr, ok := f.CheckRuns[id]
	if !ok {
		writeJSONRaw(w, 404, `{"message":"Not Found"}`)
		return
	}
	var b runBody
	if err := json.Unmarshal(body, &b); err != nil {
		writeJSONRaw(w, 400, `{"message":"Problems parsing JSON"}`)
		return
	}
	if msg := validate(&b); msg != "" {
		writeJSON(w, 422, map[string]string{"message": msg})
		return
	}
	apply(cr, &b)
	writeJSON(w, 200, cr)
}

func apply(cr *CheckRun, b *runBody) {
	if b.Name != nil {
		cr.Name = *b.Name
	}
	if b.Status != nil {
		cr.Status = *b.Status
	}
	if b.Conclusion != nil {
		cr.Conclusion = *b.Conclusion
		cr.Status = "completed"
	}
	if b.DetailsURL != nil {
		cr.DetailsURL = *b.DetailsURL
	}
	if b.ExternalID != nil {
		cr.ExternalID = *b.ExternalID
	}
	if b.Output != nil {
		cr.Output.Title, cr.Output.Summary, cr.Output.Text = b.Output.Title, b.Output.Summary, b.Output.Text
		cr.Annotations = append(cr.Annotations, b.Output.Annotations...)
	}
}

func (f *Fake) listRuns(w http.ResponseWriter, r *http.Request, ref string) {
	name := r.URL.Query().Get("check_name")
	var runs []*CheckRun
	for _, cr := range f.CheckRuns {
		if cr.HeadSHA == ref && (name == "" || cr.Name == name) {
			runs = append(runs, cr)
		}
	}
	writeJSON(w, 200, map[string]any{"total_count": len(runs), "check_runs": runs})
}

func oneOf(s string, set ...string) bool {
	for _, v := range set {
		if s == v {
			return true
		}
	}
	return false
}

func atoiOr(s string, def int) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return def
	}
	return n
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	writeJSONRaw(w, status, string(b))
}

func writeJSONRaw(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	io.WriteString(w, strings.TrimSpace(body))
}

// Files makes n files "dir/file-0001.go" … with status modified.
func Files(n int) []File {
	out := make([]File, n)
	for i := range out {
		out[i] = File{Filename: fmt.Sprintf("dir/file-%04d.go", i+1), Status: "modified"}
	}
	return out
}
