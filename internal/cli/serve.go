package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/engine/sqlitestore"
	"github.com/zof-ai/zof-ci/internal/exitcode"
	"github.com/zof-ai/zof-ci/internal/procgroup"
	"github.com/zof-ai/zof-ci/internal/runner"
	"github.com/zof-ai/zof-ci/internal/server"
	"github.com/zof-ai/zof-ci/internal/server/config"
	"github.com/zof-ai/zof-ci/internal/server/schedule"
	"github.com/zof-ai/zof-ci/internal/server/webhook"
	"github.com/zof-ai/zof-ci/internal/step"
)

// pruneEvery is how often expired idempotency keys, deliveries and ticks are
// deleted; they are kept 7 days (api.md), so an hourly sweep keeps the tables
// small without mattering.
const pruneEvery = time.Hour

// serveStopWait bounds the wait for steps still being killed at shutdown.
const serveStopWait = 5 * time.Second

// sweepWait bounds the wait at start for a previous instance's leftover
// process groups to die after SIGKILL (only a process stuck in the kernel
// takes longer).
const sweepWait = 5 * time.Second

var _ step.GroupRecorder = (*procgroup.Journal)(nil)

func serveCommand() *command {
	c := &command{
		name:  "serve",
		short: "run the execution service (HTTP API, queue, tenants, persistence)",
		long: "Runs and their events are kept in DATA/zof.db (SQLite, WAL) and survive a restart:\n" +
			"queued runs keep their order, running runs resume (finished members keep their results).\n" +
			"Mutations are appended to DATA/audit.log. SIGINT/SIGTERM: stop accepting, end streams,\n" +
			"leave unfinished runs for the next start. The config format is in docs/serve.md.",
		example: "zof serve --data ./zof-data --config server.yaml",
	}
	c.run = func(ctx context.Context, a *app, args []string) error {
		fs := newFlags(a, c)
		var dataDir, configPath, listen, logFormat string
		fs.StringVar(&dataDir, "data", "zof-data", "directory for the database and the audit log (env ZOF_DATA)")
		fs.StringVar(&configPath, "config", "server.yaml", "server config: tenants, tokens, limits (env ZOF_SERVER_CONFIG)")
		fs.StringVar(&listen, "listen", "", "address to listen on, overrides the config's listen (e.g. 127.0.0.1:8080)")
		fs.StringVar(&logFormat, "log-format", "text", "text | json")
		if err := parse(fs, args); err != nil {
			return err
		}
		if fs.NArg() > 0 {
			return exitcode.Errorf(exitcode.Usage, "unexpected argument %q: serve takes only flags", fs.Arg(0))
		}
		set := setFlags(fs)
		fromEnv(set, "data", a.env, "ZOF_DATA", &dataDir)
		fromEnv(set, "config", a.env, "ZOF_SERVER_CONFIG", &configPath)
		logger, err := newLogger(a.stderr, logFormat)
		if err != nil {
			return err
		}
		return serve(ctx, a, logger, dataDir, configPath, listen)
	}
	return c
}

func newLogger(w io.Writer, format string) (*slog.Logger, error) {
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, nil)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, nil)), nil
	}
	return nil, exitcode.Errorf(exitcode.Usage, "--log-format %q: use text or json", format)
}

func serve(ctx context.Context, a *app, log *slog.Logger, dataDir, configPath, listen string) error {
	start := time.Now()
	cfg, err := config.Load(configPath, a.env.Lookup)
	if err != nil {
		var cerr *config.Error
		if errors.As(err, &cerr) {
			for _, p := range cerr.Problems {
				fmt.Fprintf(a.stderr, "%s: %s\n", configPath, p)
			}
			fmt.Fprintf(a.stderr, "%s: the server config is invalid; nothing was started. Fix it and start again (format: docs/serve.md).\n", configPath)
			return exitcode.Reported(exitcode.Usage)
		}
		return exitcode.Wrap(exitcode.Usage, fmt.Errorf("%w (format: docs/serve.md)", err))
	}
	if listen == "" {
		listen = cfg.Listen
	}
	workDir := filepath.Join(dataDir, "work")
	if err := os.MkdirAll(workDir, 0o700); err != nil {
		return exitcode.Wrap(exitcode.Usage, fmt.Errorf("data directory %s: %w", dataDir, err))
	}
	groups, err := leftoversKilled(dataDir, log)
	if err != nil {
		return err
	}
	defer groups.Close()
	store, err := sqlitestore.Open(ctx, filepath.Join(dataDir, sqlitestore.FileName), sqlitestore.Options{})
	if err != nil {
		return exitcode.Wrap(exitcode.Usage, fmt.Errorf("opening the store in %s: %w", dataDir, err))
	}
	defer store.Close()
	audit, err := os.OpenFile(filepath.Join(dataDir, "audit.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return exitcode.Wrap(exitcode.Usage, fmt.Errorf("opening the audit log: %w", err))
	}
	defer audit.Close()

	// Commands that tenants may run get the server's environment minus the
	// tenants' own tokens: a run must not be able to read another's credentials.
	env := withoutKeys(a.env.List(), append(cfg.TokenEnv(), "ZOF_TOKEN"))
	steps := step.NewExecutor(step.ExecutorOptions{Groups: groups})
	eng, err := engine.New(engine.Config{
		Store:             store,
		Steps:             steps,
		Services:          runner.Services(step.ServiceOptions{Dir: workDir, Env: env, Groups: groups}),
		TenantLimit:       cfg.TenantLimit,
		RunURL:            cfg.RunURL,
		URLPolicy:         cfg.TargetPolicy,
		BlockAfter:        cfg.BlockAfter,
		LeaveQueuedOnStop: true,
		// 1,000 watchers × the default 1,024-event buffer cost ~350 MB; 256 keeps
		// it under 200 MB and a slow watcher still resumes without loss.
		SubscriberBuffer: 256,
		Dir:              workDir,
		Env:              env,
		Logger:           log,
	})
	if err != nil {
		return err
	}
	srv, err := server.New(server.Options{Config: cfg, Engine: eng, Triggers: store, Ready: store.Ping, Logger: log, Audit: audit})
	if err != nil {
		return exitcode.Wrap(exitcode.Usage, err)
	}
	hooks, err := webhook.New(webhook.Options{Config: cfg, Store: store, Submitter: srv, Logger: log})
	if err != nil {
		srv.Close()
		return exitcode.Wrap(exitcode.Usage, err)
	}
	srv.SetWebhooks(hooks)
	sched, err := schedule.New(schedule.Options{Config: cfg, Store: store, Submitter: srv, Repos: hooks.Repos(), Logger: log})
	if err != nil {
		srv.Close()
		return exitcode.Wrap(exitcode.Usage, err)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		srv.Close()
		return exitcode.Wrap(exitcode.Usage, fmt.Errorf("listening on %s: %w; is another zof serve running? Set --listen or `listen:` in %s", listen, err, configPath))
	}

	engCtx, stopEngine := context.WithCancel(context.Background())
	engDone := make(chan struct{})
	go func() {
		defer close(engDone)
		if err := eng.Run(engCtx); err != nil {
			log.Error("engine stopped", "err", err)
		}
	}()
	go prune(engCtx, store, log)
	// Deliveries and ticks a previous process accepted but did not finish.
	if n, err := hooks.Resume(engCtx); err != nil {
		log.Warn("resuming webhook deliveries", "err", err)
	} else if n > 0 {
		log.Info("resumed unfinished webhook deliveries", "count", n)
	}
	schedDone := make(chan struct{})
	go func() {
		defer close(schedDone)
		if err := sched.Run(engCtx); err != nil && engCtx.Err() == nil {
			log.Error("schedules stopped", "err", err)
		}
	}()

	log.Info("zof serve listening", "url", "http://"+ln.Addr().String(), "data", dataDir,
		"tenants", strings.Join(cfg.TenantNames(), ","), "version", version, "startup", time.Since(start).Round(time.Millisecond).String())
	serveErr := srv.Serve(ctx, ln)

	// Streams have ended; stop triggers, then the engine, which leaves
	// unfinished runs in the store for the next start, and wait for step
	// processes to die.
	hooks.Close()
	stopEngine()
	<-schedDone
	<-engDone
	waitCtx, cancel := context.WithTimeout(context.Background(), serveStopWait)
	defer cancel()
	if err := steps.Wait(waitCtx); err != nil {
		log.Warn("steps still running at exit", "err", err)
	}
	log.Info("zof serve stopped")
	if serveErr != nil {
		return exitcode.Wrap(exitcode.Unavailable, serveErr)
	}
	return nil
}

// leftoversKilled opens DATA/procgroups, the journal of the step and service
// process groups this server starts, and kills those a previous instance
// recorded and left running (it was killed, or ran out of memory) before the
// engine resumes their runs: a resumed member never runs alongside its orphan.
func leftoversKilled(dataDir string, log *slog.Logger) (*procgroup.Journal, error) {
	dir := filepath.Join(dataDir, "procgroups")
	j, err := procgroup.Open(dir)
	if errors.Is(err, procgroup.ErrInUse) {
		return nil, exitcode.Wrap(exitcode.Usage, fmt.Errorf("%w: another zof serve is running on the data directory %s; stop it, or give this one its own --data", err, dataDir))
	}
	if err != nil {
		return nil, exitcode.Wrap(exitcode.Usage, err)
	}
	s, err := j.Sweep(sweepWait)
	if err != nil {
		j.Close()
		return nil, exitcode.Wrap(exitcode.Usage, err)
	}
	if len(s.Killed) > 0 {
		log.Warn("killed step processes the previous zof serve left running", "process_groups", fmt.Sprint(s.Killed))
	}
	if len(s.Unverified) > 0 {
		log.Warn("process groups the previous zof serve started still exist, but this OS gives no start time to prove they are the same; not killed, check them", "process_groups", fmt.Sprint(s.Unverified))
	}
	if len(s.Stuck) > 0 {
		log.Error("step processes the previous zof serve left running did not die after SIGKILL (stuck in the kernel?); their runs resume anyway", "process_groups", fmt.Sprint(s.Stuck))
	}
	return j, nil
}

// prune deletes expired idempotency keys every pruneEvery until ctx ends.
func prune(ctx context.Context, store *sqlitestore.Store, log *slog.Logger) {
	t := time.NewTicker(pruneEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if n, err := store.Prune(ctx, now); err != nil {
				log.Warn("pruning idempotency keys", "err", err)
			} else if n > 0 {
				log.Info("pruned expired idempotency keys", "count", n)
			}
			if n, err := store.PruneTriggers(ctx, now); err != nil {
				log.Warn("pruning webhook deliveries and schedule ticks", "err", err)
			} else if n > 0 {
				log.Info("pruned expired triggers", "count", n)
			}
		}
	}
}

// withoutKeys drops the named variables from an os.Environ-style list.
func withoutKeys(environ, keys []string) []string {
	out := make([]string, 0, len(environ))
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(keys, k) {
			out = append(out, kv)
		}
	}
	return out
}
