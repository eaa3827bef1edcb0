// Package schedule creates runs from the cron schedules of server.yaml
// (tenant `schedules:`), through the same path as POST /v1/runs
// (server.Server.Submit).
//
// Each schedule has a 5-field cron expression evaluated on the wall clock of
// its IANA time zone (gronx), so "0 2 * * *" in Europe/Berlin is 02:00 local
// time in winter and in summer. A tick is
// identified as "NAME@TICK" (TICK in RFC 3339, UTC) and stored as a trigger
// (source schedule) before anything else; the store's unique key makes the
// tick fire once however many server processes see it or how often one
// restarts, and the run's idempotency key "schedule:TENANT:NAME:TICK" (with a
// fixed fingerprint) makes processing it twice create one run.
//
// Catch-up rule after downtime: when the scheduler starts (and whenever it
// checks), only the most recent tick at or before now is considered, and only
// if it is at most CatchUpWindow old (DefaultCatchUpWindow, 1 hour): then it
// fires, once. Older missed ticks are skipped with a log line naming them;
// a server down for a week does not start seven nightly runs at once.
//
// The suite is read per tick: from one of the tenant's repositories at the
// schedule's ref through the repository's API (its ${VAR}s resolve from the
// repository's vars only), or from a file on the server's disk (suite_file;
// its ${VAR}s resolve from nothing, so each needs a default). Processing is
// retried like a webhook's (trigger.Backoff); a tick that cannot make a run
// ends as a failed trigger, visible in GET /v1/triggers and logged.
//
// Schedules in the suite file itself are not supported: a schedule must be
// known without reading any repository, so it lives in server.yaml.
package schedule

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/adhocore/gronx"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/gate"
	"github.com/zof-ai/zof-ci/internal/server"
	"github.com/zof-ai/zof-ci/internal/server/config"
	"github.com/zof-ai/zof-ci/internal/server/webhook"
	"github.com/zof-ai/zof-ci/internal/suite"
	"github.com/zof-ai/zof-ci/internal/trigger"
)

const (
	// DefaultCatchUpWindow is how old the most recent missed tick may be and
	// still fire after downtime; older ones are skipped.
	DefaultCatchUpWindow = time.Hour
	// maxSleep bounds one wait of Run, so a changed wall clock (NTP step,
	// suspended VM) is noticed within it.
	maxSleep = time.Minute
	// saveTimeout bounds recording a state change.
	saveTimeout = 5 * time.Second
)

// Submitter creates runs through the server's create path (*server.Server).
type Submitter interface {
	Submit(ctx context.Context, p config.Principal, req *api.RunRequest, opts engine.CreateOptions) (*api.Run, bool, error)
}

var _ Submitter = (*server.Server)(nil)

// Options configure a Scheduler. Config, Store and Submitter are required.
type Options struct {
	Config    *config.Config
	Store     trigger.Store
	Submitter Submitter
	// Repos reads suites from repositories (nil: a Repos with default API URLs).
	Repos *webhook.Repos
	// ReadFile reads a suite_file (nil: os.ReadFile).
	ReadFile func(path string) ([]byte, error)
	// CatchUpWindow: see DefaultCatchUpWindow.
	CatchUpWindow time.Duration
	Backoff       trigger.Backoff
	Logger        *slog.Logger
	Now           func() time.Time
}

// Scheduler fires the configured schedules.
type Scheduler struct {
	opts Options
	log  *slog.Logger
	keep *trigger.Keeper

	mu   sync.Mutex
	seen map[*config.Schedule]time.Time // the last tick this process handled
	wg   sync.WaitGroup
}

// New builds a Scheduler; call Run (or Check, in tests).
func New(opts Options) (*Scheduler, error) {
	switch {
	case opts.Config == nil:
		return nil, errors.New("schedule: Options.Config is required")
	case opts.Store == nil:
		return nil, errors.New("schedule: Options.Store is required (the server's store keeps ticks)")
	case opts.Submitter == nil:
		return nil, errors.New("schedule: Options.Submitter is required (the *server.Server)")
	}
	if opts.Repos == nil {
		opts.Repos = &webhook.Repos{}
	}
	if opts.ReadFile == nil {
		opts.ReadFile = os.ReadFile
	}
	if opts.CatchUpWindow <= 0 {
		opts.CatchUpWindow = DefaultCatchUpWindow
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Scheduler{opts: opts, log: opts.Logger, keep: trigger.NewKeeper(opts.Store, trigger.SourceSchedule),
		seen: map[*config.Schedule]time.Time{}}, nil
}

// Key is a tick's trigger key: "NAME@TICK", TICK in RFC 3339 UTC.
func Key(name string, tick time.Time) string {
	return name + "@" + tick.UTC().Format(time.RFC3339)
}

// IdempotencyKey is the run's key for a tick.
func IdempotencyKey(tenant, name string, tick time.Time) string {
	return "schedule:" + tenant + ":" + name + ":" + tick.UTC().Format(time.RFC3339)
}

// Fired is a tick a Check found due.
type Fired struct {
	Tenant, Schedule string
	Tick             time.Time
	// Trigger is the stored trigger's id; Duplicate is true when another
	// process (or an earlier start) had stored it already, so nothing was done.
	Trigger   string
	Duplicate bool
}

// Run resumes unfinished ticks, then checks the schedules at every tick
// until ctx ends, and waits for the processing it started. With a store
// shared by several replicas (trigger.Leaser) it meanwhile renews the
// leases of the ticks it works on and takes up those whose holder's lease
// expired (a replica that died), and it releases its leases when it ends.
func (s *Scheduler) Run(ctx context.Context) error {
	var loop sync.WaitGroup
	defer func() {
		loop.Wait()
		s.wg.Wait()
		if err := s.keep.Release(); err != nil {
			s.log.Warn("releasing schedule tick leases: other replicas take them up when the leases expire", "err", err)
		}
	}()
	if err := s.Resume(ctx); err != nil {
		s.log.Error("resuming schedule ticks", "err", err)
	}
	loop.Add(1)
	go func() {
		defer loop.Done()
		s.keep.Run(ctx, s.opts.Now, func(rec *trigger.Record) { s.resume(ctx, rec) }, func(err error) {
			s.log.Warn("schedule tick leases", "err", err)
		})
	}()
	for {
		now := s.opts.Now()
		s.Check(ctx, now)
		wait := min(s.untilNext(now), maxSleep)
		t := time.NewTimer(max(wait, time.Second))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// Wait waits for the processing Check started.
func (s *Scheduler) Wait() { s.wg.Wait() }

func (s *Scheduler) untilNext(now time.Time) time.Duration {
	best := maxSleep
	for _, sc := range s.opts.Config.AllSchedules() {
		next, err := gronx.NextTickAfter(sc.Cron, now.In(sc.Location), false)
		if err == nil && next.Sub(now) < best {
			best = next.Sub(now)
		}
	}
	return best
}

// Check fires, for every schedule, the most recent tick at or before now if
// this process has not handled it yet and it is within the catch-up window;
// an older one is skipped with a log line. Processing runs in the
// background (Wait waits for it).
func (s *Scheduler) Check(ctx context.Context, now time.Time) []Fired {
	var out []Fired
	for _, sc := range s.opts.Config.AllSchedules() {
		tick, err := gronx.PrevTickBefore(sc.Cron, now.In(sc.Location).Truncate(time.Minute), true)
		if err != nil {
			s.log.Error("schedule: no previous tick", "tenant", sc.Tenant, "schedule", sc.Name, "cron", sc.Cron, "err", err)
			continue
		}
		tick = tick.UTC()
		s.mu.Lock()
		last, known := s.seen[sc]
		s.seen[sc] = tick
		s.mu.Unlock()
		if known && !tick.After(last) {
			continue
		}
		if !known {
			s.logSkipped(ctx, sc, tick)
		}
		if age := now.Sub(tick); age > s.opts.CatchUpWindow {
			s.log.Warn("schedule: missed tick skipped (older than the catch-up window)", "tenant", sc.Tenant, "schedule", sc.Name,
				"tick", tick.Format(time.RFC3339), "age", age.Round(time.Second), "window", s.opts.CatchUpWindow)
			continue
		}
		f, err := s.fire(ctx, sc, tick, now)
		if err != nil {
			s.log.Error("schedule: tick not stored; it is tried again at the next check", "tenant", sc.Tenant, "schedule", sc.Name, "tick", tick.Format(time.RFC3339), "err", err)
			s.mu.Lock()
			if known {
				s.seen[sc] = last
			} else {
				delete(s.seen, sc)
			}
			s.mu.Unlock()
			continue
		}
		out = append(out, f)
	}
	return out
}

// logSkipped says which ticks between the last stored one and tick were
// never fired (the server was down); the catch-up rule skips them.
func (s *Scheduler) logSkipped(ctx context.Context, sc *config.Schedule, tick time.Time) {
	list, _, err := s.opts.Store.ListTriggers(ctx, sc.Tenant, trigger.Filter{Source: trigger.SourceSchedule, Event: sc.Name, Limit: 1})
	if err != nil || len(list) == 0 {
		return
	}
	var d detail
	if json.Unmarshal(list[0].Detail, &d) != nil || d.Tick.IsZero() {
		return
	}
	before, err := gronx.PrevTickBefore(sc.Cron, tick.In(sc.Location), false)
	if err != nil || !before.After(d.Tick) {
		return
	}
	s.log.Warn("schedule: ticks missed while no server ran were skipped (only the most recent is caught up)", "tenant", sc.Tenant,
		"schedule", sc.Name, "last_fired", d.Tick.Format(time.RFC3339), "skipped_through", before.UTC().Format(time.RFC3339))
}

// detail is a schedule trigger's Detail.
type detail struct {
	Schedule string    `json:"schedule"`
	Tick     time.Time `json:"tick"`
}

func (s *Scheduler) fire(ctx context.Context, sc *config.Schedule, tick, now time.Time) (Fired, error) {
	key := Key(sc.Name, tick)
	rec := trigger.New(sc.Tenant, api.TriggerSchedule, trigger.SourceSchedule, key, now)
	rec.Event, rec.Ref = sc.Name, sc.Ref
	if sc.Repository != nil {
		rec.Repo = sc.Repository.Repo
	}
	rec.Detail, _ = json.Marshal(detail{Schedule: sc.Name, Tick: tick})
	rec.Owner = s.keep.Owner()
	holder, err := s.opts.Store.CreateTrigger(ctx, rec)
	if err != nil {
		return Fired{}, err
	}
	f := Fired{Tenant: sc.Tenant, Schedule: sc.Name, Tick: tick, Trigger: rec.ID}
	if holder != nil {
		f.Trigger, f.Duplicate = holder.ID, true
		s.log.Info("schedule: tick already fired", "tenant", sc.Tenant, "schedule", sc.Name, "tick", tick.Format(time.RFC3339), "trigger", holder.ID)
		return f, nil
	}
	s.log.Info("schedule: tick fired", "tenant", sc.Tenant, "schedule", sc.Name, "tick", tick.Format(time.RFC3339), "trigger", rec.ID)
	s.spawn(ctx, rec, sc, tick)
	return f, nil
}

// spawn processes rec in the background, holding its lease meanwhile.
func (s *Scheduler) spawn(ctx context.Context, rec *trigger.Record, sc *config.Schedule, tick time.Time) {
	hctx, done := s.keep.Hold(ctx, rec.ID)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer done()
		s.process(hctx, rec, sc, tick)
	}()
}

// Resume processes the schedule ticks a previous process stored but did
// not finish (with a store shared by several replicas: those no live
// replica holds).
func (s *Scheduler) Resume(ctx context.Context) error {
	pending, err := s.keep.Pending(ctx, s.opts.Now())
	if err != nil {
		return fmt.Errorf("reading unfinished schedule ticks: %w", err)
	}
	for _, rec := range pending {
		s.resume(ctx, rec)
	}
	return nil
}

func (s *Scheduler) resume(ctx context.Context, rec *trigger.Record) {
	var d detail
	_ = json.Unmarshal(rec.Detail, &d)
	var sc *config.Schedule
	if t := s.opts.Config.Tenants[rec.Tenant]; t != nil {
		for _, c := range t.Schedules {
			if c.Name == d.Schedule {
				sc = c
			}
		}
	}
	if sc == nil {
		rec.State, rec.Reason = api.TriggerFailed, fmt.Sprintf("schedule %s is no longer in server.yaml", d.Schedule)
		_ = s.save(ctx, rec) // a refusal is logged; nothing else to stop
		return
	}
	if rec.State == api.TriggerRunCreated {
		rec.Reported = true // schedules post no reports
		_ = s.save(ctx, rec)
		return
	}
	s.log.Info("resuming a schedule tick", "trigger", rec.ID, "schedule", d.Schedule, "tick", d.Tick.Format(time.RFC3339))
	s.spawn(ctx, rec, sc, d.Tick)
}

// save records rec's state. A store that cannot be reached is logged and
// processing goes on; a write refused because this process lost the tick's
// lease (trigger.ErrFenced: another replica took it over) is returned, and
// the caller stops at once: the replica holding the tick finishes it.
func (s *Scheduler) save(ctx context.Context, rec *trigger.Record) error {
	rec.UpdatedAt = s.opts.Now().UTC()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), saveTimeout)
	defer cancel()
	err := s.opts.Store.UpdateTrigger(sctx, rec)
	switch {
	case errors.Is(err, trigger.ErrFenced):
		s.log.Warn("schedule tick taken over by another replica (this one lost its lease): stopping", "trigger", rec.ID,
			"key", rec.Key, "state", rec.State, "err", err)
		return err
	case err != nil:
		s.log.Error("recording a schedule tick's state", "trigger", rec.ID, "state", rec.State, "err", err)
	}
	return nil
}

func (s *Scheduler) process(ctx context.Context, rec *trigger.Record, sc *config.Schedule, tick time.Time) {
	var run *api.Run
	var ignored string
	err := s.opts.Backoff.Do(ctx, func(int) error {
		rec.Attempts++
		rec.State, rec.Reason = api.TriggerProcessing, ""
		if err := s.save(ctx, rec); err != nil {
			return &trigger.Permanent{Err: err}
		}
		var err error
		run, ignored, err = s.create(ctx, rec, sc, tick)
		if err != nil && !trigger.IsPermanent(err) && ctx.Err() == nil {
			rec.Reason = err.Error()
			if err := s.save(ctx, rec); err != nil {
				return &trigger.Permanent{Err: err}
			}
		}
		return err
	})
	switch {
	case ctx.Err() != nil:
		return // stays processing for Resume
	case errors.Is(err, trigger.ErrFenced):
		return // another replica holds the tick now
	case err != nil:
		rec.State, rec.Reason = api.TriggerFailed, err.Error()
		if s.save(ctx, rec) == nil {
			s.log.Error("schedule tick failed: no run was created", "tenant", sc.Tenant, "schedule", sc.Name, "tick", tick.Format(time.RFC3339), "trigger", rec.ID, "err", err)
		}
	case ignored != "":
		rec.State, rec.Reason = api.TriggerIgnored, ignored
		if s.save(ctx, rec) == nil {
			s.log.Info("schedule tick ignored", "tenant", sc.Tenant, "schedule", sc.Name, "trigger", rec.ID, "reason", ignored)
		}
	default:
		// A run created by a replica that lost the tick meanwhile is the
		// one the holder finds by the tick's idempotency key.
		rec.State, rec.RunID, rec.Reported = api.TriggerRunCreated, run.ID, true
		if s.save(ctx, rec) == nil {
			s.log.Info("schedule tick created a run", "tenant", sc.Tenant, "schedule", sc.Name, "tick", tick.Format(time.RFC3339), "run", run.ID)
		}
	}
}

func (s *Scheduler) create(ctx context.Context, rec *trigger.Record, sc *config.Schedule, tick time.Time) (*api.Run, string, error) {
	var data []byte
	var err error
	name := sc.SuiteFile
	lookup := func(string) (string, bool) { return "", false }
	src := api.Source{Provider: "local", Trigger: api.TriggerSchedule, TriggerID: rec.Key}
	if repo := sc.Repository; repo != nil {
		name, lookup = repo.Suite, repo.Lookup
		src.Provider, src.Repo, src.Ref = repo.Provider, repo.Repo, sc.Ref
		data, err = s.opts.Repos.ReadSuite(ctx, repo, sc.Ref)
	} else {
		data, err = s.opts.ReadFile(sc.SuiteFile)
		if err != nil {
			err = &trigger.Permanent{Err: fmt.Errorf("reading suite_file %s: %w; fix the path in server.yaml", sc.SuiteFile, err)}
		}
	}
	if err != nil {
		return nil, "", err
	}
	st, err := suite.Parse(name, bytes.NewReader(data), suite.Options{Lookup: lookup, Environment: sc.Environment})
	if err != nil {
		return nil, "", &trigger.Permanent{Err: fmt.Errorf("the suite %s is invalid: %w", name, err)}
	}
	suiteFile := name
	if sc.Repository == nil {
		suiteFile = filepath.Base(name)
	}
	// shadow: sample:N picks one tick in N, by the tick's time.
	plan, err := gate.PlanTrigger(st, sc.Scope, sc.Environment, nil, suiteFile, sc.Shadow.On && gate.ShadowSampled(0, tick.UTC().Format(time.RFC3339), sc.Shadow.Sample))
	if err != nil {
		return nil, "", &trigger.Permanent{Err: err}
	}
	if plan.Empty() {
		why := "nothing to run: no cases selected for scope " + sc.Scope
		if st.Gate.OnEmpty == suite.OnEmptyPass {
			return nil, why + "; gate.on_empty is pass", nil
		}
		return nil, "", &trigger.Permanent{Err: errors.New(why + "; gate.on_empty is fail")}
	}
	req := plan.Request
	req.Source = src
	req.Labels = map[string]string{"schedule": sc.Name}
	key := IdempotencyKey(sc.Tenant, sc.Name, tick)
	p := config.Principal{Tenant: sc.Tenant, Name: "schedule:" + sc.Name, Role: config.RoleRunner}
	run, _, err := s.opts.Submitter.Submit(ctx, p, req, engine.CreateOptions{IdempotencyKey: key, Fingerprint: key})
	switch {
	case err == nil:
		return run, "", nil
	case errors.As(err, new(*server.RefusedError)), errors.As(err, new(*engine.ValidationError)), errors.As(err, new(*engine.IdempotencyConflictError)):
		return nil, "", &trigger.Permanent{Err: fmt.Errorf("the run was refused: %w", err)}
	}
	return nil, "", fmt.Errorf("creating the run: %w", err)
}
