package sanitize

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestText(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plain", "hello\tworld\n", "hello\tworld\n"},
		{"sgr", "\x1b[31mred\x1b[0m", "red"},
		{"csi with intermediates", "a\x1b[2 qb", "ab"},
		{"cursor", "\x1b[2K\x1b[1Gline", "line"},
		{"osc bel", "\x1b]0;title\x07text", "text"},
		{"osc st", "\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\", "link"},
		{"charset", "\x1b(Bok", "ok"},
		{"two-byte", "\x1bMup", "up"},
		{"lone esc at end", "end\x1b", "end"},
		{"c1 csi", "a\u009b31mb", "ab"},
		{"crlf", "a\r\nb", "a\nb"},
		{"cr", "10%\r100%", "10%\n100%"},
		{"nul and bell", "a\x00b\x07c", "abc"},
		{"del and c1", "a\x7fb\u0085c", "abc"},
		{"non-characters", "a\ufffeb\uffffc", "abc"},
		{"invalid utf-8", "a\xffb\xc3", "a\ufffdb\ufffd"},
		{"emoji and accents", "ü 🙂 ]]>", "ü 🙂 ]]>"},
		{"replacement char kept", "\ufffd", "\ufffd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Text(tt.in); got != tt.want {
				t.Errorf("Text(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// xmlChar is the XML 1.0 Char production, less the C1 controls Text removes.
func xmlChar(r rune) bool {
	switch {
	case r == '\t', r == '\n':
		return true
	case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f:
		return false
	case r >= 0xd800 && r <= 0xdfff, r == 0xfffe, r == 0xffff:
		return false
	}
	return r <= 0x10ffff
}

func FuzzText(f *testing.F) {
	for _, s := range []string{"", "plain", "\x1b[31mred", "\x1b]0;t\x07", "\xff\xfe", "a\r\nb", "\u009b1m", "\ufffe", "\x1b", "\x1b[", "\x1b]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Text(s)
		if !utf8.ValidString(got) {
			t.Fatalf("Text(%q) = %q: invalid UTF-8", s, got)
		}
		for _, r := range got {
			if !xmlChar(r) {
				t.Fatalf("Text(%q) = %q: keeps %U", s, got, r)
			}
		}
		if again := Text(got); again != got {
			t.Fatalf("Text is not idempotent on %q: %q then %q", s, got, again)
		}
	})
}

func TestLine(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plain", "run_1", "run_1"},
		{"newline", "a\nb", "a b"},
		{"crlf and tabs", "a\r\n\tb", "a b"},
		{"controls", "a\x00b\x1b[2Kc", "abc"},
		{"c1 and del", "a\u0085b\x7f", "ab"},
		{"invalid utf-8", "a\xffb", "a\ufffdb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Line(tt.in); got != tt.want {
				t.Errorf("Line(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func FuzzLine(f *testing.F) {
	for _, s := range []string{"", "a\nb", "\x1b[31mred\r\n", "\xff\t"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Line(s)
		if strings.ContainsAny(got, "\r\n\t") || !utf8.ValidString(got) {
			t.Fatalf("Line(%q) = %q: not one valid line", s, got)
		}
		if again := Line(got); again != got {
			t.Fatalf("Line is not idempotent on %q: %q then %q", s, got, again)
		}
	})
}
