package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/priosdk/prio-go/batch"
	"github.com/priosdk/prio-go/internal/pgtest"
)

func TestMain(m *testing.M) {
	code := pgtest.Main(m) // a throwaway PostgreSQL for the -queue tests

	cleanupBinaries()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

var summaryRE = regexp.MustCompile(`(?m)^booked=(\d+) failed=(\d+) unknown=(\d+) sends=(\d+) elapsed=\S+$`)
var sandboxRE = regexp.MustCompile(`(?m)^sandbox orders_total=(\d+) duplicate_external_references=(\d+)$`)

// summaryOf parses the summary line: booked, failed, unknown, sends.
func summaryOf(t *testing.T, stdout string) [4]int {
	t.Helper()
	m := summaryRE.FindStringSubmatch(stdout)
	require.NotNil(t, m, "no summary line in %q", stdout)
	var out [4]int
	for i := range out {
		out[i], _ = strconv.Atoi(m[i+1])
	}
	return out
}

// readResults returns the results file as external reference -> [order, status, error].
func readResults(t *testing.T, path string) map[string][3]string {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	require.NoError(t, err)
	require.NotEmpty(t, recs)
	require.Equal(t, resultsHeader, recs[0])
	out := map[string][3]string{}
	for _, r := range recs[1:] {
		_, dup := out[r[0]]
		require.False(t, dup, "%s twice in the results", r[0])
		out[r[0]] = [3]string{r[1], r[2], r[3]}
	}
	return out
}

// TestSampleOnFlakySandbox is the documented command: the sample against
// the embedded sandbox with the flaky profile, here with its order cache
// 3 s behind as well.
func TestSampleOnFlakySandbox(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	out := filepath.Join(dir, "results.csv")
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"-in", "sample.csv", "-faults", "flaky", "-cache-lag", "3s", "-out", out}, &stdout, &stderr, false)
	require.Equal(t, exitOK, code, "stderr:\n%s\nstdout:\n%s", stderr.String(), stdout.String())

	s := summaryOf(t, stdout.String())
	assert.Equal(t, 200, s[0], "booked")
	assert.Zero(t, s[1], "failed")
	assert.Zero(t, s[2], "unknown")
	assert.GreaterOrEqual(t, s[3], 200, "sends")
	m := sandboxRE.FindStringSubmatch(stdout.String())
	require.NotNil(t, m, stdout.String())
	assert.Equal(t, "200", m[1], "orders_total")
	assert.Equal(t, "0", m[2], "duplicate_external_references")
	assert.Regexp(t, `(?m)^progress: 200/200 rows booked=200`, stderr.String())

	res := readResults(t, out)
	require.Len(t, res, 200)
	orders := map[string]bool{}
	for ref, r := range res {
		assert.Equal(t, "booked", r[1], ref)
		assert.NotEmpty(t, r[0], ref)
		assert.Empty(t, r[2], ref)
		orders[r[0]] = true
	}
	assert.Len(t, orders, 200, "distinct order references")
	_, err := os.Stat("sample.csv.journal")
	assert.True(t, os.IsNotExist(err), "the embedded sandbox's journal is temporary")
}

func TestFailedRowsAndRerunWithJournal(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	require.NoError(t, os.WriteFile(in, []byte(
		`{"external_reference":"F1","product_id":"30001","product_type_id":"101"}`+"\n"+
			`{"external_reference":"F2","product_id":"30005","product_type_id":"101"}`+"\n"+ // the declining supplier
			`{"external_reference":"F3","product_id":"30001","product_type_id":"101","product_type_count":"many"}`+"\n"+
			`{"external_reference":"F4","product_id":"30001","product_type_id":"102","product_type":"CHILD"}`+"\n"), 0o644))
	journal := filepath.Join(dir, "in.journal")
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"-in", in, "-journal", journal}, &stdout, &stderr, false)
	assert.Equal(t, exitIncomplete, code, stderr.String())
	s := summaryOf(t, stdout.String())
	assert.Equal(t, [4]int{2, 2, 0, 3}, s, "booked, failed, unknown, sends")
	res := readResults(t, in+".results.csv")
	assert.Equal(t, "failed", res["F2"][1])
	assert.Contains(t, res["F2"][2], "422")
	assert.Equal(t, "failed", res["F3"][1])
	assert.Contains(t, res["F3"][2], "product_type_count")
	assert.Equal(t, "booked", res["F4"][1])

	// The journal file says the same to anyone who opens it.
	j, err := batch.OpenSQLite(journal)
	require.NoError(t, err)
	counts, err := j.Counts(t.Context())
	require.NoError(t, err)
	require.NoError(t, j.Close())
	assert.Equal(t, map[batch.State]int{batch.Booked: 2, batch.Failed: 1}, counts, "row errors are not journaled")
}

func TestInterruptedBeforeStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"-in", "sample.csv", "-out", filepath.Join(dir, "r.csv")}, &stdout, &stderr, false)
	assert.Equal(t, exitInterrupted, code)
	assert.Equal(t, [4]int{0, 0, 0, 0}, summaryOf(t, stdout.String()))
	assert.Contains(t, stderr.String(), "run the same command again")
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	badHeader := filepath.Join(dir, "bad.csv")
	require.NoError(t, os.WriteFile(badHeader, []byte("ref,product\nA,1\n"), 0o644))
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no input", nil, "-in is required"},
		{"missing file", []string{"-in", filepath.Join(dir, "nope.csv")}, "no such file"},
		{"bad header", []string{"-in", badHeader}, "unknown column"},
		{"zero concurrency", []string{"-in", "sample.csv", "-concurrency", "0"}, "-concurrency"},
		{"unknown profile", []string{"-in", "sample.csv", "-faults", "stormy", "-out", filepath.Join(dir, "r.csv")}, "stormy"},
		{"stray argument", []string{"-in", "sample.csv", "extra"}, "unexpected arguments"},
		{"zero book timeout", []string{"-in", "sample.csv", "-book-timeout", "0s"}, "-book-timeout"},
		{"negative horizon", []string{"-in", "sample.csv", "-horizon", "-1s"}, "-horizon"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), tt.args, &stdout, &stderr, false)
			assert.Equal(t, exitUsage, code)
			assert.Contains(t, stderr.String(), tt.want)
			assert.Empty(t, stdout.String())
		})
	}
}

// The -base-url and PRIO_* cases change the environment, so they do not
// run in parallel.
func TestBaseURLNeedsCredentials(t *testing.T) {
	t.Setenv("PRIO_CLIENT_ID", "")
	t.Setenv("PRIO_CLIENT_SECRET", "")
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"-in", "sample.csv", "-base-url", "http://127.0.0.1:1/v3.8/distributor"}, &stdout, &stderr, false)
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, stderr.String(), "PRIO_CLIENT_ID")

	t.Setenv("PRIO_CLIENT_ID", "id")
	t.Setenv("PRIO_CLIENT_SECRET", "secret")
	t.Setenv("PRIO_DISTRIBUTOR_ID", "501")
	stderr.Reset()
	code = run(t.Context(), []string{"-in", "sample.csv", "-base-url", "http://127.0.0.1:1/v3.8/distributor", "-faults", "flaky"}, &stdout, &stderr, false)
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, stderr.String(), "embedded sandbox only")

	stderr.Reset()
	code = run(t.Context(), []string{"-in", "sample.csv", "-base-url", "http://127.0.0.1:1/v3.8/distributor", "-cache-lag", "3s"}, &stdout, &stderr, false)
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, stderr.String(), "embedded sandbox only")
}
