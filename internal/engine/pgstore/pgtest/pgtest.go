// Package pgtest gives a test a fresh, empty PostgreSQL schema on the server
// named by ZOF_TEST_POSTGRES_URL. Without the variable the test fails when CI
// is set (CI must run the PostgreSQL tests; .ci/run starts a server itself)
// and is skipped, loudly, otherwise.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL names the server the tests use: a postgres:// URL of a database the
// user may create schemas in.
const EnvURL = "ZOF_TEST_POSTGRES_URL"

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
	if getenv("CI") != "" {
		t.Fatalf("%s is not set and CI is: the PostgreSQL tests must run in CI; %s", EnvURL, Hint)
	}
	t.Skipf("SKIPPING PostgreSQL test: %s is not set; %s", EnvURL, Hint)
	return ""
}

// URL creates a new empty schema on the server and returns a URL whose
// connections use it (search_path); the schema is dropped when t ends.
func URL(t testing.TB) string {
	t.Helper()
	base := BaseURL(t)
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	schema := "zoftest_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connecting to %s: %v; %s", EnvURL, err, Hint)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE SCHEMA `+schema); err != nil {
		t.Fatalf("creating schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s is not a URL: %v", EnvURL, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
