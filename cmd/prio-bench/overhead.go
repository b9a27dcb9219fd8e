package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Goals from the issue.
const (
	goalTimeRatio       = 1.05
	goalAllocsRatio     = 1.3
	goalThroughputRatio = 0.95
	goalAmplification   = 1.1
	// With a real OpenTelemetry tracer and meter on.
	goalOTelTimeRatio   = 1.10
	goalOTelAllocsRatio = 1.3
)

// OpStats is one client's cost per Create Order call.
type OpStats struct {
	Ops     int     `json:"ops"`
	NsPerOp float64 `json:"ns_per_op"`
	// CPUNsPerOp is this process's CPU time per call: the client's, and
	// the sandbox's too when it runs in this process (-sandbox inproc).
	// Other processes on the machine disturb it less than the wall time.
	CPUNsPerOp  float64 `json:"cpu_ns_per_op"`
	AllocsPerOp float64 `json:"allocs_per_op"`
	BytesPerOp  float64 `json:"bytes_per_op"`
}

// Overhead compares sequential Create Order calls through the SDK with the
// hand-written baseline, the clients taking turns of SliceCalls calls.
// Per-client figures are medians over the rounds; a ratio is the median of
// the rounds' ratios, each taken between turns that ran side by side. Allocation
// counts are process-wide: with the sandbox in this process (-sandbox
// inproc) both include the server's own allocations for the request. The
// Extra fields are the SDK's cost above the baseline, which the server's
// share does not dilute.
type Overhead struct {
	Rounds           int       `json:"rounds"`
	SliceCalls       int       `json:"slice_calls"`
	RoundSeconds     float64   `json:"round_seconds"`
	Baseline         OpStats   `json:"baseline"`
	SDK              OpStats   `json:"sdk"`
	TimeRatio        float64   `json:"time_ratio"`
	CPURatio         float64   `json:"cpu_ratio"`
	AllocsRatio      float64   `json:"allocs_ratio"`
	BytesRatio       float64   `json:"bytes_ratio"`
	ExtraNsPerOp     float64   `json:"extra_ns_per_op"`
	ExtraAllocsPerOp float64   `json:"extra_allocs_per_op"`
	ExtraBytesPerOp  float64   `json:"extra_bytes_per_op"`
	TimeGoal         float64   `json:"time_goal"`
	AllocsGoal       float64   `json:"allocs_goal"`
	TimeGoalMet      bool      `json:"time_goal_met"`
	AllocsGoalMet    bool      `json:"allocs_goal_met"`
	BaselineNsRounds []float64 `json:"baseline_ns_per_op_rounds"`
	SDKNsRounds      []float64 `json:"sdk_ns_per_op_rounds"`
	TimeRatioRounds  []float64 `json:"time_ratio_rounds"`
	// Telemetry is the second row: the SDK with a real OpenTelemetry
	// tracer and meter, in the same rounds.
	Telemetry *OTelOverhead `json:"telemetry,omitempty"`
	// TelemetryControl is the hand-written call doing the same
	// OpenTelemetry work by hand (otelBaselineCreator), in the same
	// rounds: OpenTelemetry's own price, which the second row pays too.
	// It has no goal.
	TelemetryControl *ControlOverhead `json:"telemetry_control,omitempty"`
}

// ControlOverhead is a control client's figures against the baseline.
type ControlOverhead struct {
	Client          OpStats   `json:"client"`
	TimeRatio       float64   `json:"time_ratio"`
	CPURatio        float64   `json:"cpu_ratio"`
	AllocsRatio     float64   `json:"allocs_ratio"`
	ExtraNsPerOp    float64   `json:"extra_ns_per_op"`
	TimeRatioRounds []float64 `json:"time_ratio_rounds"`
}

// OTelOverhead is the SDK with tracing and metrics on (every span sampled
// and batched to an exporter that drops them, every metric aggregated),
// against the same baseline rounds.
type OTelOverhead struct {
	SDK              OpStats   `json:"sdk"`
	TimeRatio        float64   `json:"time_ratio"`
	CPURatio         float64   `json:"cpu_ratio"`
	AllocsRatio      float64   `json:"allocs_ratio"`
	BytesRatio       float64   `json:"bytes_ratio"`
	ExtraNsPerOp     float64   `json:"extra_ns_per_op"`
	ExtraAllocsPerOp float64   `json:"extra_allocs_per_op"`
	TimeGoal         float64   `json:"time_goal"`
	AllocsGoal       float64   `json:"allocs_goal"`
	TimeGoalMet      bool      `json:"time_goal_met"`
	AllocsGoalMet    bool      `json:"allocs_goal_met"`
	NsRounds         []float64 `json:"ns_per_op_rounds"`
	TimeRatioRounds  []float64 `json:"time_ratio_rounds"`
	// OverControl is this row's time against the control's
	// (TelemetryControl), the median of the rounds' ratios: the SDK's own
	// cost when both sides pay OpenTelemetry's price. It has no goal; the
	// goal is TimeRatio, against the baseline without OpenTelemetry.
	OverControl       float64   `json:"time_ratio_over_control,omitempty"`
	OverControlRounds []float64 `json:"time_ratio_over_control_rounds,omitempty"`
}

// maxCallsPerServer bounds the Create calls one sandbox serves, warm-up
// included. The sandbox's state (orders, idempotency keys) grows with every
// call; each round gets a server of its own and stops at this size, so
// rounds compare like with like.
const maxCallsPerServer = 9000

// clientKind is one of the two clients compared for overhead and
// throughput.
type clientKind string

const (
	kindBaseline clientKind = nameBaseline
	// kindBaselineTwin is a second baseline, the throughput phase's
	// second client under -aa (throughput only).
	kindBaselineTwin clientKind = nameBaselineTwin
	kindSDK          clientKind = nameSDK
	kindSDKOTel      clientKind = nameSDKOTel
	// kindBaselineOTel is the overhead phase's control (overhead only).
	kindBaselineOTel clientKind = nameBaselineOTel
)

// openClient starts a sandbox where says (openSandbox) and builds a client
// of kind for it; close tears both down.
func openClient(ctx context.Context, kind clientKind, where string) (c creator, closeFn func(), err error) {
	s, err := openSandbox(ctx, where)
	if err != nil {
		return nil, nil, err
	}
	switch kind {
	case kindSDK:
		sc, err := newSDKCreator(s, 64)
		if err != nil {
			s.Close()
			return nil, nil, err
		}
		return sc, s.Close, nil
	case kindBaselineOTel:
		oc, err := newOTelBaselineCreator(ctx, s, 64)
		if err != nil {
			s.Close()
			return nil, nil, err
		}
		return oc, func() { _ = oc.close(); s.Close() }, nil
	case kindSDKOTel:
		oc, err := newOTelCreator(s, 64)
		if err != nil {
			s.Close()
			return nil, nil, err
		}
		return oc, func() { _ = oc.close(); s.Close() }, nil
	default: // kindBaseline, kindBaselineTwin
		bc, err := newBaselineCreator(ctx, s, 64)
		if err != nil {
			s.Close()
			return nil, nil, err
		}
		return bc, func() { bc.close(); s.Close() }, nil
	}
}

// overheadKinds are the clients of the overhead phase.
var overheadKinds = []clientKind{kindBaseline, kindSDK, kindSDKOTel, kindBaselineOTel}

// sliceCalls is how many sequential calls one client makes before the
// next one takes its turn: about five milliseconds. The speed of a shared
// virtual machine moves by a fifth within a second; taking turns this
// often lets that drift fall on every client alike, where whole rounds of
// a quarter second each saw one client run on a faster machine than the
// other.
const sliceCalls = 16

// measureOverhead runs rounds in which the clients, each on a fresh
// sandbox of its own and warmed up, take turns of sliceCalls sequential
// calls until each has spent cfg.overheadRound calling, in the order of
// turnSequence. A ratio is the median over the rounds of that round's
// ratio; the per-client figures are medians over the rounds.
func measureOverhead(ctx context.Context, cfg config) (*Overhead, error) {
	rounds := map[clientKind][]OpStats{}
	for r := range cfg.overheadRounds {
		st, err := overheadRound(ctx, cfg, r)
		if err != nil {
			return nil, err
		}
		for k, s := range st {
			rounds[k] = append(rounds[k], s)
		}
	}
	bRounds, sRounds := rounds[kindBaseline], rounds[kindSDK]
	o := &Overhead{
		Rounds:       cfg.overheadRounds,
		RoundSeconds: seconds(cfg.overheadRound),
		SliceCalls:   sliceCalls,
		Baseline:     medianStats(bRounds),
		SDK:          medianStats(sRounds),
		TimeGoal:     goalTimeRatio,
		AllocsGoal:   goalAllocsRatio,
	}
	for i := range bRounds {
		o.BaselineNsRounds = append(o.BaselineNsRounds, float64(int64(bRounds[i].NsPerOp+0.5)))
		o.SDKNsRounds = append(o.SDKNsRounds, float64(int64(sRounds[i].NsPerOp+0.5)))
		o.TimeRatioRounds = append(o.TimeRatioRounds, ratio(sRounds[i].NsPerOp, bRounds[i].NsPerOp))
	}
	o.TimeRatio = medianRatio(sRounds, bRounds, func(s OpStats) float64 { return s.NsPerOp })
	o.CPURatio = medianRatio(sRounds, bRounds, func(s OpStats) float64 { return s.CPUNsPerOp })
	o.AllocsRatio = medianRatio(sRounds, bRounds, func(s OpStats) float64 { return s.AllocsPerOp })
	o.BytesRatio = medianRatio(sRounds, bRounds, func(s OpStats) float64 { return s.BytesPerOp })
	o.ExtraNsPerOp = round1(o.SDK.NsPerOp - o.Baseline.NsPerOp)
	o.ExtraAllocsPerOp = round1(o.SDK.AllocsPerOp - o.Baseline.AllocsPerOp)
	o.ExtraBytesPerOp = round1(o.SDK.BytesPerOp - o.Baseline.BytesPerOp)
	o.TimeGoalMet = o.TimeRatio <= goalTimeRatio
	o.AllocsGoalMet = o.AllocsRatio <= goalAllocsRatio
	if tRounds := rounds[kindSDKOTel]; len(tRounds) > 0 {
		t := &OTelOverhead{SDK: medianStats(tRounds), TimeGoal: goalOTelTimeRatio, AllocsGoal: goalOTelAllocsRatio}
		for i, st := range tRounds {
			t.NsRounds = append(t.NsRounds, float64(int64(st.NsPerOp+0.5)))
			t.TimeRatioRounds = append(t.TimeRatioRounds, ratio(st.NsPerOp, bRounds[i].NsPerOp))
		}
		t.TimeRatio = medianRatio(tRounds, bRounds, func(s OpStats) float64 { return s.NsPerOp })
		t.CPURatio = medianRatio(tRounds, bRounds, func(s OpStats) float64 { return s.CPUNsPerOp })
		t.AllocsRatio = medianRatio(tRounds, bRounds, func(s OpStats) float64 { return s.AllocsPerOp })
		t.BytesRatio = medianRatio(tRounds, bRounds, func(s OpStats) float64 { return s.BytesPerOp })
		t.ExtraNsPerOp = round1(t.SDK.NsPerOp - o.Baseline.NsPerOp)
		t.ExtraAllocsPerOp = round1(t.SDK.AllocsPerOp - o.Baseline.AllocsPerOp)
		t.TimeGoalMet = t.TimeRatio <= goalOTelTimeRatio
		t.AllocsGoalMet = t.AllocsRatio <= goalOTelAllocsRatio
		o.Telemetry = t
	}
	if cRounds := rounds[kindBaselineOTel]; len(cRounds) > 0 {
		c := &ControlOverhead{Client: medianStats(cRounds)}
		for i, st := range cRounds {
			c.TimeRatioRounds = append(c.TimeRatioRounds, ratio(st.NsPerOp, bRounds[i].NsPerOp))
		}
		c.TimeRatio = medianRatio(cRounds, bRounds, func(s OpStats) float64 { return s.NsPerOp })
		c.CPURatio = medianRatio(cRounds, bRounds, func(s OpStats) float64 { return s.CPUNsPerOp })
		c.AllocsRatio = medianRatio(cRounds, bRounds, func(s OpStats) float64 { return s.AllocsPerOp })
		c.ExtraNsPerOp = round1(c.Client.NsPerOp - o.Baseline.NsPerOp)
		o.TelemetryControl = c
		if t := o.Telemetry; t != nil {
			tRounds := rounds[kindSDKOTel]
			for i := range tRounds {
				t.OverControlRounds = append(t.OverControlRounds, ratio(tRounds[i].NsPerOp, cRounds[i].NsPerOp))
			}
			t.OverControl = medianRatio(tRounds, cRounds, func(s OpStats) float64 { return s.NsPerOp })
		}
	}
	return o, nil
}

// turnSequence is the order of the turns, over and over: each of the four
// clients of overheadKinds follows each other one exactly once a cycle and
// never itself. Which client's turn comes before matters: a turn that follows a
// turn of much the same code (the SDK with telemetry after the SDK
// without, or a client after itself) finds that code in the processor's
// caches. A fixed rotation gave the telemetry row that advantage every
// time, and cycling through the six orders gave the first two clients a
// second turn in a row once a cycle and the third never: two copies of the
// same client came out up to 7 % apart in a run.
var turnSequence = []int{0, 1, 0, 2, 0, 3, 1, 2, 1, 3, 2, 3}

// overheadRound is one round of the overhead phase: every client of
// overheadKinds on its own fresh sandbox, taking turns.
func overheadRound(ctx context.Context, cfg config, round int) (map[clientKind]OpStats, error) {
	clients, closeAll, err := openClients(ctx, overheadKinds, cfg.sandbox, func(ctx context.Context, c creator) error {
		for range cfg.overheadWarmup {
			if err := c.create(ctx, nextRef("warm")); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	defer closeAll()
	maxCalls := maxCallsPerServer - cfg.overheadWarmup
	acc := make([]sliceStats, len(clients))
	runtime.GC()
	err = takeTurns(len(clients), turnSequence, round,
		func(i int) bool { return acc[i].elapsed >= cfg.overheadRound || acc[i].calls+sliceCalls > maxCalls },
		func(i int) error {
			return asClient(ctx, overheadKinds[i], func(ctx context.Context) error {
				if err := acc[i].add(ctx, clients[i], sliceCalls); err != nil {
					return fmt.Errorf("%s: %w", overheadKinds[i], err)
				}
				return nil
			})
		})
	if err != nil {
		return nil, err
	}
	out := map[clientKind]OpStats{}
	for i, kind := range overheadKinds {
		out[kind] = acc[i].perOp()
	}
	return out, nil
}

// sliceStats adds up one client's turns.
type sliceStats struct {
	calls           int
	elapsed, cpu    time.Duration
	mallocs, allocB uint64
}

// add makes n sequential calls with c and adds their cost. Memory
// statistics are read at the edges of the turn, outside its time: reading
// them stops the world, and it also flushes every thread's allocation
// cache, which makes the counts exact for the turn.
func (a *sliceStats) add(ctx context.Context, c creator, n int) error {
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	cpu0 := processCPU()
	start := time.Now()
	for range n {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := c.create(ctx, nextRef("seq")); err != nil {
			return err
		}
	}
	a.elapsed += time.Since(start)
	a.cpu += processCPU() - cpu0
	runtime.ReadMemStats(&m1)
	a.calls += n
	a.mallocs += m1.Mallocs - m0.Mallocs
	a.allocB += m1.TotalAlloc - m0.TotalAlloc
	return nil
}

func (a *sliceStats) perOp() OpStats {
	n := float64(max(a.calls, 1))
	return OpStats{
		Ops:         a.calls,
		NsPerOp:     float64(a.elapsed.Nanoseconds()) / n,
		CPUNsPerOp:  float64(a.cpu.Nanoseconds()) / n,
		AllocsPerOp: float64(a.mallocs) / n,
		BytesPerOp:  float64(a.allocB) / n,
	}
}

// medianRatio is the median over rounds of f(a[i]) / f(b[i]).
func medianRatio(a, b []OpStats, f func(OpStats) float64) float64 {
	var rs []float64
	for i := range min(len(a), len(b)) {
		if d := f(b[i]); d > 0 {
			rs = append(rs, f(a[i])/d)
		}
	}
	return round3(median(rs))
}

// medianStats takes the median of each figure separately; Ops is the total.
func medianStats(rounds []OpStats) OpStats {
	var out OpStats
	var ns, cpu, al, by []float64
	for _, r := range rounds {
		out.Ops += r.Ops
		ns, cpu, al, by = append(ns, r.NsPerOp), append(cpu, r.CPUNsPerOp), append(al, r.AllocsPerOp), append(by, r.BytesPerOp)
	}
	out.NsPerOp, out.CPUNsPerOp = round1(median(ns)), round1(median(cpu))
	out.AllocsPerOp, out.BytesPerOp = round1(median(al)), round1(median(by))
	return out
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return round3(a / b)
}

func round1(v float64) float64 { return float64(int64(v*10+0.5)) / 10 }
func round3(v float64) float64 { return float64(int64(v*1000+0.5)) / 1000 }

// Throughput is orders per second at one concurrency level: in each round
// the two clients, each on a fresh sandbox of its own, take turns of
// throughputTurn at that concurrency until each has spent the round's
// time; a client's rate in a round is its successful calls divided by the
// time its turns took. The ratio is the median of the rounds' ratios, the
// rates medians over the rounds.
type Throughput struct {
	Concurrency int `json:"concurrency"`
	// Second is the client the SDK fields measure: prio-go, or under -aa
	// a second baseline, when the ratio has no goal (Goal 0).
	Second           string  `json:"second_client"`
	RoundSeconds     float64 `json:"round_seconds"`
	TurnSeconds      float64 `json:"turn_seconds"`
	BaselinePerSec   float64 `json:"baseline_orders_per_sec"`
	SDKPerSec        float64 `json:"sdk_orders_per_sec"`
	Ratio            float64 `json:"ratio"`
	Goal             float64 `json:"goal"`
	GoalMet          bool    `json:"goal_met"`
	BaselineFailures int     `json:"baseline_failures"`
	SDKFailures      int     `json:"sdk_failures"`
	// Successful calls in all rounds' turns (the warm-up's calls, one per
	// connection of the level each round, not counted): what a CPU
	// profile's time per client is divided by.
	BaselineCalls int `json:"baseline_calls"`
	SDKCalls      int `json:"sdk_calls"`
	// Per-round rates and ratios, in the order the rounds ran, to show the
	// spread.
	BaselineRounds []float64 `json:"baseline_rounds"`
	SDKRounds      []float64 `json:"sdk_rounds"`
	RatioRounds    []float64 `json:"ratio_rounds"`
}

// throughputTurn is how long one client calls at the level's concurrency
// before the other takes its turn. Whole rounds of half a second one after
// the other put the two clients on machines of different speed (the ratio
// of two such rounds of the same level moved from 0.77 to 1.02 between
// runs); turns this short let the drift fall on both alike. A turn ends
// when its calls still running have returned, so the ramp at its start and
// the drain at its end are in every turn of both clients.
const throughputTurn = 50 * time.Millisecond

// measureThroughput measures each level in rounds of turns.
func measureThroughput(ctx context.Context, cfg config) ([]Throughput, error) {
	var out []Throughput
	for _, level := range cfg.levels {
		t, err := throughputLevel(ctx, cfg, level)
		if err != nil {
			return nil, fmt.Errorf("concurrency %d: %w", level, err)
		}
		cfg.logf("throughput: concurrency %d: baseline %.0f/s, prio-go %.0f/s", level, t.BaselinePerSec, t.SDKPerSec)
		out = append(out, t)
	}
	return out, nil
}

func throughputLevel(ctx context.Context, cfg config, level int) (Throughput, error) {
	t := Throughput{Concurrency: level, Second: string(cfg.throughputClients()[1]), RoundSeconds: seconds(cfg.throughputRound),
		TurnSeconds: seconds(throughputTurn), Goal: goalThroughputRatio}
	if cfg.aa {
		t.Goal = 0
	}
	var bRates, sRates []float64
	for r := range cfg.throughputRounds {
		st, err := throughputRound(ctx, cfg, level, r)
		if err != nil {
			return t, err
		}
		b, s := st[0].rate(), st[1].rate()
		bRates, sRates = append(bRates, b), append(sRates, s)
		t.BaselineRounds = append(t.BaselineRounds, round1(b))
		t.SDKRounds = append(t.SDKRounds, round1(s))
		t.RatioRounds = append(t.RatioRounds, ratio(s, b))
		t.BaselineFailures += st[0].failed
		t.SDKFailures += st[1].failed
		t.BaselineCalls += st[0].ok
		t.SDKCalls += st[1].ok
	}
	t.BaselinePerSec, t.SDKPerSec = round1(median(bRates)), round1(median(sRates))
	t.Ratio = round3(median(t.RatioRounds))
	t.GoalMet = t.Goal > 0 && t.Ratio >= t.Goal
	return t, nil
}

// turnStats adds up one client's turns of a throughput round.
type turnStats struct {
	ok, failed, started int
	elapsed             time.Duration
}

func (s turnStats) rate() float64 {
	if s.elapsed <= 0 {
		return 0
	}
	return float64(s.ok) / s.elapsed.Seconds()
}

// throughputKinds are the clients of the throughput phase, in the order of
// the first turn.
var throughputKinds = []clientKind{kindBaseline, kindSDK}

// aaKinds replace throughputKinds under -aa: the baseline against a second
// baseline. Two clients that do the same work can differ only by the
// method's own spread, which their ratios then show.
var aaKinds = []clientKind{kindBaseline, kindBaselineTwin}

// throughputClients are the throughput phase's two clients in this run.
func (c config) throughputClients() []clientKind {
	if c.aa {
		return aaKinds
	}
	return throughputKinds
}

// throughputRound is one round at level: both clients on fresh sandboxes,
// their connections opened, then turns of throughputTurn in alternation
// (odd rounds start with the SDK) until each has spent cfg.throughputRound
// or started as many calls as its sandbox may serve.
func throughputRound(ctx context.Context, cfg config, level, round int) ([]turnStats, error) {
	kinds := cfg.throughputClients()
	clients, closeAll, err := openClients(ctx, kinds, cfg.sandbox, func(ctx context.Context, c creator) error {
		// Open the connections the level needs before timing.
		_, _, _, err := concurrentRound(ctx, c, level, 0, level)
		return err
	})
	if err != nil {
		return nil, err
	}
	defer closeAll()
	maxCalls := maxCallsPerServer - level
	acc := make([]turnStats, len(clients))
	runtime.GC()
	err = takeTurns(len(clients), []int{0, 1}, round,
		func(i int) bool { return acc[i].elapsed >= cfg.throughputRound || acc[i].started+level > maxCalls },
		func(i int) error {
			return asClient(ctx, kinds[i], func(ctx context.Context) error {
				a := &acc[i]
				ok, failed, elapsed, err := concurrentRound(ctx, clients[i], level, throughputTurn, maxCalls-a.started)
				if err != nil {
					return fmt.Errorf("%s: %w", kinds[i], err)
				}
				a.ok, a.failed, a.started, a.elapsed = a.ok+ok, a.failed+failed, a.started+ok+failed, a.elapsed+elapsed
				return nil
			})
		})
	if err != nil {
		return nil, err
	}
	return acc, nil
}

// openClients opens a client of each kind, each on a fresh sandbox of its
// own placed where says (openSandbox), and warms each up with warm, both
// as that client (asClient); closeAll tears them all down. On an error
// nothing is left open.
func openClients(ctx context.Context, kinds []clientKind, where string, warm func(context.Context, creator) error) (clients []creator, closeAll func(), err error) {
	var closers []func()
	closeAll = func() {
		for _, f := range closers {
			f()
		}
	}
	for _, kind := range kinds {
		err := asClient(ctx, kind, func(ctx context.Context) error {
			c, closeFn, err := openClient(ctx, kind, where)
			if err != nil {
				return err
			}
			closers = append(closers, closeFn)
			if err := warm(ctx, c); err != nil {
				return fmt.Errorf("warm-up: %w", err)
			}
			clients = append(clients, c)
			return nil
		})
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("%s: %w", kind, err)
		}
	}
	return clients, closeAll, nil
}

// profileLabel is the CPU profile's label that names the client a sample
// worked for.
const profileLabel = "client"

// asClient runs f as the client kind: with the profiler label
// client=<kind> on this goroutine and on every goroutine started under it.
// openClients opens each client's sandbox and connections this way, so
// the sandbox's server goroutines, the connections' read and write loops,
// the OpenTelemetry exporters and the calls of a throughput turn all carry
// the label of the client they serve. A CPU profile (-cpuprofile) then
// splits by client, sandbox included:
//
//	go tool pprof -tags prio-bench cpu.out
//	go tool pprof -top -tagfocus 'client=^prio-go$' prio-bench cpu.out
//
// Only the runtime's own work (the garbage collector's background marking,
// the scheduler) stays unlabelled.
func asClient(ctx context.Context, kind clientKind, f func(ctx context.Context) error) error {
	var err error
	pprof.Do(ctx, pprof.Labels(profileLabel, string(kind)), func(ctx context.Context) { err = f(ctx) })
	return err
}

// takeTurns gives the n clients turns in the order of seq, starting at
// seq[start % len(seq)], until every client is done: a client's turn comes
// round only while done(i) is false, and turn(i) runs it. The first error
// ends it.
func takeTurns(n int, seq []int, start int, done func(i int) bool, turn func(i int) error) error {
	finished := make([]bool, n)
	for t, left := start, n; left > 0; t++ {
		i := seq[t%len(seq)]
		if finished[i] {
			continue
		}
		if done(i) {
			finished[i] = true
			left--
			continue
		}
		if err := turn(i); err != nil {
			return err
		}
	}
	return nil
}

// concurrentRound runs level goroutines calling c until d has passed (d 0:
// one call each) or maxCalls calls have started, and counts successes and
// failures. Calls still running at the deadline finish and count, and
// elapsed runs until the last of them has returned. The error is the
// caller's cancellation, or the first failure when nothing succeeded.
func concurrentRound(ctx context.Context, c creator, level int, d time.Duration, maxCalls int) (ok, failed int, elapsed time.Duration, err error) {
	var (
		nOK, nFail atomic.Int64
		started    atomic.Int64
		firstErr   error
		once       sync.Once
		wg         sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(d)
	for range level {
		wg.Go(func() {
			for first := true; first || time.Now().Before(deadline); first = false {
				if ctx.Err() != nil || started.Add(1) > int64(maxCalls) {
					return
				}
				if err := c.create(ctx, nextRef("tp")); err != nil {
					nFail.Add(1)
					once.Do(func() { firstErr = err })
					continue
				}
				nOK.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed = time.Since(start)
	if ctx.Err() != nil {
		return 0, 0, elapsed, ctx.Err()
	}
	if nOK.Load() == 0 && firstErr != nil {
		return 0, int(nFail.Load()), elapsed, firstErr
	}
	return int(nOK.Load()), int(nFail.Load()), elapsed, nil
}
