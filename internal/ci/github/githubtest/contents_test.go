package githubtest_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/zof-ai/zof-ci/internal/ci/github/githubtest"
)

// The contents endpoint answers as GitHub documents: the raw bytes with the
// raw media type, else the JSON object with base64 content (empty, encoding
// "none", beyond 1 MB), and 404 for an unknown file or ref.
func TestContents(t *testing.T) {
	f := githubtest.New(t)
	f.SetContent("acme/shop", "abc", "dir/zof.yaml", []byte("version: 1\n"))
	big := bytes.Repeat([]byte("x"), githubtest.MaxContentJSON+1)
	f.SetContent("acme/shop", "abc", "big.txt", big)
	tests := []struct {
		name, path, accept string
		status             int
		raw                []byte // the raw body wanted
		encoding, content  string // the JSON object's, when not raw
	}{
		{"raw", "/repos/acme/shop/contents/dir/zof.yaml?ref=abc", "application/vnd.github.raw+json", 200, []byte("version: 1\n"), "", ""},
		{"object", "/repos/acme/shop/contents/dir/zof.yaml?ref=abc", "application/vnd.github+json", 200, nil, "base64", base64.StdEncoding.EncodeToString([]byte("version: 1\n"))},
		{"escaped path", "/repos/acme/shop/contents/dir%2Fzof.yaml?ref=abc", "application/vnd.github.raw+json", 200, []byte("version: 1\n"), "", ""},
		{"over 1 MB as object", "/repos/acme/shop/contents/big.txt?ref=abc", "application/vnd.github+json", 200, nil, "none", ""},
		{"over 1 MB raw", "/repos/acme/shop/contents/big.txt?ref=abc", "application/vnd.github.raw+json", 200, big, "", ""},
		{"other ref", "/repos/acme/shop/contents/dir/zof.yaml?ref=def", "application/vnd.github.raw+json", 404, nil, "", ""},
		{"other repo", "/repos/acme/other/contents/dir/zof.yaml?ref=abc", "application/vnd.github.raw+json", 404, nil, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, f.URL+tt.path, nil)
			req.Header.Set("Accept", tt.accept)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status {
				t.Fatalf("%d %s, want %d", resp.StatusCode, body, tt.status)
			}
			switch {
			case tt.status != 200:
			case tt.raw != nil:
				if !bytes.Equal(body, tt.raw) {
					t.Errorf("raw body of %d bytes, want %d", len(body), len(tt.raw))
				}
			default:
				var obj struct{ Encoding, Content, Type string }
				if err := json.Unmarshal(body, &obj); err != nil {
					t.Fatal(err)
				}
				if obj.Type != "file" || obj.Encoding != tt.encoding || obj.Content != tt.content {
					t.Errorf("object %+v, want encoding %q content %q", obj, tt.encoding, tt.content)
				}
			}
		})
	}
}
