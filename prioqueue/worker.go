package prioqueue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	prio "github.com/priosdk/prio-go"
)

// Defaults for Config's zero fields.
const (
	DefaultSendWindow   = 3 * time.Minute
	DefaultSettleWindow = 30 * time.Second
	DefaultClockMargin  = 2 * time.Second
)

// Metadata keys the worker keeps on its jobs, beside River's own.
const (
	// metaSendBy: the end of the latest attempt that ended in an unknown
	// outcome (RFC 3339), written before the job is snoozed.
	metaSendBy = "prioqueue_send_by"
	// metaSettled: a refusal already handed to OnSettled, for an attempt
	// that died before River recorded the cancellation.
	metaSettled = "prioqueue_settled"
)

// Config configures a Worker.
type Config struct {
	// Client books the orders (required). Its RetryPolicy bounds each
	// send; the worker bounds the whole call with SendWindow.
	Client *prio.Client
	// DB is the database of the River client the worker is added to
	// (required): the worker records the end of an attempt with an
	// unknown outcome on the job row there, and runs OnSettled in a
	// transaction there.
	DB *pgxpool.Pool
	// OnSettled, if set, is called once a booking is settled: booked, in
	// the transaction that completes the job; refused, in the transaction
	// that records the refusal on the job. An error rolls the transaction
	// back, and the job is tried again (it looks the order up first, so
	// nothing is booked twice).
	OnSettled func(ctx context.Context, tx pgx.Tx, job *river.Job[CreateOrderArgs], res *Result) error
	// SendWindow bounds one attempt's Create call, retries and look-ups
	// included (default 3 min). No create request of an attempt is sent
	// after its window closes.
	SendWindow time.Duration
	// SettleWindow is the time an attempt has after its send window to
	// record its result (default 30 s).
	SettleWindow time.Duration
	// ClockMargin is added to every recorded send time, for the clock
	// difference between the machines that work the queue (default 2 s).
	ClockMargin time.Duration
	// Concurrency, if positive, is the most Create calls the worker makes
	// at once; jobs River hands it beyond that wait for a call to end.
	// River fetches new jobs only when one of its MaxWorkers slots frees,
	// so with MaxWorkers equal to the calls wanted, every fetch's round trip
	// to PostgreSQL leaves a slot idle. Set MaxWorkers higher (QueueConfig
	// gives twice Concurrency) and the next jobs are already held when a
	// call ends. The wait counts in the attempt's send window.
	Concurrency int
	// Logger, if set, receives one line per attempt that does not settle
	// the booking.
	Logger *slog.Logger
}

// QueueConfig is the River queue configuration for a worker with the given
// Concurrency: MaxWorkers twice that, so that the jobs for the next calls
// are fetched while the current ones run (see Config.Concurrency).
func QueueConfig(concurrency int) river.QueueConfig {
	return river.QueueConfig{MaxWorkers: 2 * max(concurrency, 1)}
}

// PoolSize is the number of connections the pool of a River client making
// this many Create calls at once (Config.Concurrency, or River's MaxWorkers
// without it) should allow: each attempt uses a connection for its send
// bound and another for its settling transaction, and River holds
// some of its own (a listener, the producer, the completer). pgxpool's
// default, four or the number of CPUs, makes attempts queue for
// connections.
func PoolSize(maxWorkers int) int32 { return int32(2*maxWorkers + 8) }

// Worker works CreateOrderArgs jobs. Add it with river.AddWorker.
type Worker struct {
	river.WorkerDefaults[CreateOrderArgs]
	cfg Config
	// calls holds a token per Create call in progress, when
	// Config.Concurrency bounds them.
	calls chan struct{}
}

// NewWorker checks cfg and returns the worker.
func NewWorker(cfg Config) (*Worker, error) {
	if cfg.Client == nil || cfg.DB == nil {
		return nil, errors.New("prioqueue: Config needs a Client and a DB")
	}
	if cfg.SendWindow < 0 || cfg.SettleWindow < 0 || cfg.ClockMargin < 0 {
		return nil, errors.New("prioqueue: Config durations must not be negative")
	}
	if cfg.Concurrency < 0 {
		return nil, errors.New("prioqueue: Config.Concurrency must not be negative")
	}
	if cfg.SendWindow == 0 {
		cfg.SendWindow = DefaultSendWindow
	}
	if cfg.SettleWindow == 0 {
		cfg.SettleWindow = DefaultSettleWindow
	}
	if cfg.ClockMargin == 0 {
		cfg.ClockMargin = DefaultClockMargin
	}
	w := &Worker{cfg: cfg}
	if cfg.Concurrency > 0 {
		w.calls = make(chan struct{}, cfg.Concurrency)
	}
	return w, nil
}

// Timeout is the longest an attempt runs: the send window plus the settle
// window. River's Config.RescueStuckJobsAfter must be longer.
func (w *Worker) Timeout(*river.Job[CreateOrderArgs]) time.Duration {
	return w.cfg.SendWindow + w.cfg.SettleWindow
}

// jobMeta is the part of a job's metadata the worker reads.
type jobMeta struct {
	SendBy  time.Time `json:"prioqueue_send_by"`
	Settled *Result   `json:"prioqueue_settled"`
}

// Work makes one attempt at the booking.
func (w *Worker) Work(ctx context.Context, job *river.Job[CreateOrderArgs]) error {
	// No send of this attempt leaves after the deadline. If the attempt
	// dies, River records the failure or the rescue, and the next attempt
	// bounds this one's sends from that record (previousSends).
	deadline := time.Now().Add(w.cfg.SendWindow)
	var meta jobMeta
	if len(job.Metadata) > 0 {
		if err := json.Unmarshal(job.Metadata, &meta); err != nil {
			return fmt.Errorf("prioqueue: job %d: reading metadata: %w", job.ID, err)
		}
	}
	if meta.Settled != nil {
		// An earlier attempt handed a refusal to OnSettled and died before
		// River cancelled the job.
		_ = river.RecordOutput(ctx, meta.Settled)
		return river.JobCancel(&RefusedError{Result: *meta.Settled})
	}
	args := job.Args
	if args.ExternalReference == "" || args.ExternalReference != args.Order.OrderExternalReference ||
		args.DistributorID != w.cfg.Client.DistributorID() {
		err := fmt.Errorf("%w: job for distributor %q and reference %q (order reference %q) on a client of distributor %q",
			ErrInvalidArgs, args.DistributorID, args.ExternalReference, args.Order.OrderExternalReference, w.cfg.Client.DistributorID())
		res := w.result(job, prio.OutcomeRefused, nil, err, prio.CallInfo{})
		return w.refuse(ctx, job, res, err)
	}

	// Create applies the rule for earlier attempts: given their last
	// possible send, it looks the order up first and sends nothing while
	// such a send may still be processed (an unknown outcome, snoozed
	// below until it is decidable).
	prev := w.previousSends(job, meta)

	if w.calls != nil {
		select {
		case w.calls <- struct{}{}:
		case <-ctx.Done():
			// Nothing was sent: River records the error and tries again.
			return fmt.Errorf("prioqueue: job %d: waiting for a call slot: %w", job.ID, context.Cause(ctx))
		}
	}
	callCtx, cancel := context.WithDeadline(ctx, deadline)
	req := args.Order
	var info prio.CallInfo
	opts := []prio.CallOption{prio.WithInfo(&info)}
	if !prev.IsZero() || job.Attempt > 1 {
		opts = append(opts, prio.WithPreviousAttempt(prev))
	}
	order, err := func() (*prio.Order, error) {
		if w.calls != nil {
			// The slot is the call's: recording its result takes none.
			defer func() { <-w.calls }()
		}
		return w.cfg.Client.Orders.Create(callCtx, &req, opts...)
	}()
	cancel()
	end := time.Now()
	outcome, retryAt := prio.OutcomeOf(err)
	res := w.result(job, outcome, order, err, info)

	switch outcome {
	case prio.OutcomeBooked:
		return w.complete(ctx, job, res, later(prev, end.Add(w.cfg.ClockMargin)))
	case prio.OutcomeRefused:
		return w.refuse(ctx, job, res, err)
	}
	// Unknown: a send of this attempt may still be processed until the
	// horizon has passed since its end, and the next attempt, on whatever
	// machine, must look the order up before sending: the bound moves to
	// this attempt's end. An attempt that sent nothing (it only waited out
	// an earlier one) keeps the bound it had: moving it would push the
	// decision back on every attempt. Retry later: nothing was booked and
	// no send of this attempt is still running, so the bound stays the
	// earlier attempts'.
	bound := prev
	if outcome == prio.OutcomeUnknown && (info.Sends > 0 || prev.IsZero()) {
		bound = later(prev, end.Add(w.cfg.ClockMargin))
	}
	if !bound.Equal(meta.SendBy) {
		if berr := w.setSendBy(ctx, job, bound); berr != nil {
			// Unrecorded, the bound falls back to River's record of this
			// attempt (see previousSends), which is later: still sound.
			w.log(ctx, job, "recording the send bound", berr)
			return fmt.Errorf("prioqueue: job %d: %w", job.ID, berr)
		}
	}
	res.RetryAt = retryAt
	_ = river.RecordOutput(ctx, res)
	w.log(ctx, job, outcome.String(), err)
	return river.JobSnooze(max(time.Until(retryAt), 0))
}

// previousSends is the latest moment an earlier attempt of the job may
// have sent a create request: the bound recorded by attempts that ended in
// an unknown outcome, and, for every attempt River recorded as failed or
// rescued, the time of that record plus the attempt timeout. River records
// a failed attempt at its start, and a rescue only once the attempt has
// run longer than RescueStuckJobsAfter, itself longer than the timeout; an
// attempt sends nothing after its timeout, so either way the sum bounds its
// sends. An attempt that snoozed or settled recorded its own bound first.
func (w *Worker) previousSends(job *river.Job[CreateOrderArgs], meta jobMeta) time.Time {
	prev := meta.SendBy
	for _, e := range job.Errors {
		prev = later(prev, e.At.Add(w.Timeout(job)+w.cfg.ClockMargin))
	}
	return prev
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// dbContext is for the worker's own writes: they must happen even when the
// attempt's context has ended, within the settle window.
func (w *Worker) dbContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), w.cfg.SettleWindow)
}

// heldByAttempt ends an UPDATE of the job row ($1, in River's job table of
// the client running the job) that applies only while the attempt ($2,
// started at $3) still holds the job.
const heldByAttempt = ` WHERE id = $1 AND state = 'running' AND attempt = $2 AND attempted_at IS NOT DISTINCT FROM $3`

// setSendBy records the send bound on the job, in its own transaction,
// provided this attempt still holds the job.
func (w *Worker) setSendBy(ctx context.Context, job *river.Job[CreateOrderArgs], t time.Time) error {
	ctx, cancel := w.dbContext(ctx)
	defer cancel()
	var tag []byte
	if !t.IsZero() {
		tag, _ = json.Marshal(map[string]time.Time{metaSendBy: t.UTC()})
	}
	table := schemaOf(ctx).jobTable()
	sql := `UPDATE ` + table + ` SET metadata = metadata - $4` + heldByAttempt
	if tag != nil {
		sql = `UPDATE ` + table + ` SET metadata = metadata || $4::jsonb` + heldByAttempt
	}
	arg := any(metaSendBy)
	if tag != nil {
		arg = string(tag)
	}
	ct, err := w.cfg.DB.Exec(ctx, sql, job.ID, job.Attempt, job.AttemptedAt, arg)
	if err != nil {
		return fmt.Errorf("prioqueue: job %d: recording the send bound: %w", job.ID, err)
	}
	if ct.RowsAffected() != 1 {
		return fmt.Errorf("prioqueue: job %d: %w", job.ID, ErrNotHeld)
	}
	return nil
}

// ErrNotHeld is returned by an attempt that finds its job no longer
// running under it (River's rescuer gave it to another attempt): it sends
// nothing.
var ErrNotHeld = errors.New("prioqueue: the job is no longer held by this attempt")

// complete records a booked result and completes the job, with OnSettled,
// in one transaction; without OnSettled it leaves the completion to River.
func (w *Worker) complete(ctx context.Context, job *river.Job[CreateOrderArgs], res *Result, bound time.Time) error {
	if err := river.RecordOutput(ctx, res); err != nil {
		return err
	}
	if w.cfg.OnSettled == nil {
		// River's completer records the job completed, with its output,
		// in batches.
		return nil
	}
	dbCtx, cancel := w.dbContext(ctx)
	defer cancel()
	err := pgx.BeginFunc(dbCtx, w.cfg.DB, func(tx pgx.Tx) error {
		if w.cfg.OnSettled != nil {
			if err := w.cfg.OnSettled(dbCtx, tx, job, res); err != nil {
				return fmt.Errorf("prioqueue: OnSettled: %w", err)
			}
		}
		_, err := river.JobCompleteTx[*riverpgxv5.Driver](dbCtx, tx, job)
		return err
	})
	if err != nil {
		// The next attempt finds the order; let it do so without waiting
		// out the whole send window.
		if berr := w.setSendBy(ctx, job, bound); berr != nil {
			w.log(ctx, job, "recording the send bound", berr)
		}
		return fmt.Errorf("prioqueue: job %d: completing the booked job: %w", job.ID, err)
	}
	return nil
}

// refuse records a refusal and cancels the job. With OnSettled the refusal
// is first marked on the job in OnSettled's transaction, so an attempt that
// dies before River cancels the job does not run OnSettled twice.
func (w *Worker) refuse(ctx context.Context, job *river.Job[CreateOrderArgs], res *Result, cause error) error {
	_ = river.RecordOutput(ctx, res)
	if w.cfg.OnSettled != nil {
		dbCtx, cancel := w.dbContext(ctx)
		defer cancel()
		mark, err := json.Marshal(map[string]*Result{metaSettled: res})
		if err != nil {
			return err
		}
		err = pgx.BeginFunc(dbCtx, w.cfg.DB, func(tx pgx.Tx) error {
			ct, err := tx.Exec(dbCtx, `UPDATE `+schemaOf(ctx).jobTable()+` SET metadata = metadata || $4::jsonb`+heldByAttempt,
				job.ID, job.Attempt, job.AttemptedAt, string(mark))
			if err != nil {
				return err
			}
			if ct.RowsAffected() != 1 {
				return ErrNotHeld
			}
			if err := w.cfg.OnSettled(dbCtx, tx, job, res); err != nil {
				return fmt.Errorf("prioqueue: OnSettled: %w", err)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("prioqueue: job %d: recording the refusal: %w", job.ID, err)
		}
	}
	return river.JobCancel(&RefusedError{Result: *res, Err: cause})
}

// result describes a Create call's outcome.
func (w *Worker) result(job *river.Job[CreateOrderArgs], outcome prio.Outcome, order *prio.Order, err error, info prio.CallInfo) *Result {
	res := &Result{
		Outcome:           outcome.String(),
		ExternalReference: job.Args.ExternalReference,
		Sends:             info.Sends,
		Attempt:           job.Attempt,
		At:                time.Now().UTC(),
	}
	if order != nil {
		if order.OrderReference != nil {
			res.OrderReference = *order.OrderReference
		}
		res.OrderStatus = string(order.OrderStatus)
	}
	if err != nil {
		res.Error = err.Error()
		var api *prio.APIError
		if errors.As(err, &api) {
			res.StatusCode, res.ErrorCode, res.ErrorReference = api.StatusCode, string(api.Code), api.Reference
		}
	}
	return res
}

func (w *Worker) log(ctx context.Context, job *river.Job[CreateOrderArgs], what string, err error) {
	if w.cfg.Logger == nil {
		return
	}
	w.cfg.Logger.LogAttrs(ctx, slog.LevelInfo, "prioqueue: booking not settled",
		slog.Int64("job_id", job.ID), slog.String("external_reference", job.Args.ExternalReference),
		slog.Int("attempt", job.Attempt), slog.String("outcome", what), slog.Any("error", err))
}
