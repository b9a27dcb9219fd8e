package prioqueue_test

import (
	"os"
	"testing"

	"github.com/priosdk/prio-go/internal/pgtest"
)

// TestMain runs the package's tests against one throwaway PostgreSQL.
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
