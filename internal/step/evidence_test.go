package step

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/secret"
)

// evidenceSecret is the run's secret in these tests; evidence must never
// hold it, nor its base64, nor its percent-encoding.
const evidenceSecret = "s3cr3t-Evid3nce-v4lue"

// leaks reports the encodings of evidenceSecret found in s.
func leaks(s string) []string {
	var found []string
	for name, form := range map[string]string{
		"plain":      evidenceSecret,
		"base64":     base64.StdEncoding.EncodeToString([]byte(evidenceSecret)),
		"basic-auth": base64.StdEncoding.EncodeToString([]byte("user:" + evidenceSecret)),
		"percent":    url.QueryEscape("!" + evidenceSecret)[3:],
	} {
		if strings.Contains(s, form) {
			found = append(found, name)
		}
	}
	return found
}

// evidenceServer answers /fail with a 500 whose headers and body echo the
// secret in several encodings, /big with a body larger than
// MaxEvidenceBody, /ok with a 200.
func evidenceServer(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Set-Cookie", "sid=opaque-session-id")
		w.Header().Set("X-Echo", r.Header.Get("X-Plain"))
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, `<h1>boom</h1> token=`+evidenceSecret+` b64=`+base64.StdEncoding.EncodeToString([]byte(evidenceSecret))+`
json={"t":"`+strings.ReplaceAll(evidenceSecret, "-", `\u002d`)+`"}`)
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
		io.WriteString(w, strings.Repeat("x", MaxEvidenceBody-10)+evidenceSecret+strings.Repeat("y", 1000))
	})
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "fine") })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestEvidence(t *testing.T) {
	srv := evidenceServer(t)
	mask := secret.NewMasker([]string{evidenceSecret})
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("user:"+evidenceSecret))
	get := func(path string, headers map[string]string) api.Step {
		return api.Step{HTTP: &api.HTTPRequest{Method: "GET", Path: path, Headers: headers}}
	}
	tests := []struct {
		name string
		step api.Step
		env  map[string]string
		// kinds of evidence expected, in order (none for a pass)
		kinds []api.ArtifactKind
		// each text must be in the evidence of the kind it is keyed by
		want map[api.ArtifactKind][]string
		// each text must be in no evidence
		never     []string
		truncated map[api.ArtifactKind]bool
	}{
		{
			name:  "a passing http step keeps nothing",
			step:  get("/ok", nil),
			kinds: nil,
		},
		{
			name: "a failing http step keeps request and response, secrets masked in every encoding",
			step: get("/fail?key=${vars.k}", map[string]string{
				"Authorization": "Bearer not-a-known-secret",
				"X-Plain":       "id " + evidenceSecret,
				"Cookie":        "c=also-not-known",
				"X-Api-Key":     "unknown-key-value",
				"Accept":        "application/json",
			}),
			env:   map[string]string{"Proxy-Authorization": basic},
			kinds: []api.ArtifactKind{api.ArtifactRequest, api.ArtifactResponse},
			want: map[api.ArtifactKind][]string{
				api.ArtifactRequest: {"GET " + srv.URL + "/fail?key=", " HTTP/1.1\n", "Authorization: ***\n", "Cookie: ***\n", "X-Api-Key: ***\n",
					"Proxy-Authorization: ***\n", "X-Plain: id ***\n", "Accept: application/json\n", "User-Agent: zof-ci\n", "Host: "},
				api.ArtifactResponse: {"HTTP/1.1 500 Internal Server Error\n", "Set-Cookie: ***\n", "X-Echo: id ***\n", "Content-Type: text/html\n", "\n\n<h1>boom</h1> token=*** b64=***"},
			},
			never: []string{"not-a-known-secret", "also-not-known", "unknown-key-value", "opaque-session-id"},
		},
		{
			name:      "a large body is cut at MaxEvidenceBody with a marker, masked before the cut",
			step:      get("/big", nil),
			kinds:     []api.ArtifactKind{api.ArtifactRequest, api.ArtifactResponse},
			want:      map[api.ArtifactKind][]string{api.ArtifactResponse: {"HTTP/1.1 502 Bad Gateway\n", "xxx***", "[zof: body cut: the first 256 KiB of it are kept (step.MaxEvidenceBody)]\n"}},
			never:     []string{strings.Repeat("y", 100)}, // the secret's mask shortened the text: a few fit
			truncated: map[api.ArtifactKind]bool{api.ArtifactResponse: true},
		},
		{
			name:  "no response: the request alone",
			step:  api.Step{HTTP: &api.HTTPRequest{Method: "POST", URL: "http://127.0.0.1:1/x", Headers: map[string]string{"X-Auth-Token": evidenceSecret}}},
			kinds: []api.ArtifactKind{api.ArtifactRequest},
			want:  map[api.ArtifactKind][]string{api.ArtifactRequest: {"POST http://127.0.0.1:1/x HTTP/1.1\n", "X-Auth-Token: ***\n"}},
		},
		{
			name:  "a passing run step keeps nothing",
			step:  cmdStep("echo fine"),
			kinds: nil,
		},
		{
			name:  "a failing run step keeps its output, stdout and stderr, masked",
			step:  cmdStep("echo out " + evidenceSecret + "; echo err $(printf %s " + evidenceSecret + " | base64) >&2; exit 3"),
			kinds: []api.ArtifactKind{api.ArtifactOutput},
			want:  map[api.ArtifactKind][]string{api.ArtifactOutput: {"$ echo out ***;", "out ***\n", "err ***\n", "exit code 3"}},
		},
		{
			name:      "a long output keeps its tail, marked truncated",
			step:      cmdStep("head -c 100000 /dev/zero | tr '\\0' a; echo; echo last line; exit 1"),
			kinds:     []api.ArtifactKind{api.ArtifactOutput},
			want:      map[api.ArtifactKind][]string{api.ArtifactOutput: {"bytes truncated)", "last line\n"}},
			truncated: map[api.ArtifactKind]bool{api.ArtifactOutput: true},
		},
	}
	ex := NewExecutor(ExecutorOptions{})
	defer ex.Close()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := Input{BaseURL: srv.URL, Headers: tc.env, Vars: map[string]string{"k": evidenceSecret}, Mask: mask, Dir: t.TempDir()}
			out := ex.Run(context.Background(), tc.step, in)
			if len(tc.kinds) == 0 {
				if out.Status != api.StepPassed || out.Evidence != nil {
					t.Fatalf("status %s, evidence %d pieces; want a pass with none", out.Status, len(out.Evidence))
				}
				return
			}
			if out.Status != api.StepFailed {
				t.Fatalf("status %s, want failed", out.Status)
			}
			if len(out.Evidence) != len(tc.kinds) {
				t.Fatalf("evidence has %d pieces, want %v", len(out.Evidence), tc.kinds)
			}
			for i, ev := range out.Evidence {
				text := string(ev.Content)
				if ev.Kind != tc.kinds[i] {
					t.Errorf("piece %d is %s, want %s", i, ev.Kind, tc.kinds[i])
				}
				if ev.ContentType != "text/plain; charset=utf-8" {
					t.Errorf("%s: content type %q, want text/plain: bodies are untrusted", ev.Kind, ev.ContentType)
				}
				if l := leaks(text); l != nil {
					t.Errorf("%s leaks the secret (%v):\n%s", ev.Kind, l, excerpt(text, 2000))
				}
				for _, w := range tc.want[ev.Kind] {
					if !strings.Contains(text, w) {
						t.Errorf("%s lacks %q:\n%s", ev.Kind, w, excerpt(text, 2000))
					}
				}
				for _, n := range tc.never {
					if strings.Contains(text, n) {
						t.Errorf("%s holds %q:\n%s", ev.Kind, n, excerpt(text, 2000))
					}
				}
				if ev.Truncated != tc.truncated[ev.Kind] {
					t.Errorf("%s: truncated %v, want %v", ev.Kind, ev.Truncated, tc.truncated[ev.Kind])
				}
				if len(ev.Content) > MaxEvidenceBody+4<<10 {
					t.Errorf("%s: %d bytes, more than MaxEvidenceBody and its headers", ev.Kind, len(ev.Content))
				}
			}
		})
	}
}

func TestSensitiveHeader(t *testing.T) {
	for name, want := range map[string]bool{
		"Authorization": true, "proxy-authorization": true, "Cookie": true, "Set-Cookie": true,
		"X-Api-Key": true, "X-Auth-Token": true, "X-Session-Id": true, "X-Client-Secret": true, "X-Hub-Signature-256": true,
		"WWW-Authenticate": false, "Content-Type": false, "Accept": false, "X-Request-Id": false,
	} {
		if got := sensitiveHeader(name); got != want {
			t.Errorf("sensitiveHeader(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestMaskedBodyCutsOnRuneBoundary(t *testing.T) {
	body := []byte(strings.Repeat("é", 10)) // 2 bytes each
	got, cut := maskedBody(nil, body, 5)
	if !cut || got != "éé" {
		t.Fatalf("maskedBody = %q, %v; want %q, true", got, cut, "éé")
	}
	got, cut = maskedBody(nil, body, 20)
	if cut || got != string(body) {
		t.Fatalf("maskedBody of a body within the limit = %q, %v", got, cut)
	}
}
