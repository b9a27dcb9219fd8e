package main

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/priosdk/prio-go/internal/pgtest"
)

// TestQueueResultsChunkByChunk runs -queue in this process on the embedded
// flaky sandbox with status queries of 7 references: the wait asks only
// about the rows not yet settled, and the results are read back a chunk at
// a time, every row once, in the input's order. Not parallel: it sets
// queueStatusChunk.
func TestQueueResultsChunkByChunk(t *testing.T) {
	pgtest.Require(t)
	saved := queueStatusChunk
	queueStatusChunk = 7
	t.Cleanup(func() { queueStatusChunk = saved })

	dir := t.TempDir()
	in, out := filepath.Join(dir, "orders.csv"), filepath.Join(dir, "results.csv")
	const rows = 30
	writeInput(t, in, "QCHUNK", rows)
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"-in", in, "-out", out, "-queue", pgtest.Database(t), "-faults", "flaky",
		"-concurrency", "4", "-progress-every", "100ms"}, &stdout, &stderr, false)
	require.Equal(t, exitOK, code, "stderr:\n%s\nstdout:\n%s", stderr.String(), stdout.String())

	s := summaryOf(t, stdout.String())
	assert.Equal(t, [3]int{rows, 0, 0}, [3]int{s[0], s[1], s[2]}, "booked, failed, unknown")
	m := sandboxRE.FindStringSubmatch(stdout.String())
	require.NotNil(t, m, stdout.String())
	assert.Equal(t, []string{fmt.Sprint(rows), "0"}, m[1:], "orders_total, duplicate_external_references")

	f, err := os.Open(out)
	require.NoError(t, err)
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	require.NoError(t, err)
	require.Len(t, recs, rows+1)
	for i, r := range recs[1:] {
		assert.Equal(t, fmt.Sprintf("QCHUNK-%06d", i), r[0], "row %d in the input's order", i)
		assert.Equal(t, "booked", r[2], r[0])
		assert.NotEmpty(t, r[1], r[0])
	}
}
