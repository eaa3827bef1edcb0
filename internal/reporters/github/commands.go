package github

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/sethvargo/go-githubactions"

	"github.com/zof-ai/zof-ci/internal/reporters/report"
	"github.com/zof-ai/zof-ci/internal/secret"
)

// MaxErrorAnnotationsPerStep is how many error annotations GitHub shows for
// one step: "a maximum of 10 error annotations and 10 warning annotations per
// step" (https://docs.github.com/actions/using-workflows/workflow-commands-for-github-actions;
// the rest are dropped silently). Commands emits the 10 most useful and one
// notice summarising the rest.
const MaxErrorAnnotationsPerStep = 10

// maxNamesInSummary bounds the case names listed in the "and N more" notice.
const maxNamesInSummary = 20

// CommandsName is the workflow-command annotations reporter's name, for messages.
const CommandsName = "github-annotations"

// Commands writes workflow-command annotations (::error file=…,line=…,title=…::…)
// for the members that did not pass: the fallback when no check run can be
// posted, and the annotations when `checks: false`.
type Commands struct {
	// Out is the step's stdout, which the runner reads commands from.
	Out io.Writer
	// SuiteFile is the suite's path relative to the repository root; "" uses
	// the run's (without one the annotations carry no file).
	SuiteFile string
	Mask      *secret.Masker
	// Notice, when set, is printed first (e.g. ForkNotice).
	Notice string
}

var _ report.Reporter = (*Commands)(nil)

// NewCommands builds the reporter (a report.Factory): o.Out is the step's stdout.
func NewCommands(o report.Options) (report.Reporter, error) {
	return &Commands{Out: o.Out, Mask: o.Mask}, nil
}

// workflowCommand is one line the runner reads as a command. Escaping is
// go-githubactions': data has %, \r and \n percent-encoded; properties
// additionally : and , (actions/toolkit's command.ts), so no text can end a
// property, the command, or the line.
type workflowCommand struct {
	name  string
	props [][2]string
	msg   string
}

func (w *workflowCommand) String() string {
	c := &githubactions.Command{Name: w.name, Message: w.msg}
	if len(w.props) > 0 {
		c.Properties = githubactions.CommandProperties{}
		for _, p := range w.props {
			c.Properties[p[0]] = p[1]
		}
	}
	return c.String()
}

// Report writes at most 10 ::error commands, failed before blocked before
// cancelled, then one ::notice naming the rest.
func (c *Commands) Report(_ context.Context, res *report.Result) error {
	if c.Out == nil {
		return nil
	}
	suite := c.SuiteFile
	if suite == "" && res.Run != nil {
		suite = res.Run.SuiteFile
	}
	suite = report.Line(c.Mask, suite)
	var b strings.Builder
	if c.Notice != "" {
		b.WriteString((&workflowCommand{name: "notice", props: [][2]string{{"title", "Zof"}}, msg: report.Line(c.Mask, c.Notice)}).String() + "\n")
	}
	fs := failures(res.Run, c.Mask)
	shown := fs[:min(len(fs), MaxErrorAnnotationsPerStep)]
	for _, f := range shown {
		var props [][2]string
		if suite != "" {
			props = append(props, [2]string{"file", suite})
			if f.Line > 0 {
				props = append(props, [2]string{"line", fmt.Sprint(f.Line)})
			}
		}
		props = append(props, [2]string{"title", f.Title + " (" + string(f.Outcome) + ")"})
		b.WriteString((&workflowCommand{name: "error", props: props, msg: f.Message}).String() + "\n")
	}
	if rest := fs[len(shown):]; len(rest) > 0 {
		names := make([]string, 0, maxNamesInSummary)
		for _, f := range rest[:min(len(rest), maxNamesInSummary)] {
			names = append(names, f.Title)
		}
		msg := fmt.Sprintf("%d more not annotated (GitHub shows %d error annotations per step): %s", len(rest), MaxErrorAnnotationsPerStep, strings.Join(names, ", "))
		if len(rest) > maxNamesInSummary {
			msg += fmt.Sprintf(" and %d more", len(rest)-maxNamesInSummary)
		}
		msg += ". See the step summary or the JUnit report for every case."
		b.WriteString((&workflowCommand{name: "notice", props: [][2]string{{"title", "Zof: more failures"}}, msg: msg}).String() + "\n")
	}
	_, err := io.WriteString(c.Out, b.String())
	return err
}
