package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/priosdk/prio-go/batch"
	"github.com/priosdk/prio-go/prioqueue"
)

// queueStatusChunk is how many references one status query asks about (a
// variable for the tests).
var queueStatusChunk = 5000

// queueReadTimeout bounds one status query of the export.
const queueReadTimeout = time.Minute

// The queue's timings. The settle window is what an attempt has, after its
// send window, to record its result; a job whose worker died is rescued
// once it has run for the rescue delay, which must exceed both.
const (
	queueSettleWindow = 10 * time.Second
	queueInsertChunk  = 500
	queuePollEvery    = 250 * time.Millisecond
)

// runQueue books the input through the PostgreSQL queue at c.queue: it
// enqueues every row (a row already on the queue, enqueued by this command
// on another machine or by an earlier run, stays one job), works jobs with
// c.concurrency workers until every row of the input is settled, and
// writes the results from the queue. Started on several machines with the
// same input and queue, the commands share the work.
func runQueue(ctx context.Context, c config, t *target, in io.Reader, f format, total int, stdout, stderr io.Writer, outPath string) int {
	start := time.Now()
	fail := func(err error) int {
		fmt.Fprintln(stderr, "batchbooking:", err)
		return exitUsage
	}
	pcfg, err := pgxpool.ParseConfig(c.queue)
	if err != nil {
		return fail(fmt.Errorf("-queue: %w", err))
	}
	pcfg.MaxConns = max(pcfg.MaxConns, prioqueue.PoolSize(c.concurrency))
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return fail(fmt.Errorf("-queue: %w", err))
	}
	defer pool.Close()
	if err := prioqueue.Migrate(ctx, pool); err != nil {
		return fail(err)
	}
	w, err := prioqueue.NewWorker(prioqueue.Config{
		Client: t.client, DB: pool,
		SendWindow: c.sendWindow, SettleWindow: queueSettleWindow,
		Concurrency: c.concurrency,
	})
	if err != nil {
		return fail(err)
	}
	rescue := c.rescueAfter
	if rescue == 0 {
		rescue = w.Timeout(nil) + time.Minute
	}
	if rescue <= w.Timeout(nil) {
		return fail(fmt.Errorf("-rescue-after %s must exceed the job timeout, %s (-send-window plus %s)", rescue, w.Timeout(nil), queueSettleWindow))
	}
	workers := river.NewWorkers()
	if err := river.AddWorkerSafely(workers, w); err != nil {
		return fail(err)
	}
	rc, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Queues:               map[string]river.QueueConfig{river.QueueDefault: prioqueue.QueueConfig(c.concurrency)},
		Workers:              workers,
		FetchCooldown:        time.Millisecond,
		FetchPollInterval:    200 * time.Millisecond,
		JobTimeout:           w.Timeout(nil),
		RescueStuckJobsAfter: rescue,
		Logger:               slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return fail(err)
	}

	// Enqueue. Rows that cannot be read are reported, not enqueued.
	distributor := t.client.DistributorID()
	var (
		refs    []string
		bad     []batch.Result
		pending []river.InsertManyParams
	)
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		_, err := rc.InsertMany(ctx, pending)
		pending = pending[:0]
		return err
	}
	for row, err := range readRows(in, f) {
		if err != nil {
			var re *batch.RowError
			if !errors.As(err, &re) {
				return fail(fmt.Errorf("%s: %w", c.in, err))
			}
			bad = append(bad, batch.Result{Line: re.Line, ExternalReference: re.ExternalReference, State: batch.Failed, Err: err})
			continue
		}
		args, err := prioqueue.NewCreateOrderArgs(distributor, row.Request)
		if err != nil {
			bad = append(bad, batch.Result{Line: row.Line, ExternalReference: row.Request.OrderExternalReference, State: batch.Failed, Err: err})
			continue
		}
		refs = append(refs, args.ExternalReference)
		pending = append(pending, river.InsertManyParams{Args: args})
		if len(pending) == queueInsertChunk {
			if err := flush(); err != nil {
				return fail(fmt.Errorf("enqueue: %w", err))
			}
		}
	}
	if err := flush(); err != nil {
		return fail(fmt.Errorf("enqueue: %w", err))
	}
	fmt.Fprintf(stderr, "queued %d rows on %s; working them with %d workers\n", len(refs), redactURL(c.queue), c.concurrency)

	// Work until every row is settled, whoever works it.
	if err := rc.Start(context.WithoutCancel(ctx)); err != nil {
		return fail(err)
	}
	waitErr := waitSettled(ctx, pool, distributor, refs, stderr, c.progressEvery)
	stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	_ = rc.Stop(stopCtx)
	cancel()

	// Export the results from the queue.
	results, err := createResults(outPath)
	if err != nil {
		return fail(err)
	}
	var sum batch.Summary
	for _, r := range bad {
		sum.Rows++
		sum.Failed++
		_ = results.write(r)
	}
	// The statuses are read a chunk at a time, in the input's order, so
	// that the export holds one chunk of them, not every row's.
	var statuses map[string]*prioqueue.Status
	for i, ref := range refs {
		if i%queueStatusChunk == 0 {
			chunk := refs[i:min(i+queueStatusChunk, len(refs))]
			readCtx, cancel := context.WithTimeout(context.Background(), queueReadTimeout)
			statuses, err = prioqueue.Statuses(readCtx, pool, distributor, chunk)
			cancel()
			if err != nil {
				// Nothing is lost: the queue keeps every job and its result.
				results.abort()
				fmt.Fprintln(stderr, "batchbooking: reading the results from the queue:", err)
				fmt.Fprintln(stderr, "the queue keeps the results; run the command again to export them")
				return exitIncomplete
			}
		}
		r := resultOf(ref, statuses[ref])
		switch r.State {
		case batch.Booked:
			sum.Booked++
		case batch.Failed:
			sum.Failed++
		default:
			sum.Unknown++
		}
		sum.Rows++
		sum.Sends += r.Sends
		if err := results.write(r); err != nil {
			results.abort()
			return fail(err)
		}
	}
	if err := results.close(); err != nil {
		return fail(err)
	}
	sum.Elapsed = time.Since(start)
	fmt.Fprintln(stdout, sum.String())
	if t.sandbox != nil {
		st := t.sandbox.Stats()
		fmt.Fprintf(stdout, "sandbox orders_total=%d duplicate_external_references=%d\n", st.OrdersTotal, st.DuplicateExternalReferences)
	}
	switch {
	case waitErr != nil:
		fmt.Fprintf(stderr, "interrupted: %d rows not settled yet; the queue keeps them, run the command again (here or elsewhere) to finish\n", sum.Unknown)
		return exitInterrupted
	case sum.Failed > 0 || sum.Unknown > 0:
		return exitIncomplete
	}
	return exitOK
}

// waitSettled polls the queue until every ref's job is settled or ctx
// ends. Each pass asks only about the refs not settled at the last one, a
// chunk at a time: a settled job stays settled.
func waitSettled(ctx context.Context, pool *pgxpool.Pool, distributor string, refs []string, stderr io.Writer, every time.Duration) error {
	open := slices.Clone(refs)
	var lastLine time.Time
	for {
		still := make([]string, 0, len(open))
		var err error
		for chunk := range slices.Chunk(open, queueStatusChunk) {
			var st map[string]*prioqueue.Status
			if st, err = prioqueue.Statuses(ctx, pool, distributor, chunk); err != nil {
				break
			}
			for _, ref := range chunk {
				if s := st[ref]; s == nil || !s.Settled() {
					still = append(still, ref)
				}
			}
		}
		switch {
		case err != nil:
			// The pass did not finish: every ref it began with stays open.
			if ctx.Err() == nil {
				fmt.Fprintln(stderr, "batchbooking: reading the queue:", err)
			}
		case len(still) == 0:
			return nil
		default:
			open = still
			if time.Since(lastLine) >= every {
				fmt.Fprintf(stderr, "progress: %d/%d rows settled on the queue\n", len(refs)-len(open), len(refs))
				lastLine = time.Now()
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(queuePollEvery):
		}
	}
}

// resultOf turns a job's status into a results line.
func resultOf(ref string, s *prioqueue.Status) batch.Result {
	r := batch.Result{ExternalReference: ref, State: batch.Pending, Err: errors.New("not on the queue")}
	if s == nil {
		return r
	}
	r.Err = nil
	if s.Result != nil {
		r.Sends = s.Result.Sends
		r.OrderReference = s.Result.OrderReference
	}
	switch {
	case s.Result.Booked() && s.Settled():
		r.State = batch.Booked
	case s.Settled():
		r.State = batch.Failed
		r.Err = errors.New(reason(s))
	default:
		r.State = batch.Unknown
		r.Err = fmt.Errorf("job %d is %s: %s", s.JobID, s.State, reason(s))
	}
	return r
}

// reason is the latest recorded error of a job.
func reason(s *prioqueue.Status) string {
	if n := len(s.Errors); n > 0 {
		return s.Errors[n-1].Error
	}
	if s.Result != nil && s.Result.Error != "" {
		return s.Result.Error
	}
	return "no reason recorded"
}

// redactURL hides a password in a connection string for messages.
func redactURL(u string) string {
	cfg, err := pgx.ParseConfig(u)
	if err != nil {
		return "the queue"
	}
	return fmt.Sprintf("postgres %s:%d/%s", cfg.Host, cfg.Port, cfg.Database)
}
