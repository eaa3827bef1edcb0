package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/cli/iostreams"
	"github.com/zof-ai/zof-ci/internal/exitcode"
	"github.com/zof-ai/zof-ci/internal/sanitize"
)

// agentsOptions are zof agents'.
type agentsOptions struct {
	IO     *iostreams.IOStreams
	Server serverOptions
	Pool   string
	Output string
	// Now is the clock of "last heartbeat … ago" (time.Now).
	Now func() time.Time
}

func newCmdAgents(f *Factory, runF func(context.Context, *agentsOptions) error) *command {
	o := &agentsOptions{IO: f.IO, Now: time.Now}
	c := &command{
		name:  "agents",
		short: "list the endpoint agents of your tenant on a server: pool, state, last heartbeat, members held",
		long: "One agent a line, by pool then name: its state (idle, busy, draining, lost), version, labels,\n" +
			"last heartbeat and the members it holds. --output json prints the API's answer (docs/agents.md).",
		example: "zof agents --server https://zof.example.com --pool private-eu",
	}
	c.flags = func(fs *flag.FlagSet) {
		o.Server.register(fs, "")
		fs.StringVar(&o.Pool, "pool", "", "only the agents of this pool")
		fs.StringVar(&o.Output, "output", "text", "text | json")
	}
	c.run = func(ctx context.Context, fs *flag.FlagSet, pos []string) error {
		if err := noArgs(c, pos, ""); err != nil {
			return err
		}
		if err := checkOutput(o.Output); err != nil {
			return err
		}
		o.Server.fromEnv(setFlags(fs), f.Env)
		if o.Server.URL == "" {
			return exitcode.Errorf(exitcode.Usage, "no execution service: set --server or ZOF_SERVER (agents connect to zof serve)")
		}
		if runF != nil {
			return runF(ctx, o)
		}
		return agentsRun(ctx, o)
	}
	return c
}

func agentsRun(ctx context.Context, o *agentsOptions) error {
	cl, err := o.Server.client()
	if err != nil {
		return err
	}
	list, err := cl.ListAgents(ctx, o.Pool)
	if err != nil {
		return err
	}
	if o.Output == "json" {
		return writeJSON(o.IO.Out, list)
	}
	return writeAgents(o.IO.Out, list.Agents, o.Pool, o.Now())
}

// writeAgents prints the fleet as a table, one agent a line.
func writeAgents(w io.Writer, agents []api.Agent, pool string, now time.Time) error {
	if len(agents) == 0 {
		where := "no endpoint agents are connected"
		if pool != "" {
			where += " in pool " + sanitize.Line(pool)
		}
		_, err := fmt.Fprintln(w, where+" (start one with zof agent; docs/agents.md)")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "POOL\tNAME\tSTATE\tVERSION\tLABELS\tLAST HEARTBEAT\tHELD")
	for _, a := range agents {
		var labels []string
		for _, k := range slices.Sorted(maps.Keys(a.Labels)) {
			labels = append(labels, k+"="+a.Labels[k])
		}
		held := fmt.Sprintf("%d/%d", len(a.Held), a.Concurrency)
		for _, l := range a.Held {
			held += fmt.Sprintf(" %s:%s#%d", l.RunID, l.Member, l.Attempt)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", sanitize.Line(a.Pool), sanitize.Line(a.Name), a.State, orDash(sanitize.Line(a.Version)),
			orDash(sanitize.Line(strings.Join(labels, ","))), since(now, a.LastHeartbeat), sanitize.Line(held))
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// since is "12s ago" for a past time (rounded to the second).
func since(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return now.Sub(t).Round(time.Second).String() + " ago"
}
