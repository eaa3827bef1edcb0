package pgstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/zof-ai/zof-ci/internal/engine"
)

// classify marks an error that says the database could not be reached (or
// is restarting) with engine.ErrUnavailable, so a server answers 503 with
// Retry-After instead of 500: the request may simply be sent again.
func classify(err *error) {
	if *err == nil || errors.Is(*err, engine.ErrUnavailable) || !unavailable(*err) {
		return
	}
	*err = fmt.Errorf("%w (%w)", *err, engine.ErrUnavailable)
}

// unavailable reports whether err is the database being unreachable rather
// than a refusal: no connection, a connection lost, or the server saying it
// is shutting down, starting or out of connections (SQLSTATE class 08 and
// 57P01–57P03, 53300; PostgreSQL Appendix A).
func unavailable(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false // the caller gave up
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "57P01", "57P02", "57P03", "53300":
			return true
		}
		return len(pe.Code) == 5 && pe.Code[:2] == "08"
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || pgconn.SafeToRetry(err)
}
