// Package webhook receives GitHub and GitLab webhooks on `zof serve` and turns
// a pull request push, merge request update, push or merge group into a run
// created through the same path as POST /v1/runs (server.Server.Submit).
//
// The request path does only what must happen before answering, so a slow
// repository API never delays the answer:
//
//  1. Read the raw body, at most MaxPayload bytes (413 beyond).
//  2. Check the signature on the raw body before parsing anything: GitHub's
//     X-Hub-Signature-256 (HMAC-SHA256 with the webhook secret, hex, compared
//     with hmac.Equal), GitLab's X-Gitlab-Token (compared with
//     subtle.ConstantTimeCompare). Every configured secret of the provider
//     is tried, as the tenant is only known from the payload; a delivery that
//     matches none is 401 and nothing is stored.
//  3. Decode the payload (400 when malformed). Events and actions that create
//     no run (ping, issues, a closed pull request, a deleted branch, an event
//     kind the repository does not list under events:) are answered 200 with
//     state ignored and a log line, and are not stored.
//  4. Find the repository in the config. The signature must come from that
//     repository's own secret (else 401); a signed delivery for a repository
//     that is not configured is 422.
//  5. Store the trigger, keyed by (tenant, provider, delivery id), atomically
//     (trigger.Store.CreateTrigger). The first delivery is answered 202 with
//     the trigger (state accepted); a redelivery creates nothing and is
//     answered 200 with the stored trigger: its run_id once the run exists,
//     else its current state (processing, or failed with the reason). GitHub's
//     delivery id is X-GitHub-Delivery; GitLab's is Idempotency-Key (sent
//     since GitLab 17.4, equal across retries) or else X-Gitlab-Event-UUID.
//     Deliveries are remembered trigger.DedupeTTL (7 days) in the server's
//     store, so this holds across restarts.
//
// After the answer, processing runs in the background with a bounded retry
// (trigger.Backoff, full jitter): read the suite file at the head commit
// (GitHub contents API with the raw media type; GitLab repository files raw),
// decode it with the repository's configured vars as the only ${VAR} source
// (never the server's own environment: an unresolved ${VAR} without a default
// fails the trigger, visibly), read the change for scope changed (GitHub pull
// request files; GitHub push and merge group: the compare API over the range
// cigithub.Event.CompareRange decides from the payload; GitLab merge request
// diffs; GitLab pushes have none), select (gate.PlanSuite), and create the
// run with Source{Trigger: webhook, TriggerID: delivery id}, concurrency group
// project/env/pr-N (or /branch) with supersede, so a second push cancels the
// first push's run, and an idempotency key derived from the delivery with a
// fixed fingerprint, so even processing a delivery twice creates one run. A
// change that cannot be read (after the retries, or at once when retrying
// cannot help) or is incomplete counts as unknown: the suite's
// on_unknown_diff decides, and the run_created trigger keeps the reason.
// Errors that retrying cannot fix (an invalid suite, a refused run, a missing
// suite file, an App not installed) fail at once. Every step is recorded on
// the trigger: accepted → processing → run_created (run id) | ignored
// (reason) | failed (error), visible in GET /v1/triggers, logged, and for a
// failed GitHub trigger also posted as a failed check run ("Zof · webhook")
// on the head commit, for GitLab as a failed commit status.
//
// Credentials: a GitHub repository uses token_env's token or a GitHub App
// (app_id, private_key_env or private_key_file, installation_id). With an
// App, Repos mints installation tokens (cigithub.App: a JWT exchanged for a
// token scoped to the repository, cached until shortly before it expires);
// the installation is the configured one, else the delivery's
// installation.id, else looked up. The tokens go to the contents, files,
// compare and check run calls alike.
//
// Reports: on GitHub a check run (reporters/github.CheckRun) goes in_progress
// when the run is created and is completed with the conclusion and
// annotations when it ends, judged by the suite's gate.fail_on exactly as the
// CLI does (gate.Judge). GitHub creates check runs only for GitHub Apps:
// with token_env the refusal is logged with a hint and the run is
// unaffected. On GitLab the commit status goes running, then to the outcome,
// and the merge request gets the result note (reporters/gitlab).
//
// Restart: Resume (called once at start) processes again every stored
// trigger left accepted or processing, and for run_created ones whose report
// was not posted it follows the run again and posts it (the check run is
// found again by its external id, the run id, so none is duplicated).
//
// Several replicas (a trigger.Leaser store): a delivery is worked on by the
// replica holding its lease. Every state write names that lease; one the
// store refuses (trigger.ErrFenced: the lease expired or another replica
// took the delivery over) stops the processing at once, and nothing more
// is posted: the holder reports. A write just before the final report
// confirms the lease, as a run may outlast a lease lost meanwhile.
package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/zof-ai/zof-ci/api"
	cigithub "github.com/zof-ai/zof-ci/internal/ci/github"
	cigitlab "github.com/zof-ai/zof-ci/internal/ci/gitlab"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/server"
	"github.com/zof-ai/zof-ci/internal/server/config"
	"github.com/zof-ai/zof-ci/internal/trigger"
)

// Limits.
const (
	// GitHubPayloadCap is GitHub's own cap: "Webhook payloads are capped at
	// 25 MB. If your event generates a larger payload, GitHub will not
	// deliver a payload for that webhook event"
	// (https://docs.github.com/webhooks/webhook-events-and-payloads#payload-cap).
	GitHubPayloadCap = 25 << 20
	// MaxPayload is what this server reads of a delivery. The events it acts
	// on are far smaller (a pull_request payload is tens of KB; a push lists
	// at most 20 commits in full), so anything beyond is refused (413) long
	// before GitHub's cap, bounding memory per request.
	MaxPayload = 5 << 20
	// MaxDeliveryID bounds a delivery id header (GitHub and GitLab send UUIDs, 36 characters).
	MaxDeliveryID = 200
	// MaxConcurrent bounds the deliveries processed at once; the rest wait
	// their turn (stored, answered, state accepted).
	MaxConcurrent = 8
	// ReportTimeout bounds posting one report (check run, note, status).
	ReportTimeout = 2 * time.Minute
)

// Submitter creates runs through the server's create path and follows them
// (*server.Server implements it).
type Submitter interface {
	Submit(ctx context.Context, p config.Principal, req *api.RunRequest, opts engine.CreateOptions) (*api.Run, bool, error)
	Get(ctx context.Context, tenant, id string) (*api.Run, error)
	Wait(ctx context.Context, tenant, id string) (*api.Run, error)
}

// Options configure a Receiver. Config, Store and Submitter are required.
type Options struct {
	Config    *config.Config
	Store     trigger.Store
	Submitter Submitter
	// GitHubAPIURL and GitLabAPIURL are the API base URLs for repositories
	// without api_url (defaults: https://api.github.com/ and
	// https://gitlab.com/api/v4); tests point them at fakes.
	GitHubAPIURL string
	GitLabAPIURL string
	// HTTPClient calls the repository APIs (nil: one with a 30 s timeout per request).
	HTTPClient *http.Client
	// Backoff retries processing (zero value: trigger's defaults).
	Backoff trigger.Backoff
	// GitHubRetry and GitLabRetry are the API clients' own retry of a rate
	// limit or 5xx (zero values: their defaults); tests shorten them.
	GitHubRetry cigithub.Retry
	GitLabRetry cigitlab.Retry
	Logger      *slog.Logger
	// Now is the clock of triggers and of GitHub App tokens (nil: time.Now).
	Now func() time.Time
}

// DefaultGitLabAPIURL is GitLab.com's REST API.
const DefaultGitLabAPIURL = "https://gitlab.com/api/v4"

// Receiver is the webhook endpoints and their background processing.
type Receiver struct {
	opts Options
	cfg  *config.Config
	log  *slog.Logger
	now  func() time.Time

	repos  *Repos
	keep   *trigger.Keeper
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // processing
	loop   sync.WaitGroup // the lease keeper
	sem    chan struct{}
}

var (
	_ server.Webhooks = (*Receiver)(nil)
	_ Submitter       = (*server.Server)(nil)
)

// New builds a Receiver; zof serve builds it in server.Options.Webhooks, so the
// server mounts it and the receiver creates runs through the server. Call Resume once,
// and Close it before the engine stops.
func New(opts Options) (*Receiver, error) {
	switch {
	case opts.Config == nil:
		return nil, errors.New("webhook: Options.Config is required")
	case opts.Store == nil:
		return nil, errors.New("webhook: Options.Store is required (the server's store keeps deliveries)")
	case opts.Submitter == nil:
		return nil, errors.New("webhook: Options.Submitter is required (the *server.Server)")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.GitLabAPIURL == "" {
		opts.GitLabAPIURL = DefaultGitLabAPIURL
	}
	repos := &Repos{GitHubAPIURL: opts.GitHubAPIURL, GitLabAPIURL: opts.GitLabAPIURL, HTTPClient: opts.HTTPClient,
		GitHubRetry: opts.GitHubRetry, GitLabRetry: opts.GitLabRetry, Now: opts.Now}
	ctx, cancel := context.WithCancel(context.Background())
	return &Receiver{opts: opts, cfg: opts.Config, log: opts.Logger, now: opts.Now, repos: repos, ctx: ctx, cancel: cancel,
		keep: trigger.NewKeeper(opts.Store, trigger.SourceGitHub, trigger.SourceGitLab), sem: make(chan struct{}, MaxConcurrent)}, nil
}

// Close stops background processing and waits for it. Triggers it
// interrupted stay accepted, processing or unreported, for Resume; with a
// store shared by several replicas their leases are released, so a live
// replica takes them up at its next sweep.
func (r *Receiver) Close() {
	r.cancel()
	r.loop.Wait()
	r.wg.Wait()
	if err := r.keep.Release(); err != nil {
		r.log.Warn("releasing webhook delivery leases: other replicas take them up when the leases expire", "err", err)
	}
}

// Wait waits until no processing is under way (tests).
func (r *Receiver) Wait() { r.wg.Wait() }

// Resume takes up every stored webhook trigger a previous process left
// unfinished (see the package doc) and returns how many it took up. With a
// store shared by several replicas (trigger.Leaser) it takes up only those
// no live replica holds, and until Close it keeps renewing the leases of
// the deliveries it works on and taking up those whose holder's lease
// expired (a replica that died).
func (r *Receiver) Resume(ctx context.Context) (int, error) {
	pending, err := r.keep.Pending(ctx, r.now())
	if err != nil {
		return 0, fmt.Errorf("reading unfinished webhook deliveries: %w", err)
	}
	for _, rec := range pending {
		r.resume(rec)
	}
	r.loop.Add(1)
	go func() {
		defer r.loop.Done()
		r.keep.Run(r.ctx, r.now, r.resume, func(err error) {
			r.log.Warn("webhook delivery leases", "err", err)
		})
	}()
	return len(pending), nil
}

func (r *Receiver) resume(rec *trigger.Record) {
	r.log.Info("resuming a webhook delivery", "trigger", rec.ID, "delivery", rec.Key, "state", rec.State, "run", rec.RunID)
	r.spawn(rec)
}

// spawn processes rec in the background, holding its lease meanwhile.
func (r *Receiver) spawn(rec *trigger.Record) {
	ctx, done := r.keep.Hold(r.ctx, rec.ID)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer done()
		select {
		case r.sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		defer func() { <-r.sem }()
		r.process(ctx, rec)
	}()
}

// endpoint is what one provider's webhook endpoint differs in: how a
// delivery proves it comes from a configured repository (the signature check),
// where its event and delivery id are, how its payload decodes, and the words
// of its refusals. serve is the rest, the same for every provider.
type endpoint struct {
	provider string
	// verify reports whether the delivery was made with secret.
	verify           func(req *http.Request, body []byte, secret string) bool
	credentialHeader string
	refusedTitle     string
	refusedLog       string
	refusedAttrs     func(req *http.Request) []any // logged before "remote"
	noCredential     string                        // detail when credentialHeader is absent
	badCredential    string                        // detail when it matches no secret
	otherRepo        string                        // detail when it matches another repository's
	headers          func(req *http.Request) (event, delivery string)
	missingTitle     string
	missingDetail    string
	decode           func(event string, body []byte) (j *job, reason string, err error)
	repoWord         string // "repository" or "project"
}

// serve checks a delivery and accepts it (202, processed in the
// background), ignores it (200, recorded with why) or refuses it (4xx with
// a problem saying what to fix).
func (r *Receiver) serve(w http.ResponseWriter, req *http.Request, e *endpoint) {
	body, ok := readBody(w, req)
	if !ok {
		return
	}
	var matched []*config.Repository
	for _, repo := range r.cfg.WebhookRepositories(e.provider) {
		if e.verify(req, body, repo.WebhookSecret.Value()) {
			matched = append(matched, repo)
		}
	}
	if len(matched) == 0 {
		detail := e.badCredential
		if req.Header.Get(e.credentialHeader) == "" {
			detail = e.noCredential
		}
		r.log.Warn(e.refusedLog, append(e.refusedAttrs(req), "remote", req.RemoteAddr)...)
		problem(w, http.StatusUnauthorized, "bad-signature", e.refusedTitle, detail)
		return
	}
	event, delivery := e.headers(req)
	if event == "" || !validDeliveryID(delivery) {
		problem(w, http.StatusBadRequest, "bad-request", e.missingTitle, e.missingDetail)
		return
	}
	j, reason, err := e.decode(event, body)
	if err != nil {
		r.log.Warn(e.provider+" webhook refused: malformed payload", "event", event, "delivery", delivery, "err", err)
		problem(w, http.StatusBadRequest, "malformed-payload", "Malformed payload", err.Error())
		return
	}
	if reason != "" {
		r.ignore(w, e.provider, event, delivery, reason)
		return
	}
	repo := findMatched(matched, j.Repo)
	if repo == nil {
		if r.cfg.FindRepository(e.provider, j.Repo) != nil {
			problem(w, http.StatusUnauthorized, "bad-signature", e.refusedTitle, e.otherRepo)
			return
		}
		problem(w, http.StatusUnprocessableEntity, "repository-not-configured", "Repository not configured",
			fmt.Sprintf("%s %s is not configured on this server; add it under a tenant's repositories in server.yaml", e.repoWord, j.Repo))
		return
	}
	if _, ok := repo.Events[j.Event]; !ok {
		r.ignore(w, e.provider, event, delivery, fmt.Sprintf("%s %s does not list %s under events in server.yaml", e.repoWord, repo.Repo, j.Event))
		return
	}
	r.accept(w, req, repo, j, delivery)
}

// readBody reads the raw body within MaxPayload; it answers and returns
// false when it cannot.
func readBody(w http.ResponseWriter, req *http.Request) ([]byte, bool) {
	if req.ContentLength > MaxPayload {
		problem(w, http.StatusRequestEntityTooLarge, "body-too-large", "Payload too large",
			fmt.Sprintf("the payload has %d bytes; this server reads at most %d (GitHub's own cap is %d)", req.ContentLength, MaxPayload, GitHubPayloadCap))
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, MaxPayload))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			problem(w, http.StatusRequestEntityTooLarge, "body-too-large", "Payload too large",
				fmt.Sprintf("the payload is larger than %d bytes, the most this server reads", MaxPayload))
			return nil, false
		}
		problem(w, http.StatusBadRequest, "bad-request", "Unreadable body", "the body could not be read: "+err.Error())
		return nil, false
	}
	return body, true
}

// accept stores a new delivery and starts its processing, or answers with
// the trigger a redelivery names.
func (r *Receiver) accept(w http.ResponseWriter, req *http.Request, repo *config.Repository, j *job, delivery string) {
	rec := trigger.New(repo.Tenant, api.TriggerWebhook, j.Provider, delivery, r.now())
	j.describe(rec)
	detail, err := json.Marshal(j)
	if err != nil { // a job always marshals
		problem(w, http.StatusInternalServerError, "internal", "Internal error", "the delivery could not be encoded; this is a bug in zof serve")
		return
	}
	rec.Detail = detail
	rec.Owner = r.keep.Owner()
	holder, err := r.opts.Store.CreateTrigger(req.Context(), rec)
	if err != nil {
		r.log.Error("storing a webhook delivery", "provider", j.Provider, "delivery", delivery, "repo", j.Repo, "err", err)
		w.Header().Set("Retry-After", "5")
		problem(w, http.StatusServiceUnavailable, "unavailable", "Store unavailable",
			"the delivery could not be stored (the server's log says why); it was not processed, redeliver it")
		return
	}
	w.Header().Set("Location", "/v1/triggers/"+rec.ID)
	if holder != nil {
		w.Header().Set("Location", "/v1/triggers/"+holder.ID)
		r.log.Info("webhook redelivery: nothing new created", "provider", j.Provider, "delivery", delivery, "trigger", holder.ID, "state", holder.State, "run", holder.RunID)
		writeJSON(w, http.StatusOK, holder.Trigger)
		return
	}
	r.log.Info("webhook accepted", "provider", j.Provider, "delivery", delivery, "trigger", rec.ID, "tenant", rec.Tenant, "repo", j.Repo, "event", rec.Event, "sha", j.HeadSHA)
	writeJSON(w, http.StatusAccepted, rec.Trigger)
	r.spawn(rec)
}

// ignore answers a delivery that creates no run; it is logged, not stored.
func (r *Receiver) ignore(w http.ResponseWriter, provider, event, delivery, reason string) {
	r.log.Info("webhook ignored", "provider", provider, "event", event, "delivery", delivery, "reason", reason)
	writeJSON(w, http.StatusOK, api.Trigger{Kind: api.TriggerWebhook, Source: provider, Key: delivery, Event: event,
		State: api.TriggerIgnored, Reason: reason, CreatedAt: r.now().UTC(), UpdatedAt: r.now().UTC()})
}

func validDeliveryID(s string) bool {
	if s == "" || len(s) > MaxDeliveryID {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

func problem(w http.ResponseWriter, status int, typ, title, detail string) {
	b, _ := json.Marshal(api.Problem{Type: "urn:zof:problem:" + typ, Title: title, Status: status, Detail: detail})
	h := w.Header()
	h.Set("Content-Type", api.MediaProblem)
	h.Set("Content-Length", strconv.Itoa(len(b)+1))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)+1))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
