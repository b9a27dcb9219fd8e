package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/priosdk/prio-go/priotest"
)

// TestMain fails the package's tests if any goroutine outlives them. A
// test binary started as a sandbox child (procSandbox) serves its sandbox
// instead.
func TestMain(m *testing.M) {
	if isSandboxChild() {
		if err := serveSandbox(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "sandbox child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// at builds completions from a pattern: '+' a success, '-' a failure,
// one millisecond apart starting at base.
func at(base time.Time, pattern string) []completion {
	out := make([]completion, 0, len(pattern))
	for i, c := range pattern {
		out = append(out, completion{end: base.Add(time.Duration(i) * time.Millisecond), ok: c == '+'})
	}
	return out
}

func TestRecoveryTime(t *testing.T) {
	t.Parallel()
	off := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ms := time.Millisecond
	tests := []struct {
		name    string
		before  string // completions ending before off
		after   string // completions from off on
		window  int
		share   float64
		want    time.Duration
		wantOK  bool
		comment string
	}{
		{name: "all succeed", after: "++++++", window: 3, share: 0.99, want: 2 * ms, wantOK: true,
			comment: "the first full window ends at the third call"},
		{name: "failures then successes", after: "--+++++", window: 3, share: 0.99, want: 4 * ms, wantOK: true},
		{name: "one failure allowed by the share", after: "+-++++", window: 4, share: 0.75, want: 3 * ms, wantOK: true},
		{name: "two failures in a window are not", after: "+--+++++", window: 4, share: 0.75, want: 5 * ms, wantOK: true},
		{name: "failures before the outage ended do not count", before: "----", after: "+++", window: 3, share: 0.99, want: 2 * ms, wantOK: true},
		{name: "too few calls after the outage", before: "++++", after: "++", window: 3, share: 0.99},
		{name: "a failure at the end undoes recovery", after: "+++++-", window: 3, share: 0.99},
		{name: "nothing completed", window: 3, share: 0.99},
		{name: "a zero window never recovers", after: "+++", window: 0, share: 0.99},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			done := append(at(off.Add(-time.Second), tt.before), at(off, tt.after)...)
			got, ok := recoveryTime(done, off, tt.window, tt.share)
			require.Equal(t, tt.wantOK, ok, tt.comment)
			if ok {
				assert.Equal(t, tt.want, got, tt.comment)
			}
		})
	}
}

func TestSelectPhases(t *testing.T) {
	t.Parallel()
	all, err := selectPhases("")
	require.NoError(t, err)
	assert.Len(t, all, len(phases))
	some, err := selectPhases("outage, batch")
	require.NoError(t, err)
	assert.Equal(t, map[string]bool{"outage": true, "batch": true}, some)
	_, err = selectPhases("overhead,warp")
	assert.ErrorContains(t, err, `unknown phase "warp"`)
}

func TestRunRejectsBadArguments(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"-only", "nothing"}, {"extra"}, {"-no-such-flag"},
		{"-aa", "-only", "overhead"}, {"-aa", "-only", "throughput,outage"}, {"-sandbox", "nowhere"}} {
		err := run(t.Context(), args, io.Discard, io.Discard)
		assert.Error(t, err, "%q", args)
	}
	assert.ErrorIs(t, run(t.Context(), []string{"-h"}, io.Discard, io.Discard), flag.ErrHelp)
}

// TestClientsPostTheSameBytes checks the premise of the comparison: for
// the same external reference, the baseline, the naive loop and
// go-retryablehttp send exactly the body the SDK sends, with the same
// idempotency key handling on the server (a key on every request).
func TestClientsPostTheSameBytes(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	const ref = "same-bytes-1"
	bodyFor := func(build func(s *priotest.Server) (creator, func())) priotest.RecordedRequest {
		s := priotest.NewServer(t, priotest.WithRequestLimit(0))
		c, closeClient := build(s)
		defer closeClient()
		require.NoError(t, c.create(ctx, ref))
		var creates []priotest.RecordedRequest
		for _, r := range s.Requests() {
			if r.Operation == "createOrder" {
				creates = append(creates, r)
			}
		}
		require.Len(t, creates, 1)
		assert.Equal(t, 1, s.OrdersFor(ref))
		return creates[0]
	}
	sdk := bodyFor(func(s *priotest.Server) (creator, func()) {
		c, err := newSDKCreator(s, 4)
		require.NoError(t, err)
		return c, func() {}
	})
	base := bodyFor(func(s *priotest.Server) (creator, func()) {
		c, err := newBaselineCreator(ctx, s, 4)
		require.NoError(t, err)
		return c, c.close
	})
	naive := bodyFor(func(s *priotest.Server) (creator, func()) {
		c, err := newNaiveCreator(ctx, s, 3, time.Millisecond)
		require.NoError(t, err)
		return c, c.close
	})
	retry := bodyFor(func(s *priotest.Server) (creator, func()) {
		c, err := newRetryableCreator(ctx, s)
		require.NoError(t, err)
		return c, c.close
	})
	for name, r := range map[string]priotest.RecordedRequest{"baseline": base, "naive": naive, "retryablehttp": retry} {
		assert.Equal(t, sdk.BodySHA256, r.BodySHA256, "%s body", name)
		assert.NotEmpty(t, r.IdempotencyKey, "%s key", name)
		assert.Equal(t, 201, r.Status, "%s status", name)
	}
	assert.Equal(t, 201, sdk.Status)
}

// tinyConfig runs every phase in a few seconds: it proves the program
// produces every figure, not how fast anything is.
func tinyConfig() config {
	c := quickConfig()
	c.mode = "test"
	c.overheadRounds, c.overheadRound, c.overheadWarmup = 1, 50*time.Millisecond, 3
	c.levels, c.throughputRounds, c.throughputRound = []int{1, 4}, 2, 100*time.Millisecond
	c.outage, c.outageCallers = 300*time.Millisecond, 4
	c.recoveryWindow, c.recoveryHold, c.recoveryCap = 10, 100*time.Millisecond, 5*time.Second
	c.naiveSleep = 10 * time.Millisecond
	c.batchRows = 20
	c.phases, _ = selectPhases("")
	return c
}

// TestNaiveOutageAmplification checks the outage accounting against a
// client whose behaviour is known exactly: the naive loop sends at most
// 1+retries times per call, and every call started during the outage
// that ends within it sends exactly that many.
func TestNaiveOutageAmplification(t *testing.T) {
	t.Parallel()
	cfg := tinyConfig()
	var naive outageClient
	for _, oc := range outageClients(cfg) {
		if oc.name == nameNaive {
			naive = oc
		}
	}
	require.NotNil(t, naive.make)
	r, err := runOutage(t.Context(), cfg, naive)
	require.NoError(t, err)
	require.Positive(t, r.LogicalCalls)
	maxPerCall := float64(cfg.naiveRetries + 1)
	assert.LessOrEqual(t, r.SendsPerCall, maxPerCall)
	// At most one call per caller is cut by the end of the outage.
	assert.GreaterOrEqual(t, r.Sends, (r.LogicalCalls-cfg.outageCallers)*(cfg.naiveRetries+1))
	assert.Equal(t, map[string]int{"createOrder": r.Sends}, r.SendsByOperation)
	assert.True(t, r.SendsByOperationComplete)
	assert.Nil(t, r.GoalMet, "the goal applies to prio-go only")
	assert.Positive(t, r.FailedDuringOutage)
	require.True(t, r.Recovered, "the naive loop recovers at once")
	assert.GreaterOrEqual(t, r.CompletedAfter, cfg.recoveryWindow)
}

// TestEveryFigure runs every phase with tiny sizes and checks that the
// JSON report and the table carry every figure the issue asks for.
func TestEveryFigure(t *testing.T) {
	t.Parallel()
	cfg := tinyConfig()
	// The overhead and throughput phases with each sandbox in a child
	// process; the default, in this process, is what the other tests run.
	cfg.sandbox = sandboxProcess
	rep, err := measure(t.Context(), cfg)
	require.NoError(t, err)

	var js bytes.Buffer
	enc := json.NewEncoder(&js)
	require.NoError(t, enc.Encode(rep))
	var doc map[string]any
	require.NoError(t, json.Unmarshal(js.Bytes(), &doc))
	for _, k := range []string{"date", "cpu_model", "num_cpu", "overhead", "throughput", "outage", "batch"} {
		assert.Contains(t, doc, k)
	}

	assert.Equal(t, sandboxProcess, rep.Sandbox)
	assert.Contains(t, rep.Setup[0], "child process")
	assert.Equal(t, sandboxInProc, quickConfig().sandbox, "the quick and full runs keep the sandboxes in this process")
	assert.Equal(t, sandboxInProc, fullConfig().sandbox)

	o := rep.Overhead
	require.NotNil(t, o)
	for _, st := range []OpStats{o.Baseline, o.SDK} {
		assert.Positive(t, st.Ops)
		assert.Positive(t, st.NsPerOp)
		assert.Positive(t, st.AllocsPerOp)
		assert.Positive(t, st.BytesPerOp)
	}
	assert.Positive(t, o.TimeRatio)
	assert.Positive(t, o.AllocsRatio)
	assert.Len(t, o.TimeRatioRounds, o.Rounds, "each round's own ratio")
	// The clients took turns: each made a whole number of turns.
	assert.Zero(t, o.Baseline.Ops%o.SliceCalls)
	assert.Zero(t, o.SDK.Ops%o.SliceCalls)
	assert.Equal(t, o.TimeRatio <= o.TimeGoal, o.TimeGoalMet)
	require.NotNil(t, o.Telemetry, "the second row: telemetry on")
	assert.Positive(t, o.Telemetry.SDK.Ops)
	assert.Positive(t, o.Telemetry.TimeRatio)
	assert.Positive(t, o.Telemetry.SDK.AllocsPerOp)
	assert.Equal(t, o.Telemetry.TimeRatio <= o.Telemetry.TimeGoal, o.Telemetry.TimeGoalMet)
	require.NotNil(t, o.TelemetryControl, "the control: OpenTelemetry's own cost")
	assert.Positive(t, o.TelemetryControl.Client.Ops)
	assert.Positive(t, o.TelemetryControl.TimeRatio)
	assert.Positive(t, o.TelemetryControl.Client.AllocsPerOp)
	// The telemetry row against the control: each round's ratio is the two
	// clients' times in that round, and the figure is their median.
	require.Len(t, o.Telemetry.OverControlRounds, o.Rounds)
	for i, r := range o.Telemetry.OverControlRounds {
		num, den := o.Telemetry.TimeRatioRounds[i], o.TelemetryControl.TimeRatioRounds[i]
		assert.InDelta(t, num/den, r, quotientSlack(num, den, 0.001), "round %d", i)
	}
	require.Equal(t, 1, o.Rounds, "this configuration runs one round")
	assert.InDelta(t, o.Telemetry.OverControlRounds[0], o.Telemetry.OverControl, 0.0005, "the median of one round is that round")

	require.Len(t, rep.Throughput, 2)
	for _, tp := range rep.Throughput {
		assert.Positive(t, tp.BaselinePerSec)
		assert.Positive(t, tp.SDKPerSec)
		assert.Zero(t, tp.BaselineFailures+tp.SDKFailures)
		// Each round's rate is its calls over its time, and its time is at
		// least the round's length; the rates are rounded to a tenth.
		assert.Positive(t, tp.BaselineCalls)
		assert.Positive(t, tp.SDKCalls)
		assert.GreaterOrEqual(t, float64(tp.BaselineCalls), 0.999*(tp.BaselineRounds[0]+tp.BaselineRounds[1]-0.1)*tp.RoundSeconds)
		assert.GreaterOrEqual(t, float64(tp.SDKCalls), 0.999*(tp.SDKRounds[0]+tp.SDKRounds[1]-0.1)*tp.RoundSeconds)
		assert.Equal(t, seconds(throughputTurn), tp.TurnSeconds)
		require.Len(t, tp.RatioRounds, 2, "each round's own ratio")
		for i, r := range tp.RatioRounds {
			num, den := tp.SDKRounds[i], tp.BaselineRounds[i]
			assert.InDelta(t, num/den, r, quotientSlack(num, den, 0.1), "round %d", i)
		}
		assert.InDelta(t, (tp.RatioRounds[0]+tp.RatioRounds[1])/2, tp.Ratio, 0.0011, "the median of the rounds' ratios")
	}

	require.NotNil(t, rep.Outage)
	var names []string
	for _, c := range rep.Outage.Clients {
		names = append(names, c.Client)
		assert.Positive(t, c.LogicalCalls, c.Client)
		assert.Positive(t, c.Sends, c.Client)
		assert.GreaterOrEqual(t, c.SendsPerCall, 0.5, c.Client)
	}
	assert.Equal(t, []string{nameSDK, nameRetryable, nameNaive}, names)
	require.NotNil(t, rep.Outage.Clients[0].GoalMet)

	require.NotNil(t, rep.Batch)
	require.Len(t, rep.Batch.Results, 2)
	for _, b := range rep.Batch.Results {
		assert.Equal(t, 20, b.Booked, b.Journal)
		assert.Positive(t, b.RowsPerSec, b.Journal)
	}
	assert.Positive(t, rep.Batch.JournalPrice)

	var table strings.Builder
	require.NoError(t, writeTable(&table, rep))
	for _, want := range []string{"1. Per-call overhead", "prio-go + otel", "baseline + otel", "2. Throughput", "3. Retry amplification", "4. Recovery", "5. Batch",
		nameSDK, nameBaseline, nameRetryable, nameNaive, "sqlite", "memory", "prio-go / baseline", processWide(sandboxProcess)} {
		assert.Contains(t, table.String(), want)
	}
}

// quotientSlack is how far num/den may lie from a reported ratio when num
// and den are figures rounded to step and the ratio is the quotient of the
// unrounded figures rounded to three places: the slower the machine, the
// smaller the rates and the wider the gap their rounding leaves.
func quotientSlack(num, den, step float64) float64 {
	h := step / 2
	return (num+h)/(den-h) - num/den + 0.0005 + 1e-9
}

func TestQuotientSlack(t *testing.T) {
	t.Parallel()
	// Rates of one decimal as low as a loaded machine gives, 6.7 and 5.2
	// per second, and 1.291, the ratio of unrounded rates such as 6.72 and
	// 5.205 that round to them.
	assert.InDelta(t, 6.7/5.2, 1.291, quotientSlack(6.7, 5.2, 0.1))
	assert.Greater(t, math.Abs(6.7/5.2-1.291), 0.002, "a fixed slack of 0.002 is too narrow here")
	// The widest gap the rounding allows, the numerator at the top of its
	// tenth and the denominator at the bottom of its, is inside the slack.
	s, b := 6.75-1e-9, 5.15+1e-9
	require.Equal(t, []float64{6.7, 5.2}, []float64{round1(s), round1(b)})
	assert.InDelta(t, round1(s)/round1(b), ratio(s, b), quotientSlack(round1(s), round1(b), 0.1))
	// Fast rates leave the slack near the ratio's own rounding.
	assert.Less(t, quotientSlack(5000, 5200, 0.1), 0.0006)
}

// TestRunPrintsJSON drives the command line for one cheap phase.
func TestRunPrintsJSON(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	require.NoError(t, run(ctx, []string{"-quick", "-json", "-q", "-only", "batch"}, &out, io.Discard))
	var rep Report
	require.NoError(t, json.Unmarshal(out.Bytes(), &rep))
	assert.Equal(t, "quick", rep.Mode)
	require.NotNil(t, rep.Batch)
	assert.Nil(t, rep.Overhead)
	assert.Nil(t, rep.Outage)
}

// TestTurnSequenceIsBalanced checks the overhead phase's order of turns:
// over one cycle, taken round and round, every client follows every other
// one exactly once and never follows itself.
func TestTurnSequenceIsBalanced(t *testing.T) {
	t.Parallel()
	n := len(overheadKinds)
	follows := map[[2]int]int{}
	for k := range turnSequence {
		prev, next := turnSequence[k], turnSequence[(k+1)%len(turnSequence)]
		follows[[2]int{prev, next}]++
	}
	for a := range n {
		for b := range n {
			want := 1
			if a == b {
				want = 0
			}
			assert.Equal(t, want, follows[[2]int{a, b}], "%s after %s", overheadKinds[b], overheadKinds[a])
		}
	}
}

// TestAAComparesTwoBaselines checks -aa: the throughput phase alone, its
// second client a baseline of its own in prio-go's place, and no goal
// judged on ratios that can only show the method's spread.
func TestAAComparesTwoBaselines(t *testing.T) {
	t.Parallel()
	c, closeFn, err := openClient(t.Context(), kindBaselineTwin, sandboxInProc)
	require.NoError(t, err)
	closeFn()
	assert.IsType(t, &baselineCreator{}, c, "the second client is a baseline")
	assert.NotEqual(t, kindBaseline, kindBaselineTwin, "the two carry profile labels of their own")

	cfg := tinyConfig()
	cfg.aa = true
	cfg.phases, _ = selectPhases("throughput")
	rep, err := measure(t.Context(), cfg)
	require.NoError(t, err)
	assert.Nil(t, rep.Overhead)
	require.Len(t, rep.Throughput, len(cfg.levels))
	for _, tp := range rep.Throughput {
		assert.Equal(t, nameBaselineTwin, tp.Second)
		assert.Positive(t, tp.BaselinePerSec)
		assert.Positive(t, tp.SDKPerSec)
		assert.Positive(t, tp.Ratio)
		assert.Zero(t, tp.Goal)
		assert.False(t, tp.GoalMet, "no goal is judged")
	}
	assert.Contains(t, strings.Join(rep.Setup, "\n"), nameBaselineTwin)
	var table strings.Builder
	require.NoError(t, writeTable(&table, rep))
	_, section, found := strings.Cut(table.String(), "2. Throughput")
	require.True(t, found)
	assert.Contains(t, section, "A/A (-aa): "+nameBaselineTwin)
	assert.NotContains(t, section, "met", "no goal is judged: neither met nor NOT met")

	// Without -aa the second client is prio-go, judged against the goal.
	cfg.aa = false
	tp, err := throughputLevel(t.Context(), cfg, 1)
	require.NoError(t, err)
	assert.Equal(t, nameSDK, tp.Second)
	assert.Equal(t, goalThroughputRatio, tp.Goal)
	assert.Equal(t, tp.Ratio >= goalThroughputRatio, tp.GoalMet)
}

// TestThroughputTakesTurns: a round of the throughput phase gives both
// clients turns until each has spent the round's time, and counts every
// call made.
func TestThroughputTakesTurns(t *testing.T) {
	t.Parallel()
	cfg := tinyConfig()
	cfg.throughputRound = 4 * throughputTurn
	st, err := throughputRound(t.Context(), cfg, 2, 0)
	require.NoError(t, err)
	require.Len(t, st, len(throughputKinds))
	for i, s := range st {
		assert.GreaterOrEqual(t, s.elapsed, cfg.throughputRound, "%s spent the round", throughputKinds[i])
		assert.Less(t, s.elapsed, cfg.throughputRound+2*throughputTurn, "%s: no turn past the round", throughputKinds[i])
		assert.Positive(t, s.ok)
		assert.Zero(t, s.failed)
		assert.Equal(t, s.ok+s.failed, s.started)
	}
}

// TestProfileSplitsByClient runs the overhead phase with -cpuprofile and
// checks that the profile's samples are labelled with the client they
// worked for: the label key and every client's name are in the profile's
// string table (field 6 of the gzipped protocol buffer), which holds a
// label's key and value only when some sample carries that label.
func TestProfileSplitsByClient(t *testing.T) {
	t.Parallel()
	if err := pprof.StartCPUProfile(io.Discard); err != nil {
		t.Skip("the CPU profiler is taken (go test -cpuprofile?):", err)
	}
	pprof.StopCPUProfile()
	cfg := tinyConfig()
	cfg.phases = map[string]bool{"overhead": true}
	// Half a second of turns a client: tens of samples each even on a
	// loaded machine.
	cfg.overheadRound = 500 * time.Millisecond
	cfg.cpuProfile = filepath.Join(t.TempDir(), "cpu.out")
	_, err := measure(t.Context(), cfg)
	require.NoError(t, err)

	f, err := os.Open(cfg.cpuProfile)
	require.NoError(t, err)
	defer f.Close()
	zr, err := gzip.NewReader(f)
	require.NoError(t, err)
	raw, err := io.ReadAll(zr)
	require.NoError(t, err)
	entry := func(s string) []byte { return append([]byte{6<<3 | 2, byte(len(s))}, s...) }
	assert.True(t, bytes.Contains(raw, entry(profileLabel)), "label key %q", profileLabel)
	for _, kind := range overheadKinds {
		assert.True(t, bytes.Contains(raw, entry(string(kind))), "no sample labelled %q", kind)
	}
}

// TestAsClientLabels checks what asClient gives the work it runs, and that
// openClients opens and warms each client as that client.
func TestAsClientLabels(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	err := asClient(ctx, kindSDK, func(ctx context.Context) error {
		v, ok := pprof.Label(ctx, profileLabel)
		assert.True(t, ok)
		assert.Equal(t, string(kindSDK), v)
		return errors.New("from f")
	})
	require.EqualError(t, err, "from f", "asClient returns f's error")
	_, ok := pprof.Label(ctx, profileLabel)
	assert.False(t, ok, "the caller's context is unchanged")

	var warmed []string
	_, closeAll, err := openClients(ctx, []clientKind{kindBaseline, kindSDK}, sandboxInProc, func(ctx context.Context, c creator) error {
		v, _ := pprof.Label(ctx, profileLabel)
		warmed = append(warmed, v)
		return c.create(ctx, nextRef("label"))
	})
	require.NoError(t, err)
	closeAll()
	assert.Equal(t, []string{string(kindBaseline), string(kindSDK)}, warmed)
}
