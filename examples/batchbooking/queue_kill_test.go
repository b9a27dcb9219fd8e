package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/priosdk/prio-go/internal/pgtest"
)

// TestQueueWorkersKilled runs three workers of the command on one queue,
// against a sandbox that deduplicates nothing, injects faults (gateway
// pages among them) and serves order reads from a cache 3 s behind, and kills
// a random worker with SIGKILL again and again, restarting it each time.
// Every row must end booked exactly once, and every job completed or
// cancelled with a recorded reason. QUEUE_KILL_FULL=1 runs the full form:
// 2,000 rows and 10 kills (RELIABILITY.md); the default is 400 rows and 4
// kills.
func TestQueueWorkersKilled(t *testing.T) {
	t.Parallel()
	rows, kills := 400, 4
	if os.Getenv("QUEUE_KILL_FULL") == "1" {
		rows, kills = 2000, 10
	}
	pgtest.Require(t)
	example, sandboxBin := binaries(t)
	sb := startSandbox(t, sandboxBin, "-idempotency", "none", "-faults", "flaky", "-request-limit", "0", "-cache-lag", "3s")
	db := pgtest.Database(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "orders.csv")
	writeInput(t, in, "QKILL", rows)
	args := func(slot int) []string {
		return []string{"-in", in, "-out", filepath.Join(dir, fmt.Sprintf("worker%d.results.csv", slot)), "-queue", db,
			"-concurrency", "8", "-attempt-timeout", "2s", "-rate-limited-delay", "1s", "-rate", "3000",
			"-send-window", "5s", "-rescue-after", "20s", "-horizon", "3s", "-progress-every", "1s"}
	}

	type worker struct {
		cmd  *exec.Cmd
		out  bytes.Buffer
		done chan error
	}
	var mu sync.Mutex
	start := func(slot int) *worker {
		w := &worker{done: make(chan error, 1)}
		w.cmd = exampleCmd(context.WithoutCancel(t.Context()), example, sb, args(slot)...)
		w.cmd.Stdout, w.cmd.Stderr = &w.out, &w.out
		require.NoError(t, w.cmd.Start())
		go func() { w.done <- w.cmd.Wait() }()
		return w
	}
	workers := make([]*worker, 3)
	for i := range workers {
		workers[i] = start(i)
	}
	t.Cleanup(func() {
		for _, w := range workers {
			_ = w.cmd.Process.Kill()
		}
	})

	began := time.Now()
	rng := rand.New(rand.NewPCG(killSeed(t), 0x71756575))
	for k := range kills {
		time.Sleep(500*time.Millisecond + time.Duration(rng.Int64N(int64(time.Second))))
		slot := rng.IntN(len(workers))
		mu.Lock()
		w := workers[slot]
		_ = w.cmd.Process.Signal(syscall.SIGKILL)
		err := <-w.done
		var exit *exec.ExitError
		if errors.As(err, &exit) && exit.Sys().(syscall.WaitStatus).Signaled() {
			t.Logf("kill %d at %s: worker %d killed", k+1, time.Since(began).Round(time.Millisecond), slot)
		} else {
			t.Logf("kill %d at %s: worker %d had already exited (%v):\n%s", k+1, time.Since(began).Round(time.Millisecond), slot, err, w.out.String())
		}
		workers[slot] = start(slot)
		mu.Unlock()
	}

	// Every worker exits once every row of the input is settled.
	deadline := time.After(5 * time.Minute)
	for i, w := range workers {
		select {
		case err := <-w.done:
			require.NoError(t, err, "worker %d:\n%s", i, w.out.String())
		case <-deadline:
			t.Fatalf("worker %d still running after 5 minutes:\n%s", i, w.out.String())
		}
	}
	t.Logf("all rows settled %s after the first start", time.Since(began).Round(time.Millisecond))

	st := sb.stats(t)
	assert.Zero(t, st.DuplicateExternalReferences, "duplicate_external_references")
	assert.Equal(t, rows, st.OrdersTotal, "orders_total")

	conn, err := pgx.Connect(t.Context(), db)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var jobs, settled, unexplained, rescued int
	require.NoError(t, conn.QueryRow(t.Context(), `
		SELECT count(*),
		       count(*) FILTER (WHERE state IN ('completed', 'cancelled')),
		       count(*) FILTER (WHERE state = 'cancelled' AND coalesce(array_length(errors, 1), 0) = 0),
		       count(*) FILTER (WHERE errors::text LIKE '%rescued%')
		FROM river_job`).Scan(&jobs, &settled, &unexplained, &rescued))
	assert.Equal(t, rows, jobs, "one job per row")
	assert.Equal(t, jobs, settled, "jobs neither completed nor cancelled")
	assert.Zero(t, unexplained, "cancelled jobs without a recorded reason")
	t.Logf("rows=%d kills=%d orders_total=%d duplicates=%d jobs=%d settled=%d rescued=%d requests=%d faults=%d",
		rows, kills, st.OrdersTotal, st.DuplicateExternalReferences, jobs, settled, rescued, st.RequestsTotal, st.FaultsInjected)

	res := readResults(t, filepath.Join(dir, "worker0.results.csv"))
	require.Len(t, res, rows)
	for ref, r := range res {
		assert.Equal(t, "booked", r[1], "%s: %s", ref, r[2])
	}
}
