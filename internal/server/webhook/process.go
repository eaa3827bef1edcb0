package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/diff"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/gate"
	"github.com/zof-ai/zof-ci/internal/reporters/report"
	"github.com/zof-ai/zof-ci/internal/secret"
	"github.com/zof-ai/zof-ci/internal/server"
	"github.com/zof-ai/zof-ci/internal/server/config"
	"github.com/zof-ai/zof-ci/internal/suite"
	"github.com/zof-ai/zof-ci/internal/trigger"
)

// saveTimeout bounds recording a state change; it is recorded even while the
// server stops, so a trigger is never left claiming more than it did.
const saveTimeout = 5 * time.Second

// provider is a repository host's side of processing.
type provider interface {
	readSuite(ctx context.Context) ([]byte, error)
	changes(ctx context.Context) (*diff.Result, error)
	start(ctx context.Context, run *api.Run)
	report(ctx context.Context, res *report.Result)
	failed(ctx context.Context, triggerID, reason string)
}

// masker masks what the repository's vars may put into a run (headers).
func masker(repo *config.Repository) *secret.Masker {
	vals := make([]string, 0, len(repo.Vars))
	for _, v := range repo.Vars {
		vals = append(vals, v.Value())
	}
	return secret.NewMasker(vals)
}

// save records rec's state. A store that cannot be reached is logged and
// processing goes on (a later write, or the next start, records it). A
// write refused because this process lost the trigger's lease
// (trigger.ErrFenced: another replica took it over, e.g. after this one was
// paused past the lease) is returned: the caller stops at once and reports
// nothing, as the replica holding the trigger now reports it.
func (r *Receiver) save(ctx context.Context, rec *trigger.Record) error {
	rec.UpdatedAt = r.now().UTC()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), saveTimeout)
	defer cancel()
	err := r.opts.Store.UpdateTrigger(sctx, rec)
	switch {
	case errors.Is(err, trigger.ErrFenced):
		r.log.Warn("webhook delivery taken over by another replica (this one lost its lease): stopping, reporting nothing",
			"trigger", rec.ID, "delivery", rec.Key, "state", rec.State, "err", err)
		return err
	case err != nil:
		r.log.Error("recording a trigger's state", "trigger", rec.ID, "state", rec.State, "err", err)
	}
	return nil
}

func (r *Receiver) fail(ctx context.Context, rec *trigger.Record, prov provider, err error) {
	reason := masker0(r, rec).String(err.Error())
	rec.State, rec.Reason = api.TriggerFailed, reason
	if r.save(ctx, rec) != nil {
		return
	}
	r.log.Error("webhook delivery failed: no run was created", "trigger", rec.ID, "tenant", rec.Tenant, "source", rec.Source,
		"delivery", rec.Key, "repo", rec.Repo, "attempts", rec.Attempts, "err", reason)
	if prov != nil && ctx.Err() == nil {
		rctx, cancel := context.WithTimeout(ctx, ReportTimeout)
		defer cancel()
		prov.failed(rctx, rec.ID, reason)
	}
}

// masker0 masks with the vars of the trigger's repository, when still configured.
func masker0(r *Receiver, rec *trigger.Record) *secret.Masker {
	if repo := r.cfg.FindRepository(rec.Source, rec.Repo); repo != nil {
		return masker(repo)
	}
	return secret.NewMasker(nil)
}

// process takes a stored trigger to its end (see the package doc).
func (r *Receiver) process(ctx context.Context, rec *trigger.Record) {
	var j job
	if err := json.Unmarshal(rec.Detail, &j); err != nil {
		r.fail(ctx, rec, nil, fmt.Errorf("the stored delivery cannot be read (%v); redeliver it from the provider", err))
		return
	}
	repo := r.cfg.FindRepository(j.Provider, j.Repo)
	if repo == nil || repo.Tenant != rec.Tenant {
		r.fail(ctx, rec, nil, fmt.Errorf("repository %s is no longer configured for tenant %s in server.yaml", j.Repo, rec.Tenant))
		return
	}
	mask := masker(repo)
	var prov provider
	var err error
	if j.Provider == config.ProviderGitHub {
		prov, err = r.githubProvider(repo, &j, mask)
	} else {
		prov, err = r.gitlabProvider(repo, &j, mask)
	}
	if err != nil {
		r.fail(ctx, rec, nil, err)
		return
	}
	if rec.State == api.TriggerRunCreated {
		r.follow(ctx, rec, &j, prov)
		return
	}
	rule, ok := repo.Events[j.Event]
	if !ok {
		rec.State, rec.Reason = api.TriggerIgnored, fmt.Sprintf("repository %s no longer lists %s under events in server.yaml", repo.Repo, j.Event)
		r.save(ctx, rec)
		return
	}
	var run *api.Run
	var ignored, notice string
	last := r.opts.Backoff.MaxAttempts()
	err = r.opts.Backoff.Do(ctx, func(attempt int) error {
		rec.Attempts++
		rec.State, rec.Reason = api.TriggerProcessing, ""
		if err := r.save(ctx, rec); err != nil {
			return &trigger.Permanent{Err: err}
		}
		var err error
		run, ignored, notice, err = r.create(ctx, rec, &j, repo, rule, prov, attempt >= last)
		if err != nil && !trigger.IsPermanent(err) && ctx.Err() == nil {
			rec.Reason = mask.String(err.Error())
			if err := r.save(ctx, rec); err != nil {
				return &trigger.Permanent{Err: err}
			}
			r.log.Warn("webhook delivery: attempt failed, retrying", "trigger", rec.ID, "attempt", attempt, "of", last, "err", rec.Reason)
		}
		return err
	})
	switch {
	case ctx.Err() != nil:
		// The server is stopping: the trigger stays processing for Resume.
		return
	case errors.Is(err, trigger.ErrFenced):
		return // another replica holds it now
	case err != nil:
		r.fail(ctx, rec, prov, err)
		return
	case ignored != "":
		rec.State, rec.Reason = api.TriggerIgnored, ignored
		if r.save(ctx, rec) != nil {
			return
		}
		r.log.Info("webhook delivery ignored", "trigger", rec.ID, "delivery", rec.Key, "reason", ignored)
		return
	}
	// A run made without knowing the change keeps the reason on the trigger,
	// where GET /v1/triggers shows it.
	rec.State, rec.Reason, rec.RunID = api.TriggerRunCreated, mask.String(notice), run.ID
	rec.Detail, _ = json.Marshal(j) // with fail_on
	if r.save(ctx, rec) != nil {
		return // the replica holding it now finds the run by its idempotency key
	}
	if notice != "" {
		r.log.Warn("webhook delivery created a run without knowing the change", "trigger", rec.ID, "delivery", rec.Key, "run", run.ID, "notice", rec.Reason)
	}
	r.log.Info("webhook delivery created a run", "trigger", rec.ID, "delivery", rec.Key, "run", run.ID, "members", len(run.Members))
	r.follow(ctx, rec, &j, prov)
}

// errNoChange is a delivery without a change to read (a GitLab push, a
// GitHub push that created the default branch).
var errNoChange = errors.New("no change to read")

// create is one attempt: read the suite, plan, submit. last says the diff
// may count as unknown instead of being retried. notice says why the run
// was made without knowing the whole change (scope changed only).
func (r *Receiver) create(ctx context.Context, rec *trigger.Record, j *job, repo *config.Repository, rule config.EventRule, prov provider, last bool) (run *api.Run, ignored, notice string, err error) {
	data, err := prov.readSuite(ctx)
	if err != nil {
		return nil, "", "", err
	}
	s, err := suite.Parse(repo.Suite, bytes.NewReader(data), suite.Options{Lookup: repo.Lookup, Environment: rule.Environment})
	if err != nil {
		return nil, "", "", &trigger.Permanent{Err: fmt.Errorf("the suite file %s at %s is invalid (${VAR}s resolve only from the repository's vars in server.yaml): %w", repo.Suite, short(j.HeadSHA), err)}
	}
	var d *diff.Result
	if rule.Scope == "changed" {
		d, err = prov.changes(ctx)
		if err == nil && d == nil {
			err = errors.New("the change source returned nothing")
		}
		if err != nil {
			if !last && !trigger.IsPermanent(err) && ctx.Err() == nil {
				return nil, "", "", err
			}
			d = &diff.Result{Source: diff.SourceAPI, Head: j.HeadSHA, Complete: false, Reason: err.Error()}
		}
		if !d.Complete {
			what := "unknown"
			if err == nil {
				what = "incomplete"
			}
			mode := s.Selection.OnUnknownDiff
			if mode == "" {
				mode = suite.ScopeAll
			}
			notice = fmt.Sprintf("scope changed: the change is %s (%s), so the suite's selection.on_unknown_diff (%s) decided what runs", what, d.Reason, mode)
		}
	}
	plan, err := gate.PlanTrigger(s, rule.Scope, rule.Environment, d, repo.Suite, shadowSampled(rule.Shadow, j.PR, j.Ref))
	if err != nil {
		return nil, "", "", &trigger.Permanent{Err: err}
	}
	if plan.Empty() {
		why := "nothing to run: no cases selected or suite empty"
		if plan.Selection.Widened != nil && plan.Selection.Widened.Detail != "" {
			why += " (" + plan.Selection.Widened.Detail + ")"
		}
		if s.Gate.OnEmpty == suite.OnEmptyPass {
			return nil, why + "; gate.on_empty is pass", "", nil
		}
		return nil, "", "", &trigger.Permanent{Err: errors.New(why + "; gate.on_empty is fail")}
	}
	req := plan.Request
	req.Source = api.Source{Provider: j.Provider, Repo: j.Repo, SHA: j.HeadSHA, Ref: j.Ref, PR: j.PR, Actor: j.Actor,
		Trigger: api.TriggerWebhook, TriggerID: rec.Key}
	req.ConcurrencyGroup = gate.ConcurrencyGroup(req.Project, req.Environment.Name, j.PR, j.Ref)
	req.Supersede = req.ConcurrencyGroup != ""
	key := idempotencyKey(j.Provider, rec.Key)
	p := config.Principal{Tenant: rec.Tenant, Name: "webhook:" + j.Provider, Role: config.RoleRunner}
	run, _, err = r.opts.Submitter.Submit(ctx, p, req, engine.CreateOptions{IdempotencyKey: key, Fingerprint: key})
	switch {
	case err == nil:
	case errors.As(err, new(*server.RefusedError)), errors.As(err, new(*engine.ValidationError)), errors.As(err, new(*engine.IdempotencyConflictError)):
		return nil, "", "", &trigger.Permanent{Err: fmt.Errorf("the run was refused: %w", err)}
	default:
		return nil, "", "", fmt.Errorf("creating the run: %w", err)
	}
	j.FailOn = s.Gate.FailOn
	return run, "", notice, nil
}

// follow reports the run's start, waits for its end and reports it; it
// marks the trigger reported. Interrupted by a stop, it leaves the trigger
// unreported for Resume.
func (r *Receiver) follow(ctx context.Context, rec *trigger.Record, j *job, prov provider) {
	run, err := r.opts.Submitter.Get(ctx, rec.Tenant, rec.RunID)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Error("webhook run cannot be read: no report", "trigger", rec.ID, "run", rec.RunID, "err", err)
			rec.Reported = true
			r.save(ctx, rec)
		}
		return
	}
	sctx, cancel := context.WithTimeout(ctx, ReportTimeout)
	prov.start(sctx, run)
	cancel()
	final, err := r.opts.Submitter.Wait(ctx, rec.Tenant, rec.RunID)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Error("webhook run could not be followed: no report", "trigger", rec.ID, "run", rec.RunID, "err", err)
		}
		return
	}
	failOn, err := gate.ParseFailOn(j.FailOn)
	if err != nil {
		failOn, _ = gate.ParseFailOn(nil)
	}
	v := gate.Judge(gate.Outcome{Run: final}, failOn)
	// The run may have lasted longer than a lease this process lost
	// meanwhile (paused past it): a write confirms the lease before the
	// report, so a replica that took the trigger over is the one reporting.
	if r.save(ctx, rec) != nil {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, ReportTimeout)
	prov.report(rctx, &report.Result{Run: final, Gate: v.Kind, Verdict: v.Line, Notices: v.Notices, Shadow: gate.ShadowOf(final, failOn)})
	cancel()
	if ctx.Err() != nil {
		return
	}
	rec.Reported = true
	r.save(ctx, rec)
	r.log.Info("webhook run reported", "trigger", rec.ID, "run", final.ID, "status", final.Status, "verdict", v.Line)
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

// shadowSampled says whether a delivery's run is a shadow run: shadow: true
// always, sample:N for one in N pull requests (or branches), decided as zof
// run --shadow=sample:N decides (gate.ShadowSampled).
func shadowSampled(o config.ShadowOption, pr int, ref string) bool {
	return o.On && gate.ShadowSampled(pr, ref, o.Sample)
}
