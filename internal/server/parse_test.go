package server_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/zof-ai/zof-ci/internal/server"
)

func TestParseAfter(t *testing.T) {
	tests := []struct {
		header string
		after  []string
		want   int64
		err    string
	}{
		{"", nil, 0, ""},
		{"", []string{""}, 0, ""},
		{"7", nil, 7, ""},
		{" 7 ", nil, 7, ""},
		{"", []string{"9"}, 9, ""},
		{"3", []string{"9"}, 3, ""}, // the header wins
		{"", []string{"1", "2"}, 0, "more than once"},
		{"x", nil, 0, "Last-Event-ID \"x\" is not an event id"},
		{"", []string{"-2"}, 0, "?after= \"-2\" is negative"},
		{"1e3", nil, 0, "not an event id"},
		{"0x10", nil, 0, "not an event id"},
		{"9223372036854775808", nil, 0, "too large"},
	}
	for _, tt := range tests {
		got, err := server.ParseAfter(tt.header, tt.after)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseAfter(%q, %q) error %v, want %q", tt.header, tt.after, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseAfter(%q, %q) = %d, %v; want %d", tt.header, tt.after, got, err, tt.want)
		}
	}
}

func FuzzParseAfter(f *testing.F) {
	for _, s := range []string{"", "0", "12", "-1", "abc", "99999999999999999999", " 5", "٣"} {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, header, after string) {
		n, err := server.ParseAfter(header, []string{after})
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		if n < 0 {
			t.Fatalf("negative seq %d from %q %q", n, header, after)
		}
		src := strings.TrimSpace(header)
		if src == "" {
			src = strings.TrimSpace(after)
		}
		if src == "" {
			if n != 0 {
				t.Fatalf("empty input gave %d", n)
			}
			return
		}
		if back, _ := strconv.ParseInt(src, 10, 64); back != n || strings.TrimLeft(src, "0123456789") != "" {
			t.Fatalf("%q parsed as %d", src, n)
		}
	})
}

func TestParseIdempotencyKey(t *testing.T) {
	tests := []struct{ in, want, err string }{
		{`"abc"`, "abc", ""},
		{`"a \"quoted\" \\ key"`, `a "quoted" \ key`, ""},
		{`abc-123_X.~`, "abc-123_X.~", ""},
		{` "padded" `, "padded", ""},
		{`""`, "", "empty"},
		{``, "", "empty"},
		{`"abc`, "", "not closed"},
		{`"a"b"`, "", "after its closing quote"},
		{`"a\b"`, "", "backslash"},
		{"\"a\tb\"", "", "not printable"},
		{`a b`, "", "space"},
		{`"` + strings.Repeat("a", 256) + `"`, "", "256 characters"},
		{`"` + strings.Repeat("a", 255) + `"`, strings.Repeat("a", 255), ""},
	}
	for _, tt := range tests {
		got, err := server.ParseIdempotencyKey(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseIdempotencyKey(%q) error %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseIdempotencyKey(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func FuzzParseIdempotencyKey(f *testing.F) {
	for _, s := range []string{`"abc"`, `abc`, `"a\"b"`, `""`, `"`, `"\`, "\x00", `"é"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		key, err := server.ParseIdempotencyKey(in)
		if err != nil {
			return
		}
		if key == "" || len(key) > server.MaxIdempotencyKey {
			t.Fatalf("accepted %q as %q", in, key)
		}
		for i := 0; i < len(key); i++ {
			if key[i] < 0x20 || key[i] > 0x7e {
				t.Fatalf("accepted a non-printable key %q", key)
			}
		}
	})
}
