package exitcode

import (
	"errors"
	"fmt"
	"testing"
)

func TestOf(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want Code
	}{
		{"nil", nil, OK},
		{"uncoded is usage", errors.New("bad flag"), Usage},
		{"coded", Errorf(Unavailable, "no server"), Unavailable},
		{"wrapped keeps its code", fmt.Errorf("creating run: %w", Wrap(NoPerm, errors.New("401"))), NoPerm},
		{"reported", Reported(Failed), Failed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Of(tt.err); got != tt.want {
				t.Errorf("Of(%v) = %d, want %d", tt.err, got, tt.want)
			}
		})
	}
	if Reported(OK) != nil || Wrap(Failed, nil) != nil {
		t.Error("OK / nil must stay nil")
	}
	if !IsReported(fmt.Errorf("x: %w", Reported(Empty))) || IsReported(Errorf(Empty, "x")) {
		t.Error("IsReported wrong")
	}
}

// TestCodesAreDistinct: one code per meaning, as the README's table says.
func TestCodesAreDistinct(t *testing.T) {
	seen := map[string]Code{}
	for _, c := range []Code{OK, Failed, Blocked, Cancelled, Timeout, Empty, Usage, Unavailable, NoPerm, Interrupted} {
		if prev, ok := seen[c.String()]; ok {
			t.Errorf("%d and %d share the name %q", prev, c, c.String())
		}
		seen[c.String()] = c
	}
}
