package apifake

import (
	"net/http/httptest"
	"testing"
)

func TestFaultsAreServedOnceUnlessSticky(t *testing.T) {
	var l Log
	l.Fail("GET", "/a/.*", Fault{Status: 502}, false)
	l.Fail("POST", "/b", Fault{Status: 403}, true)
	get := httptest.NewRequest("GET", "/a/1?x=y", nil)
	post := httptest.NewRequest("POST", "/b", nil)
	steps := []struct {
		r      string
		status int
		ok     bool
	}{{"get", 502, true}, {"get", 0, false}, {"post", 403, true}, {"post", 403, true}}
	for i, s := range steps {
		req := get
		if s.r == "post" {
			req = post
		}
		ft, ok := l.Record(req, req.URL.Path, []byte(s.r), "token")
		if ok != s.ok || ft.Status != s.status {
			t.Errorf("request %d (%s): fault %d %v, want %d %v", i, s.r, ft.Status, ok, s.status, s.ok)
		}
	}
	if n := l.Calls("GET", "/a/.*"); n != 2 {
		t.Errorf("Calls(GET) = %d, want 2", n)
	}
	if b := l.Bodies("POST", "/b"); len(b) != 2 || string(b[1]) != "post" {
		t.Errorf("Bodies(POST) = %q", b)
	}
	if r := l.Requests[0]; r.Query != "x=y" || r.Auth != "token" {
		t.Errorf("first request = %+v", r)
	}
	w := httptest.NewRecorder()
	Fault{Status: 429, Header: map[string]string{"Retry-After": "1"}, Body: `{"message":"slow down"}`}.Write(w)
	if w.Code != 429 || w.Header().Get("Retry-After") != "1" || w.Body.String() != `{"message":"slow down"}` {
		t.Errorf("Write: %d %v %q", w.Code, w.Header(), w.Body)
	}
}
