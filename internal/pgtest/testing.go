package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
)

// shared is the server of this test binary, started by Main.
var (
	shared   *Server
	startErr error
)

// Main runs a test binary's tests with one throwaway server for all of
// them; call it from TestMain. When PostgreSQL is not installed, tests that
// ask for a database skip, unless CI is set to true: then they fail, since
// CI must run them.
func Main(m *testing.M) int {
	shared, startErr = Start(context.Background(), Options{})
	code := m.Run()
	if shared != nil {
		if err := shared.Close(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	return code
}

// Require returns the test binary's server, skipping or failing t (see
// Main) when there is none.
func Require(t testing.TB) *Server {
	t.Helper()
	switch {
	case shared != nil:
		return shared
	case startErr == nil:
		t.Fatal("pgtest: the test binary's TestMain does not call pgtest.Main")
	case errors.Is(startErr, ErrNotInstalled) && os.Getenv("CI") != "true":
		t.Skipf("skipped: %v (CI=true makes this a failure)", startErr)
	}
	t.Fatalf("a throwaway PostgreSQL is needed: %v", startErr)
	return nil
}

// Database creates an empty database for t and returns its connection
// string.
func Database(t testing.TB) string {
	t.Helper()
	s := Require(t)
	url, err := s.CreateDatabase(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return url
}

// Pool returns a pool on a new, empty database; it is closed when t ends.
func Pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(t.Context(), Database(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}
