package pgstore

import (
	"fmt"
	"strconv"
)

// listQuery builds a newest-first list query of one tenant's rows: an opaque
// cursor (the ord of the last row of the previous page) and optional equality
// and ANY filters, each added only when set, with numbered placeholders.
type listQuery struct {
	sql  string
	args []any
}

func newListQuery(selectFrom, tenant string) *listQuery {
	return &listQuery{sql: selectFrom + ` WHERE tenant = $1`, args: []any{tenant}}
}

// arg adds v and returns its placeholder.
func (q *listQuery) arg(v any) string {
	q.args = append(q.args, v)
	return "$" + strconv.Itoa(len(q.args))
}

// cursor continues below the given ord; a cursor the store did not make wraps invalid.
func (q *listQuery) cursor(c string, invalid error) error {
	if c == "" {
		return nil
	}
	n, err := strconv.ParseInt(c, 10, 64)
	if err != nil || n < 1 {
		return fmt.Errorf("cursor %q: %w", c, invalid)
	}
	q.sql += ` AND ord < ` + q.arg(n)
	return nil
}

func (q *listQuery) eq(column, value string) {
	if value != "" {
		q.sql += ` AND ` + column + ` = ` + q.arg(value)
	}
}

func (q *listQuery) in(column string, values []string) {
	if len(values) > 0 {
		q.sql += ` AND ` + column + ` = ANY(` + q.arg(values) + `)`
	}
}

func stringsOf[S ~string](xs []S) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = string(x)
	}
	return out
}
