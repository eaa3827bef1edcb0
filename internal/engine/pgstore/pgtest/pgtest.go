// Package pgtest gives a test a fresh, empty PostgreSQL schema on the server
// named by ZOF_TEST_POSTGRES_URL. Without the variable the test fails when CI
// or ZOF_REQUIRE_POSTGRES is set (CI must run the PostgreSQL tests; .ci/run
// starts a server itself) and is skipped, loudly, otherwise.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL names the server the tests use: a postgres:// URL of a database the
// user may create schemas in.
const EnvURL = "ZOF_TEST_POSTGRES_URL"

// EnvRequire, when set (.ci/postgres.sh sets it), makes a missing server a
// failure, as CI does.
const EnvRequire = "ZOF_REQUIRE_POSTGRES"

// Required reports whether a missing server fails the tests instead of
// skipping them: in CI (CI set, as every CI provider does) or when
// ZOF_REQUIRE_POSTGRES is set.
func Required(getenv func(string) string) bool {
	return getenv("CI") != "" || getenv(EnvRequire) != ""
}

// Hint says how to get a server.
const Hint = "set " + EnvURL + "=postgres://user@127.0.0.1:5432/db?sslmode=disable, " +
	"or run .ci/run, which starts a throwaway PostgreSQL itself (.ci/postgres.sh)"

// BaseURL returns the server's URL. Without one it fails t when CI is set,
// and skips it otherwise.
func BaseURL(t testing.TB) string {
	t.Helper()
	return baseURL(t, os.Getenv)
}

func baseURL(t testing.TB, getenv func(string) string) string {
	t.Helper()
	u := getenv(EnvURL)
	if u != "" {
		return u
	}
	if Required(getenv) {
		t.Fatalf("%s is not set and CI or %s is: the PostgreSQL tests must run here; %s", EnvURL, EnvRequire, Hint)
	}
	t.Skipf("SKIPPING PostgreSQL test: %s is not set; %s", EnvURL, Hint)
	return ""
}

// URL creates a new empty schema on the server and returns a URL whose
// connections use it (search_path); the schema is dropped when t ends.
func URL(t testing.TB) string {
	t.Helper()
	u, drop, err := NewSchema(context.Background(), BaseURL(t))
	if err != nil {
		t.Fatalf("%v; %s", err, Hint)
	}
	t.Cleanup(func() {
		if err := drop(); err != nil {
			t.Error(err)
		}
	})
	return u
}

// NewSchema creates a new empty schema on the server at base and returns a
// URL whose connections use it (search_path), and a function that drops it.
// For harnesses that are not a testing.TB (testscript).
func NewSchema(ctx context.Context, base string) (string, func() error, error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", nil, err
	}
	schema := "zoftest_" + hex.EncodeToString(b[:])
	u, err := url.Parse(base)
	if err != nil {
		return "", nil, fmt.Errorf("%s is not a postgres:// URL: %w", EnvURL, err)
	}
	exec := func(sql string) error {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			return fmt.Errorf("connecting to %s: %w", EnvURL, err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, sql); err != nil {
			return fmt.Errorf("%s: %w", sql, err)
		}
		return nil
	}
	if err := exec(`CREATE SCHEMA ` + schema); err != nil {
		return "", nil, err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), func() error { return exec(`DROP SCHEMA ` + schema + ` CASCADE`) }, nil
}
