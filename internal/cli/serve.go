package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/zof-ai/zof-ci/internal/cli/iostreams"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/engine/pgstore"
	"github.com/zof-ai/zof-ci/internal/engine/sqlitestore"
	"github.com/zof-ai/zof-ci/internal/exitcode"
	"github.com/zof-ai/zof-ci/internal/fleet"
	"github.com/zof-ai/zof-ci/internal/fleet/home"
	"github.com/zof-ai/zof-ci/internal/procgroup"
	"github.com/zof-ai/zof-ci/internal/runner"
	"github.com/zof-ai/zof-ci/internal/server"
	"github.com/zof-ai/zof-ci/internal/server/config"
	"github.com/zof-ai/zof-ci/internal/server/schedule"
	"github.com/zof-ai/zof-ci/internal/server/webhook"
	"github.com/zof-ai/zof-ci/internal/step"
	"github.com/zof-ai/zof-ci/internal/trigger"
	"github.com/zof-ai/zof-ci/internal/web"
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

var (
	_ step.GroupRecorder = (*procgroup.Journal)(nil)
	_ web.Actions        = (*server.Server)(nil)
)

// serveOptions are zof serve's.
type serveOptions struct {
	IO   *iostreams.IOStreams
	Env  Env
	Data string
	// Database is a PostgreSQL URL (--database, env ZOF_DATABASE_URL); "" is
	// SQLite in Data.
	Database  string
	Config    string
	Listen    string // "" is the config's listen
	LogFormat string
	// MetricsListen is the metrics listener's address; "" is the config's
	// metrics_listen, config.MetricsListenOff none.
	MetricsListen string
	// Advertise is the URL other replicas reach this one at (--advertise,
	// env ZOF_ADVERTISE_URL); "" derives it from the listen address.
	Advertise string
}

func newCmdServe(f *Factory, runF func(context.Context, *serveOptions) error) *command {
	o := &serveOptions{IO: f.IO, Env: f.Env}
	c := &command{
		name:  "serve",
		short: "run the execution service (HTTP API, queue, tenants, persistence)",
		long: "Runs and their events are kept in DATA/zof.db (SQLite, WAL), or in PostgreSQL with --database,\n" +
			"and survive a restart: " +
			"queued runs keep their order, running runs resume (finished members keep their results).\n" +
			"Mutations are appended to DATA/audit.log. SIGINT/SIGTERM: stop accepting, end streams,\n" +
			"leave unfinished runs for the next start. The config format is in docs/serve.md.",
		example: "zof serve --data ./zof-data --config server.yaml",
	}
	c.flags = func(fs *flag.FlagSet) {
		fs.StringVar(&o.Data, "data", "zof-data", "directory for the database and the audit log (env ZOF_DATA)")
		fs.StringVar(&o.Database, "database", "", "PostgreSQL URL (postgres://user@host/db) for runs and events instead of SQLite in --data (env ZOF_DATABASE_URL)")
		fs.StringVar(&o.Config, "config", "server.yaml", "server config: tenants, tokens, limits (env ZOF_SERVER_CONFIG)")
		fs.StringVar(&o.Listen, "listen", "", "address to listen on, overrides the config's listen (e.g. 127.0.0.1:8080)")
		fs.StringVar(&o.LogFormat, "log-format", "text", "text | json")
		fs.StringVar(&o.MetricsListen, "metrics-listen", "", "address of the metrics listener (GET /metrics), overrides the config's metrics_listen; off for none")
		fs.StringVar(&o.Advertise, "advertise", "", "with --database and agent pools: the URL other replicas reach this one at (default http://LISTEN unless it is a wildcard; env ZOF_ADVERTISE_URL)")
	}
	c.run = func(ctx context.Context, fs *flag.FlagSet, pos []string) error {
		if err := noArgs(c, pos, ""); err != nil {
			return err
		}
		set := setFlags(fs)
		fromEnv(set, "data", f.Env, "ZOF_DATA", &o.Data)
		fromEnv(set, "config", f.Env, "ZOF_SERVER_CONFIG", &o.Config)
		fromEnv(set, "database", f.Env, "ZOF_DATABASE_URL", &o.Database)
		fromEnv(set, "advertise", f.Env, "ZOF_ADVERTISE_URL", &o.Advertise)
		if o.LogFormat != "text" && o.LogFormat != "json" {
			return exitcode.Errorf(exitcode.Usage, "--log-format %q: use text or json", o.LogFormat)
		}
		if runF != nil {
			return runF(ctx, o)
		}
		return serve(ctx, o, newLogger(o.IO.ErrOut, o.LogFormat))
	}
	return c
}

// newLogger is the server's log in format (text or json, validated by the parse step).
func newLogger(w io.Writer, format string) *slog.Logger {
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}

func serve(ctx context.Context, o *serveOptions, log *slog.Logger) error {
	dataDir, configPath, listen, metricsListen := o.Data, o.Config, o.Listen, o.MetricsListen
	start := time.Now()
	cfg, err := config.Load(configPath, o.Env.Lookup)
	if err != nil {
		var cerr *config.Error
		if errors.As(err, &cerr) {
			for _, p := range cerr.Problems {
				fmt.Fprintf(o.IO.ErrOut, "%s: %s\n", configPath, p)
			}
			fmt.Fprintf(o.IO.ErrOut, "%s: the server config is invalid; nothing was started. Fix it and start again (format: docs/serve.md).\n", configPath)
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
	store, storeName, err := openStore(ctx, o)
	if err != nil {
		return err
	}
	defer store.Close()
	audit, err := os.OpenFile(filepath.Join(dataDir, "audit.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return exitcode.Wrap(exitcode.Usage, fmt.Errorf("opening the audit log: %w", err))
	}
	defer audit.Close()

	// Commands that tenants may run get the server's environment minus the
	// tenants' own tokens: a run must not be able to read another's credentials.
	env := withoutKeys(o.Env.List(), append(cfg.TokenEnv(), "ZOF_TOKEN"))
	steps := step.NewExecutor(step.ExecutorOptions{Groups: groups})
	// Endpoint agents (docs/agents.md): the fleet executes pool runs'
	// members; lease epochs stay monotonic across restarts through DATA/lease-epoch
	// (on PostgreSQL, across replicas through the database; the fleet then
	// lives on one replica, its home, that the others reach: fleetHome).
	var epochs fleet.EpochStore = fleet.NewFileEpochs(filepath.Join(dataDir, "lease-epoch"))
	pg, _ := store.(*pgstore.Store)
	if pg != nil {
		epochs = pg.FleetEpochs()
	}
	agents, err := fleet.New(fleet.Options{Config: cfg, Epochs: epochs, Logger: log})
	if err != nil {
		return exitcode.Wrap(exitcode.Usage, err)
	}
	replica := ""
	var fh *home.Home
	fleetAPI := fleetOf{agents, agents, agents}
	if pg != nil && hasPools(cfg) {
		replica = home.NewReplicaName()
		if fh, err = fleetHome(ctx, o, listen, pg, agents, replica, log); err != nil {
			return err
		}
		fleetAPI = fleetOf{fh, fh, fh}
	}
	eng, err := engine.New(engine.Config{
		Remote:            fleetAPI.remote,
		Replica:           replica,
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
	// The webhook receiver creates runs through the server, which mounts it.
	var hooks *webhook.Receiver
	// The console's session cookie authenticates the API's GETs (the run
	// page's EventSource); the console is built next, before anything is served.
	// Test health needs a store that records history (SQLite and PostgreSQL do).
	history, _ := store.(engine.HistoryStore)
	if history == nil {
		log.Warn("this store records no test history: zof health and GET /v1/health answer 501 (docs/health.md)")
	}
	// Each project's latest coverage summary (docs/coverage.md); every store keeps them.
	cov, _ := store.(coverageStore)
	var con *web.Console
	srv, err := server.New(server.Options{Config: cfg, Engine: eng, Fleet: fleetAPI.server, Triggers: store, History: history, Coverage: cov, Ready: store.Ping, Logger: log, Audit: audit,
		Webhooks: func(srv *server.Server) (server.Webhooks, error) {
			var err error
			hooks, err = webhook.New(webhook.Options{Config: cfg, Store: store, Submitter: srv, Logger: log})
			return hooks, err
		},
		Session: func(r *http.Request) (config.Principal, bool) { return con.Principal(r) },
	})
	if err != nil {
		return exitcode.Wrap(exitcode.Usage, err)
	}
	if con, err = mountConsole(consoleDeps{srv: srv, eng: eng, cfg: cfg, log: log, env: o.Env, dataDir: dataDir, history: history, coverage: cov, fleet: consoleFleet(fleetAPI.view, cfg)}); err != nil {
		srv.Close()
		return exitcode.Wrap(exitcode.Usage, err)
	}
	if fh != nil {
		// The other replicas' calls to this one while it is the fleet's home.
		srv.Mount(home.PathPrefix, fh.Handler())
	}
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

	// The metrics listener (metrics_listen / --metrics-listen): metrics name
	// every tenant, so they are kept off the API listener.
	metricsDone := make(chan struct{})
	metricsCtx, stopMetrics := context.WithCancel(ctx)
	defer stopMetrics()
	if metricsListen == "" {
		metricsListen = cfg.MetricsListen
	}
	if metricsListen == config.MetricsListenOff || metricsListen == "" {
		close(metricsDone)
	} else {
		mln, err := net.Listen("tcp", metricsListen)
		if err != nil {
			ln.Close()
			srv.Close()
			return exitcode.Wrap(exitcode.Usage, fmt.Errorf("listening for metrics on %s: %w; set --metrics-listen or `metrics_listen:` in %s (off for none)", metricsListen, err, configPath))
		}
		log.Info("metrics listening", "url", "http://"+mln.Addr().String()+"/metrics")
		go func() {
			defer close(metricsDone)
			if err := srv.ServeMetrics(metricsCtx, mln); err != nil {
				log.Error("metrics listener stopped", "err", err)
			}
		}()
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
	fleetDone := make(chan struct{})
	go func() { defer close(fleetDone); agents.Run(engCtx) }()
	// The fleet home's lease ends with the signal, so that another replica
	// is the home while this one drains.
	homeDone := make(chan struct{})
	go func() {
		defer close(homeDone)
		if fh != nil {
			fh.Run(ctx)
		}
	}()
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

	log.Info("zof serve listening", "url", "http://"+ln.Addr().String(), "data", dataDir, "store", storeName,
		"tenants", strings.Join(cfg.TenantNames(), ","), "version", version, "startup", time.Since(start).Round(time.Millisecond).String())
	serveErr := srv.Serve(ctx, ln)
	stopMetrics()
	<-metricsDone
	<-homeDone

	// Streams have ended; stop triggers, then the engine, which leaves
	// unfinished runs in the store for the next start, and wait for step
	// processes to die.
	hooks.Close()
	stopEngine()
	<-schedDone
	<-engDone
	<-fleetDone
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
func prune(ctx context.Context, store serveStore, log *slog.Logger) {
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

// serveStore is what zof serve needs of its store: SQLite in --data, or
// PostgreSQL (--database).
type serveStore interface {
	engine.Store
	trigger.Store
	Ping(ctx context.Context) error
	Prune(ctx context.Context, now time.Time) (int64, error)
	PruneTriggers(ctx context.Context, now time.Time) (int64, error)
	Close() error
}

var (
	_ serveStore = (*sqlitestore.Store)(nil)
	_ serveStore = (*pgstore.Store)(nil)
)

// openStore opens PostgreSQL when --database is set, else SQLite in --data,
// and names it for the log (never with the URL's password).
func openStore(ctx context.Context, o *serveOptions) (serveStore, string, error) {
	if o.Database != "" {
		s, err := pgstore.Open(ctx, o.Database, pgstore.Options{})
		if err != nil {
			return nil, "", exitcode.Wrap(exitcode.Usage, fmt.Errorf("opening the store: %w", err))
		}
		return s, s.String(), nil
	}
	path := filepath.Join(o.Data, sqlitestore.FileName)
	s, err := sqlitestore.Open(ctx, path, sqlitestore.Options{})
	if err != nil {
		return nil, "", exitcode.Wrap(exitcode.Usage, fmt.Errorf("opening the store in %s: %w", o.Data, err))
	}
	return s, "SQLite " + path, nil
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

// fleetOf is the fleet as the engine, the API and the console use it: the
// replica's own fleet, or with replicas on PostgreSQL the fleet's home
// (package fleet/home), which routes to whichever replica is the home.
var (
	_ server.Fleet          = (*home.Home)(nil)
	_ server.AgentForwarder = (*home.Home)(nil)
)

type fleetOf struct {
	remote engine.RemoteRunner
	server server.Fleet
	view   agentLister
}

func hasPools(cfg *config.Config) bool {
	for _, t := range cfg.Tenants {
		if len(t.Pools) > 0 {
			return true
		}
	}
	return false
}

// fleetHome joins this replica to the fleet's home lease on PostgreSQL
// (docs/agents.md, "Several replicas"): other replicas reach it at its
// advertise URL, from --advertise or derived from a listen address that
// is not a wildcard.
func fleetHome(ctx context.Context, o *serveOptions, listen string, pg *pgstore.Store, agents *fleet.Fleet, replica string, log *slog.Logger) (*home.Home, error) {
	adv := o.Advertise
	if adv == "" {
		adv = home.AdvertiseFromListen(listen)
	}
	if adv == "" {
		return nil, exitcode.Errorf(exitcode.Usage, "--advertise: this replica listens on %s, which other replicas cannot reach it at (a wildcard address, or port 0); with --database and agent pools, name the URL other replicas reach it at (zof serve --advertise http://HOST:PORT, env ZOF_ADVERTISE_URL; docs/agents.md, Several replicas)", listen)
	}
	if err := home.CheckAdvertise(adv); err != nil {
		return nil, exitcode.Wrap(exitcode.Usage, err)
	}
	fh, err := home.New(ctx, home.Options{Fleet: agents, Store: pg, Replica: replica, Advertise: adv, Logger: log})
	if err != nil {
		return nil, exitcode.Wrap(exitcode.Usage, fmt.Errorf("joining the fleet of endpoint agents: %w", err))
	}
	return fh, nil
}
