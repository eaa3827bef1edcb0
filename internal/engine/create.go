// Creating runs: validation, idempotency, supersede and rerun.

package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/zof-ai/zof-ci/api"
)

// Validate checks what the engine needs of a request to execute it.
func Validate(req *api.RunRequest) error {
	if req == nil {
		return &ValidationError{Problems: []string{"no run request"}}
	}
	var p []string
	if req.MaxParallel < 0 {
		p = append(p, fmt.Sprintf("max_parallel is %d; use 0 for the default or a positive number", req.MaxParallel))
	}
	if req.BlockAfter < 0 {
		p = append(p, "block_after is negative")
	}
	if s := req.Environment.Serve; s != nil && strings.TrimSpace(s.Command) == "" {
		p = append(p, fmt.Sprintf("environment %s: serve has no command", req.Environment.Name))
	}
	members := make(map[string]bool, len(req.Cases))
	cases := make(map[string]bool, len(req.Cases))
	for i, c := range req.Cases {
		if c.ID == "" {
			p = append(p, fmt.Sprintf("case %d has no id", i+1))
			continue
		}
		cases[c.ID] = true
		if c.Retries < 0 || c.Timeout < 0 {
			p = append(p, fmt.Sprintf("case %s: retries and timeout must not be negative", c.ID))
		}
		vs := c.Variants
		if len(vs) == 0 {
			vs = []api.Variant{{}}
		}
		for _, v := range vs {
			id := api.MemberID(c.ID, v.Name)
			if members[id] {
				p = append(p, fmt.Sprintf("member %s appears twice; case ids and variant names must be unique", id))
			}
			members[id] = true
		}
		for j, s := range c.Steps {
			if (s.HTTP == nil) == (s.Run == nil) {
				p = append(p, fmt.Sprintf("case %s step %d: a step is exactly one of http or run", c.ID, j+1))
			}
			if s.Timeout < 0 {
				p = append(p, fmt.Sprintf("case %s step %d: timeout is negative", c.ID, j+1))
			}
			// Raw JSON travels as it is given (the request is copied, not
			// re-encoded): it must be JSON.
			if s.HTTP != nil && len(s.HTTP.JSON) > 0 && !json.Valid(s.HTTP.JSON) {
				p = append(p, fmt.Sprintf("case %s step %d: http.json is not valid JSON", c.ID, j+1))
			}
			if s.Expect != nil {
				for k, a := range s.Expect.JSON {
					if len(a.Equals) > 0 && !json.Valid(a.Equals) {
						p = append(p, fmt.Sprintf("case %s step %d: expect.json[%d].equals is not valid JSON", c.ID, j+1, k))
					}
				}
			}
		}
	}
	for _, s := range req.Sets {
		for _, c := range s.Cases {
			if !cases[c] {
				p = append(p, fmt.Sprintf("set %s names case %s, which is not in the run", s.Name, c))
			}
		}
	}
	if len(p) > 0 {
		return &ValidationError{Problems: p}
	}
	return nil
}

// Fingerprint identifies a request for idempotency: the SHA-256 of its JSON.
func Fingerprint(req *api.RunRequest) string {
	b, _ := json.Marshal(req) // a RunRequest always marshals
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// cloneRequest deep-copies a request so the caller may reuse theirs: every
// slice, map and pointer is the copy's own (TestCloneRequestSharesNothing
// fills every field to hold it to that). A typed copy, not a JSON round trip:
// for 2,000 cases the round trip cost ~3 µs per case (docs/benchmarks.md).
// The cases' steps, their http requests, commands and expectations, and
// their tags and expected statuses are each copied into one array for the
// whole request (a slab) instead of one allocation per case and step.
func cloneRequest(req *api.RunRequest) *api.RunRequest {
	c := *req
	c.Environment.Headers = maps.Clone(req.Environment.Headers)
	if sv := req.Environment.Serve; sv != nil {
		v := *sv
		v.Env = maps.Clone(sv.Env)
		c.Environment.Serve = &v
	}
	if req.Cases != nil {
		sl := newSlab(req.Cases)
		c.Cases = make([]api.Case, len(req.Cases))
		for i := range req.Cases {
			c.Cases[i] = sl.cloneCase(&req.Cases[i])
		}
	}
	if req.Sets != nil {
		c.Sets = make([]api.Set, len(req.Sets))
		for i, st := range req.Sets {
			st.Cases = slices.Clone(st.Cases)
			c.Sets[i] = st
		}
	}
	c.Selection = cloneSelection(req.Selection)
	c.Labels = maps.Clone(req.Labels)
	c.Secrets = slices.Clone(req.Secrets)
	if cv := req.Coverage; cv != nil {
		v := *cv
		if cv.Modules != nil {
			v.Modules = make([]api.ModuleCoverage, len(cv.Modules))
			for i, m := range cv.Modules {
				m.UncoveredFiles = slices.Clone(m.UncoveredFiles)
				v.Modules[i] = m
			}
		}
		c.Coverage = &v
	}
	return &c
}

// slab holds the arrays a request's copy takes its steps, http requests,
// commands, expectations and strings from, each sized for the whole request
// up front so that taking from it never reallocates.
type slab struct {
	steps   []api.Step
	https   []api.HTTPRequest
	runs    []api.Command
	expects []api.Expect
	strs    []string
}

func newSlab(cases []api.Case) *slab {
	var nSteps, nHTTP, nRun, nExpect, nStrs int
	for i := range cases {
		c := &cases[i]
		nSteps += len(c.Steps)
		nStrs += len(c.Tags)
		for j := range c.Steps {
			s := &c.Steps[j]
			if s.HTTP != nil {
				nHTTP++
			}
			if s.Run != nil {
				nRun++
			}
			if x := s.Expect; x != nil {
				nExpect++
				nStrs += len(x.Status) + len(x.BodyContains)
			}
		}
	}
	return &slab{
		steps:   make([]api.Step, 0, nSteps),
		https:   make([]api.HTTPRequest, 0, nHTTP),
		runs:    make([]api.Command, 0, nRun),
		expects: make([]api.Expect, 0, nExpect),
		strs:    make([]string, 0, nStrs),
	}
}

// take copies src into the slab's pool, capped at its length so that an
// append to the copy reallocates; nil stays nil and empty stays empty.
func take[T any](pool *[]T, src []T) []T {
	if len(src) == 0 {
		return src[:0:0]
	}
	k := len(*pool)
	*pool = append(*pool, src...)
	return (*pool)[k:len(*pool):len(*pool)]
}

// one copies v into the slab's pool and points at the copy.
func one[T any](pool *[]T, v T) *T {
	*pool = append(*pool, v)
	return &(*pool)[len(*pool)-1]
}

func (sl *slab) cloneCase(src *api.Case) api.Case {
	c := *src
	c.Tags = take(&sl.strs, src.Tags)
	if src.Variants != nil {
		c.Variants = make([]api.Variant, len(src.Variants))
		for i, v := range src.Variants {
			v.Vars = maps.Clone(v.Vars)
			c.Variants[i] = v
		}
	}
	c.Steps = take(&sl.steps, src.Steps)
	for i := range c.Steps {
		sl.cloneStep(&c.Steps[i])
	}
	if q := src.Quarantine; q != nil {
		v := *q
		c.Quarantine = &v
	}
	return c
}

// cloneStep makes s, a shallow copy of a step, deep.
func (sl *slab) cloneStep(s *api.Step) {
	if h := s.HTTP; h != nil {
		v := *h
		v.Headers = maps.Clone(h.Headers)
		v.Query = maps.Clone(h.Query)
		v.JSON = slices.Clone(h.JSON)
		v.Body = clonePtr(h.Body)
		v.Form = maps.Clone(h.Form)
		s.HTTP = one(&sl.https, v)
	}
	if r := s.Run; r != nil {
		v := *r
		v.Env = maps.Clone(r.Env)
		s.Run = one(&sl.runs, v)
	}
	if x := s.Expect; x != nil {
		v := *x
		v.Status = take(&sl.strs, x.Status)
		v.Headers = maps.Clone(x.Headers)
		v.BodyContains = take(&sl.strs, x.BodyContains)
		if x.JSON != nil {
			v.JSON = make([]api.JSONAssert, len(x.JSON))
			for i, a := range x.JSON {
				a.Equals = slices.Clone(a.Equals)
				a.Exists = clonePtr(a.Exists)
				a.Contains = clonePtr(a.Contains)
				a.Matches = clonePtr(a.Matches)
				v.JSON[i] = a
			}
		}
		s.Expect = one(&sl.expects, v)
	}
	s.Capture = maps.Clone(s.Capture)
}

func cloneSelection(src api.Selection) api.Selection {
	c := src
	if w := src.Widened; w != nil {
		v := *w
		c.Widened = &v
	}
	if src.Cases != nil {
		c.Cases = make([]api.SelectedCase, len(src.Cases))
		for i, sc := range src.Cases {
			sc.Reasons = slices.Clone(sc.Reasons)
			c.Cases[i] = sc
		}
	}
	c.Unmapped = slices.Clone(src.Unmapped)
	c.Ignored = slices.Clone(src.Ignored)
	if d := src.Diff; d != nil {
		v := *d
		c.Diff = &v
	}
	c.Warnings = slices.Clone(src.Warnings)
	if sh := src.Shadow; sh != nil {
		v := *sh
		v.Selected = slices.Clone(sh.Selected)
		v.Left = slices.Clone(sh.Left)
		c.Shadow = &v
	}
	return c
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// Create stores a new run (initial, substate analysing) and hands it to the
// scheduler. With an idempotency key already used by the same request it
// returns that run and replayed=true; with a different request it returns an
// *IdempotencyConflictError. A run with Supersede cancels the older
// non-terminal runs of its concurrency group (not when it is a rerun).
func (e *Engine) Create(ctx context.Context, tenant string, req *api.RunRequest, opts CreateOptions) (run *api.Run, replayed bool, err error) {
	if err := Validate(req); err != nil {
		return nil, false, err
	}
	e.mu.Lock()
	stopped := e.stopped
	e.mu.Unlock()
	if stopped {
		return nil, false, ErrStopped
	}
	req = cloneRequest(req)
	now := e.cfg.Now()
	id := e.cfg.NewID()
	initial := api.NewRun(id, req, now)
	initial.Tenant = tenant
	initial.IdempotencyKey = opts.IdempotencyKey
	initial.RerunOf = opts.RerunOf
	initial.Substate = api.SubstateAnalysing
	if e.cfg.RunURL != nil {
		initial.URL = e.cfg.RunURL(id)
	}
	first := api.Event{Seq: 1, At: now, Type: api.EventRunCreated, RunID: id, Run: initial}
	// The run after its first event: what Apply makes of run.created, less
	// a copy of every member. The store keeps both, and neither side changes
	// what it holds, so they share the members.
	snap := new(api.Run)
	*snap = *initial
	snap.LastSeq = first.Seq
	rec := &RunRecord{Run: snap, Request: req}
	var idem *IdempotencyRecord
	if opts.IdempotencyKey != "" {
		fp := opts.Fingerprint
		if fp == "" {
			fp = Fingerprint(req)
		}
		idem = &IdempotencyRecord{Tenant: tenant, Key: opts.IdempotencyKey, Fingerprint: fp, RunID: id, CreatedAt: now, ExpiresAt: now.Add(IdempotencyTTL)}
	}
	// Marked before it is stored: Run's resume loads unfinished runs from the
	// store, and must leave one that is being created to this Create (else a
	// fast run could execute and finish there, and be registered again here).
	e.mu.Lock()
	e.creating[id] = true
	e.mu.Unlock()
	holder, err := e.cfg.Store.CreateRun(ctx, rec, first, idem)
	if err != nil || holder != nil {
		e.mu.Lock()
		delete(e.creating, id)
		e.mu.Unlock()
	}
	if err != nil {
		return nil, false, fmt.Errorf("storing run %s: %w", id, err)
	}
	if holder != nil {
		if holder.Fingerprint != idem.Fingerprint {
			return nil, false, &IdempotencyConflictError{Key: holder.Key, RunID: holder.RunID}
		}
		got, err := e.cfg.Store.GetRun(ctx, tenant, holder.RunID)
		if err != nil {
			return nil, false, fmt.Errorf("reading run %s that owns idempotency key %q: %w", holder.RunID, holder.Key, err)
		}
		return got.Run, true, nil // the store's copy is ours
	}

	if e.cl != nil {
		return e.createdCluster(ctx, tenant, rec, opts), false, nil
	}
	// The run was built once (NewRun) and the store keeps it; the caller
	// and the run state each get a copy of their own (copyRun: three
	// allocations, not one per member), since both may change theirs.
	created := copyRun(snap)
	rs := newRunState(rec)
	e.mu.Lock()
	delete(e.creating, id)
	e.active[id] = rs
	e.insertWaiting(rs)
	if req.Supersede && req.ConcurrencyGroup != "" && opts.RerunOf == "" {
		for _, o := range e.active {
			if o != rs && o.tenant == tenant && o.order < rs.order && o.req.ConcurrencyGroup == req.ConcurrencyGroup {
				_ = e.cancelLocked(o, "superseded by "+id)
			}
		}
	}
	switch {
	case e.stopped && !e.cfg.LeaveQueuedOnStop:
		// Run returned while this create was in flight: nothing will execute it.
		_ = e.cancelLocked(rs, reasonStopped)
	case e.stopped:
		// Stored; the next start runs it. Followers resume against that one.
		rs.freeze()
	}
	e.mu.Unlock()
	e.kick()
	return created, false, nil
}

// Rerun creates a new run from a terminal run's definition, at the back of
// the queue, with RerunOf set. A non-terminal run gives a *StateError.
func (e *Engine) Rerun(ctx context.Context, tenant, id string) (*api.Run, error) {
	rec, err := e.getRecord(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	if !rec.Run.Status.Terminal() {
		return nil, &StateError{RunID: id, Status: rec.Run.Status, Op: "rerun"}
	}
	run, _, err := e.Create(ctx, tenant, rec.Request, CreateOptions{RerunOf: id})
	return run, err
}
