package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/client"
	"github.com/zof-ai/zof-ci/internal/cli/iostreams"
	"github.com/zof-ai/zof-ci/internal/exitcode"
	"github.com/zof-ai/zof-ci/internal/health"
	"github.com/zof-ai/zof-ci/internal/sanitize"
)

// healthOptions are zof health's.
type healthOptions struct {
	IO     *iostreams.IOStreams
	Server serverOptions
	Health client.HealthOptions
	Output string
	// Selection: selection safety from shadow runs instead of case health.
	Selection bool
}

func newCmdHealth(f *Factory, runF func(context.Context, *healthOptions) error) *command {
	o := &healthOptions{IO: f.IO}
	c := &command{
		name:  "health",
		short: "test health of a project's cases on a server: failure, flaky and flip rates, durations, quarantine",
		long: "Per case, from the server's history of finished runs, worst first: runs, failure rate, flaky rate\n" +
			"(passed only after failing on the same commit), flip rate, 7- and 30-day failure rates, last failure,\n" +
			"duration p50/p90 and trend, broken (every run of 7 days failed) and quarantine. A rate on fewer than\n" +
			"10 runs is marked `~` (not significant). --output json prints the API's answer (docs/health.md).\n" +
			"--selection: selection safety from the project's shadow runs instead: faulty-run and failure recall,\n" +
			"the share of cases and time the subset ran, recall against time saved, and the cases most often\n" +
			"missed with why and how to widen their covers.",
		example: "zof health --server https://zof.example.com --project shop --environment staging --since 30d\n  " +
			"zof health --project shop --selection",
	}
	c.flags = func(fs *flag.FlagSet) {
		o.Server.register(fs, "")
		fs.StringVar(&o.Health.Project, "project", "", "the project (required)")
		fs.StringVar(&o.Health.Environment, "environment", "", "only runs against this environment")
		fs.StringVar(&o.Health.Since, "since", "30d", "the window: days (30d) or hours (12h), at most 366d")
		fs.StringVar(&o.Output, "output", "text", "text | json")
		fs.BoolVar(&o.Selection, "selection", false, "selection safety from shadow runs (GET /v1/health/selection)")
	}
	c.run = func(ctx context.Context, fs *flag.FlagSet, pos []string) error {
		if err := noArgs(c, pos, ""); err != nil {
			return err
		}
		if err := checkOutput(o.Output); err != nil {
			return err
		}
		if o.Health.Project == "" {
			return exitcode.Errorf(exitcode.Usage, "--project is required: health is per project")
		}
		if _, err := health.ParseSince(o.Health.Since); err != nil {
			return exitcode.Errorf(exitcode.Usage, "--%w", err)
		}
		o.Server.fromEnv(setFlags(fs), f.Env)
		if o.Server.URL == "" {
			return exitcode.Errorf(exitcode.Usage, "no execution service: set --server or ZOF_SERVER (health is kept by zof serve)")
		}
		if runF != nil {
			return runF(ctx, o)
		}
		return healthRun(ctx, o)
	}
	return c
}

func healthRun(ctx context.Context, o *healthOptions) error {
	cl, err := o.Server.client()
	if err != nil {
		return err
	}
	if o.Selection {
		sh, err := cl.SelectionHealth(ctx, o.Health)
		if err != nil {
			return err
		}
		if o.Output == "json" {
			return writeJSON(o.IO.Out, sh)
		}
		return writeSelectionHealth(o.IO.Out, sh, o.Health.Since)
	}
	h, err := cl.Health(ctx, o.Health)
	if err != nil {
		return err
	}
	if o.Output == "json" {
		return writeJSON(o.IO.Out, h)
	}
	return writeHealth(o.IO.Out, h, o.Health.Since)
}

// writeHealth prints health as a table, worst first, one case a line.
func writeHealth(w io.Writer, h *api.Health, since string) error {
	scope := h.Project
	if h.Environment != "" {
		scope += " in " + h.Environment
	}
	if len(h.Cases) == 0 {
		_, err := fmt.Fprintf(w, "no finished runs of %s in the last %s\n", sanitize.Line(scope), since)
		return err
	}
	fmt.Fprintf(w, "test health of %s, last %s: %d cases\n", sanitize.Line(scope), since, len(h.Cases))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CASE\tRUNS\tFAIL\tFLAKY\tFLIP\t7D\t30D\tP50\tP90\tTREND\tLAST FAILURE\tSTATE")
	for _, c := range h.Cases {
		id := api.MemberID(c.Case, c.Variant)
		sig := ""
		if !c.Significant {
			sig = "~"
		}
		last := "-"
		if c.LastFailure != nil {
			last = c.LastFailure.RunID
			if c.LastFailure.Commit != "" {
				last += " @" + shortSHA(c.LastFailure.Commit)
			}
		}
		fmt.Fprintf(tw, "%s\t%d\t%s%s\t%s%s\t%s%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", sanitize.Line(id), c.Runs,
			sig, pct(c.FailureRate), sig, pct(c.FlakyRate), sig, pct(c.FlipRate), pctOpt(c.FailureRate7d), pctOpt(c.FailureRate30d),
			time.Duration(c.DurationP50).Round(time.Millisecond), time.Duration(c.DurationP90).Round(time.Millisecond), trend(c.DurationTrend), sanitize.Line(last), state(c))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "~ fewer than %d runs: not significant\n", api.MinSignificantRuns)
	return err
}

func pct(x float64) string { return fmt.Sprintf("%.0f%%", x*100) }

func pctOpt(x *float64) string {
	if x == nil {
		return "-"
	}
	return pct(*x)
}

func trend(x float64) string {
	if x == 0 {
		return "-"
	}
	return fmt.Sprintf("%+.0f%%", x*100)
}

func shortSHA(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

// state is broken, quarantined (how long, how clean) or ok.
func state(c api.CaseHealth) string {
	var parts []string
	if c.Broken {
		parts = append(parts, "broken")
	}
	if q := c.Quarantine; q != nil {
		s := fmt.Sprintf("quarantined %dd, clean %dd", q.Days, q.CleanDays)
		if q.Fixed {
			s += ", fixed: remove its quarantine"
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return "ok"
	}
	return strings.Join(parts, "; ")
}

// writeSelectionHealth prints selection safety: the recalls against their
// bars, the shares, the curve and the cases most often missed.
func writeSelectionHealth(w io.Writer, h *api.SelectionHealth, since string) error {
	scope := h.Project
	if h.Environment != "" {
		scope += " in " + h.Environment
	}
	if h.ShadowRuns == 0 {
		_, err := fmt.Fprintf(w, "no shadow runs of %s in the last %s: run zof run --scope changed --shadow (or a trigger with shadow: true) to measure selection\n",
			sanitize.Line(scope), since)
		return err
	}
	fmt.Fprintf(w, "selection safety of %s, last %s: %d shadow runs\n", sanitize.Line(scope), since, h.ShadowRuns)
	fmt.Fprintf(w, "faulty-run recall: %s (%d of %d faulty runs caught; bar > %s)\n", pct1(h.FaultyRunRecall), h.CaughtRuns, h.FaultyRuns, pct1v(api.FaultyRunRecallBar))
	fmt.Fprintf(w, "failure recall: %s (%d of %d failures caught; bar > %s)\n", pct1(h.FailureRecall), h.CaughtFailures, h.Failures, pct1v(api.FailureRecallBar))
	fmt.Fprintf(w, "subset ran: %s of cases, %s of the time (saved %s)\n", pct1v(h.CaseShare), pct1v(h.TimeShare), pct1v(1-h.TimeShare))
	if len(h.Curve) > 0 {
		fmt.Fprintln(w, "recall against time saved, widening the subset by the most often missed cases:")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ADDED\tCASE\tRUN RECALL\tFAILURE RECALL\tTIME SAVED")
		for _, p := range h.Curve {
			added, c := fmt.Sprint(p.Added), p.Case
			if p.All {
				added, c = "all", "(every case)"
			}
			if c == "" {
				c = "(as selected)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", added, sanitize.Line(c), pct1(p.FaultyRunRecall), pct1(p.FailureRecall), pct1v(p.TimeSaved))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(h.Missed) == 0 {
		_, err := fmt.Fprintln(w, "the subsets missed no failure")
		return err
	}
	fmt.Fprintln(w, "cases most often missed:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CASE\tMISSED\tLEFT OUT\tWHY\tCHANGED FILES\tLAST RUN")
	for _, m := range h.Missed {
		files := "-"
		if len(m.Files) > 0 {
			files = strings.Join(m.Files, ", ")
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\n", sanitize.Line(api.MemberID(m.Case, m.Variant)), m.Missed, m.Runs, sanitize.Line(m.Why), sanitize.Line(files), sanitize.Line(m.LastRun))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, m := range h.Missed {
		fmt.Fprintf(w, "hint: %s\n", sanitize.Line(m.Hint))
	}
	return nil
}

// pct1 is a share with one decimal ("99.9%"), "-" when there is none.
func pct1(x *float64) string {
	if x == nil {
		return "-"
	}
	return pct1v(*x)
}

func pct1v(x float64) string {
	return strings.Replace(fmt.Sprintf("%.1f%%", x*100), ".0%", "%", 1)
}
