package main

import (
	"bufio"
	"bytes"
	"errors"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/priosdk/prio-go/batch"
)

// killSeed is the first seed of the kill test; BATCHBOOKING_KILL_SEED
// replays another series.
func killSeed(t *testing.T) uint64 {
	if s := os.Getenv("BATCHBOOKING_KILL_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		require.NoError(t, err)
		return n
	}
	return 1
}

// assertBookedOnce checks the end state after a series of runs: every row
// of the input booked exactly once on the sandbox, in the results file and
// in the journal.
func assertBookedOnce(t *testing.T, sb *sandboxProcess, in string, rows int) {
	t.Helper()
	st := sb.stats(t)
	assert.Zero(t, st.DuplicateExternalReferences, "duplicate_external_references")
	assert.Equal(t, rows, st.OrdersTotal, "orders_total")
	assert.Equal(t, rows, st.ExternalReferences, "external_references")

	res := readResults(t, in+".results.csv")
	require.Len(t, res, rows)
	orders := map[string]bool{}
	for ref, r := range res {
		assert.Equal(t, "booked", r[1], "%s: %s", ref, r[2])
		orders[r[0]] = true
	}
	assert.Len(t, orders, rows, "distinct order references")

	j, err := batch.OpenSQLite(in + ".journal")
	require.NoError(t, err)
	counts, err := j.Counts(t.Context())
	require.NoError(t, err)
	require.NoError(t, j.Close())
	assert.Equal(t, map[batch.State]int{batch.Booked: rows}, counts)
}

// runToCompletion runs the command until it exits 0 (bounded), as an
// operator would after a crash.
func runToCompletion(t *testing.T, bin string, sb *sandboxProcess, args ...string) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		var stdout, stderr bytes.Buffer
		cmd := exampleCmd(t.Context(), bin, sb, args...)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		if err == nil {
			t.Logf("completion run %d: %s", attempt, strings.TrimSpace(stdout.String()))
			return
		}
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit, "stderr:\n%s", stderr.String())
		require.Equal(t, exitIncomplete, exit.ExitCode(), "stderr:\n%s", stderr.String())
		t.Logf("completion run %d left rows unsettled: %s\n%s", attempt, strings.TrimSpace(stdout.String()), unsettled(in(args)))
		require.Less(t, attempt, 3, "still incomplete after 3 runs:\n%s%s", stdout.String(), stderr.String())
	}
}

// TestKillAndResume kills the command with SIGKILL at random moments while
// it books against a sandbox that deduplicates nothing, injects faults
// (gateway timeouts in front of a slower origin among them) and serves
// order reads from a cache 3 s behind, then runs it to completion, and
// checks that every row was booked exactly once.
func TestKillAndResume(t *testing.T) {
	t.Parallel()
	example, sandboxBin := binaries(t)
	sb := startSandbox(t, sandboxBin, "-idempotency", "none", "-faults", "flaky", "-cache-lag", "3s", "-request-limit", "0")
	const rows = 2000
	in := filepath.Join(t.TempDir(), "orders.csv")
	writeInput(t, in, "KILL", rows)
	// The flaky profile processes a call at most 300 ms after it arrived,
	// so a 3 s horizon is ample; a killed run's rows in flight wait for
	// their 10 s Book deadline plus the horizon.
	args := []string{"-in", in, "-attempt-timeout", "2s", "-rate-limited-delay", "1s", "-rate", "0", "-progress-every", "50ms",
		"-horizon", "3s", "-book-timeout", "10s"}

	base := killSeed(t)
	killed := 0
	start := time.Now()
	for i := range uint64(10) {
		seed := base + i
		rng := rand.New(rand.NewPCG(seed, 0x6b696c6c))
		// Runs die at any moment of their first 2.6 s: while booking, and
		// while the rows the run before left in doubt wait for their
		// horizon.
		delay := 200*time.Millisecond + time.Duration(rng.Int64N(int64(2400*time.Millisecond)))
		var stdout, stderr bytes.Buffer
		cmd := exampleCmd(t.Context(), example, sb, args...)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		require.NoError(t, cmd.Start())
		timer := time.AfterFunc(delay, func() { _ = cmd.Process.Signal(syscall.SIGKILL) })
		err := cmd.Wait()
		timer.Stop()
		var exit *exec.ExitError
		switch {
		case errors.As(err, &exit) && exit.Sys().(syscall.WaitStatus).Signaled():
			killed++
			t.Logf("seed %d: killed after %s; %s", seed, delay, lastProgress(stderr.String()))
		case err == nil || (errors.As(err, &exit) && exit.ExitCode() == exitIncomplete):
			t.Logf("seed %d: finished before the kill at %s: %s", seed, delay, strings.TrimSpace(stdout.String()))
		default:
			t.Fatalf("seed %d: %v\n%s", seed, err, stderr.String())
		}
	}
	assert.GreaterOrEqual(t, killed, 5, "most runs must die mid-way for the test to mean something")

	runToCompletion(t, example, sb, args...)
	assertBookedOnce(t, sb, in, rows)
	st, ops := sb.stats(t), sb.operations(t)
	assert.Zero(t, st.CachedReads, "no look-up may read the lagging cache")
	t.Logf("all runs: rows=%d kills=%d orders=%d duplicates=%d sends=%d look-ups=%d faults=%d elapsed=%s",
		rows, killed, st.OrdersTotal, st.DuplicateExternalReferences, ops["createOrder"], ops["getOrders"],
		st.FaultsInjected, time.Since(start).Round(100*time.Millisecond))
}

// in returns the -in argument.
func in(args []string) string {
	for i, a := range args[:len(args)-1] {
		if a == "-in" {
			return args[i+1]
		}
	}
	return ""
}

// unsettled lists the rows of the results file that are not booked.
func unsettled(input string) string {
	f, err := os.Open(input + ".results.csv")
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var b strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := sc.Text(); !strings.Contains(line, ",booked,") {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

var progressRE = regexp.MustCompile(`(?m)^progress: (\d+)/\d+ rows.*$`)

func lastProgress(stderr string) string {
	m := progressRE.FindAllString(stderr, -1)
	if len(m) == 0 {
		return "no progress line yet"
	}
	return m[len(m)-1]
}

// TestInterruptThenResume sends SIGINT while creates are in flight: the
// command must let them finish, record every row, print the summary, exit
// 130, and a second run must book the rest exactly once.
func TestInterruptThenResume(t *testing.T) {
	t.Parallel()
	example, sandboxBin := binaries(t)
	// Every create is held 300ms, so rows are in flight when SIGINT comes.
	slow := `{"name":"slow","delay":"300ms","probabilities":{"createOrder":{"delay":1}}}`
	sb := startSandbox(t, sandboxBin, "-idempotency", "none", "-faults", slow, "-request-limit", "0")
	const rows = 200
	in := filepath.Join(t.TempDir(), "orders.csv")
	writeInput(t, in, "INT", rows)
	args := []string{"-in", in, "-concurrency", "4", "-rate", "0", "-progress-every", "50ms"}

	var stdout bytes.Buffer
	cmd := exampleCmd(t.Context(), example, sb, args...)
	cmd.Stdout = &stdout
	stderrPipe, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	var stderr strings.Builder
	sc := bufio.NewScanner(stderrPipe)
	sent := false
	for sc.Scan() {
		line := sc.Text()
		stderr.WriteString(line + "\n")
		if m := progressRE.FindStringSubmatch(line); m != nil && !sent {
			if n, _ := strconv.Atoi(m[1]); n >= 4 {
				require.NoError(t, cmd.Process.Signal(os.Interrupt))
				sent = true
			}
		}
	}
	err = cmd.Wait()
	require.True(t, sent, "no progress seen:\n%s", stderr.String())
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	assert.Equal(t, exitInterrupted, exit.ExitCode(), stderr.String())
	assert.Contains(t, stderr.String(), "run the same command again")

	s := summaryOf(t, stdout.String())
	assert.GreaterOrEqual(t, s[0], 4, "booked")
	assert.Less(t, s[0], rows, "booked: intake must have stopped")
	assert.Zero(t, s[2], "unknown: rows in flight finish within the drain time")
	assert.Equal(t, s[0], sb.stats(t).OrdersTotal)

	j, err := batch.OpenSQLite(in + ".journal")
	require.NoError(t, err)
	counts, err := j.Counts(t.Context())
	require.NoError(t, err)
	require.NoError(t, j.Close())
	assert.Equal(t, s[0], counts[batch.Booked])
	assert.Zero(t, counts[batch.Sending], "no row is left sending")
	assert.Zero(t, counts[batch.Unknown])

	// The rest, without the slow faults.
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPut, sb.admin+"/_sandbox/faults", strings.NewReader(`{"name":"none"}`))
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Less(t, resp.StatusCode, 300)
	runToCompletion(t, example, sb, args...)
	assertBookedOnce(t, sb, in, rows)
}
