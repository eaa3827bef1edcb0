package step

import (
	"fmt"
	"sync"
	"unicode/utf8"

	"github.com/zof-ai/zof-ci/internal/secret"
)

// Limits on what a step keeps. They bound memory per step and keep JUnit
// files and events readable; the numbers are ours, not an external limit.
const (
	// DefaultMaxBody is how much of a response body is read; the rest is
	// never read (a 5 GB download must not stall or exhaust a run).
	DefaultMaxBody int64 = 10 << 20
	// DefaultMaxOutput is how much of a command's output is kept (the end).
	DefaultMaxOutput = 64 << 10
	// excerptLen bounds Failure.Expected/Actual and body excerpts in messages.
	excerptLen = 512
	// logBodyLen bounds the response body excerpt written to an http step's log.
	logBodyLen = 2 << 10
	// maskSlack is extra text kept before a cut so a secret straddling the cut
	// is masked whole before the cut, rather than leaking its tail.
	maskSlack = 4 << 10
)

// excerpt returns s cut to at most n bytes (on a rune boundary), saying how
// much was left out.
func excerpt(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s… (%d bytes more)", s[:cut], len(s)-cut)
}

// maskedHead masks s and cuts it to n bytes, masking before the cut so a
// secret across the cut is not half-printed.
func maskedHead(m *secret.Masker, s string, n int) string {
	if len(s) > n+maskSlack {
		return cutMaskedHead(m, s[:n+maskSlack], len(s), n)
	}
	return excerpt(m.String(s), n)
}

// maskedHeadBytes is maskedHead of string(b), which it never builds: only
// the head it shows is copied into a string.
func maskedHeadBytes(m *secret.Masker, b []byte, n int) string {
	if len(b) > n+maskSlack {
		return cutMaskedHead(m, string(b[:n+maskSlack]), len(b), n)
	}
	return excerpt(m.String(string(b)), n)
}

// cutMaskedHead masks head, the first n+maskSlack bytes of a text of total
// bytes, and cuts it to n bytes on a rune boundary.
func cutMaskedHead(m *secret.Masker, head string, total, n int) string {
	// Keep the count of the real text for the "bytes more" note.
	more := total - n
	h := m.String(head)
	cut := min(n, len(h))
	for cut > 0 && cut < len(h) && !utf8.RuneStart(h[cut]) {
		cut--
	}
	return fmt.Sprintf("%s… (%d bytes more)", h[:cut], more)
}

// tailBuffer keeps the last max bytes written to it and counts the rest.
// It is safe for concurrent writers (stdout and stderr of one command).
type tailBuffer struct {
	mu    sync.Mutex
	max   int
	buf   []byte
	total int64
}

func newTailBuffer(max int) *tailBuffer {
	if max <= 0 {
		max = DefaultMaxOutput
	}
	return &tailBuffer{max: max}
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.total += int64(len(p))
	keep := t.max + maskSlack
	if len(p) >= keep {
		t.buf = append(t.buf[:0], p[len(p)-keep:]...)
		return len(p), nil
	}
	t.buf = append(t.buf, p...)
	if len(t.buf) > 2*keep {
		n := copy(t.buf, t.buf[len(t.buf)-keep:])
		t.buf = t.buf[:n]
	}
	return len(p), nil
}

// cut reports whether more was written than max bytes (the start is gone).
func (t *tailBuffer) cut() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.total > int64(t.max)
}

// String returns the kept tail, masked, prefixed with how much was dropped.
func (t *tailBuffer) String(m *secret.Masker) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return maskedTail(m, string(t.buf), t.total, t.max)
}

// maskedTail masks s (the last bytes of total written) and keeps its last
// max bytes, on a rune boundary.
func maskedTail(m *secret.Masker, s string, total int64, max int) string {
	dropped := total - int64(len(s))
	s = m.String(s)
	if len(s) > max {
		cut := len(s) - max
		for cut < len(s) && !utf8.RuneStart(s[cut]) {
			cut++
		}
		// Count dropped bytes of the original text only approximately when
		// masking changed lengths; what matters is that the note is present.
		dropped += int64(cut)
		s = s[cut:]
	}
	if dropped > 0 {
		return fmt.Sprintf("… (%d bytes truncated)\n%s", dropped, s)
	}
	return s
}
