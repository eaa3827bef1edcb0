package pgstore

import (
	"errors"
	"strconv"
	"testing"
)

var errInvalid = errors.New("invalid")

// FuzzCursor: a list cursor either is an ord the store could have made (a
// positive integer, bound as a parameter, never spliced into the SQL) or is
// refused as invalid.
func FuzzCursor(f *testing.F) {
	for _, c := range []string{"", "1", "42", "0", "-1", "x", "1; DROP TABLE runs", "9223372036854775808"} {
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, c string) {
		q := newListQuery(`SELECT ord FROM runs`, "t")
		err := q.cursor(c, errInvalid)
		n, perr := strconv.ParseInt(c, 10, 64)
		switch {
		case c == "":
			if err != nil || len(q.args) != 1 {
				t.Fatalf("empty cursor: %v %v", err, q.args)
			}
		case perr != nil || n < 1:
			if !errors.Is(err, errInvalid) {
				t.Fatalf("cursor %q: %v, want invalid", c, err)
			}
		default:
			if err != nil || q.sql != `SELECT ord FROM runs WHERE tenant = $1 AND ord < $2` || q.args[1] != n {
				t.Fatalf("cursor %q: %v %q %v", c, err, q.sql, q.args)
			}
		}
	})
}
