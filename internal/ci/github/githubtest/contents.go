package githubtest

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"path"
	"regexp"
)

// Limits of the contents API, as GitHub documents them
// (https://docs.github.com/rest/repos/contents#get-repository-content):
// files of 1 MB or less are served in every media type; between 1 and 100
// MB only the raw and object media types work, the object one with an
// empty content and encoding "none"; larger ones are not served.
const (
	MaxContentJSON = 1 << 20
	MaxContentRaw  = 100 << 20
)

// rawMediaType asks for the file's bytes instead of the JSON object.
const rawMediaType = "application/vnd.github.raw+json"

var contentsPath = regexp.MustCompile(`^/repos/([^/]+)/([^/]+)/contents/(.+)$`)

// SetContent makes file p of repo ("owner/name") at ref (a commit sha or
// branch) read as data through the contents API.
func (f *Fake) SetContent(repo, ref, p string, data []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.contents == nil {
		f.contents = map[string][]byte{}
	}
	f.contents[repo+"@"+ref+":"+p] = append([]byte(nil), data...)
}

// content serves GET /repos/{owner}/{repo}/contents/{path}?ref=: the raw
// bytes with the raw media type, else the JSON object with the content in
// base64; 404 for a file (or ref) it was not given.
func (f *Fake) content(w http.ResponseWriter, r *http.Request, m []string) {
	p, err := url.PathUnescape(m[3])
	if err != nil {
		writeJSONRaw(w, 400, `{"message":"Bad path"}`)
		return
	}
	data, ok := f.contents[m[1]+"/"+m[2]+"@"+r.URL.Query().Get("ref")+":"+p]
	switch {
	case !ok:
		writeJSONRaw(w, 404, `{"message":"Not Found","documentation_url":"https://docs.github.com/rest/repos/contents#get-repository-content"}`)
	case len(data) > MaxContentRaw:
		writeJSONRaw(w, 403, `{"message":"This API returns blobs up to 100 MB in size.","errors":[{"code":"too_large"}]}`)
	case r.Header.Get("Accept") == rawMediaType:
		w.Header().Set("Content-Type", "application/vnd.github.raw; charset=utf-8")
		_, _ = w.Write(data)
	default:
		obj := map[string]any{"type": "file", "name": path.Base(p), "path": p, "size": len(data), "encoding": "base64",
			"content": base64.StdEncoding.EncodeToString(data)}
		if len(data) > MaxContentJSON {
			obj["encoding"], obj["content"] = "none", ""
		}
		writeJSON(w, 200, obj)
	}
}
