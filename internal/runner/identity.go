package runner

import (
	"context"
	"os/exec"
	"strings"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/ci"
)

// gitTimeout bounds asking git for the commit and branch of a laptop checkout.
const gitTimeout = 5 * time.Second

// requestSource is where a run comes from, as the create body carries it.
func requestSource(c ci.Context) api.Source {
	trigger := "ci"
	if c.Provider == ci.Local {
		trigger = "api"
	}
	return api.Source{
		Provider: string(c.Provider),
		Repo:     c.Repo,
		SHA:      c.SHA,
		Ref:      c.Ref,
		PR:       c.PR,
		CIRunID:  c.RunID,
		Attempt:  c.Attempt,
		Actor:    c.Actor,
		URL:      c.URL,
		Trigger:  trigger,
	}
}

// gitOutput runs git in dir and returns its trimmed output, "" on any failure (not a
// checkout, no git): the commit is then unknown, which is allowed.
func gitOutput(dir string, env []string, args ...string) string {
	ctx, cancel := context.WithTimeout(context.Background(), gitTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}
