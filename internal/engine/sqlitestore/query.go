package sqlitestore

import (
	"fmt"
	"strconv"
	"strings"
)

// listQuery builds a newest-first list query of one tenant's rows: an opaque
// cursor (the ord of the last row of the previous page) and optional equality
// and IN filters, each added only when set.
type listQuery struct {
	sql  string
	args []any
}

func newListQuery(selectFrom, tenant string) *listQuery {
	return &listQuery{sql: selectFrom + ` WHERE tenant = ?`, args: []any{tenant}}
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
	q.sql += ` AND ord < ?`
	q.args = append(q.args, n)
	return nil
}

func (q *listQuery) eq(column, value string) {
	if value != "" {
		q.sql += ` AND ` + column + ` = ?`
		q.args = append(q.args, value)
	}
}

func (q *listQuery) in(column string, values []string) {
	if len(values) == 0 {
		return
	}
	q.sql += ` AND ` + column + ` IN (` + strings.TrimSuffix(strings.Repeat("?, ", len(values)), ", ") + `)`
	for _, v := range values {
		q.args = append(q.args, v)
	}
}

func stringsOf[S ~string](xs []S) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = string(x)
	}
	return out
}
