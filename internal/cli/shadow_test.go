package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/zof-ai/zof-ci/internal/ci"
	"github.com/zof-ai/zof-ci/internal/cli/iostreams"
	"github.com/zof-ai/zof-ci/internal/exitcode"
)

func TestShadowFlag(t *testing.T) {
	tests := []struct {
		args    []string
		want    shadowFlag
		wantErr string
	}{
		{nil, shadowFlag{}, ""},
		{[]string{"--shadow"}, shadowFlag{On: true}, ""},
		{[]string{"--shadow=true"}, shadowFlag{On: true}, ""},
		{[]string{"--shadow=false"}, shadowFlag{}, ""},
		{[]string{"--shadow=sample:10"}, shadowFlag{On: true, Sample: 10}, ""},
		{[]string{"--shadow=sample:0"}, shadowFlag{}, `invalid value "sample:0" for --shadow: sample:N needs a whole number N ≥ 1`},
		{[]string{"--shadow=sample:x"}, shadowFlag{}, `invalid value "sample:x" for --shadow: sample:N needs a whole number`},
		{[]string{"--shadow=maybe"}, shadowFlag{}, `invalid value "maybe" for --shadow: use --shadow, --shadow=false or --shadow=sample:N`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			io, _, _, _ := iostreams.Test()
			var got *runOptions
			c := newCmdRun(&Factory{IO: io, Env: Env{}}, func(_ context.Context, o *runOptions) error { got = o; return nil })
			err := c.exec(context.Background(), &bytes.Buffer{}, append([]string{"--scope", "changed"}, tt.args...))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || exitcode.Of(err) != exitcode.Usage {
					t.Fatalf("err = %v, want a usage error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Shadow != tt.want {
				t.Errorf("Shadow = %+v, want %+v", got.Shadow, tt.want)
			}
		})
	}
}

func TestShadowDecide(t *testing.T) {
	var log bytes.Buffer
	if !(shadowFlag{On: true, Sample: 4}).decide(ci.Context{PR: 12}, &log) || !strings.Contains(log.String(), "sampled (one in 4, by pull request 12)") {
		t.Errorf("PR 12 at one in 4: not sampled, or not said: %q", log.String())
	}
	log.Reset()
	if (shadowFlag{On: true, Sample: 4}).decide(ci.Context{PR: 13}, &log) || !strings.Contains(log.String(), "not sampled this time") {
		t.Errorf("PR 13 at one in 4: sampled, or not said: %q", log.String())
	}
	log.Reset()
	if !(shadowFlag{On: true}).decide(ci.Context{}, &log) || log.Len() != 0 {
		t.Errorf("--shadow without sampling: not a shadow run, or a sampling line: %q", log.String())
	}
	if (shadowFlag{}).decide(ci.Context{PR: 4}, &log) {
		t.Error("no --shadow made a shadow run")
	}
}

// FuzzShadowFlag: the --shadow parser never panics, and what it accepts
// prints back as a value it accepts alike.
func FuzzShadowFlag(f *testing.F) {
	for _, s := range []string{"true", "false", "sample:3", "sample:", "sample:-1", "1", "sample:99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		var s shadowFlag
		if err := s.Set(v); err != nil {
			return
		}
		var again shadowFlag
		if err := again.Set(s.String()); err != nil || again != s {
			t.Fatalf("%q parsed as %+v, printed %q, parsed again as %+v (%v)", v, s, s.String(), again, err)
		}
	})
}
