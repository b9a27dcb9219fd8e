// Command prio-bench measures, in one run on one machine and side by side,
// what the prio-go SDK costs and how it behaves under load:
//
//  1. the per-call overhead of Create Order against a hand-written net/http
//     and encoding/json call to the same in-process priotest server;
//  2. orders per second at concurrency 1, 8 and 64, SDK and baseline;
//  3. retry amplification during a total outage (every answer 503),
//     for prio-go, go-retryablehttp with its defaults and a naive
//     3-retry loop;
//  4. recovery: how long after the outage ends until 99 % of calls succeed
//     again, for the same three;
//  5. the batch runner's rows per second with the SQLite journal and with
//     the in-memory journal.
//
// Usage:
//
//	prio-bench [-quick] [-json] [-q] [-sandbox process|inproc] [-cpuprofile file] [-memprofile file] [-only list] [-aa]
//
// Without -json it prints a table for people; with -json one JSON document
// for machines. -quick shortens every phase so that the run ends within a
// minute; the full run takes a few minutes. -only runs a subset of the
// phases: a comma-separated list of overhead, throughput, outage and
// batch. -cpuprofile and -memprofile profile the phases run, for pprof;
// "-only overhead -cpuprofile cpu.out" profiles the overhead phase alone
// (all its clients, taking turns). In the CPU profile of the overhead and
// throughput phases every sample of a client's work (its sandbox's too
// under -sandbox inproc) carries the label client=<name> (asClient), so
// "go tool pprof -tags" splits the profile by client and
// -tagfocus 'client=^prio-go$' keeps one.
//
// -aa runs the throughput phase alone with the baseline in place of
// prio-go, so that both clients do the same work: its ratios differ from
// 1 only by the method's own spread, the resolution against which the
// throughput goal is judged. It judges no goal.
//
// Every client books on priotest servers on 127.0.0.1; nothing leaves the
// machine. -sandbox places the overhead and throughput phases' servers:
// "inproc" (the default) runs them in this process, where they share the
// client's heap, garbage collector and scheduler; "process" starts each in
// a child process of its own (this program again, serving one sandbox
// until its standard input closes), as a real Prio runs apart from its
// client. The outage and batch phases run theirs in this process, since
// they inject faults and read the server's log. BENCHMARKS.md at the
// repository root explains the method and keeps the latest table.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	if isSandboxChild() {
		if err := serveSandbox(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "prio-bench sandbox:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "prio-bench:", err)
		}
		os.Exit(2)
	}
}

// phases are the parts of a run, in the order they run.
var phases = []string{"overhead", "throughput", "outage", "batch"}

// run parses args, runs the selected phases and writes the report to
// stdout (table or JSON). Progress goes to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("prio-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		quick      = fs.Bool("quick", false, "short phases: the whole run ends within a minute")
		asJSON     = fs.Bool("json", false, "print one JSON document instead of the table")
		cpuProfile = fs.String("cpuprofile", "", "write a CPU profile of the phases run to this file")
		memProfile = fs.String("memprofile", "", "write an allocation profile of the phases run to this file (samples every 512 bytes: slower)")
		only       = fs.String("only", "", "comma-separated phases to run (default all): "+strings.Join(phases, ","))
		quiet      = fs.Bool("q", false, "no progress lines on stderr")
		where      = fs.String("sandbox", sandboxInProc, "where the overhead and throughput phases run each sandbox: "+sandboxInProc+" (this process) or "+sandboxProcess+" (a child process of its own)")
		aa         = fs.Bool("aa", false, "A/A: the throughput phase alone, the baseline against a second baseline instead of prio-go; its ratios show the method's own spread and judge no goal")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if *where != sandboxProcess && *where != sandboxInProc {
		return fmt.Errorf("-sandbox %s: want %s or %s", *where, sandboxProcess, sandboxInProc)
	}
	if *aa && *only == "" {
		*only = "throughput"
	}
	sel, err := selectPhases(*only)
	if err != nil {
		return err
	}
	if *aa && (len(sel) != 1 || !sel["throughput"]) {
		return fmt.Errorf("-aa runs the throughput phase alone, not -only %s", *only)
	}
	cfg := fullConfig()
	if *quick {
		cfg = quickConfig()
	}
	cfg.phases, cfg.aa, cfg.sandbox = sel, *aa, *where
	cfg.cpuProfile, cfg.memProfile = *cpuProfile, *memProfile
	if cfg.memProfile != "" {
		// Sample finely enough to attribute a few allocations per call.
		runtime.MemProfileRate = 512
	}
	if !*quiet {
		cfg.progress = stderr
	}
	rep, err := measure(ctx, cfg)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return writeTable(stdout, rep)
}

func selectPhases(list string) (map[string]bool, error) {
	sel := map[string]bool{}
	if strings.TrimSpace(list) == "" {
		for _, p := range phases {
			sel[p] = true
		}
		return sel, nil
	}
	for p := range strings.SplitSeq(list, ",") {
		p = strings.TrimSpace(p)
		known := false
		for _, q := range phases {
			known = known || p == q
		}
		if !known {
			return nil, fmt.Errorf("unknown phase %q (want %s)", p, strings.Join(phases, ", "))
		}
		sel[p] = true
	}
	return sel, nil
}

// config sizes a run. The quick and full runs differ only in these numbers.
type config struct {
	mode string

	// Overhead: alternating rounds of sequential calls, baseline then SDK.
	overheadRounds int
	overheadRound  time.Duration
	overheadWarmup int

	// Throughput: for each level, alternating rounds of this length.
	levels           []int
	throughputRounds int
	throughputRound  time.Duration

	// Outage and recovery.
	outage         time.Duration
	outageCallers  int
	recoveryWindow int           // completed calls in the sliding window
	recoveryShare  float64       // share of them that must succeed
	recoveryHold   time.Duration // how long recovery must last before the phase ends
	recoveryCap    time.Duration // the phase ends this long after the outage at the latest
	naiveRetries   int
	naiveSleep     time.Duration

	// Batch.
	batchRows        int
	batchConcurrency int

	phases map[string]bool
	// sandbox places the overhead and throughput phases' sandboxes:
	// sandboxProcess or sandboxInProc. The outage and batch phases always
	// run theirs in this process, since they inject faults and read the
	// server's log.
	sandbox string
	// aa: the throughput phase compares the baseline with a second
	// baseline instead of prio-go (aaKinds).
	aa         bool
	cpuProfile string
	memProfile string
	progress   io.Writer // nil: silent
}

func fullConfig() config {
	return config{
		mode:             "full",
		sandbox:          sandboxInProc,
		overheadRounds:   10,
		overheadRound:    time.Second,
		overheadWarmup:   200,
		levels:           []int{1, 8, 64},
		throughputRounds: 3,
		throughputRound:  3 * time.Second,
		outage:           10 * time.Second,
		outageCallers:    64,
		recoveryWindow:   100,
		recoveryShare:    0.99,
		recoveryHold:     2 * time.Second,
		recoveryCap:      40 * time.Second,
		naiveRetries:     3,
		naiveSleep:       100 * time.Millisecond,
		batchRows:        3000,
		batchConcurrency: 8,
	}
}

// quickConfig keeps the whole run under a minute on a busy 2-core machine.
// The outage is 4 s instead of 10 s: long enough for go-retryablehttp's
// default backoff (1 s, 2 s, 4 s, ...) to reach its fourth send.
func quickConfig() config {
	c := fullConfig()
	c.mode = "quick"
	c.overheadRounds = 6
	c.overheadRound = 250 * time.Millisecond
	c.overheadWarmup = 50
	c.throughputRounds = 3
	c.throughputRound = 500 * time.Millisecond
	c.outage = 4 * time.Second
	c.recoveryHold = time.Second
	c.recoveryCap = 10 * time.Second
	c.batchRows = 500
	return c
}

func (c config) logf(format string, args ...any) {
	if c.progress != nil {
		fmt.Fprintf(c.progress, "prio-bench: "+format+"\n", args...)
	}
}

// measure runs the selected phases and assembles the report. The CPU
// profile covers every selected phase; the allocation profile is written
// at the end.
func measure(ctx context.Context, cfg config) (*Report, error) {
	rep := newReport(cfg)
	stopProfile, err := startCPUProfile(cfg.cpuProfile)
	if err != nil {
		return nil, err
	}
	defer stopProfile()
	if cfg.phases["overhead"] {
		cfg.logf("overhead: %d rounds of %s per client", cfg.overheadRounds, cfg.overheadRound)
		r, err := measureOverhead(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("overhead: %w", err)
		}
		rep.Overhead = r
	}
	if cfg.phases["throughput"] {
		cfg.logf("throughput: levels %v, %d rounds of %s", cfg.levels, cfg.throughputRounds, cfg.throughputRound)
		r, err := measureThroughput(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("throughput: %w", err)
		}
		rep.Throughput = r
	}
	if cfg.phases["outage"] {
		r, err := measureOutages(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("outage: %w", err)
		}
		rep.Outage = r
	}
	if cfg.phases["batch"] {
		cfg.logf("batch: %d rows per journal, concurrency %d", cfg.batchRows, cfg.batchConcurrency)
		r, err := measureBatch(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("batch: %w", err)
		}
		rep.Batch = r
	}
	stopProfile()
	if err := writeMemProfile(cfg.memProfile); err != nil {
		return nil, err
	}
	rep.Elapsed = seconds(time.Since(rep.started))
	return rep, nil
}

func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			pprof.StopCPUProfile()
			f.Close()
		})
	}, nil
}

func writeMemProfile(path string) error {
	if path == "" {
		return nil
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	runtime.GC()
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// seconds rounds a duration to milliseconds, as a float of seconds.
func seconds(d time.Duration) float64 {
	return float64(d.Round(time.Millisecond)) / float64(time.Second)
}
