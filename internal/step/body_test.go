package step

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// chunkReader returns at most n bytes per Read, then err instead of io.EOF
// (nil: io.EOF), and counts what it handed out.
type chunkReader struct {
	data []byte
	n    int
	err  error
	read int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		if c.err != nil {
			return 0, c.err
		}
		return 0, io.EOF
	}
	k := copy(p[:min(len(p), c.n)], c.data)
	c.data = c.data[k:]
	c.read += k
	return k, nil
}

// readBodyReference is what readBody must return: the former
// io.ReadAll(io.LimitReader(r, max+1)), cut to max bytes.
func readBodyReference(r io.Reader, max int64) ([]byte, bool, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if int64(len(b)) > max {
		return b[:max], true, err
	}
	return b, false, err
}

func TestReadBody(t *testing.T) {
	boom := errors.New("connection reset")
	tests := []struct {
		name      string
		body      string
		size, max int64
		chunk     int
		err       error
		truncated bool
		wantCap   int // 0: not checked
		wantRead  int // bytes taken from the reader; 0: all of body
	}{
		{name: "announced length: one buffer of that length and the byte that sees the end", body: `{"ok":true}`, size: 11, max: 1 << 20, chunk: 4, wantCap: 12},
		{name: "announced length in one read", body: strings.Repeat("a", 64<<10), size: 64 << 10, max: 10 << 20, chunk: 1 << 20, wantCap: 64<<10 + 1},
		{name: "empty, announced", body: "", size: 0, max: 100, chunk: 1, wantCap: 1},
		{name: "unknown length grows", body: strings.Repeat("b", 5000), size: -1, max: 1 << 20, chunk: 700},
		{name: "exactly the limit is whole", body: strings.Repeat("c", 100), size: 100, max: 100, chunk: 7, wantCap: 101},
		{name: "over the limit: cut, never read past limit+1", body: strings.Repeat("d", 10000), size: 10000, max: 100, chunk: 64, truncated: true, wantCap: 101, wantRead: 101},
		{name: "over the limit, unknown length", body: strings.Repeat("e", 10000), size: -1, max: 1000, chunk: 300, truncated: true, wantRead: 1001},
		{name: "announced more than sent: bounded by the limit", body: "short", size: 1 << 40, max: 4096, chunk: 2, wantCap: 4097},
		{name: "announced less than sent: grows", body: strings.Repeat("f", 3000), size: 5, max: 1 << 20, chunk: 1000},
		{name: "error after some bytes keeps them", body: "start", size: 1000, max: 1 << 20, chunk: 3, err: boom},
		{name: "error past the limit keeps the cut body", body: strings.Repeat("g", 50), size: -1, max: 10, chunk: 100, truncated: true, wantRead: 11},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &chunkReader{data: []byte(tt.body), n: tt.chunk, err: tt.err}
			got, truncated, err := readBody(r, tt.size, tt.max)
			want, wantTrunc, wantErr := readBodyReference(&chunkReader{data: []byte(tt.body), n: tt.chunk, err: tt.err}, tt.max)
			if !bytes.Equal(got, want) || truncated != wantTrunc || !errors.Is(err, wantErr) && err != wantErr {
				t.Fatalf("readBody = %d bytes, %v, %v; io.ReadAll gives %d bytes, %v, %v", len(got), truncated, err, len(want), wantTrunc, wantErr)
			}
			if truncated != tt.truncated {
				t.Errorf("truncated = %v, want %v", truncated, tt.truncated)
			}
			if tt.wantCap > 0 && cap(got) != tt.wantCap {
				t.Errorf("buffer capacity %d, want %d (sized from the announced length, bounded by the limit)", cap(got), tt.wantCap)
			}
			wantRead := tt.wantRead
			if wantRead == 0 {
				wantRead = len(tt.body)
			}
			if r.read != wantRead {
				t.Errorf("read %d bytes from the body, want %d", r.read, wantRead)
			}
		})
	}
}

// TestReadBodyAllocatesOnce: a body whose length was announced costs one
// allocation, whatever its size (io.ReadAll doubled its buffer from 512
// bytes: 12 allocations for 1 MiB, and a LimitReader).
func TestReadBodyAllocatesOnce(t *testing.T) {
	for _, n := range []int{11, 4 << 10, 1 << 20} {
		data := bytes.Repeat([]byte("x"), n)
		r := bytes.NewReader(data)
		allocs := testing.AllocsPerRun(20, func() {
			r.Reset(data)
			if b, _, err := readBody(r, int64(n), 10<<20); err != nil || len(b) != n {
				t.Fatalf("%d bytes, %v", len(b), err)
			}
		})
		if allocs != 1 {
			t.Errorf("%d-byte body: %.0f allocations, want 1", n, allocs)
		}
	}
}

// TestReadBodyOneByteReads: readers that hand out one byte at a time or
// half of what is asked still give the whole body.
func TestReadBodyOneByteReads(t *testing.T) {
	body := strings.Repeat("héllo ", 300)
	for name, r := range map[string]io.Reader{
		"one byte": iotest.OneByteReader(strings.NewReader(body)),
		"half":     iotest.HalfReader(strings.NewReader(body)),
		"data+EOF": iotest.DataErrReader(strings.NewReader(body)),
	} {
		got, truncated, err := readBody(r, int64(len(body)), 1<<20)
		if string(got) != body || truncated || err != nil {
			t.Errorf("%s: %d bytes, %v, %v", name, len(got), truncated, err)
		}
	}
}

// FuzzReadBody: whatever the body, the announced length (true or not), the
// limit and how the reader splits the body, readBody returns what
// io.ReadAll of the limited body does, and never reads past the limit.
func FuzzReadBody(f *testing.F) {
	f.Add([]byte(`{"ok":true}`), int64(11), uint16(100), uint8(4), false)
	f.Add([]byte("a longer body than the limit"), int64(-1), uint16(5), uint8(3), true)
	f.Add([]byte(""), int64(0), uint16(0), uint8(1), false)
	f.Add([]byte("lies about its length"), int64(1<<40), uint16(1000), uint8(255), false)
	f.Fuzz(func(t *testing.T, data []byte, size int64, lim uint16, chunk uint8, fail bool) {
		if size < -1 {
			size = -1
		}
		var rerr error
		if fail {
			rerr = errors.New("reset")
		}
		n := int(chunk)%64 + 1
		r := &chunkReader{data: data, n: n, err: rerr}
		got, truncated, err := readBody(r, size, int64(lim))
		want, wantTrunc, wantErr := readBodyReference(&chunkReader{data: data, n: n, err: rerr}, int64(lim))
		if !bytes.Equal(got, want) || truncated != wantTrunc || err != wantErr {
			t.Fatalf("readBody = %q, %v, %v; want %q, %v, %v", got, truncated, err, want, wantTrunc, wantErr)
		}
		if r.read > int(lim)+1 {
			t.Fatalf("read %d bytes with a limit of %d", r.read, lim)
		}
		if cap(got) > int(lim)+1 {
			t.Fatalf("a buffer of %d bytes with a limit of %d", cap(got), lim)
		}
	})
}
