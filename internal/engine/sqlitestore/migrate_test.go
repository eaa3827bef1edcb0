package sqlitestore

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
)

// Migrating an up-to-date database is a no-op, and the recorded version is
// the number of migrations.
func TestMigrateIsIdempotent(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "zof.db")
	db, err := sql.Open(DriverName, path+"?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for range 2 {
		if err := migrate(ctx, db, path); err != nil {
			t.Fatal(err)
		}
	}
	var v, rows int
	if err := db.QueryRow(`SELECT version, (SELECT COUNT(*) FROM schema_version) FROM schema_version`).Scan(&v, &rows); err != nil {
		t.Fatal(err)
	}
	if v != len(migrations) || rows != 1 {
		t.Errorf("schema_version = %d in %d rows, want %d in 1", v, rows, len(migrations))
	}
}
