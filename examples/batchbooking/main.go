// Command batchbooking books every row of a CSV or JSON Lines file with the
// Prio API, exactly once, even when it is killed halfway and started again.
//
//	go run ./examples/batchbooking -in examples/batchbooking/sample.csv -faults flaky
//
// # Input
//
// A CSV file with a header line, or JSON Lines (one object per line), with
// these columns (keys); the format is taken from the extension (.csv,
// .jsonl, .ndjson) or else from the first character:
//
//	external_reference     required; the order_external_reference, the row's identity
//	product_id             required unless reservation_reference is given
//	product_type_id        required unless reservation_reference is given
//	product_type_count     1 to 100 (default 1)
//	product_type           optional; ADULT, CHILD, ... (Prio knows it from product_type_id)
//	availability_id        optional; for products with managed capacity
//	travel_date            optional; 2026-07-01 or 2026-07-01T10:00:00+02:00
//	reservation_reference  optional; confirms that reservation instead of a direct booking
//	contact_email          optional; the booker's e-mail address
//
// Each row becomes one order with one booking. A row that cannot be read
// (a missing column, a count that is not a number) is reported as failed
// and the run goes on; a file that is not CSV or JSON Lines stops it.
//
// # Output
//
// The results file (-out, default the input path plus ".results.csv") has
// one line per row: external_reference, order_reference, status (booked,
// failed, unknown, pending) and error. On a terminal a progress bar runs on
// standard error; otherwise a plain progress line is printed every five
// seconds. Standard output ends with the summary
//
//	booked=N failed=N unknown=N sends=N elapsed=D
//
// and, with the embedded sandbox, a line with the sandbox's orders_total
// and duplicate_external_references.
//
// # Journal and resume
//
// Every row's state is kept in a SQLite journal (-journal, default the
// input path plus ".journal"). Started again with the same input and
// journal after any crash, the command books only what is not booked yet;
// a finished input books nothing more. A row that may have been sent is
// looked up first and sent again only when the look-up proves it absent
// once no earlier send can still be processed: -horizon (the client's
// processing horizon, 90 s against Prio) after the last send. A row a
// killed run left sending counts as sent until that run's Book call would
// have timed out (-book-timeout, 5 minutes by default), so it waits up to
// -book-timeout plus -horizon.
// Open the journal with sqlite3 to see every row:
//
//	sqlite3 orders.csv.journal 'SELECT state, count(*) FROM bookings GROUP BY state'
//
// The embedded sandbox forgets its orders when the command exits, so with
// it the default journal is a temporary file; give -journal to keep one.
//
// # Many workers, many machines: -queue
//
// With -queue postgres://..., rows go through a shared booking queue (River
// on PostgreSQL, package prioqueue) instead of the SQLite journal. The
// command enqueues every row (one job per external reference: enqueueing
// the same input twice, or from two machines, makes no second job), works
// jobs with -concurrency workers until every row of the input is settled,
// and writes the results file from the queue. The same command started on
// more machines adds workers to the same queue:
//
//	batchbooking -in orders.csv -queue postgres://shop@db/bookings    # on each machine
//
// A worker that dies (kill -9, a lost machine) leaves its jobs running; once
// they have run for -rescue-after, River gives them to another worker,
// which looks the order up before it sends anything.
//
// # Where it books
//
// Without -base-url and without PRIO_CLIENT_ID, the command starts the
// embedded sandbox (package priotest) and books there; -faults names its
// fault profile (none, flaky, hostile) and -cache-lag puts its order cache
// behind the live orders. With PRIO_CLIENT_ID,
// PRIO_CLIENT_SECRET, PRIO_DISTRIBUTOR_ID and PRIO_ENV or PRIO_BASE_URL it
// books with the real API. -base-url points it at any server, such as a
// separate prio-sandbox, with the credentials from the same variables.
//
// # Stopping
//
// Ctrl-C (or SIGTERM) stops taking rows, lets the rows in flight finish for
// up to 30 seconds (recording those that do not as unknown), writes the
// results, prints the summary and exits with status 130. A second Ctrl-C
// exits at once: the journal already holds every row's state, and the next
// run looks up the rows that were in flight.
//
// Exit status: 0 when every row is booked, 1 when some failed or are
// unknown, 2 for bad flags or setup, 130 after an interruption.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/term"

	prio "github.com/priosdk/prio-go"
	"github.com/priosdk/prio-go/batch"
	"github.com/priosdk/prio-go/prioqueue"
	"github.com/priosdk/prio-go/priotest"
)

// Exit statuses.
const (
	exitOK          = 0
	exitIncomplete  = 1
	exitUsage       = 2
	exitInterrupted = 130
)

// Against the embedded sandbox, whose faults only imitate Prio's: one send
// is bounded at 5 s (its "hang" fault never answers; Prio itself gets the
// client's 60 s), and a 429 without Retry-After is waited out for 2 s
// (Prio bans a client for a minute; the sandbox's fault bans no one).
//
// The processing horizon is 3 s there: the sandbox goes on processing a
// call at most 1 s after it arrived (the hostile profile's Delay; its
// OriginDelay is 800 ms, the flaky profile's 200 ms and 300 ms), and a
// "hang" is never processed, so three times the slowest case leaves a wide
// margin on a loaded machine. Prio itself gets the client's 90 s.
const (
	sandboxAttemptTimeout   = 5 * time.Second
	sandboxRateLimitedDelay = 2 * time.Second
	sandboxHorizon          = 3 * time.Second
)

func main() {
	ctx, stop := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		fmt.Fprintln(os.Stderr, "stopping: no new rows; waiting for the rows in flight (press Ctrl-C again to quit at once)")
		stop()
		<-sigs
		fmt.Fprintln(os.Stderr, "quitting at once; the journal has every row's state, the next run looks up the rows in flight")
		os.Exit(exitInterrupted)
	}()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, term.IsTerminal(int(os.Stderr.Fd()))))
}

type config struct {
	in, out, journal string
	concurrency      int
	baseURL          string
	faults           string
	attemptTimeout   time.Duration
	rateLimitedDelay time.Duration
	horizon          time.Duration
	bookTimeout      time.Duration
	cacheLag         time.Duration
	rate             int
	retryFailed      bool
	progressEvery    time.Duration
	queue            string
	sendWindow       time.Duration
	rescueAfter      time.Duration
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("batchbooking", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.in, "in", "", "input file, CSV or JSON Lines (required)")
	fs.StringVar(&c.out, "out", "", "results file (default: the input path plus \".results.csv\")")
	fs.StringVar(&c.journal, "journal", "", "journal file (default: the input path plus \".journal\"; a temporary file with the embedded sandbox)")
	fs.IntVar(&c.concurrency, "concurrency", batch.DefaultConcurrency, "rows booked at once")
	fs.StringVar(&c.baseURL, "base-url", "", "API base URL, credentials from PRIO_* (default: the real API when PRIO_CLIENT_ID is set, else the embedded sandbox)")
	fs.StringVar(&c.faults, "faults", "none", "fault profile of the embedded sandbox: none, flaky or hostile")
	fs.DurationVar(&c.attemptTimeout, "attempt-timeout", 0, "timeout of one create request (default: the client's 60s; 5s with the embedded sandbox)")
	fs.DurationVar(&c.rateLimitedDelay, "rate-limited-delay", 0, "wait after a 429 without Retry-After (default: the client's 60s, as Prio bans for a minute; 2s with the embedded sandbox)")
	fs.DurationVar(&c.horizon, "horizon", 0, "how long after a send Prio may still process it; no row is sent again before (default: the client's 90s; 3s with the embedded sandbox)")
	fs.DurationVar(&c.bookTimeout, "book-timeout", batch.DefaultBookTimeout, "bound on one row's booking call, sends and look-ups together")
	fs.DurationVar(&c.cacheLag, "cache-lag", 0, "how far the embedded sandbox's order cache lags behind its orders")
	fs.IntVar(&c.rate, "rate", prio.DefaultRetryPolicy().RequestsPerMinute, "requests per minute the client allows itself (0: no limit; also the embedded sandbox's limit)")
	fs.BoolVar(&c.retryFailed, "retry-failed", false, "try again rows that failed in an earlier run")
	fs.DurationVar(&c.progressEvery, "progress-every", 5*time.Second, "interval of the plain progress lines when standard error is not a terminal")
	fs.StringVar(&c.queue, "queue", "", "PostgreSQL URL of a shared booking queue (River) instead of the SQLite journal: commands started with the same input and queue, on any machines, share the work")
	fs.DurationVar(&c.sendWindow, "send-window", prioqueue.DefaultSendWindow, "with -queue: how long one attempt of a job may send")
	fs.DurationVar(&c.rescueAfter, "rescue-after", 0, "with -queue: when a job whose worker died is given to another (default: its timeout plus 1m)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	switch {
	case fs.NArg() > 0:
		return c, fmt.Errorf("unexpected arguments: %v", fs.Args())
	case c.in == "":
		return c, errors.New("-in is required")
	case c.concurrency < 1:
		return c, errors.New("-concurrency must be at least 1")
	case c.rate < 0:
		return c, errors.New("-rate must not be negative")
	case c.attemptTimeout < 0 || c.rateLimitedDelay < 0 || c.horizon < 0 || c.cacheLag < 0 || c.rescueAfter < 0:
		return c, errors.New("-attempt-timeout, -rate-limited-delay, -horizon, -cache-lag and -rescue-after must not be negative")
	case c.bookTimeout <= 0 || c.progressEvery <= 0 || c.sendWindow <= 0:
		return c, errors.New("-book-timeout, -progress-every and -send-window must be positive")
	}
	return c, nil
}

// target is where the rows are booked.
type target struct {
	client  *prio.Client
	sandbox *priotest.Server // nil unless embedded
	where   string
}

func (t *target) close() {
	if t.sandbox != nil {
		t.sandbox.Close()
	}
}

func connect(c config) (*target, error) {
	envOpts, envOK, err := prio.FromEnv()
	if err != nil {
		return nil, err
	}
	policy := prio.DefaultRetryPolicy()
	policy.RequestsPerMinute = c.rate
	t := &target{}
	var opts []prio.Option
	switch {
	case c.baseURL != "":
		if !envOK {
			return nil, errors.New("-base-url needs PRIO_CLIENT_ID and PRIO_CLIENT_SECRET (and PRIO_DISTRIBUTOR_ID)")
		}
		if c.faults != "none" || c.cacheLag != 0 {
			return nil, errors.New("-faults and -cache-lag apply to the embedded sandbox only; set a separate server's on that server")
		}
		opts = append(envOpts, prio.WithBaseURL(c.baseURL))
		t.where = c.baseURL
	case envOK:
		if c.faults != "none" || c.cacheLag != 0 {
			return nil, errors.New("-faults and -cache-lag apply to the embedded sandbox only")
		}
		opts = envOpts
		t.where = "the Prio API (PRIO_* variables)"
	default:
		profile, err := priotest.ProfileByName(c.faults)
		if err != nil {
			return nil, err
		}
		t.sandbox, err = priotest.Start("127.0.0.1:0", priotest.WithFaults(profile), priotest.WithRequestLimit(c.rate),
			priotest.WithOrderCacheLag(c.cacheLag))
		if err != nil {
			return nil, err
		}
		opts = []prio.Option{prio.WithServer(t.sandbox)}
		t.where = fmt.Sprintf("the embedded sandbox at %s (faults %s, cache lag %s)", t.sandbox.URL(), profile.Name, c.cacheLag)
		if c.attemptTimeout == 0 {
			c.attemptTimeout = sandboxAttemptTimeout
		}
		if c.rateLimitedDelay == 0 {
			c.rateLimitedDelay = sandboxRateLimitedDelay
		}
		if c.horizon == 0 {
			c.horizon = sandboxHorizon
		}
	}
	if c.horizon > 0 {
		policy.ProcessingHorizon = c.horizon
	}
	if c.rateLimitedDelay > 0 {
		policy.RateLimitedDelay = c.rateLimitedDelay
	}
	if c.attemptTimeout > 0 {
		policy.BookingAttemptTimeout = c.attemptTimeout
		policy.AttemptTimeout = min(policy.AttemptTimeout, c.attemptTimeout)
	}
	opts = append(opts, prio.WithRetryPolicy(policy), prio.WithMaxConcurrency(2*c.concurrency))
	t.client, err = prio.NewClient(opts...)
	if err != nil {
		t.close()
		return nil, err
	}
	return t, nil
}

// run is the whole command; main adds the signals and the exit.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, terminal bool) int {
	c, err := parseFlags(args, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "batchbooking:", err)
		}
		return exitUsage
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, "batchbooking:", err)
		return exitUsage
	}

	in, err := os.Open(c.in)
	if err != nil {
		return fail(err)
	}
	defer in.Close()
	head := make([]byte, 512)
	n, _ := io.ReadFull(in, head)
	f := detectFormat(c.in, head[:n])
	if _, err := in.Seek(0, io.SeekStart); err != nil {
		return fail(err)
	}
	total, err := countRows(in, f)
	if err != nil {
		return fail(fmt.Errorf("%s: %w", c.in, err))
	}
	if _, err := in.Seek(0, io.SeekStart); err != nil {
		return fail(err)
	}

	t, err := connect(c)
	if err != nil {
		return fail(err)
	}
	defer t.close()

	if c.queue != "" {
		outPath := c.out
		if outPath == "" {
			outPath = c.in + ".results.csv"
		}
		return runQueue(ctx, c, t, in, f, total, stdout, stderr, outPath)
	}

	journalPath := c.journal
	if journalPath == "" {
		if t.sandbox != nil {
			dir, err := os.MkdirTemp("", "batchbooking-")
			if err != nil {
				return fail(err)
			}
			defer os.RemoveAll(dir)
			journalPath = filepath.Join(dir, "sandbox.journal")
		} else {
			journalPath = c.in + ".journal"
		}
	}
	j, err := batch.OpenSQLite(journalPath)
	if err != nil {
		return fail(err)
	}
	journalOpen := true
	defer func() {
		if journalOpen {
			_ = j.Close()
		}
	}()

	outPath := c.out
	if outPath == "" {
		outPath = c.in + ".results.csv"
	}
	results, err := createResults(outPath)
	if err != nil {
		return fail(err)
	}
	fmt.Fprintf(stderr, "booking %d rows of %s with %s\njournal %s\nresults %s\n", total, c.in, t.where, journalPath, outPath)

	prog := newProgress(stderr, total, terminal, c.progressEvery)
	var writeErr error
	r := &batch.Runner{
		Booker:      batch.ClientBooker(t.client),
		Journal:     j,
		Concurrency: c.concurrency,
		BookTimeout: c.bookTimeout,
		RetryFailed: c.retryFailed,
		OnResult: func(res batch.Result) {
			if err := results.write(res); err != nil && writeErr == nil {
				writeErr = err
			}
			prog.add(res)
		},
	}
	sum, runErr := r.Run(ctx, readRows(in, f))
	prog.finish()
	if err := results.close(); err != nil && writeErr == nil {
		writeErr = err
	}
	journalOpen = false
	if err := j.Close(); err != nil && runErr == nil {
		runErr = err
	}

	fmt.Fprintln(stdout, sum.String())
	if t.sandbox != nil {
		st := t.sandbox.Stats()
		fmt.Fprintf(stdout, "sandbox orders_total=%d duplicate_external_references=%d\n", st.OrdersTotal, st.DuplicateExternalReferences)
	}
	if writeErr != nil {
		fmt.Fprintln(stderr, "batchbooking:", writeErr)
	}
	switch {
	case errors.Is(runErr, batch.ErrInterrupted):
		fmt.Fprintf(stderr, "interrupted: %d rows not sent, %d in doubt; run the same command again to finish\n", sum.Pending, sum.Unknown)
		return exitInterrupted
	case runErr != nil:
		fmt.Fprintln(stderr, "batchbooking:", runErr)
		return exitIncomplete
	case writeErr != nil || sum.Failed > 0 || sum.Unknown > 0:
		return exitIncomplete
	}
	return exitOK
}
