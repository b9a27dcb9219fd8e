package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is everything one run measured; -json prints it as is. Phases
// that did not run are omitted.
type Report struct {
	Date       string   `json:"date"`
	Mode       string   `json:"mode"`
	GoVersion  string   `json:"go_version"`
	Platform   string   `json:"platform"`
	NumCPU     int      `json:"num_cpu"`
	GOMAXPROCS int      `json:"gomaxprocs"`
	CPUModel   string   `json:"cpu_model"`
	Setup      []string `json:"setup"`
	// Sandbox is where the overhead and throughput phases ran their
	// sandboxes: "process" (a child process each) or "inproc".
	Sandbox    string       `json:"sandbox"`
	Overhead   *Overhead    `json:"overhead,omitempty"`
	Throughput []Throughput `json:"throughput,omitempty"`
	Outage     *Outage      `json:"outage,omitempty"`
	Batch      *Batch       `json:"batch,omitempty"`
	Elapsed    float64      `json:"elapsed_seconds"`

	started time.Time
}

func newReport(cfg config) *Report {
	now := time.Now()
	rep := &Report{
		Date:       now.UTC().Format(time.RFC3339),
		Mode:       cfg.mode,
		GoVersion:  runtime.Version(),
		Platform:   runtime.GOOS + "/" + runtime.GOARCH,
		NumCPU:     runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		CPUModel:   cpuModel(),
		Setup: []string{
			serverSetup(cfg.sandbox),
			"prio-go: DefaultRetryPolicy with RequestsPerMinute 0 (client-side rate limiter off), everything else default",
			"prio-go + otel: the same client with an OpenTelemetry SDK tracer (every span sampled, batched to an exporter that drops them) and meter (a manual reader): overhead phase only",
			"baseline + otel: the baseline call with, by hand, the spans, trace header and measurements prio-go + otel records for it, on the same kind of providers: what OpenTelemetry itself costs (overhead phase only, no goal)",
			"baseline: net/http (64 idle connections per host, as the SDK keeps) + encoding/json, same body bytes, same Idempotency-Key header use, no retries",
			"go-retryablehttp: NewClient() defaults (RetryMax 4, wait 1s..30s), only its logger silenced",
			fmt.Sprintf("naive loop: up to %d re-sends after a 5xx or network error, %s fixed pause", cfg.naiveRetries, cfg.naiveSleep),
		},
		Sandbox: cfg.sandbox,
		started: now,
	}
	if cfg.aa {
		rep.Setup = append(rep.Setup, nameBaselineTwin+": a second baseline client on a sandbox of its own, in prio-go's place in the throughput phase (-aa)")
	}
	return rep
}

// cpuModel reads the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// writeTable prints the report for people.
// serverSetup describes the sandboxes of a run whose overhead and
// throughput phases placed them where.
func serverSetup(where string) string {
	const common = "a fresh one per measurement, request limit off (WithRequestLimit(0))"
	if where == sandboxInProc {
		return "server: priotest in this process on 127.0.0.1, " + common
	}
	return "server: priotest on 127.0.0.1, " + common + "; for the overhead and throughput phases each in a child process of its own (-sandbox process), for the outage and batch phases in this process"
}

// processWide says what the overhead table's CPU and allocation columns
// count.
func processWide(where string) string {
	if where == sandboxInProc {
		return "CPU time and allocations are process-wide: both rows include the in-process server's"
	}
	return "CPU time and allocations are the client process's alone: each sandbox runs in a process of its own"
}

func writeTable(w io.Writer, r *Report) error {
	bw := &errWriter{w: w}
	bw.printf("prio-bench %s run, %s, %s %s, %d CPUs (%s), GOMAXPROCS %d, %.1fs\n",
		r.Mode, r.Date, r.GoVersion, r.Platform, r.NumCPU, r.CPUModel, r.GOMAXPROCS, r.Elapsed)
	for _, s := range r.Setup {
		bw.printf("  %s\n", s)
	}
	if o := r.Overhead; o != nil {
		bw.printf("\n1. Per-call overhead: Create Order, sequential, median of %d rounds of %gs per client, the clients taking turns of %d calls\n", o.Rounds, o.RoundSeconds, o.SliceCalls)
		bw.printf("   (%s)\n", processWide(r.Sandbox))
		tw := bw.tab()
		fmt.Fprintf(tw, "\t\tns/op\tCPU ns/op\tallocs/op\tB/op\tcalls\t\n")
		for _, row := range []struct {
			name string
			st   OpStats
		}{{nameBaseline, o.Baseline}, {nameSDK, o.SDK}} {
			fmt.Fprintf(tw, "\t%s\t%.0f\t%.0f\t%.1f\t%.0f\t%d\t\n", row.name, row.st.NsPerOp, row.st.CPUNsPerOp, row.st.AllocsPerOp, row.st.BytesPerOp, row.st.Ops)
		}
		fmt.Fprintf(tw, "\tprio-go - baseline\t%+.0f\t%+.0f\t%+.1f\t%+.0f\t\t\n", o.ExtraNsPerOp, o.SDK.CPUNsPerOp-o.Baseline.CPUNsPerOp, o.ExtraAllocsPerOp, o.ExtraBytesPerOp)
		fmt.Fprintf(tw, "\tprio-go / baseline\t%.3f\t%.3f\t%.3f\t%.3f\t\t\n", o.TimeRatio, o.CPURatio, o.AllocsRatio, o.BytesRatio)
		fmt.Fprintf(tw, "\tgoal\t<= %.2f %s\t\t<= %.1f %s\t\t\t\n", o.TimeGoal, metWord(o.TimeGoalMet), o.AllocsGoal, metWord(o.AllocsGoalMet))
		if t := o.Telemetry; t != nil {
			st := t.SDK
			fmt.Fprintf(tw, "\t%s\t%.0f\t%.0f\t%.1f\t%.0f\t%d\t\n", nameSDKOTel, st.NsPerOp, st.CPUNsPerOp, st.AllocsPerOp, st.BytesPerOp, st.Ops)
			fmt.Fprintf(tw, "\t%s / baseline\t%.3f\t%.3f\t%.3f\t%.3f\t\t\n", nameSDKOTel, t.TimeRatio, t.CPURatio, t.AllocsRatio, t.BytesRatio)
			fmt.Fprintf(tw, "\tgoal (otel)\t<= %.2f %s\t\t<= %.1f %s\t\t\t\n", t.TimeGoal, metWord(t.TimeGoalMet), t.AllocsGoal, metWord(t.AllocsGoalMet))
		}
		if c := o.TelemetryControl; c != nil {
			st := c.Client
			fmt.Fprintf(tw, "\t%s\t%.0f\t%.0f\t%.1f\t%.0f\t%d\t\n", nameBaselineOTel, st.NsPerOp, st.CPUNsPerOp, st.AllocsPerOp, st.BytesPerOp, st.Ops)
			fmt.Fprintf(tw, "\t%s / baseline\t%.3f\t%.3f\t%.3f\t\t\t\n", nameBaselineOTel, c.TimeRatio, c.CPURatio, c.AllocsRatio)
			if t := o.Telemetry; t != nil && t.OverControl > 0 {
				fmt.Fprintf(tw, "\t%s / %s\t%.3f\t\t\t\t\t\n", nameSDKOTel, nameBaselineOTel, t.OverControl)
			}
		}
		bw.flush(tw)
		bw.printf("   ns/op per round: baseline %s, prio-go %s\n", list(o.BaselineNsRounds), list(o.SDKNsRounds))
		if t := o.Telemetry; t != nil {
			bw.printf("   ns/op per round: %s %s\n", nameSDKOTel, list(t.NsRounds))
		}
		bw.printf("   time ratio per round: prio-go %s", ratioList(o.TimeRatioRounds))
		if t := o.Telemetry; t != nil {
			bw.printf(", %s %s", nameSDKOTel, ratioList(t.TimeRatioRounds))
		}
		if c := o.TelemetryControl; c != nil {
			bw.printf(", %s %s", nameBaselineOTel, ratioList(c.TimeRatioRounds))
		}
		bw.printf("\n")
	}
	if len(r.Throughput) > 0 {
		bw.printf("\n2. Throughput: Create Order, orders/s, median of %d rounds of %gs per client (at most %d calls a round), the clients taking turns of %gs\n",
			len(r.Throughput[0].SDKRounds), r.Throughput[0].RoundSeconds, maxCallsPerServer, r.Throughput[0].TurnSeconds)
		second := r.Throughput[0].Second
		if second != nameSDK {
			bw.printf("   A/A (-aa): %s in place of %s, doing the same work; no goal is judged\n", second, nameSDK)
		}
		tw := bw.tab()
		fmt.Fprintf(tw, "\tconcurrency\t%s\t%s\tratio\tgoal >= %.2f\tfailures\t\n", nameBaseline, second, goalThroughputRatio)
		for _, t := range r.Throughput {
			goal := "-"
			if t.Goal > 0 {
				goal = metWord(t.GoalMet)
			}
			fmt.Fprintf(tw, "\t%d\t%.0f\t%.0f\t%.3f\t%s\t%d / %d\t\n", t.Concurrency, t.BaselinePerSec, t.SDKPerSec, t.Ratio,
				goal, t.BaselineFailures, t.SDKFailures)
		}
		bw.flush(tw)
		for _, t := range r.Throughput {
			bw.printf("   concurrency %d, orders/s per round: baseline %s, %s %s; ratio per round %s\n",
				t.Concurrency, list(t.BaselineRounds), t.Second, list(t.SDKRounds), ratioList(t.RatioRounds))
		}
	}
	if o := r.Outage; o != nil {
		bw.printf("\n3. Retry amplification: every answer 503 for %.0fs, %d concurrent callers\n", o.Seconds, o.Callers)
		bw.printf("   sends = requests the server answered during the outage; calls = logical calls started during it;\n")
		bw.printf("   each caller calls again as soon as a call returns\n")
		tw := bw.tab()
		fmt.Fprintf(tw, "\tclient\tcalls\tsends\tsends/call\tgoal\tsends/s\tsends by operation\t\n")
		for _, c := range o.Clients {
			goal := "-"
			if c.GoalMet != nil {
				goal = fmt.Sprintf("<= %.1f %s", o.Goal, metWord(*c.GoalMet))
			}
			fmt.Fprintf(tw, "\t%s\t%d\t%d\t%.3f\t%s\t%.0f\t%s\t\n", c.Client, c.LogicalCalls, c.Sends, c.SendsPerCall, goal, c.SendsPerSecond, byOperation(c))
		}
		bw.flush(tw)
		bw.printf("\n4. Recovery: from the end of the outage until %.0f%% of the last %d completed calls succeed, and stay so\n",
			o.RecoveryShare*100, o.RecoveryWindow)
		tw = bw.tab()
		fmt.Fprintf(tw, "\tclient\trecovery\tcompleted after\tfailed after\tfailed during\twatched\t\n")
		for _, c := range o.Clients {
			rec := fmt.Sprintf("not within %.0fs", o.RecoveryCapSeconds)
			if c.RecoverySeconds != nil {
				rec = fmt.Sprintf("%.3fs", *c.RecoverySeconds)
			}
			fmt.Fprintf(tw, "\t%s\t%s\t%d\t%d\t%d\t%.1fs\t\n", c.Client, rec, c.CompletedAfter, c.FailedAfter, c.FailedDuringOutage, c.ObservedSeconds)
		}
		bw.flush(tw)
	}
	if b := r.Batch; b != nil {
		bw.printf("\n5. Batch: runner with prio-go, concurrency %d, journal files under %s\n", b.Concurrency, b.JournalDir)
		tw := bw.tab()
		fmt.Fprintf(tw, "\tjournal\trows\tbooked\tseconds\trows/s\t\n")
		for _, x := range b.Results {
			fmt.Fprintf(tw, "\t%s\t%d\t%d\t%.3f\t%.0f\t\n", x.Journal, x.Rows, x.Booked, x.Seconds, x.RowsPerSec)
		}
		bw.flush(tw)
		bw.printf("   sqlite / memory rows/s: %.3f\n", b.JournalPrice)
	}
	return bw.err
}

// list prints figures without exponents, in the order measured.
func list(v []float64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = fmt.Sprintf("%.0f", x)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func ratioList(v []float64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = fmt.Sprintf("%.3f", x)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func metWord(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

func byOperation(c OutageResult) string {
	ops := make([]string, 0, len(c.SendsByOperation))
	for op := range c.SendsByOperation {
		ops = append(ops, op)
	}
	slices.Sort(ops)
	parts := make([]string, 0, len(ops))
	for _, op := range ops {
		parts = append(parts, fmt.Sprintf("%s %d", op, c.SendsByOperation[op]))
	}
	s := strings.Join(parts, ", ")
	if !c.SendsByOperationComplete {
		s += " (log incomplete)"
	}
	return s
}

// errWriter keeps the first write error, so the table code can write
// without checking each line.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

func (e *errWriter) printf(format string, args ...any) { fmt.Fprintf(e, format, args...) }

func (e *errWriter) tab() *tabwriter.Writer {
	return tabwriter.NewWriter(e, 0, 0, 2, ' ', tabwriter.AlignRight)
}

func (e *errWriter) flush(tw *tabwriter.Writer) {
	if err := tw.Flush(); err != nil && e.err == nil {
		e.err = err
	}
}
