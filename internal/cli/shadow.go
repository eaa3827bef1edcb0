package cli

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/zof-ai/zof-ci/internal/ci"
	"github.com/zof-ai/zof-ci/internal/exitcode"
	"github.com/zof-ai/zof-ci/internal/gate"
)

// shadowFlag is --shadow: off, on (--shadow, --shadow=true) or a sample of
// one pipeline in N (--shadow=sample:N). See docs/cli.md, "Shadow runs".
type shadowFlag struct {
	On     bool
	Sample int // 0: every run; N: one in N pull requests (or branches)
}

var _ interface {
	String() string
	Set(string) error
	IsBoolFlag() bool
} = (*shadowFlag)(nil)

func (s *shadowFlag) String() string {
	switch {
	case s == nil || !s.On:
		return "false"
	case s.Sample > 0:
		return fmt.Sprintf("sample:%d", s.Sample)
	}
	return "true"
}

// IsBoolFlag lets --shadow stand alone, as a boolean flag does.
func (s *shadowFlag) IsBoolFlag() bool { return true }

func (s *shadowFlag) Set(v string) error {
	if n, ok := strings.CutPrefix(v, "sample:"); ok {
		k, err := strconv.Atoi(n)
		if err != nil || k < 1 {
			return fmt.Errorf("sample:N needs a whole number N ≥ 1 (a shadow run on one in N pull requests), got %q", n)
		}
		s.On, s.Sample = true, k
		return nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return fmt.Errorf("use --shadow, --shadow=false or --shadow=sample:N")
	}
	s.On, s.Sample = b, 0
	return nil
}

// checkShadow refuses --shadow with a scope that selects no subset by rules.
func checkShadow(s shadowFlag, scope string) error {
	if s.On && !slices.Contains(gate.ShadowScopes, scope) {
		return exitcode.Errorf(exitcode.Usage, "--shadow applies to --scope %s, not %q: a shadow run measures the subset those scopes select against a run of every case",
			strings.Join(gate.ShadowScopes, " or --scope "), scope)
	}
	return nil
}

// decide says whether this pipeline makes a shadow run, and says so on w when
// sampling decided it.
func (s shadowFlag) decide(c ci.Context, w io.Writer) bool {
	if !s.On {
		return false
	}
	if s.Sample <= 1 {
		return true
	}
	by := "branch " + c.Ref
	if c.PR > 0 {
		by = fmt.Sprintf("pull request %d", c.PR)
	} else if c.Ref == "" {
		by = "no pull request or branch"
	}
	if gate.ShadowSampled(c.PR, c.Ref, s.Sample) {
		fmt.Fprintf(w, "shadow: sampled (one in %d, by %s): every case runs, the subset is reported\n", s.Sample, by)
		return true
	}
	fmt.Fprintf(w, "shadow: not sampled this time (one in %d, by %s): a plain scope run\n", s.Sample, by)
	return false
}
