package pgstore_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/zof-ai/zof-ci/internal/engine/pgstore/pgtest"
	"github.com/zof-ai/zof-ci/internal/engine/storetest"
)

// A tenant another claimer holds the claim lock of (a replica of this
// version or of schema version 7, which takes the same key) is skipped, not
// waited for: the next tenant's run is claimed, and the tenant's own once
// the lock is released.
func TestClaimSkipsATenantBeingClaimedFor(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	s := openAt(t, url)
	storetest.Create(t, s, "t", "r1")
	storetest.Create(t, s, "u", "u1")
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('zof-ci claim ' || current_schema() || ' ' || 't'))`); err != nil {
		t.Fatal(err)
	}
	claimOne := func(lease string) string {
		t.Helper()
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		c, err := s.Claim(cctx, lease, time.Minute, storetest.Limit(0))
		if err != nil {
			t.Fatalf("Claim %s: %v", lease, err)
		}
		if c == nil {
			return ""
		}
		return c.Record.Run.ID
	}
	if id := claimOne("A#1"); id != "u1" {
		t.Fatalf("with t's claim lock held elsewhere: claimed %q, want u1", id)
	}
	if id := claimOne("A#2"); id != "" {
		t.Fatalf("only t waits and its lock is held: claimed %q, want nothing", id)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if id := claimOne("A#3"); id != "r1" {
		t.Fatalf("after t's lock was released: claimed %q, want r1", id)
	}
}

// The count of held runs is exact only when the claiming UPDATE takes its
// snapshot after the tenant lock is held: a database whose transactions
// keep one snapshot (repeatable read, serializable) is refused with a hint,
// not served with a limit that can be exceeded.
func TestClaimRefusesOneSnapshotPerTransaction(t *testing.T) {
	url := pgtest.URL(t)
	s := openAt(t, url)
	storetest.Create(t, s, "t", "r1")
	rr := openAt(t, url+"&default_transaction_isolation=repeatable%20read")
	_, err := rr.Claim(context.Background(), "B#1", time.Minute, storetest.Limit(1))
	if err == nil || !strings.Contains(err.Error(), "read committed") {
		t.Fatalf("Claim under repeatable read: %v, want a refusal naming read committed", err)
	}
	c, err := s.Claim(context.Background(), "A#1", time.Minute, storetest.Limit(1))
	if err != nil || c == nil || c.Record.Run.ID != "r1" {
		t.Fatalf("Claim under read committed after the refusal = %+v, %v; want r1", c, err)
	}
}
