package pgtest

import (
	"fmt"
	"strings"
	"testing"
)

// recorder is a testing.TB that records how a test ended.
type recorder struct {
	testing.TB
	failed, skipped bool
	msg             string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed, r.msg = true, fmt.Sprintf(format, args...)
	panic(r)
}
func (r *recorder) Skipf(format string, args ...any) {
	r.skipped, r.msg = true, fmt.Sprintf(format, args...)
	panic(r)
}

func run(env map[string]string) (r *recorder, url string) {
	r = &recorder{}
	defer func() {
		if p := recover(); p != nil && p != r {
			panic(p)
		}
	}()
	url = baseURL(r, func(k string) string { return env[k] })
	return r, url
}

func TestBaseURL(t *testing.T) {
	tests := []struct {
		name          string
		env           map[string]string
		fail, skip    bool
		url, mentions string
	}{
		{"set", map[string]string{EnvURL: "postgres://x@h/db"}, false, false, "postgres://x@h/db", ""},
		{"set in CI", map[string]string{EnvURL: "postgres://x@h/db", "CI": "true"}, false, false, "postgres://x@h/db", ""},
		{"missing in CI fails", map[string]string{"CI": "true"}, true, false, "", ".ci/postgres.sh"},
		{"missing locally skips", map[string]string{}, false, true, "", ".ci/postgres.sh"},
		{"missing under .ci/run fails", map[string]string{EnvRequire: "1"}, true, false, "", ".ci/postgres.sh"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, url := run(tt.env)
			if r.failed != tt.fail || r.skipped != tt.skip || url != tt.url {
				t.Fatalf("failed %v skipped %v url %q; want %v %v %q", r.failed, r.skipped, url, tt.fail, tt.skip, tt.url)
			}
			if !strings.Contains(r.msg, tt.mentions) {
				t.Fatalf("message %q does not say %q", r.msg, tt.mentions)
			}
		})
	}
}
