package secret

import (
	"fmt"
	"strings"
	"testing"
)

// benchText is n bytes of a typical step log: request lines, JSON with escapes,
// percent-encoded query strings; every 16th line carries the first secret.
func benchText(n int, secret string) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		if i%16 == 15 {
			fmt.Fprintf(&b, "Authorization: Bearer %s\n", secret)
			continue
		}
		fmt.Fprintf(&b, "GET http://127.0.0.1:8089/api/items?page=%d&q=a%%20b → 200 OK (3ms) {\"id\":%d,\"name\":\"caf\\u00e9 & \\\"bar\\\"\"}\n", i, i)
	}
	return b.String()[:n]
}

func BenchmarkMasker(b *testing.B) {
	secrets := []string{"s3cr3t-t0ken-value", "p@ss/w+rd=&<>\" x", "hunter2", "AKIAIOSFODNN7EXAMPLE", "tok_0123456789abcdef"}
	m := NewMasker(secrets)
	for _, size := range []int{1 << 10, 64 << 10, 1 << 20} {
		text := benchText(size, secrets[0])
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				_ = m.String(text)
			}
		})
	}
	// Worst case: every line hides a second layer of encoding (JSON of
	// HTML-escaped text), so each layer is undone over the whole text.
	layered := strings.Repeat(`{"body":"{\"html\":\"caf\\u00e9 \u0026amp; \u0026lt;b\u0026gt; 100%2525\"}"}`+"\n", 64<<10/72)
	b.Run("layered-64KiB", func(b *testing.B) {
		b.SetBytes(int64(len(layered)))
		for b.Loop() {
			_ = m.String(layered)
		}
	})
	b.Run("short-no-secret", func(b *testing.B) {
		for b.Loop() {
			_ = m.String("✓ checkout passed (1.2s)")
		}
	})
}
