// Package junit writes a run as JUnit XML that validates against the Jenkins
// JUnit XSD (shared/reference/junit-10.xsd), using the types of
// github.com/jstemmer/go-junit-report/v2/junit.
//
// Shape:
//   - The root is <testsuites> (name = project, totals of tests, failures, errors, time).
//   - Members without a set go into one <testsuite> named after the project;
//     members of a set go into one <testsuite> per set, named "project.set", in
//     order of first appearance. A run with no members still has the run-level
//     suite, so its properties (why nothing ran) are kept.
//   - One <testcase> per member: name "case" or "case [variant]", classname the
//     suite's name ("checkout-service" or "checkout-service.release"), time the
//     member's duration in plain decimal seconds ("0.085").
//   - passed: <system-out> with the step log.
//   - failed: <failure type="failed" message='step 2 "create cart": status:
//     expected 201, got 500'> whose text is the expectation (expected/got), the
//     suite file line and the tail of the failing step's output; plus <system-out>.
//   - Failed (Blocked): <error type="blocked"> with the reason: the member was
//     never allowed to run, which is not a test failure but fails the gate.
//   - cancelled while running: <error type="cancelled"> naming the in-flight step.
//   - never started (cancelled before start, or not started when the report was
//     written): <skipped message="not run: ...">.
//   - started but unfinished when the report was written (timeout, interrupt):
//     <error type="unfinished">.
//   - artifacts (the evidence of failed steps, Result.Artifacts): at the end of
//     the testcase's <system-out>, a line [[ATTACHMENT|path]] per file written
//     by --artifacts DIR (Jenkins' JUnit Attachments plugin, GitLab) and the
//     download URL of each when a server ran the run.
//   - flaky (passed after failed attempts): one <flakyFailure type="flaky"> per
//     failed attempt (the XSD's element for this; Surefire and Jenkins read it),
//     a "flaky: ..." first line in <system-out>, and a suite property
//     zof.flaky.MEMBER, since the XSD allows no properties on a testcase.
//
// Locations (Options.JUnitLocations; on by default in GitLab CI, --junit-locations
// elsewhere): each <testcase> also gets file="SUITE" and line="N" (the failing step's line,
// else the case's), which GitLab's unit test report and test-report actions read. The
// Jenkins XSD has no such attributes, so they are off by default: the default output
// validates against it.
//
// Suite properties (omitted when empty): zof.run.id, zof.run.url,
// zof.run.status, zof.project, zof.environment, zof.set, zof.sha, zof.ref,
// zof.scope, zof.scope.effective, zof.scope.widened, zof.selection.CASE (why
// the case was selected, for the cases in that suite) and zof.flaky.MEMBER.
//
// Every text is masked with Options.Mask and sanitised to XML 1.0 (ANSI escapes,
// control characters and non-characters removed, invalid UTF-8 replaced by
// U+FFFD). The file is written atomically (temporary file, then rename).
package junit

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/jstemmer/go-junit-report/v2/junit"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/reporters/report"
	"github.com/zof-ai/zof-ci/internal/secret"
)

// Name is the reporter's name, for messages.
const Name = "junit"

// failureTailLines bounds the output quoted in a <failure>: enough to see the
// error, while the whole (engine-truncated) output stays in <system-out>.
const failureTailLines = 20

// Reporter writes the JUnit XML file.
type Reporter struct {
	path      string
	mask      *secret.Masker
	now       func() time.Time
	locations bool
}

var _ report.Reporter = (*Reporter)(nil)

// New returns a JUnit reporter writing to o.Path.
func New(o report.Options) (report.Reporter, error) {
	if o.Path == "" {
		return nil, errors.New("junit reporter needs a file path: pass --junit PATH")
	}
	return &Reporter{path: o.Path, mask: o.Mask, now: o.Clock, locations: o.JUnitLocations}, nil
}

// Report writes res to the reporter's path, atomically.
func (r *Reporter) Report(ctx context.Context, res *report.Result) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	doc := Build(res, r.mask, r.now())
	if r.locations {
		AddLocations(doc, res, r.mask)
	}
	return report.WriteFileAtomic(r.path, func(w io.Writer) error { return Write(w, doc) })
}

// Write encodes a document as indented XML with an XML declaration.
func Write(w io.Writer, doc *Testsuites) error {
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "\t")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("encode junit xml: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("encode junit xml: %w", err)
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// Testsuites is the document root. It carries only the attributes the XSD
// allows on <testsuites> (junit.Testsuites also has skipped and disabled).
type Testsuites struct {
	XMLName  xml.Name    `xml:"testsuites"`
	Name     string      `xml:"name,attr,omitempty"`
	Time     string      `xml:"time,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Suites   []Testsuite `xml:"testsuite"`
}

// Testsuite is a junit.Testsuite whose testcases can carry <flakyFailure>.
type Testsuite struct {
	XMLName xml.Name `xml:"testsuite"`
	junit.Testsuite
	// Cases shadows junit.Testsuite.Testcases.
	Cases []Testcase `xml:"testcase"`
}

// Testcase is a junit.Testcase plus the XSD's <flakyFailure> elements and, with
// AddLocations, the file and line attributes (outside the XSD) that GitLab and test-report
// actions read.
type Testcase struct {
	junit.Testcase
	File          string  `xml:"file,attr,omitempty"`
	Line          int     `xml:"line,attr,omitempty"`
	FlakyFailures []Rerun `xml:"flakyFailure"`
}

// AddLocations sets every testcase's file (the suite file) and line (the failing step's
// line, else the case's). Testcases are in Build's order: by suite, members in run order.
func AddLocations(doc *Testsuites, res *report.Result, mask *secret.Masker) {
	if res.Run == nil {
		return
	}
	file := report.Line(mask, res.Run.SuiteFile)
	cases := map[string][]*api.Member{}
	for i := range res.Run.Members {
		m := &res.Run.Members[i]
		cases[m.Set] = append(cases[m.Set], m)
	}
	// Build's suites are the run-level one (when it has members) then one per set, in
	// order of first appearance: walk the members in that same order.
	var order []*api.Member
	seen := map[string]bool{}
	for i := range res.Run.Members {
		set := res.Run.Members[i].Set
		if set == "" && !seen[""] {
			seen[""] = true
			order = append(order, cases[""]...)
		}
	}
	for i := range res.Run.Members {
		set := res.Run.Members[i].Set
		if !seen[set] {
			seen[set] = true
			order = append(order, cases[set]...)
		}
	}
	k := 0
	for si := range doc.Suites {
		for ci := range doc.Suites[si].Cases {
			if k >= len(order) {
				return
			}
			m := order[k]
			k++
			tc := &doc.Suites[si].Cases[ci]
			tc.File = file
			tc.Line = m.Line
			if _, st := report.FailingStep(m); st != nil && st.Line > 0 {
				tc.Line = st.Line
			}
		}
	}
}

// Rerun is the XSD's rerunType: a failed attempt of a test that passed later.
type Rerun struct {
	Type    string `xml:"type,attr"`
	Message string `xml:"message,attr,omitempty"`
	Text    string `xml:",chardata"`
}

// seconds formats a duration as the XSD's SUREFIRE_TIME: plain decimal seconds.
func seconds(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	return fmt.Sprintf("%d.%03d", d/time.Second, (d%time.Second)/time.Millisecond)
}

// Build turns a result into the JUnit document. now is used for the duration
// of members still running when the report is written.
func Build(res *report.Result, mask *secret.Masker, now time.Time) *Testsuites {
	run := res.Run
	if run == nil {
		run = &api.Run{}
	}
	line := func(s string) string { return report.Line(mask, s) }
	project := line(run.Project)
	if project == "" {
		project = "zof"
	}
	doc := &Testsuites{Name: project, Time: seconds(run.Duration(now))}

	// Group members: the run-level suite first, then one per set.
	type group struct {
		set     string
		members []*api.Member
	}
	groups := []*group{{}}
	bySet := map[string]*group{"": groups[0]}
	for i := range run.Members {
		m := &run.Members[i]
		g := bySet[m.Set]
		if g == nil {
			g = &group{set: m.Set}
			bySet[m.Set] = g
			groups = append(groups, g)
		}
		g.members = append(g.members, m)
	}
	if len(groups[0].members) == 0 && len(groups) > 1 {
		groups = groups[1:]
	}

	for id, g := range groups {
		name := project
		if g.set != "" {
			name += "." + line(g.set)
		}
		ts := Testsuite{Testsuite: junit.Testsuite{Name: name, ID: id}}
		if t := run.StartedAt; !t.IsZero() {
			ts.SetTimestamp(t.UTC())
		} else if t := run.CreatedAt; !t.IsZero() {
			ts.SetTimestamp(t.UTC())
		}
		addRunProperties(&ts.Testsuite, run, g.set, line)
		if len(run.Members) == 0 && res.Verdict != "" {
			// Nothing ran (an empty selection): the file still exists, valid with
			// zero tests, so CI's test-report steps find it and say why.
			ts.AddProperty("zof.nothing_to_run", line(res.Verdict))
		}
		addShadowProperties(&ts.Testsuite, res.Shadow, line)
		var total time.Duration
		for _, m := range g.members {
			tc := testcase(run, m, name, mask, now)
			addArtifacts(&tc, report.ArtifactsOf(res.Artifacts, m.ID), mask)
			total += report.MemberDuration(m, now)
			ts.Tests++
			switch {
			case tc.Failure != nil:
				ts.Failures++
			case tc.Error != nil:
				ts.Errors++
			case tc.Skipped != nil:
				ts.Skipped++
			}
			ts.Cases = append(ts.Cases, tc)
		}
		for _, m := range g.members {
			if m.Flaky {
				ts.AddProperty("zof.flaky."+line(m.ID), flakyNote(m, line))
			}
		}
		ts.Time = seconds(total)
		doc.Tests += ts.Tests
		doc.Failures += ts.Failures
		doc.Errors += ts.Errors
		doc.Suites = append(doc.Suites, ts)
	}
	return doc
}

func addRunProperties(ts *junit.Testsuite, run *api.Run, set string, line func(string) string) {
	add := func(name, value string) {
		if value = line(value); value != "" {
			ts.AddProperty(name, value)
		}
	}
	add("zof.run.id", run.ID)
	add("zof.run.url", run.URL)
	add("zof.run.status", run.Status.Display())
	add("zof.project", run.Project)
	add("zof.environment", run.Environment)
	add("zof.set", set)
	add("zof.sha", run.Source.SHA)
	add("zof.ref", run.Source.Ref)
	sel := &run.Selection
	add("zof.scope", sel.Scope)
	add("zof.scope.effective", sel.Effective)
	if sel.Widened != nil {
		add("zof.scope.widened", sel.Widened.String())
	}
	inSuite := map[string]bool{}
	for _, m := range run.Members {
		if m.Set == set {
			inSuite[m.Case] = true
		}
	}
	for i := range sel.Cases {
		c := &sel.Cases[i]
		if inSuite[c.ID] {
			add("zof.selection."+line(c.ID), report.CaseReasons(nil, c))
		}
	}
}

// addShadowProperties states a shadow run's subset result (zof run --shadow):
// the scope, its verdict, its cases, its share of the time and the failures
// it would have missed, each with why it was not selected.
func addShadowProperties(ts *junit.Testsuite, sh *api.ShadowResult, line func(string) string) {
	if sh == nil {
		return
	}
	add := func(name, value string) { ts.AddProperty(name, line(value)) }
	add("zof.shadow.scope", sh.Scope)
	add("zof.shadow.verdict", sh.Verdict)
	add("zof.shadow.selected", strings.Join(sh.Selected, ", "))
	add("zof.shadow.time_share", strconv.FormatFloat(sh.TimeShare, 'f', -1, 64))
	names := make([]string, len(sh.Missed))
	for i, m := range sh.Missed {
		names[i] = m.Case
		if m.Variant != "" {
			names[i] += "/" + m.Variant
		}
		add("zof.shadow.missed."+line(names[i]), m.Why+": "+m.Detail)
	}
	add("zof.shadow.missed", strings.Join(names, ", "))
}

func flakyNote(m *api.Member, line func(string) string) string {
	parts := make([]string, 0, len(m.FailedAttempts))
	for i, f := range m.FailedAttempts {
		parts = append(parts, fmt.Sprintf("attempt %d failed: %s", i+1, line(f)))
	}
	return fmt.Sprintf("passed on attempt %d; %s", m.Attempt, strings.Join(parts, "; "))
}

func testcase(run *api.Run, m *api.Member, classname string, mask *secret.Masker, now time.Time) Testcase {
	line := func(s string) string { return report.Line(mask, s) }
	tc := Testcase{Testcase: junit.Testcase{
		Name:      line(report.DisplayName(m)),
		Classname: classname,
		Time:      seconds(report.MemberDuration(m, now)),
	}}
	var out strings.Builder
	if m.Flaky {
		fmt.Fprintf(&out, "flaky: %s\n", flakyNote(m, line))
		for i, f := range m.FailedAttempts {
			tc.FlakyFailures = append(tc.FlakyFailures, Rerun{Type: "flaky", Message: fmt.Sprintf("attempt %d failed: %s", i+1, line(f))})
		}
	}
	if m.Name != "" {
		fmt.Fprintf(&out, "case: %s\n", line(m.Name))
	}
	fmt.Fprintf(&out, "member: %s, status: %s", line(m.ID), m.Status.Display())
	if m.Attempt > 1 {
		fmt.Fprintf(&out, ", attempt %d", m.Attempt)
	}
	if w := report.Where(run.SuiteFile, m.Line); w != "" {
		fmt.Fprintf(&out, ", defined at %s", line(w))
	}
	out.WriteString("\n")
	if m.Reason != "" {
		fmt.Fprintf(&out, "reason: %s\n", line(m.Reason))
	}
	if log := report.StepLog(mask, m, run.SuiteFile); log != "" {
		out.WriteString(log)
	}

	switch report.OutcomeOf(m) {
	case report.OutcomeFailed:
		tc.Failure = &junit.Result{Type: "failed", Message: report.FailureHeadline(mask, m), Data: failureText(run, m, mask)}
	case report.OutcomeBlocked:
		tc.Error = &junit.Result{Type: "blocked", Message: withReason("Failed (Blocked)", line(m.Reason))}
	case report.OutcomeCancelled:
		msg := "cancelled while running"
		if n, s := report.FailingStep(m); s != nil {
			msg = fmt.Sprintf("cancelled during step %d %q", n, line(s.Name))
		}
		tc.Error = &junit.Result{Type: "cancelled", Message: withReason(msg, line(m.Reason))}
	case report.OutcomeSkipped:
		msg := "not run: cancelled before it started"
		if !m.Status.Terminal() {
			msg = "not run: not started when the report was written (" + strings.ToLower(m.Status.Display()) + ")"
		}
		tc.Skipped = &junit.Result{Message: withReason(msg, line(m.Reason))}
	case report.OutcomeUnfinished:
		tc.Error = &junit.Result{Type: "unfinished", Message: "still running when the report was written (the run timed out or was interrupted)"}
	}
	tc.SystemOut = &junit.Output{Data: out.String()}
	return tc
}

// addArtifacts lists a member's artifacts (the evidence of its failed
// steps) at the end of its <system-out>: each file `--artifacts DIR` wrote as
// a line `[[ATTACHMENT|path]]` alone (what Jenkins' JUnit Attachments plugin
// and GitLab's unit test report read), and each download URL of a run on a
// server. The XSD allows no properties on a testcase, so they go there.
func addArtifacts(tc *Testcase, arts []report.Artifact, mask *secret.Masker) {
	if len(arts) == 0 || tc.SystemOut == nil {
		return
	}
	var b strings.Builder
	b.WriteString(tc.SystemOut.Data)
	if !strings.HasSuffix(b.String(), "\n") {
		b.WriteString("\n")
	}
	b.WriteString("artifacts (evidence of the failed steps):\n")
	for _, a := range arts {
		if a.Path != "" {
			fmt.Fprintf(&b, "[[ATTACHMENT|%s]]\n", report.Line(mask, a.Path))
		}
		if a.URL != "" {
			fmt.Fprintf(&b, "step %d %s (attempt %d): %s\n", a.Step, a.Kind, a.Attempt, report.Line(mask, a.URL))
		}
		if a.Path == "" && a.URL == "" {
			fmt.Fprintf(&b, "step %d %s (attempt %d): %s (not written: pass --artifacts DIR)\n", a.Step, a.Kind, a.Attempt, report.Line(mask, a.Name))
		}
	}
	tc.SystemOut.Data = b.String()
}

func withReason(msg, reason string) string {
	if reason == "" {
		return msg
	}
	return msg + ": " + reason
}

// failureText is the body of <failure>: the expectation, where it is, the output tail.
func failureText(run *api.Run, m *api.Member, mask *secret.Masker) string {
	var b strings.Builder
	n, s := report.FailingStep(m)
	if s == nil {
		if m.Reason != "" {
			b.WriteString(report.Clean(mask, m.Reason) + "\n")
		}
		return b.String()
	}
	fmt.Fprintf(&b, "step %d %q", n, report.Line(mask, s.Name))
	if w := report.Where(run.SuiteFile, s.Line); w != "" {
		fmt.Fprintf(&b, " at %s", report.Line(mask, w))
	}
	b.WriteString("\n")
	if s.Failure != nil {
		b.WriteString(report.FailureText(mask, s.Failure) + "\n")
	} else if m.Reason != "" {
		b.WriteString(report.Clean(mask, m.Reason) + "\n")
	}
	if tail, cut := report.Tail(report.Clean(mask, s.Output), failureTailLines); tail != "" {
		if cut > 0 {
			fmt.Fprintf(&b, "output (last %d lines, %d more in system-out):\n", failureTailLines, cut)
		} else {
			b.WriteString("output:\n")
		}
		b.WriteString(report.Indent(tail, report.OutputPrefix) + "\n")
	}
	return b.String()
}
