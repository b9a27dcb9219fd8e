package prioqueue

import (
	"context"
	"fmt"
	"regexp"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
)

// Schema is the PostgreSQL schema that holds River's tables, as set in
// river.Config.Schema. The zero value means no schema named: the tables
// are found on the connection's search path, which is River's default.
// Migrate, Statuses and Lookup use the zero value; a queue whose River
// client names a schema migrates and reads through that Schema's methods.
// The worker needs none: it uses the schema of the River client it runs
// under.
type Schema string

// schemaName is River's own rule for a schema name.
var schemaName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

func (s Schema) validate() error {
	if s != "" && (len(s) > 63 || !schemaName.MatchString(string(s))) {
		return fmt.Errorf("prioqueue: schema %q: a schema name is letters, digits and underscores, starts with a letter or underscore, and is at most 63 long", string(s))
	}
	return nil
}

// jobTable is River's job table in s, quoted for SQL.
func (s Schema) jobTable() string {
	if s == "" {
		return "river_job"
	}
	return pgx.Identifier{string(s), "river_job"}.Sanitize()
}

// schemaOf is the schema of the River client running the job ctx belongs
// to; the zero Schema outside a River client (a test calling Work).
func schemaOf(ctx context.Context) Schema {
	if c, err := river.ClientFromContextSafely[pgx.Tx](ctx); err == nil {
		return Schema(c.Schema())
	}
	return ""
}

// Migrate brings River's tables in pool's database up to the version the
// pinned River needs (see the package function Migrate).
func (s Schema) Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	if err := s.validate(); err != nil {
		return err
	}
	return migrate(ctx, pool, string(s))
}

// Statuses is the package function Statuses on River's tables in s.
func (s Schema) Statuses(ctx context.Context, q Querier, distributorID string, refs []string) (map[string]*Status, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	return statuses(ctx, q, s.jobTable(), distributorID, refs)
}

// Lookup is the package function Lookup on River's tables in s.
func (s Schema) Lookup(ctx context.Context, q Querier, distributorID, externalReference string) (st *Status, ok bool, err error) {
	m, err := s.Statuses(ctx, q, distributorID, []string{externalReference})
	if err != nil {
		return nil, false, err
	}
	st, ok = m[externalReference]
	return st, ok, nil
}
