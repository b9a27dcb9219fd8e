package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// maxPeakRSS bounds the command's peak resident memory while it books
// 100,000 rows. Measured: about 27 MiB for 10,000 rows and 65 MiB for
// 100,000. The difference is the client's idempotency-key guard, which
// remembers up to 100,000 recent keys; the runner's own memory does not
// grow with the input. Holding the input instead would take more than the
// bound on its own (each row is a request of about 1 KiB in memory).
const maxPeakRSS = 96 << 20

// TestHundredThousandRowsInBoundedMemory books 100,000 rows against a
// separate sandbox and measures the command's peak RSS (getrusage of the
// child). It takes a few minutes, so it runs only with
// BATCHBOOKING_100K=1.
func TestHundredThousandRowsInBoundedMemory(t *testing.T) {
	if os.Getenv("BATCHBOOKING_100K") == "" {
		t.Skip("set BATCHBOOKING_100K=1 to book 100,000 rows (a few minutes)")
	}
	example, sandboxBin := binaries(t)
	sb := startSandbox(t, sandboxBin, "-request-limit", "0", "-client-error-limit", "0")
	dir := t.TempDir()
	peaks := map[int]int64{}
	for _, rows := range []int{10_000, 100_000} {
		in := filepath.Join(dir, "orders-"+strconv.Itoa(rows)+".csv")
		writeInput(t, in, "MEM"+strconv.Itoa(rows), rows)
		var stdout, stderr bytes.Buffer
		cmd := exampleCmd(t.Context(), example, sb, "-in", in, "-rate", "0", "-progress-every", "30s")
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		start := time.Now()
		require.NoError(t, cmd.Run(), "stderr:\n%s", stderr.String())
		ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		peaks[rows] = ru.Maxrss << 10 // KiB on Linux
		s := summaryOf(t, stdout.String())
		assert.Equal(t, [3]int{rows, 0, 0}, [3]int{s[0], s[1], s[2]}, "booked, failed, unknown")
		t.Logf("%d rows: peak RSS %.1f MiB, %s (%s)", rows, float64(peaks[rows])/(1<<20), time.Since(start).Round(time.Second), bytes.TrimSpace(stdout.Bytes()))
	}
	assert.Less(t, peaks[100_000], int64(maxPeakRSS), "peak RSS for 100,000 rows")
}
