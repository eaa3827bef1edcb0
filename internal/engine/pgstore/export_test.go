package pgstore

import "context"

// OpenAtVersion opens url migrating it only up to schema version target, to
// test upgrades from an older schema.
func OpenAtVersion(ctx context.Context, url string, target int) (*Store, error) {
	return open(ctx, url, Options{}, target)
}

// Setting is the value of a run-time parameter on one of s's connections.
func (s *Store) Setting(ctx context.Context, name string) (string, error) {
	var v string
	err := s.pool.QueryRow(ctx, `SELECT current_setting($1)`, name).Scan(&v)
	return v, err
}
