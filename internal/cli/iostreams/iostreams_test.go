package iostreams

import (
	"bytes"
	"os"
	"testing"
)

func TestSystemTTY(t *testing.T) {
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	// /dev/null is a character device: os.ModeCharDevice called it a terminal.
	if fi, err := devNull.Stat(); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		t.Fatalf("%s is not a character device here (%v): this test would not tell", os.DevNull, err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	file, err := os.Create(t.TempDir() + "/log")
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()

	for _, tt := range []struct {
		name string
		out  any
		want bool
	}{
		{"/dev/null", devNull, false},
		{"a pipe", w, false},
		{"a file", file, false},
		{"a buffer", &bytes.Buffer{}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, _ := tt.out.(interface{ Write([]byte) (int, error) })
			if got := System(nil, out, nil).IsStdoutTTY(); got != tt.want {
				t.Errorf("IsStdoutTTY() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSetStdoutTTY(t *testing.T) {
	s, _, _, _ := Test()
	if s.IsStdoutTTY() {
		t.Fatal("test streams start as a terminal")
	}
	s.SetStdoutTTY(true)
	if !s.IsStdoutTTY() {
		t.Fatal("SetStdoutTTY(true) did not stick")
	}
}
