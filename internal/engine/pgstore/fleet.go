// The fleet of endpoint agents across replicas (docs/agents.md, "Several
// replicas"): the shared lease epochs, the cluster secret and the fleet
// home's lease, in the one row of the table fleet (schema version 11).

package pgstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	// epochTimeout bounds one reservation of lease epochs: Reserve has no
	// context (the fleet calls it under its lock when a block is used up).
	epochTimeout = 5 * time.Second
	// secretBytes is the cluster secret's entropy (256 bits).
	secretBytes = 32
)

// FleetEpochs keeps the lease epochs' high-water mark in the database, so
// every replica that is ever the fleet's home grants epochs above every
// epoch any earlier home granted. It is a fleet.EpochStore.
type FleetEpochs struct{ s *Store }

// FleetEpochs returns the store's shared epoch mark.
func (s *Store) FleetEpochs() *FleetEpochs { return &FleetEpochs{s: s} }

// Reserve implements fleet.EpochStore in one transaction that locks the
// row: two homes reserving at once get disjoint blocks.
func (e *FleetEpochs) Reserve(hi func(prev int64) int64) (prev int64, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), epochTimeout)
	defer cancel()
	defer classify(&err)
	err = pgx.BeginFunc(ctx, e.s.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT epoch FROM fleet WHERE id = 1 FOR UPDATE`).Scan(&prev); err != nil {
			return err
		}
		next := hi(prev)
		if next < prev {
			return fmt.Errorf("the new epoch mark %d is below the stored %d", next, prev)
		}
		_, err := tx.Exec(ctx, `UPDATE fleet SET epoch = $1 WHERE id = 1`, next)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("reserving lease epochs in %s: %w; check that the database is reachable", e.s.where, err)
	}
	return prev, nil
}

// ClusterSecret is the secret replicas of this database authenticate each
// other with: made by the first replica that asks, the same for every
// replica after. It is never logged.
func (s *Store) ClusterSecret(ctx context.Context) (secret string, err error) {
	defer classify(&err)
	var b [secretBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("making the cluster secret: %w", err)
	}
	err = s.pool.QueryRow(ctx, `UPDATE fleet SET secret = coalesce(secret, $1) WHERE id = 1 RETURNING secret`,
		hex.EncodeToString(b[:])).Scan(&secret)
	if err != nil {
		return "", fmt.Errorf("reading the cluster secret from %s: %w", s.where, err)
	}
	return secret, nil
}

// TakeFleetHome takes the fleet home's lease for replica (at address) when
// it is free or expired, renews it when replica holds it, and returns who
// holds it now and the address other replicas reach it at, both "" when
// none does (on the database's clock, so replicas' clocks do not matter).
func (s *Store) TakeFleetHome(ctx context.Context, replica, address string, ttl time.Duration) (home, homeAddress string, err error) {
	defer classify(&err)
	// The CTE and the outer SELECT see one snapshot: the second branch reads
	// the row as it was, and only when the UPDATE changed nothing.
	err = s.pool.QueryRow(ctx, `WITH u AS (
			UPDATE fleet SET home = $1, home_address = $2, home_until = `+nowNS+` + $3
			WHERE id = 1 AND (home = $1 OR home IS NULL OR home_until < `+nowNS+`)
			RETURNING home, home_address)
		SELECT home, home_address FROM u
		UNION ALL
		SELECT coalesce(home, ''), coalesce(home_address, '') FROM fleet
			WHERE id = 1 AND NOT EXISTS (SELECT 1 FROM u) AND home_until >= `+nowNS,
		replica, address, ttl.Nanoseconds()).Scan(&home, &homeAddress)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", nil
	}
	if err != nil {
		return "", "", fmt.Errorf("taking the fleet home's lease in %s: %w", s.where, err)
	}
	return home, homeAddress, nil
}

// ReleaseFleetHome gives the home's lease up at once when replica holds
// it (a clean stop), so another replica takes it at its next renewal.
func (s *Store) ReleaseFleetHome(ctx context.Context, replica string) (err error) {
	defer classify(&err)
	if _, err := s.pool.Exec(ctx, `UPDATE fleet SET home_until = 0 WHERE id = 1 AND home = $1`, replica); err != nil {
		return fmt.Errorf("releasing the fleet home's lease in %s: %w", s.where, err)
	}
	return nil
}
