// Package apifake records the requests a fake third-party API (GitHub, GitLab) receives and
// serves the canned faults a test asks for; the fakes in ci/github/githubtest and
// ci/gitlab/gitlabtest embed it and answer everything else themselves.
package apifake

import (
	"io"
	"net/http"
	"regexp"
	"sync"
)

// Request is one request the fake received.
type Request struct {
	Method, Path, Query string
	Body                []byte
	// Auth is the credential header the API reads (GitHub: Authorization,
	// GitLab: PRIVATE-TOKEN).
	Auth string
}

// Fault is a canned answer served instead of the fake's own.
type Fault struct {
	Status int
	Header map[string]string
	Body   string
}

type fault struct {
	method string
	re     *regexp.Regexp
	f      Fault
	sticky bool
	when   func(body []byte) bool // nil: every matching request
}

// Log holds the requests received and the faults to serve. Its zero value is ready.
type Log struct {
	mu sync.Mutex
	// Requests received, in order. Read it once the calls under test are done.
	Requests []Request
	faults   []fault
}

// Fail serves ft for the next request to method and a path matching pathRE (the
// whole path); a sticky fault stays for every later request too.
func (l *Log) Fail(method, pathRE string, ft Fault, sticky bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.faults = append(l.faults, fault{method, regexp.MustCompile("^" + pathRE + "$"), ft, sticky, nil})
}

// FailWhen serves ft, sticky, for every request to method and a path matching pathRE whose
// body satisfies when (a completion with annotations, not the one-line one after it).
func (l *Log) FailWhen(method, pathRE string, ft Fault, when func(body []byte) bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.faults = append(l.faults, fault{method, regexp.MustCompile("^" + pathRE + "$"), ft, true, when})
}

// Record logs the request (path as the fake matches it, body already read) and
// returns the fault to serve for it, if any; the first matching fault is used
// and, unless sticky, removed.
func (l *Log) Record(r *http.Request, path string, body []byte, auth string) (Fault, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.Requests = append(l.Requests, Request{Method: r.Method, Path: path, Query: r.URL.RawQuery, Body: body, Auth: auth})
	for i, ft := range l.faults {
		if ft.method == r.Method && ft.re.MatchString(path) && (ft.when == nil || ft.when(body)) {
			if !ft.sticky {
				l.faults = append(l.faults[:i], l.faults[i+1:]...)
			}
			return ft.f, true
		}
	}
	return Fault{}, false
}

// Calls counts the requests to method and a path matching pathRE.
func (l *Log) Calls(method, pathRE string) int {
	return len(l.Bodies(method, pathRE))
}

// Bodies are the bodies of the requests to method and a path matching pathRE, in order.
func (l *Log) Bodies(method, pathRE string) [][]byte {
	re := regexp.MustCompile("^" + pathRE + "$")
	l.mu.Lock()
	defer l.mu.Unlock()
	var out [][]byte
	for _, r := range l.Requests {
		if r.Method == method && re.MatchString(r.Path) {
			out = append(out, r.Body)
		}
	}
	return out
}

// Write answers with the fault: its headers, status and body (JSON).
func (ft Fault) Write(w http.ResponseWriter) {
	for k, v := range ft.Header {
		w.Header().Set(k, v)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(ft.Status)
	_, _ = io.WriteString(w, ft.Body)
}
