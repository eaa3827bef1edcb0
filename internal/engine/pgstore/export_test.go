package pgstore

import "context"

// OpenAtVersion opens url migrating it only up to schema version target, to
// test upgrades from an older schema.
func OpenAtVersion(ctx context.Context, url string, target int) (*Store, error) {
	return open(ctx, url, Options{}, target)
}
