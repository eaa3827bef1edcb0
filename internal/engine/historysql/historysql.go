// Package historysql is the SQL of the health summaries (engine.FoldHistory,
// docs/health.md "How it is stored") shared by sqlitestore and pgstore: the
// tables, their back-fill from history, the upserts of a finished run and the
// health query. The two dialects differ only where Dialect says.
package historysql

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
)

// Dialect is what differs between SQLite and PostgreSQL here.
type Dialect struct {
	// Placeholder is the n-th (1-based) bound parameter: "?n" or "$n".
	Placeholder func(n int) string
	// True is how a boolean column of history reads as true ("flaky <> 0"
	// for SQLite's integers, "flaky" for PostgreSQL's booleans), given the column.
	True func(col string) string
	// PadNanos renders a BIGINT of nanoseconds as fixed-width text, so that
	// the greatest string is the latest time.
	PadNanos func(col string) string
	// Bool is how a Go bool is bound for quarantined.
	Bool func(b bool) any
	// JSONField is the text of a top-level field of a JSON text column, NULL
	// when absent.
	JSONField func(col, field string) string
	// Clustered ends a CREATE TABLE whose rows should be stored in its
	// primary key's order ("WITHOUT ROWID" in SQLite, where a seek of the
	// key then reads the row itself; PostgreSQL has no such option).
	Clustered string
	// Flag is a new scan destination of quarantined: *int64 in SQLite,
	// *bool in PostgreSQL.
	Flag func() any
	// MaxParams bounds the parameters bound to one statement: SQLite's
	// SQLITE_MAX_VARIABLE_NUMBER (32766 since 3.32.0), PostgreSQL's
	// protocol limit of 65535.
	MaxParams int
	// InOrder is the placeholder of a parameter used once, in the order of
	// the arguments ("?" in SQLite), or "" to number it with Placeholder.
	// modernc.org/sqlite binds a numbered ?NNN by formatting and comparing
	// the ordinal of every argument (conn.bind), an unnumbered ? by
	// comparing integers: both cost the statement's parameters squared, the
	// first about 30 times more.
	InOrder string
}

// maxBoundParams is how many parameters one statement of a multi-row
// insert binds at most, far under either database's limit: the SQLite
// driver's binding costs the statement's parameters squared (see InOrder),
// so a run of 2,000 members summarised in one statement of ~20,000
// parameters took ~20 s (docs/benchmarks.md), and in statements of a few
// hundred, milliseconds.
const maxBoundParams = 512

// rowsPerStatement is how many rows of cols parameters one statement of d
// inserts.
func rowsPerStatement(d Dialect, cols int) int {
	return max(1, min(d.MaxParams, maxBoundParams)/cols)
}

// SQLite and Postgres are the two dialects.
var (
	SQLite = Dialect{
		Placeholder: func(n int) string { return fmt.Sprintf("?%d", n) },
		True:        func(c string) string { return c + " <> 0" },
		PadNanos:    func(c string) string { return "printf('%020d', " + c + ")" },
		Bool: func(b bool) any {
			if b {
				return 1
			}
			return 0
		},
		JSONField: func(c, f string) string { return "json_extract(" + c + ", '$." + f + "')" },
		Clustered: " WITHOUT ROWID",
		Flag:      func() any { return new(int64) },
		MaxParams: 32766,
		InOrder:   "?",
	}
	Postgres = Dialect{
		Placeholder: func(n int) string { return fmt.Sprintf("$%d", n) },
		True:        func(c string) string { return c },
		PadNanos:    func(c string) string { return "lpad(" + c + "::text, 20, '0')" },
		Bool:        func(b bool) any { return b },
		JSONField:   func(c, f string) string { return "(" + c + "::jsonb)->>'" + f + "'" },
		Flag:        func() any { return new(bool) },
		MaxParams:   65535,
	}
)

// counters are the running totals' columns, in DayCounts' order: the
// counts, then the duration histogram as text (EncodeDurations), since a
// health query reads it whole and one column of text costs far less to read
// than DurationBuckets columns.
var counters = []string{"runs", "failures", "flaky", "flips", "durations"}

// keyColumns name a case in an environment.
var keyColumns = []string{"tenant", "project", "environment", "case_id", "variant"}

// totalsColumns are history_totals' columns in the order of TotalsArgs.
var totalsColumns = append(append(slices.Clone(keyColumns), "day"), counters...)

// outcomeColumns are history_last's columns of the latest outcome.
var outcomeColumns = []string{"status", "at", "fail_run", "fail_commit", "fail_at", "quarantined", "q_since", "clean_since"}

// lastColumns are history_last's columns in the order of LastArgs.
var lastColumns = append(append(append(slices.Clone(keyColumns), outcomeColumns...), "totals_day"), counters...)

func counterDefs() string {
	var b strings.Builder
	for _, c := range counters {
		t := "BIGINT"
		if c == "durations" {
			t = "TEXT  "
		}
		fmt.Fprintf(&b, "\t\t\t%-11s %s NOT NULL,\n", c, t)
	}
	return b.String()
}

// EncodeDurations is a histogram as stored: its counts in decimal,
// separated by commas.
func EncodeDurations(h *[engine.DurationBuckets]int64) string {
	b := make([]byte, 0, 2*len(h)+16)
	for i, n := range h {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, n, 10)
	}
	return string(b)
}

// DecodeDurations reads what EncodeDurations wrote into h; "" (no
// snapshot) is all zeros.
func DecodeDurations(s string, h *[engine.DurationBuckets]int64) error {
	*h = [engine.DurationBuckets]int64{}
	if s == "" {
		return nil
	}
	for i := range h {
		field := s
		if j := strings.IndexByte(s, ','); j >= 0 {
			field, s = s[:j], s[j+1:]
		} else {
			s = ""
		}
		n, err := strconv.ParseInt(field, 10, 64)
		if err != nil {
			return fmt.Errorf("decoding a duration histogram: bucket %d: %w", i, err)
		}
		h[i] = n
		if s == "" && i != len(h)-1 {
			return fmt.Errorf("decoding a duration histogram: %d buckets, want %d", i+1, len(h))
		}
	}
	if s != "" {
		return fmt.Errorf("decoding a duration histogram: more than %d buckets", len(h))
	}
	return nil
}

// durationsText is a scan destination for a histogram column.
type durationsText struct {
	h *[engine.DurationBuckets]int64
}

// Scan implements sql.Scanner; pgx calls it too.
func (d durationsText) Scan(v any) error {
	switch s := v.(type) {
	case string:
		return DecodeDurations(s, d.h)
	case []byte:
		return DecodeDurations(string(s), d.h)
	case nil:
		return DecodeDurations("", d.h)
	}
	return fmt.Errorf("decoding a duration histogram: got %T", v)
}

// Migration creates the summary tables and back-fills them from history
// (Backfill), and the table of shadow runs: the statements to append to a store's migrations. boolType is
// the type of quarantined (BIGINT in SQLite, BOOLEAN in PostgreSQL).
func Migration(d Dialect, boolType string) []string {
	return append([]string{
		// One snapshot of a case's running totals per day it had an outcome:
		// the totals up to the end of that day (engine.FoldHistory). The
		// primary key is what a health query seeks: a case's latest snapshot
		// before a day.
		`CREATE TABLE history_totals (
			tenant      TEXT   NOT NULL,
			project     TEXT   NOT NULL,
			environment TEXT   NOT NULL,
			case_id     TEXT   NOT NULL,
			variant     TEXT   NOT NULL,
			day         BIGINT NOT NULL,
` + counterDefs() + `			PRIMARY KEY (tenant, project, environment, case_id, variant, day)
		)` + d.Clustered,
		// Each case's latest outcome and latest totals: what the next outcome
		// is compared with, and the end of every health window.
		`CREATE TABLE history_last (
			tenant      TEXT   NOT NULL,
			project     TEXT   NOT NULL,
			environment TEXT   NOT NULL,
			case_id     TEXT   NOT NULL,
			variant     TEXT   NOT NULL,
			status      TEXT   NOT NULL,
			at          BIGINT NOT NULL,
			fail_run    TEXT   NOT NULL,
			fail_commit TEXT   NOT NULL,
			fail_at     BIGINT NOT NULL,
			quarantined ` + boolType + ` NOT NULL,
			q_since     BIGINT NOT NULL,
			clean_since BIGINT NOT NULL,
			totals_day  BIGINT NOT NULL,
` + counterDefs() + `			PRIMARY KEY (tenant, project, environment, case_id, variant)
		)` + d.Clustered,
		`CREATE INDEX history_last_at ON history_last (at)`,
	}, append(shadowTable, Backfill(d)...)...)
}

// Backfill fills the empty summary tables from history, as FoldHistory
// would have kept them had it seen every history row in time order.
func Backfill(d Dialect) []string {
	// The history rows of each case in order, with the case's previous status
	// and the commit of its latest earlier failure.
	window := `PARTITION BY tenant, project, environment, case_id, variant ORDER BY finished_at, run_id`
	bucket := "CASE"
	for i, bound := range engine.DurationBounds() {
		bucket += fmt.Sprintf(" WHEN duration_ns < %d THEN %d", bound, i)
	}
	bucket += fmt.Sprintf(" ELSE %d END", engine.DurationBuckets-1)
	ordered := `SELECT tenant, project, environment, case_id, variant, status, flaky, commit_sha, finished_at,
				` + bucket + ` AS bucket,
				LAG(status) OVER (` + window + `) AS prev_status,
				substr(MAX(CASE WHEN status = 'failed' THEN ` + d.PadNanos("finished_at") + ` || commit_sha END)
					OVER (` + window + ` ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 21) AS prev_fail_commit
			FROM history`
	perDay := []string{
		"COUNT(*) AS runs",
		"SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) AS failures",
		"SUM(CASE WHEN status = 'passed' AND (" + d.True("flaky") + " OR (commit_sha <> '' AND commit_sha = prev_fail_commit)) THEN 1 ELSE 0 END) AS flaky",
		"SUM(CASE WHEN prev_status IS NOT NULL AND prev_status <> status THEN 1 ELSE 0 END) AS flips",
	}
	for i := range engine.DurationBuckets {
		perDay = append(perDay, fmt.Sprintf("SUM(CASE WHEN bucket = %d THEN 1 ELSE 0 END) AS b%d", i, i))
	}
	running := []string{"SUM(runs) OVER w AS runs", "SUM(failures) OVER w AS failures", "SUM(flaky) OVER w AS flaky", "SUM(flips) OVER w AS flips"}
	text := make([]string, engine.DurationBuckets)
	for i := range engine.DurationBuckets {
		running = append(running, fmt.Sprintf("SUM(b%d) OVER w AS b%d", i, i))
		text[i] = fmt.Sprintf("CAST(b%d AS TEXT)", i)
	}
	dayOf := "finished_at / " + fmt.Sprint(int64(engine.HistoryDay))
	fill := `INSERT INTO history_totals (` + strings.Join(totalsColumns, ", ") + `)
		SELECT tenant, project, environment, case_id, variant, day, runs, failures, flaky, flips, ` + strings.Join(text, " || ',' || ") + `
		FROM (SELECT tenant, project, environment, case_id, variant, day, ` + strings.Join(running, ", ") + `
			FROM (SELECT tenant, project, environment, case_id, variant, ` + dayOf + ` AS day, ` + strings.Join(perDay, ", ") + `
				FROM (` + ordered + `) AS o
				GROUP BY tenant, project, environment, case_id, variant, ` + dayOf + `) AS per_day
			WINDOW w AS (PARTITION BY tenant, project, environment, case_id, variant ORDER BY day ROWS UNBOUNDED PRECEDING)) AS running`
	// The latest outcome of each case: its status, its latest failure, the
	// quarantined stretch that ends with it (from the first quarantined
	// outcome after the latest one that was not), and its latest totals.
	k := `h.tenant = k.tenant AND h.project = k.project AND h.environment = k.environment AND h.case_id = k.case_id AND h.variant = k.variant`
	tk := strings.ReplaceAll(k, "h.", "t.")
	tcols := make([]string, len(counters))
	for i, c := range counters {
		tcols[i] = "t." + c
	}
	last := `INSERT INTO history_last (` + strings.Join(lastColumns, ", ") + `)
		SELECT k.tenant, k.project, k.environment, k.case_id, k.variant,
			(SELECT h.status FROM history h WHERE ` + k + ` AND h.finished_at = k.at ORDER BY h.run_id DESC LIMIT 1),
			k.at,
			COALESCE((SELECT h.run_id FROM history h WHERE ` + k + ` AND h.finished_at = k.fail_at AND h.status = 'failed' ORDER BY h.run_id DESC LIMIT 1), ''),
			COALESCE((SELECT h.commit_sha FROM history h WHERE ` + k + ` AND h.finished_at = k.fail_at AND h.status = 'failed' ORDER BY h.run_id DESC LIMIT 1), ''),
			COALESCE(k.fail_at, 0),
			(SELECT h.quarantined FROM history h WHERE ` + k + ` AND h.finished_at = k.at ORDER BY h.run_id DESC LIMIT 1),
			COALESCE((SELECT MIN(h.finished_at) FROM history h WHERE ` + k + ` AND h.finished_at > COALESCE(k.free_at, -1)), 0),
			0,
			t.day, ` + strings.Join(tcols, ", ") + `
		FROM (SELECT tenant, project, environment, case_id, variant, MAX(finished_at) AS at,
				MAX(CASE WHEN status = 'failed' THEN finished_at END) AS fail_at,
				MAX(CASE WHEN NOT (` + d.True("quarantined") + `) THEN finished_at END) AS free_at
			FROM history GROUP BY tenant, project, environment, case_id, variant) AS k
		JOIN history_totals t ON ` + tk + ` AND t.day = (SELECT MAX(x.day) FROM history_totals x WHERE ` + strings.ReplaceAll(k, "h.", "x.") + `)`
	return []string{
		fill,
		last,
		// Not quarantined: no stretch. Quarantined: clean since the latest
		// failure within the stretch, else since it began.
		`UPDATE history_last SET q_since = 0 WHERE NOT (` + d.True("quarantined") + `)`,
		`UPDATE history_last SET clean_since = CASE WHEN fail_at >= q_since THEN fail_at ELSE q_since END WHERE ` + d.True("quarantined"),
	}
}

// SelectLast reads the latest outcomes of one environment of a project:
// args tenant, project, environment; scan the rows with ScanLast.
func SelectLast(d Dialect) string {
	return `SELECT ` + strings.Join(lastColumns, ", ") + ` FROM history_last WHERE tenant = ` + d.Placeholder(1) +
		` AND project = ` + d.Placeholder(2) + ` AND environment = ` + d.Placeholder(3)
}

// Scanner is a row of a query result.
type Scanner interface{ Scan(dest ...any) error }

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// outcomeDest are the scan destinations of outcomeColumns; done converts
// them into l once scanned. q receives quarantined in the dialect's type
// (*bool or *int64).
func outcomeDest(l *engine.LastOutcome, q any) (dest []any, done func()) {
	var status string
	var at, failAt, since, clean int64
	dest = []any{&status, &at, &l.FailRun, &l.FailCommit, &failAt, q, &since, &clean}
	return dest, func() {
		l.Status, l.At, l.FailAt = api.Status(status), fromNanos(at), fromNanos(failAt)
		l.QuarantineSince, l.CleanSince = fromNanos(since), fromNanos(clean)
		switch v := q.(type) {
		case *bool:
			l.Quarantined = *v
		case *int64:
			l.Quarantined = *v != 0
		}
	}
}

func countersDest(c *engine.DayCounts) []any {
	return []any{&c.Runs, &c.Failures, &c.Flaky, &c.Flips, durationsText{&c.Durations}}
}

// ScanLast reads a row of SelectLast; q receives quarantined in the
// dialect's type (*bool or *int64).
func ScanLast(row Scanner, q any) (engine.CaseKey, engine.LastOutcome, error) {
	var k engine.CaseKey
	var l engine.LastOutcome
	od, done := outcomeDest(&l, q)
	dest := append([]any{&k.Tenant, &k.Project, &k.Environment, &k.Case, &k.Variant}, od...)
	dest = append(dest, &l.TotalsDay)
	dest = append(dest, countersDest(&l.Totals)...)
	if err := row.Scan(dest...); err != nil {
		return k, l, err
	}
	done()
	return k, l, nil
}

// UpsertTotals writes n snapshots (arguments TotalsArgs, in order) over the
// stored ones.
func UpsertTotals(d Dialect, n int) string {
	set := make([]string, len(counters))
	for i, c := range counters {
		set[i] = c + " = excluded." + c
	}
	return `INSERT INTO history_totals (` + strings.Join(totalsColumns, ", ") + `) VALUES ` + values(d, n, len(totalsColumns)) +
		` ON CONFLICT (tenant, project, environment, case_id, variant, day) DO UPDATE SET ` + strings.Join(set, ", ")
}

// TotalsColumns is the number of arguments of a snapshot.
var TotalsColumns = len(totalsColumns)

// TotalsArgs appends a snapshot's arguments to args.
func TotalsArgs(args []any, k engine.DayKey, c *engine.DayCounts) []any {
	return append(args, k.Tenant, k.Project, k.Environment, k.Case, k.Variant, k.Day, c.Runs, c.Failures, c.Flaky, c.Flips, EncodeDurations(&c.Durations))
}

// UpsertLast replaces n latest outcomes (arguments LastArgs).
func UpsertLast(d Dialect, n int) string {
	set := make([]string, 0, len(lastColumns)-len(keyColumns))
	for _, c := range lastColumns[len(keyColumns):] {
		set = append(set, c+" = excluded."+c)
	}
	return `INSERT INTO history_last (` + strings.Join(lastColumns, ", ") + `) VALUES ` + values(d, n, len(lastColumns)) +
		` ON CONFLICT (tenant, project, environment, case_id, variant) DO UPDATE SET ` + strings.Join(set, ", ")
}

// LastColumns is the number of arguments of a latest outcome.
var LastColumns = len(lastColumns)

// LastArgs appends a latest outcome's arguments to args.
func LastArgs(d Dialect, args []any, k engine.CaseKey, l *engine.LastOutcome) []any {
	return append(args, k.Tenant, k.Project, k.Environment, k.Case, k.Variant, string(l.Status), nanos(l.At),
		l.FailRun, l.FailCommit, nanos(l.FailAt), d.Bool(l.Quarantined), nanos(l.QuarantineSince), nanos(l.CleanSince),
		l.TotalsDay, l.Totals.Runs, l.Totals.Failures, l.Totals.Flaky, l.Totals.Flips, EncodeDurations(&l.Totals.Durations))
}

func values(d Dialect, rows, cols int) string {
	var b strings.Builder
	n := 0
	for r := range rows {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for c := range cols {
			if c > 0 {
				b.WriteString(", ")
			}
			n++
			if d.InOrder != "" {
				b.WriteString(d.InOrder)
			} else {
				b.WriteString(d.Placeholder(n))
			}
		}
		b.WriteByte(')')
	}
	return b.String()
}

// Summary is the health query of f: per case and environment, its latest
// outcome and totals, and its snapshot of the last day before each period
// (window, recent, 7 and 30 days), each found by one descent of the
// primary key and read as one text (the columns a period needs, joined by
// commas). It reads five rows per case whatever the window. Scan its rows
// with ScanSummary and merge the environments (MergeSummaries).
func Summary(d Dialect, tenant string, f engine.SummaryFilter) (string, []any) {
	window, recent, d7, d30 := f.SummaryDays()
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return d.Placeholder(len(args))
	}
	var key []string
	for _, c := range keyColumns {
		key = append(key, "x."+c+" = l."+c)
	}
	num := func(c string) string { return "CAST(x." + c + " AS TEXT)" }
	cols := []string{"l.environment", "l.case_id", "l.variant"}
	for _, c := range outcomeColumns {
		cols = append(cols, "l."+c)
	}
	cols = append(cols, "l.runs", "l.failures", "l.flaky", "l.flips", "l.durations")
	for _, p := range []struct {
		from int64
		cols []string
	}{
		{window, []string{num("runs"), num("failures"), num("flaky"), num("flips"), "x.durations"}},
		{recent, []string{num("runs"), "x.durations"}},
		{d7, []string{num("runs"), num("failures")}},
		{d30, []string{num("runs"), num("failures")}},
	} {
		cols = append(cols, `(SELECT `+strings.Join(p.cols, " || ',' || ")+` FROM history_totals x WHERE `+strings.Join(key, " AND ")+
			` AND x.day < `+arg(p.from)+` ORDER BY x.day DESC LIMIT 1)`)
	}
	q := `SELECT ` + strings.Join(cols, ", ") + ` FROM history_last l WHERE l.tenant = ` + arg(tenant) + ` AND l.project = ` + arg(f.Project)
	if f.Environment != "" {
		q += ` AND l.environment = ` + arg(f.Environment)
	}
	return q, args
}

// snapshotText scans one period's snapshot of Summary: ints comma-separated,
// into the fields given (a nil field: the durations that follow); NULL (no
// snapshot before the period) leaves zeros.
type snapshotText struct {
	ints []*int64
	hist *[engine.DurationBuckets]int64
}

// Scan implements sql.Scanner; pgx calls it too.
func (t snapshotText) Scan(v any) error {
	var s string
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		s = x
	case []byte:
		s = string(x)
	default:
		return fmt.Errorf("decoding a health snapshot: got %T", v)
	}
	for _, p := range t.ints {
		field, rest, _ := strings.Cut(s, ",")
		n, err := strconv.ParseInt(field, 10, 64)
		if err != nil {
			return fmt.Errorf("decoding a health snapshot: %w", err)
		}
		*p, s = n, rest
	}
	if t.hist != nil {
		return DecodeDurations(s, t.hist)
	}
	return nil
}

// ScanSummary reads a row of Summary: one case in one environment. q as in
// ScanLast.
func ScanSummary(row Scanner, q any) (env string, s engine.CaseSummary, err error) {
	od, done := outcomeDest(&s.Last, q)
	var latest, w engine.DayCounts
	var rRuns, d7Runs, d7Fail, d30Runs, d30Fail int64
	var rHist [engine.DurationBuckets]int64
	dest := append([]any{&env, &s.Case, &s.Variant}, od...)
	dest = append(dest, &latest.Runs, &latest.Failures, &latest.Flaky, &latest.Flips, durationsText{&latest.Durations},
		snapshotText{ints: []*int64{&w.Runs, &w.Failures, &w.Flaky, &w.Flips}, hist: &w.Durations},
		snapshotText{ints: []*int64{&rRuns}, hist: &rHist},
		snapshotText{ints: []*int64{&d7Runs, &d7Fail}},
		snapshotText{ints: []*int64{&d30Runs, &d30Fail}})
	if err := row.Scan(dest...); err != nil {
		return "", s, err
	}
	done()
	s.Window = latest
	s.Window.Sub(&w)
	s.Recent.Runs = latest.Runs - rRuns
	for i := range latest.Durations {
		s.Recent.Durations[i] = latest.Durations[i] - rHist[i]
	}
	s.Runs7, s.Failures7 = latest.Runs-d7Runs, latest.Failures-d7Fail
	s.Runs30, s.Failures30 = latest.Runs-d30Runs, latest.Failures-d30Fail
	return env, s, nil
}

// MergeSummaries merges the rows of Summary by case and variant, in the
// order first seen.
func MergeSummaries(parts []engine.CaseSummary) []engine.CaseSummary {
	type ck struct{ c, v string }
	idx := map[ck]int{}
	var out []engine.CaseSummary
	for i := range parts {
		k := ck{parts[i].Case, parts[i].Variant}
		if j, ok := idx[k]; ok {
			out[j].Merge(&parts[i])
			continue
		}
		idx[k] = len(out)
		out = append(out, parts[i])
	}
	return out
}

// Prune deletes the snapshots of days before a day (the first argument of
// each statement; the last statement's is a time in Unix nanoseconds),
// keeping the latest of them per case as its engine.BaseDay snapshot, and
// the latest outcomes older than the time with their snapshots: what
// engine.PruneSnapshots does in memory.
func Prune(d Dialect) []string {
	key := `n.tenant = history_totals.tenant AND n.project = history_totals.project AND n.environment = history_totals.environment AND n.case_id = history_totals.case_id AND n.variant = history_totals.variant`
	base := fmt.Sprint(engine.BaseDay)
	return []string{
		`DELETE FROM history_totals WHERE day = ` + base + ` AND EXISTS (SELECT 1 FROM history_totals n WHERE ` + key + ` AND n.day > ` + base + ` AND n.day < ` + d.Placeholder(1) + `)`,
		`UPDATE history_totals SET day = ` + base + ` WHERE day > ` + base + ` AND day < ` + d.Placeholder(1) +
			` AND day = (SELECT MAX(n.day) FROM history_totals n WHERE ` + key + ` AND n.day < ` + d.Placeholder(1) + `)`,
		`DELETE FROM history_totals WHERE day > ` + base + ` AND day < ` + d.Placeholder(1),
		`DELETE FROM history_last WHERE at < ` + d.Placeholder(1),
	}
}

// PruneOrphans deletes the snapshots of cases without a latest outcome
// (after Prune's last statement).
const PruneOrphans = `DELETE FROM history_totals WHERE NOT EXISTS (SELECT 1 FROM history_last l WHERE l.tenant = history_totals.tenant AND l.project = history_totals.project AND l.environment = history_totals.environment AND l.case_id = history_totals.case_id AND l.variant = history_totals.variant)`

// shadowTable holds one row per finished shadow run (engine.ShadowRecord,
// body as JSON): selection safety reads a project's from a date on.
var shadowTable = []string{
	`CREATE TABLE shadow_runs (
			run_id      TEXT   NOT NULL PRIMARY KEY,
			tenant      TEXT   NOT NULL,
			project     TEXT   NOT NULL,
			environment TEXT   NOT NULL,
			finished_at BIGINT NOT NULL,
			body        TEXT   NOT NULL
		)`,
	`CREATE INDEX shadow_runs_tenant_project_finished ON shadow_runs (tenant, project, finished_at)`,
	`CREATE INDEX shadow_runs_finished ON shadow_runs (finished_at)`,
}

// ShadowProbe reads, for the run_id argument, its selection's shadow plan,
// unmapped and ignored files as JSON text (NULL when absent): what
// engine.ShadowOf needs beyond the head and members.
func ShadowProbe(d Dialect) string {
	return `SELECT ` + d.JSONField("selection", "shadow") + `, ` + d.JSONField("selection", "unmapped") + `, ` +
		d.JSONField("selection", "ignored") + ` FROM run_bodies WHERE run_id = ` + d.Placeholder(1)
}

// InsertShadow records a shadow run: args run_id, tenant, project,
// environment, finished_at (Unix nanoseconds), body.
func InsertShadow(d Dialect) string {
	return `INSERT INTO shadow_runs (run_id, tenant, project, environment, finished_at, body) VALUES (` +
		d.Placeholder(1) + `, ` + d.Placeholder(2) + `, ` + d.Placeholder(3) + `, ` + d.Placeholder(4) + `, ` +
		d.Placeholder(5) + `, ` + d.Placeholder(6) + `) ON CONFLICT DO NOTHING`
}

// SelectShadow reads a project's shadow runs from a time on, oldest first:
// rows run_id, environment, finished_at, body (ScanShadow).
func SelectShadow(d Dialect, tenant string, f engine.HistoryFilter) (string, []any) {
	since := int64(-1 << 63)
	if !f.Since.IsZero() {
		since = f.Since.UnixNano()
	}
	q := `SELECT run_id, environment, finished_at, body FROM shadow_runs WHERE tenant = ` + d.Placeholder(1) +
		` AND project = ` + d.Placeholder(2) + ` AND finished_at >= ` + d.Placeholder(3)
	args := []any{tenant, f.Project, since}
	if f.Environment != "" {
		q += ` AND environment = ` + d.Placeholder(4)
		args = append(args, f.Environment)
	}
	return q + ` ORDER BY finished_at, run_id`, args
}

// ScanShadow reads a row of SelectShadow.
func ScanShadow(row Scanner, tenant, project string) (engine.ShadowRecord, error) {
	var r engine.ShadowRecord
	var at int64
	var body string
	if err := row.Scan(&r.RunID, &r.Environment, &at, &body); err != nil {
		return r, err
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		return r, fmt.Errorf("decoding shadow run %s: %w", r.RunID, err)
	}
	r.Tenant, r.Project, r.FinishedAt = tenant, project, time.Unix(0, at).UTC()
	return r, nil
}

// ShadowRun completes head (a terminal run with its members) with what
// ShadowProbe read and returns its record; false when it is not a shadow run.
func ShadowRun(head *api.Run, shadow, unmapped, ignored sql.NullString) (engine.ShadowRecord, string, bool, error) {
	if !shadow.Valid || shadow.String == "" || shadow.String == "null" {
		return engine.ShadowRecord{}, "", false, nil
	}
	run := *head
	run.Selection.Shadow = &api.ShadowPlan{}
	if err := json.Unmarshal([]byte(shadow.String), run.Selection.Shadow); err != nil {
		return engine.ShadowRecord{}, "", false, fmt.Errorf("decoding the shadow plan of run %s: %w", run.ID, err)
	}
	for _, f := range []struct {
		v  sql.NullString
		to *[]string
	}{{unmapped, &run.Selection.Unmapped}, {ignored, &run.Selection.Ignored}} {
		if f.v.Valid && f.v.String != "" && f.v.String != "null" {
			if err := json.Unmarshal([]byte(f.v.String), f.to); err != nil {
				return engine.ShadowRecord{}, "", false, fmt.Errorf("decoding the selection of run %s: %w", run.ID, err)
			}
		}
	}
	rec, ok := engine.ShadowOf(&run)
	if !ok {
		return rec, "", false, nil
	}
	body, err := json.Marshal(rec)
	if err != nil {
		return rec, "", false, fmt.Errorf("encoding shadow run %s: %w", run.ID, err)
	}
	return rec, string(body), true, nil
}

// PruneShadow deletes shadow runs finished before the argument (Unix nanoseconds).
func PruneShadow(d Dialect) string {
	return `DELETE FROM shadow_runs WHERE finished_at < ` + d.Placeholder(1)
}
