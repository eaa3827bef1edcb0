package diff

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
	"github.com/zof-ai/zof-ci/api"
)

func TestReadList(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"empty", "", nil},
		{"unix", "a.go\nb/c.go\n", []string{"a.go", "b/c.go"}},
		{"windows and blank lines", "a.go\r\n\r\n\nb.go\r\n", []string{"a.go", "b.go"}},
		{"no final newline", "a.go\nb.go", []string{"a.go", "b.go"}},
		{"dedupe keeps first order", "b\na\nb\na\nc\n", []string{"b", "a", "c"}},
		{"spaces are part of names", " x \nwith space.txt\n", []string{" x ", "with space.txt"}},
		{"odd bytes kept", "bad\xff.txt\n", []string{"bad\xff.txt"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := ReadList(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			res, err := l.Changes(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			var want []Change
			for _, p := range tt.want {
				want = append(want, Change{Status: Unknown, Path: p})
			}
			if want == nil {
				want = []Change{}
			}
			if diff := cmp.Diff(&Result{Files: want, Source: "override", Complete: true}, res); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.want, res.Paths(), cmp.Comparer(func(a, b []string) bool { return len(a) == 0 && len(b) == 0 || cmp.Equal(a, b) })); diff != "" {
				t.Errorf("Paths mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadListError(t *testing.T) {
	_, err := ReadList(iotest.ErrReader(errors.New("boom")))
	if err == nil || !strings.Contains(err.Error(), "read changed files list: boom") {
		t.Fatalf("err = %v", err)
	}
	_, err = ReadList(strings.NewReader(strings.Repeat("x", maxListLine+1)))
	if err == nil {
		t.Fatal("over-long line accepted")
	}
}

func TestPathsAndSummary(t *testing.T) {
	r := &Result{
		Files: []Change{
			{Status: Modified, Path: "a.go"},
			{Status: Renamed, Path: "new/b.go", OldPath: "old/b.go"},
			{Status: Deleted, Path: "gone.go"},
			{Status: Copied, Path: "c2.go", OldPath: "a.go"},
			{Status: Added, Path: "d.go"},
		},
		Base: "b1", Head: "h1", Source: "git", Complete: true,
	}
	want := []string{"a.go", "old/b.go", "new/b.go", "gone.go", "c2.go", "d.go"}
	if diff := cmp.Diff(want, r.Paths()); diff != "" {
		t.Errorf("Paths mismatch (-want +got):\n%s", diff)
	}
	wantSum := &api.DiffSummary{Source: "git", Base: "b1", Head: "h1", Files: 5, Complete: true}
	if diff := cmp.Diff(wantSum, r.Summary()); diff != "" {
		t.Errorf("Summary mismatch (-want +got):\n%s", diff)
	}
	var nilRes *Result
	if nilRes.Paths() != nil || nilRes.Summary() != nil {
		t.Error("nil result should give nil paths and summary")
	}
}

func TestParseNameStatus(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Change
		err  string
	}{
		{name: "empty", in: ""},
		{name: "simple", in: "M\x00a.go\x00A\x00b c.go\x00D\x00d\x00T\x00link\x00U\x00conf\x00",
			want: []Change{{Modified, "a.go", ""}, {Added, "b c.go", ""}, {Deleted, "d", ""}, {TypeChange, "link", ""}, {Unmerged, "conf", ""}}},
		{name: "rename and copy", in: "R100\x00old\x00new\x00C075\x00src\x00dst\x00",
			want: []Change{{Renamed, "new", "old"}, {Copied, "dst", "src"}}},
		{name: "odd names", in: "A\x00new\nline\x00A\x00tab\there\x00A\x00bad\xff\xfe\x00A\x00\"q\"\x00",
			want: []Change{{Added, "new\nline", ""}, {Added, "tab\there", ""}, {Added, "bad\xff\xfe", ""}, {Added, "\"q\"", ""}}},
		{name: "unknown status", in: "Z\x00a\x00", err: `unknown status "Z"`},
		{name: "rename without score", in: "R\x00a\x00b\x00", err: `unknown status "R"`},
		{name: "score on add", in: "A50\x00a\x00", err: `unknown status "A50"`},
		{name: "missing path", in: "M\x00", err: `status "M" without a path`},
		{name: "missing new path", in: "R100\x00a\x00", err: `without a new path`},
		{name: "not terminated", in: "M", err: "truncated"},
		{name: "empty status", in: "\x00a\x00", err: "empty status"},
		{name: "empty path", in: "M\x00\x00", err: "without a path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseNameStatus([]byte(tt.in))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// encodeNameStatus is the inverse of ParseNameStatus, for the fuzz test.
func encodeNameStatus(cs []Change) []byte {
	letters := map[Status]string{Added: "A", Modified: "M", Deleted: "D", TypeChange: "T", Unmerged: "U", Unknown: "X", Renamed: "R100", Copied: "C050"}
	var b bytes.Buffer
	for _, c := range cs {
		b.WriteString(letters[c.Status] + "\x00")
		if c.OldPath != "" {
			b.WriteString(c.OldPath + "\x00")
		}
		b.WriteString(c.Path + "\x00")
	}
	return b.Bytes()
}

func FuzzParseNameStatus(f *testing.F) {
	f.Add([]byte("M\x00a.go\x00"))
	f.Add([]byte("R100\x00old\x00new\x00A\x00x y\x00"))
	f.Add([]byte("A\x00bad\xff\x00D\x00new\nline\x00"))
	f.Add([]byte("C75\x00a\x00"))
	f.Add([]byte("M"))
	f.Add([]byte("\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := ParseNameStatus(in)
		if err != nil {
			return
		}
		for _, c := range got {
			if c.Path == "" || strings.IndexByte(c.Path, 0) >= 0 || strings.IndexByte(c.OldPath, 0) >= 0 {
				t.Fatalf("bad change %q", c)
			}
			if (c.Status == Renamed || c.Status == Copied) != (c.OldPath != "") {
				t.Fatalf("old path on %s: %q", c.Status, c)
			}
		}
		again, err := ParseNameStatus(encodeNameStatus(got))
		if err != nil {
			t.Fatalf("re-encoded output does not parse: %v", err)
		}
		if !cmp.Equal(got, again) {
			t.Fatalf("round trip: %q != %q", got, again)
		}
	})
}
