package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/net/http/httpproxy"

	"github.com/zof-ai/zof-ci/internal/agent"
	"github.com/zof-ai/zof-ci/internal/cli/iostreams"
	"github.com/zof-ai/zof-ci/internal/exitcode"
	"github.com/zof-ai/zof-ci/internal/procgroup"
	"github.com/zof-ai/zof-ci/internal/step"
)

// agentTokenEnv holds the agent token when --token is not given.
const agentTokenEnv = "ZOF_AGENT_TOKEN"

// agentOptions are zof agent's.
type agentOptions struct {
	IO          *iostreams.IOStreams
	Env         Env
	Server      string
	Token       string
	Name        string
	Concurrency int
	Labels      map[string]string
	DrainGrace  time.Duration
	Dir         string
	// State holds the journal of the run steps' process groups; "" keeps none.
	State string
}

func newCmdAgent(f *Factory, runF func(context.Context, *agentOptions) error) *command {
	o := &agentOptions{IO: f.IO, Env: f.Env}
	var labels string
	c := &command{
		name:  "agent",
		short: "run an endpoint agent: execute a pool's members from inside a private network",
		long: "Connects to zof serve with outbound HTTP(S) only (HTTPS_PROXY is honoured), leases members of its\n" +
			"pool's runs, executes them with the same step executors as zof run and streams the results back.\n" +
			"SIGINT/SIGTERM drains: no new member, held ones finish within --drain-grace (then are killed), exit 0.\n" +
			"Exits 77 when the server refuses the token, 76 when it speaks another agent protocol. See docs/agents.md.",
		example: "zof agent --server https://zof.example.com --token \"$ZOF_AGENT_TOKEN\" --concurrency 4 --labels region=eu",
	}
	c.flags = func(fs *flag.FlagSet) {
		fs.StringVar(&o.Server, "server", "", "zof serve URL (env ZOF_SERVER)")
		fs.StringVar(&o.Token, "token", "", "the pool's agent token (env "+agentTokenEnv+")")
		fs.StringVar(&o.Name, "name", "", "the agent's name in the fleet (env ZOF_AGENT_NAME; default: the host name)")
		fs.IntVar(&o.Concurrency, "concurrency", agent.DefaultConcurrency, "members executed at once")
		fs.StringVar(&labels, "labels", "", "labels shown in the fleet, k=v,k=v (env ZOF_AGENT_LABELS)")
		fs.DurationVar(&o.DrainGrace, "drain-grace", agent.DefaultDrainGrace, "on SIGTERM, how long held members may take to finish before they are killed")
		fs.StringVar(&o.Dir, "dir", ".", "working directory of run steps")
		fs.StringVar(&o.State, "state", "", "directory for the journal of the steps' process groups: the next start kills what a killed agent left running (env ZOF_AGENT_STATE; default: none)")
	}
	c.run = func(ctx context.Context, fs *flag.FlagSet, pos []string) error {
		if err := noArgs(c, pos, ""); err != nil {
			return err
		}
		set := setFlags(fs)
		fromEnv(set, "server", f.Env, "ZOF_SERVER", &o.Server)
		fromEnv(set, "token", f.Env, agentTokenEnv, &o.Token)
		fromEnv(set, "name", f.Env, "ZOF_AGENT_NAME", &o.Name)
		fromEnv(set, "labels", f.Env, "ZOF_AGENT_LABELS", &labels)
		fromEnv(set, "state", f.Env, "ZOF_AGENT_STATE", &o.State)
		if err := o.validate(labels); err != nil {
			return err
		}
		if runF != nil {
			return runF(ctx, o)
		}
		return runAgent(ctx, o)
	}
	return c
}

// validate checks the options and fills in the name and the labels.
func (o *agentOptions) validate(labels string) error {
	switch u, err := url.Parse(o.Server); {
	case o.Server == "":
		return exitcode.Errorf(exitcode.Usage, "no server: give --server URL or set ZOF_SERVER")
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "":
		return exitcode.Errorf(exitcode.Usage, "--server %q: give the zof serve URL, http(s)://host[:port][/path], without credentials or query", o.Server)
	}
	if o.Token == "" {
		return exitcode.Errorf(exitcode.Usage, "no agent token: give --token or set %s (a token of the pool in server.yaml)", agentTokenEnv)
	}
	if o.Concurrency < 1 {
		return exitcode.Errorf(exitcode.Usage, "--concurrency %d: give at least 1", o.Concurrency)
	}
	if o.DrainGrace <= 0 {
		return exitcode.Errorf(exitcode.Usage, "--drain-grace %s: give a positive duration such as 60s", o.DrainGrace)
	}
	if o.Name == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			return exitcode.Errorf(exitcode.Usage, "no --name and the host name is unknown (%v); give --name", err)
		}
		o.Name = h
	}
	ls, err := parseLabels(labels)
	if err != nil {
		return exitcode.Wrap(exitcode.Usage, err)
	}
	o.Labels = ls
	return nil
}

// parseLabels reads k=v,k=v; an empty string is no labels.
func parseLabels(s string) (map[string]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--labels: %q is not k=v; give k=v,k=v", kv)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("--labels: %s given twice", k)
		}
		out[k] = v
	}
	return out, nil
}

// proxyFunc is http.ProxyFromEnvironment over the environment zof was given
// (HTTPS_PROXY, HTTP_PROXY, NO_PROXY and their lower-case forms).
func proxyFunc(env Env) func(*http.Request) (*url.URL, error) {
	get := func(k string) string {
		if v := env.Get(k); v != "" {
			return v
		}
		return env.Get(strings.ToLower(k))
	}
	cfg := httpproxy.Config{HTTPProxy: get("HTTP_PROXY"), HTTPSProxy: get("HTTPS_PROXY"), NoProxy: get("NO_PROXY")}
	if env.Get("REQUEST_METHOD") != "" {
		cfg.HTTPProxy = "" // CGI: HTTP_PROXY may be a request header (httpoxy)
	}
	pf := cfg.ProxyFunc()
	return func(r *http.Request) (*url.URL, error) { return pf(r.URL) }
}

func runAgent(ctx context.Context, o *agentOptions) error {
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return exitcode.Wrap(exitcode.Usage, fmt.Errorf("--dir %s: %w", o.Dir, err))
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return exitcode.Errorf(exitcode.Usage, "--dir %s: not a directory; give the run steps' working directory", o.Dir)
	}
	// Run steps get the agent's environment without its credentials.
	env := withoutKeys(o.Env.List(), []string{agentTokenEnv, "ZOF_TOKEN"})
	var groups step.GroupRecorder
	if o.State != "" {
		j, err := agentLeftoversKilled(o.State, o.IO.ErrOut)
		if err != nil {
			return err
		}
		defer j.Close()
		groups = j
	}
	return agent.Run(ctx, agent.Options{
		Groups:      groups,
		Server:      o.Server,
		Token:       o.Token,
		Name:        o.Name,
		Concurrency: o.Concurrency,
		Labels:      o.Labels,
		Version:     version,
		DrainGrace:  o.DrainGrace,
		Dir:         dir,
		Env:         env,
		Proxy:       proxyFunc(o.Env),
		Out:         o.IO.ErrOut,
	})
}

// agentLeftoversKilled opens the agent's process-group journal in state and
// kills what a previous agent on it left running (its SIGKILL spared the
// grandchildren its steps had put in the background).
func agentLeftoversKilled(state string, log io.Writer) (*procgroup.Journal, error) {
	j, err := procgroup.Open(filepath.Join(state, "procgroups"))
	if errors.Is(err, procgroup.ErrInUse) {
		return nil, exitcode.Wrap(exitcode.Usage, fmt.Errorf("%w: another zof agent uses the state directory %s; give this one its own --state", err, state))
	}
	if err != nil {
		return nil, exitcode.Wrap(exitcode.Usage, fmt.Errorf("--state: %w", err))
	}
	s, err := j.Sweep(sweepWait)
	if err != nil {
		j.Close()
		return nil, exitcode.Wrap(exitcode.Usage, fmt.Errorf("--state: %w", err))
	}
	if len(s.Killed) > 0 {
		fmt.Fprintf(log, "zof agent: killed step processes a previous zof agent left running (process groups %v)\n", s.Killed)
	}
	if len(s.Unverified) > 0 {
		fmt.Fprintf(log, "zof agent: process groups a previous zof agent started still exist but cannot be proven the same on this OS; not killed, check them: %v\n", s.Unverified)
	}
	if len(s.Stuck) > 0 {
		fmt.Fprintf(log, "zof agent: step processes a previous zof agent left running did not die after SIGKILL: %v\n", s.Stuck)
	}
	return j, nil
}
