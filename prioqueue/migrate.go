package prioqueue

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// migrateLock is the advisory lock that serialises Migrate across
// processes: workers started at once on several machines all call it.
const migrateLock = 0x7072696f // "prio"

// Migrate brings River's tables in pool's database up to the version the
// pinned River needs. It is safe to call from many processes at once, and
// does nothing when the tables are current. The tables go where the
// connection's search path puts them; for a schema of their own, see
// Schema.Migrate (the schema must exist).
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return migrate(ctx, pool, "")
}

func migrate(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	m, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Schema: schema})
	if err != nil {
		return fmt.Errorf("prioqueue: migrate: %w", err)
	}
	// A session lock on a connection of its own: River applies each
	// migration in a transaction of its own (a new enum value cannot be
	// used in the transaction that adds it), so one outer transaction
	// cannot hold the lock.
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("prioqueue: migrate: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(migrateLock)); err != nil {
		return fmt.Errorf("prioqueue: migrate: %w", err)
	}
	defer func() {
		_, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, int64(migrateLock))
	}()
	_, err = m.Migrate(ctx, rivermigrate.DirectionUp, nil)
	if err != nil {
		return fmt.Errorf("prioqueue: migrate: %w", err)
	}
	return nil
}
