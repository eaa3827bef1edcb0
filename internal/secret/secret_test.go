package secret

import "testing"

func TestMasker(t *testing.T) {
	tests := []struct {
		name    string
		secrets []string
		in      string
		want    string
	}{
		{"none", nil, "token abc", "token abc"},
		{"one", []string{"s3cret"}, "Bearer s3cret!", "Bearer ***!"},
		{"longest first", []string{"abc", "abcdef"}, "x abcdef y abc", "x *** y ***"},
		{"too short to mask", []string{"ab"}, "ab ab", "ab ab"},
		{"repeated", []string{"tok"}, "toktok", "******"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NewMasker(tt.secrets).String(tt.in); got != tt.want {
				t.Errorf("String(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	var nilM *Masker
	if got := nilM.String("x"); got != "x" {
		t.Errorf("nil masker changed text: %q", got)
	}
}
