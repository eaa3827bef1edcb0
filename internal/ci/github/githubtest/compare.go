package githubtest

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
)

// Limits of GET /repos/{owner}/{repo}/compare/{base}...{head}
// (https://docs.github.com/rest/commits/commits#compare-two-commits).
const (
	// MaxCompareFiles: the list of changed files "includes up to 300 changed
	// files for the entire comparison" (silently cut there).
	MaxCompareFiles = 300
	// MaxCompareCommits: "without any paging parameter (per_page or page),
	// the returned list is limited to 250 commits".
	MaxCompareCommits = 250
)

// Comparison is what the compare endpoint answers for one base...head.
type Comparison struct {
	Files []File
	// MergeBase is the merge base's sha (default: the base as given).
	MergeBase string
	// Status is ahead, behind, diverged or identical (default ahead).
	Status string
	// Commits is how many commits head has beyond the merge base (default 1).
	Commits int
}

// SetCompare sets the answer for base...head (safe while the fake serves).
func (f *Fake) SetCompare(base, head string, c Comparison) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.compares == nil {
		f.compares = map[string]Comparison{}
	}
	f.compares[base+"..."+head] = c
}

var comparePath = regexp.MustCompile(`^/repos/([^/]+)/([^/]+)/compare/(.+)$`)

// compare answers like GitHub: in paginated mode (page or per_page given)
// the files come only with page 1, the commits a page at a time; without,
// at most 250 commits; the files are cut at 300 either way.
func (f *Fake) compare(w http.ResponseWriter, r *http.Request, basehead string) {
	base, head, ok := strings.Cut(basehead, "...")
	c, found := f.compares[basehead]
	if !ok || !found {
		writeJSONRaw(w, 404, `{"message":"Not Found","documentation_url":"https://docs.github.com/rest/commits/commits#compare-two-commits"}`)
		return
	}
	if c.MergeBase == "" {
		c.MergeBase = base
	}
	if c.Status == "" {
		c.Status = "ahead"
	}
	if c.Commits == 0 {
		c.Commits = 1
	}
	files := c.Files
	if len(files) > MaxCompareFiles {
		files = files[:MaxCompareFiles]
	}
	q := r.URL.Query()
	paged := q.Has("page") || q.Has("per_page")
	lo, hi := 0, min(c.Commits, MaxCompareCommits)
	if paged {
		page, per := max(atoiOr(q.Get("page"), 1), 1), min(max(atoiOr(q.Get("per_page"), DefaultPerPage), 1), MaxPerPage)
		lo, hi = min((page-1)*per, c.Commits), min(page*per, c.Commits)
		if page > 1 {
			files = nil
		}
		if hi < c.Commits {
			w.Header().Set("Link", fmt.Sprintf(`<%s%s?page=%d&per_page=%d>; rel="next"`, f.URL, r.URL.EscapedPath(), page+1, per))
		}
	}
	commits := make([]map[string]string, 0, hi-lo)
	for i := lo; i < hi; i++ {
		commits = append(commits, map[string]string{"sha": fmt.Sprintf("%040x", i+1)})
	}
	if files == nil {
		files = []File{}
	}
	writeJSON(w, 200, map[string]any{
		"status": c.Status, "ahead_by": c.Commits, "behind_by": 0, "total_commits": c.Commits,
		"base_commit":       map[string]string{"sha": base},
		"merge_base_commit": map[string]string{"sha": c.MergeBase},
		"commits":           commits,
		"files":             files,
		"url":               f.URL + r.URL.EscapedPath(),
		"head":              head,
	})
}
