package report

import (
	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/secret"
)

// CleanRun returns a deep copy of r with every string passed through Clean,
// for reporters that write the snapshot as data (JSON). Identifiers are cleaned
// too: a secret equal to an id is unlikely, and printing it would be worse than
// a mangled id. Sanitising matters even in JSON: a secret split by an escape
// sequence would show whole again on the terminal of whoever prints the field.
func CleanRun(m *secret.Masker, r *api.Run) *api.Run {
	return MapRun(r, func(s string) string { return Clean(m, s) })
}

// MapRun returns a deep copy of r with f applied to every string field.
func MapRun(r *api.Run, f func(string) string) *api.Run {
	if r == nil {
		return nil
	}
	s := f
	c := r.Clone()
	c.ID, c.Tenant, c.Project, c.Environment = s(c.ID), s(c.Tenant), s(c.Project), s(c.Environment)
	c.Reason, c.URL, c.SuiteFile = s(c.Reason), s(c.URL), s(c.SuiteFile)
	c.IdempotencyKey, c.ConcurrencyGroup, c.RerunOf = s(c.IdempotencyKey), s(c.ConcurrencyGroup), s(c.RerunOf)
	if r.Labels != nil {
		c.Labels = make(map[string]string, len(r.Labels))
		for k, v := range r.Labels {
			c.Labels[s(k)] = s(v)
		}
	}
	for i := range c.Members {
		mem := &c.Members[i]
		mem.ID, mem.Case, mem.Name, mem.Variant, mem.Set, mem.Reason = s(mem.ID), s(mem.Case), s(mem.Name), s(mem.Variant), s(mem.Set), s(mem.Reason)
		for j := range mem.FailedAttempts {
			mem.FailedAttempts[j] = s(mem.FailedAttempts[j])
		}
		for j := range mem.Steps {
			st := &mem.Steps[j]
			st.Name, st.Kind, st.Output = s(st.Name), s(st.Kind), s(st.Output)
			if st.Failure != nil {
				f := *st.Failure
				f.Message, f.Expected, f.Actual = s(f.Message), s(f.Expected), s(f.Actual)
				st.Failure = &f
			}
		}
	}
	c.Selection = mapSelection(f, r.Selection)
	src := &c.Source
	src.Provider, src.Repo, src.SHA, src.Ref = s(src.Provider), s(src.Repo), s(src.SHA), s(src.Ref)
	src.CIRunID, src.Actor, src.URL, src.Trigger = s(src.CIRunID), s(src.Actor), s(src.URL), s(src.Trigger)
	return c
}

func mapSelection(f func(string) string, in api.Selection) api.Selection {
	s := f
	out := in
	out.Scope, out.Effective = s(in.Scope), s(in.Effective)
	if in.Widened != nil {
		w := mapReason(f, *in.Widened)
		out.Widened = &w
	}
	out.Cases = make([]api.SelectedCase, len(in.Cases))
	for i, c := range in.Cases {
		rs := make([]api.Reason, len(c.Reasons))
		for j, r := range c.Reasons {
			rs[j] = mapReason(f, r)
		}
		out.Cases[i] = api.SelectedCase{ID: s(c.ID), Reasons: rs}
	}
	if in.Cases == nil {
		out.Cases = nil
	}
	if in.Shadow != nil {
		sp := &api.ShadowPlan{Scope: s(in.Shadow.Scope), Effective: s(in.Shadow.Effective), Selected: mapAll(f, in.Shadow.Selected)}
		for _, l := range in.Shadow.Left {
			sp.Left = append(sp.Left, api.ShadowLeft{Case: s(l.Case), Why: s(l.Why), Detail: s(l.Detail)})
		}
		out.Shadow = sp
	}
	out.Unmapped = mapAll(f, in.Unmapped)
	out.Ignored = mapAll(f, in.Ignored)
	out.Warnings = mapAll(f, in.Warnings)
	if in.Diff != nil {
		d := *in.Diff
		d.Source, d.Base, d.Head, d.Reason = s(d.Source), s(d.Base), s(d.Head), s(d.Reason)
		out.Diff = &d
	}
	return out
}

func mapReason(f func(string) string, r api.Reason) api.Reason {
	return api.Reason{Kind: f(r.Kind), File: f(r.File), Pattern: f(r.Pattern), Detail: f(r.Detail)}
}

func mapAll(f func(string) string, in []string) []string {
	if in == nil {
		return nil
	}
	out := make([]string, len(in))
	for i, v := range in {
		out[i] = f(v)
	}
	return out
}

// CleanShadow returns a copy of a shadow result with every string passed
// through Clean; nil stays nil.
func CleanShadow(m *secret.Masker, in *api.ShadowResult) *api.ShadowResult {
	if in == nil {
		return nil
	}
	f := func(s string) string { return Clean(m, s) }
	out := *in
	out.Scope, out.Verdict = f(in.Scope), f(in.Verdict)
	out.Selected = mapAll(f, in.Selected)
	if out.Selected == nil {
		out.Selected = []string{}
	}
	out.Missed = make([]api.ShadowMiss, len(in.Missed))
	for i, m := range in.Missed {
		out.Missed[i] = api.ShadowMiss{Case: f(m.Case), Variant: f(m.Variant), Status: m.Status, Why: f(m.Why), Detail: f(m.Detail)}
	}
	return &out
}
