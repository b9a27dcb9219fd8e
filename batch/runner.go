package batch

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"iter"
	"sync"
	"time"

	prio "github.com/priosdk/prio-go"
)

// Booker books orders. ClientBooker adapts a *prio.Client; tests use
// fakes. All workers share one Booker, so it must be safe for concurrent
// use.
type Booker interface {
	// Book books the order, or finds it booked already, under the contract
	// of prio.OrdersService.Create: the runner reads its error with
	// prio.OutcomeOf and nothing else. lastSend is the latest moment an
	// earlier attempt for the row may have sent it (zero: none is known).
	// When it is set, Book must look the order up before sending, return
	// it if found, and send only once the look-up has proved it absent at
	// a time when no earlier send can still be processed; until then it
	// reports an unknown outcome (an *prio.OutcomeUnknownError whose
	// DecidableAt says when to call again) without sending. The Receipt
	// tells what Book did, also when err is not nil.
	Book(ctx context.Context, req *prio.OrderRequest, lastSend time.Time) (Receipt, error)
}

// Receipt is what Book reports besides its error.
type Receipt struct {
	OrderReference string // set when the order is booked
	Sends          int    // create requests that left the process
	Lookups        int    // look-ups by external reference
	// LastSend is the latest moment a send of the order may have been
	// written, as the unknown outcome reports it
	// (prio.OutcomeUnknownError.LastSend); zero otherwise, and when no
	// send is known.
	LastSend time.Time
}

// Row is one booking from the input.
type Row struct {
	Line    int // 1-based position in the input, for messages; 0 if not known
	Request *prio.OrderRequest
}

// RowError reports an input row that could not be read into a Row (a bad
// value, a missing column). An input iterator yields it as its error; the
// runner reports the row as failed and goes on with the next one. Any other
// error from the iterator ends the run.
type RowError struct {
	Line              int
	ExternalReference string // if it could be read
	Err               error
}

// Error names the input line (and the reference, when it could be read)
// before the cause.
func (e *RowError) Error() string {
	if e.ExternalReference != "" {
		return fmt.Sprintf("line %d (%s): %v", e.Line, e.ExternalReference, e.Err)
	}
	return fmt.Sprintf("line %d: %v", e.Line, e.Err)
}

// Unwrap returns the cause.
func (e *RowError) Unwrap() error { return e.Err }

// Errors a Result or Run may carry.
var (
	// ErrInterrupted is returned by Run when its context was cancelled
	// before every row was settled, and carried by the Results of rows it
	// left pending or in doubt.
	ErrInterrupted = errors.New("batch: run interrupted")
	// ErrDuplicateRow is carried by the Result of a row whose external
	// reference already came up earlier in the same run; the row is not
	// booked again.
	ErrDuplicateRow = errors.New("batch: external reference appears twice in the input")
	// ErrEarlierFailure is carried by the Result of a row that failed in
	// an earlier run and is not retried (see Runner.RetryFailed).
	ErrEarlierFailure = errors.New("batch: failed in an earlier run")
)

// Result is the outcome of one row in this run.
type Result struct {
	Line              int
	ExternalReference string
	// State is Booked, Failed or Unknown; Pending when the run was
	// interrupted before the row was sent, or after a send proven to have
	// booked nothing.
	State          State
	OrderReference string
	Err            error // nil when booked
	Sends          int   // create requests sent for the row in this run
	Lookups        int   // look-ups by external reference in this run
	// Earlier is true when the row was settled by an earlier run and
	// nothing was sent for it in this one.
	Earlier bool
	// Recovered is true when an earlier run left the row in doubt and a
	// look-up found its order, so nothing was sent in this run.
	Recovered bool
}

// Summary counts the rows of one run. Booked, Failed, Unknown and Pending
// add up to Rows.
type Summary struct {
	Rows      int
	Booked    int
	Failed    int
	Unknown   int
	Pending   int // not booked, and not in doubt, because the run was interrupted
	Earlier   int // settled (booked or failed) by an earlier run
	Recovered int // found by look-up after an earlier run left them in doubt
	Sends     int // create requests sent
	Lookups   int
	Elapsed   time.Duration
}

// String gives the one-line summary the batch tools print.
func (s Summary) String() string {
	return fmt.Sprintf("booked=%d failed=%d unknown=%d sends=%d elapsed=%s",
		s.Booked, s.Failed, s.Unknown, s.Sends, s.Elapsed.Round(time.Millisecond))
}

func (s *Summary) add(r Result) {
	s.Rows++
	switch r.State {
	case Booked:
		s.Booked++
	case Failed:
		s.Failed++
	case Pending:
		s.Pending++
	default:
		s.Unknown++
	}
	if r.Earlier {
		s.Earlier++
	}
	if r.Recovered {
		s.Recovered++
	}
	s.Sends += r.Sends
	s.Lookups += r.Lookups
}

// Defaults for the Runner's zero fields.
const (
	DefaultConcurrency     = 8
	DefaultDrainTimeout    = 30 * time.Second
	DefaultResolveAttempts = 6
	DefaultBookTimeout     = 5 * time.Minute
	maxErrorText           = 1000
)

// Runner books rows with a fixed number of workers, recording each row's
// state in Journal before and after every Book call. A Runner may be used
// for several runs one after the other, not for two at once on the same
// journal.
type Runner struct {
	Booker  Booker  // required
	Journal Journal // required

	// Concurrency is the number of rows in flight at once (default 8).
	// The workers share the Booker, hence its rate limit and retry budget.
	// A row whose outcome is unknown keeps its worker while it waits.
	Concurrency int
	// DrainTimeout is how long rows already sent may take to finish once
	// the run's context is cancelled (default 30 s). Rows still in flight
	// then are recorded as unknown and settled by the next run.
	DrainTimeout time.Duration
	// BookTimeout bounds each Book call (default 5 min). Before the call
	// the journal records its deadline as the row's LastSend, so that
	// after a crash in the middle of the call the next run knows when the
	// last send can have been written. A longer timeout makes a row left
	// sending by a dead process wait longer before it can be settled.
	BookTimeout time.Duration
	// ResolveAttempts bounds how many more times Book is called within
	// one run for a row whose outcome is unknown or that must be tried
	// later (default 6); each call waits for the time prio.OutcomeOf gave.
	// A row still unsettled after them is recorded as unknown. When a
	// look-up fails, OutcomeOf asks for a second's wait, and the next
	// call fails again about as often as the API does: against the
	// sandbox's flaky profile (one send in five fails) one or two rows in
	// 200 need four calls.
	ResolveAttempts int
	// RetryFailed makes rows that failed in an earlier run be tried again
	// (Book looks them up first) instead of reported as failed.
	RetryFailed bool
	// OnResult, if set, is called with every row's result, from one
	// goroutine at a time, in the order rows finish.
	OnResult func(Result)
}

type runConfig struct {
	concurrency     int
	drainTimeout    time.Duration
	bookTimeout     time.Duration
	resolveAttempts int
}

func (r *Runner) config() runConfig {
	c := runConfig{
		concurrency:     r.Concurrency,
		drainTimeout:    r.DrainTimeout,
		bookTimeout:     r.BookTimeout,
		resolveAttempts: r.ResolveAttempts,
	}
	if c.concurrency <= 0 {
		c.concurrency = DefaultConcurrency
	}
	if c.drainTimeout <= 0 {
		c.drainTimeout = DefaultDrainTimeout
	}
	if c.bookTimeout <= 0 {
		c.bookTimeout = DefaultBookTimeout
	}
	if c.resolveAttempts <= 0 {
		c.resolveAttempts = DefaultResolveAttempts
	}
	return c
}

// task is one row on its way to a worker, with its journal entry as the
// dispatcher found and stamped it.
type task struct {
	row   Row
	ref   string
	entry Entry
}

// run is the state of one Run call.
type run struct {
	r     *Runner
	cfg   runConfig
	id    string
	start time.Time

	ctx     context.Context // the caller's: cancelled means stop taking rows
	sendCtx context.Context // for requests: outlives ctx by the drain timeout
	journal context.Context // for journal writes: never cancelled

	mu        sync.Mutex
	fatalErr  error
	stop      context.CancelCauseFunc // stops intake
	stopSends context.CancelCauseFunc
}

// Run books every row of rows and returns when all rows read have been
// settled, or when the run was interrupted (ctx cancelled) or failed.
//
// Cancelling ctx stops taking new rows; rows already sent get DrainTimeout
// to finish and are then recorded as unknown. Run then returns an error
// matching ErrInterrupted. A journal write that fails ends the run at once,
// since no row may be sent without its "sending" record. The Summary is
// valid in every case.
func (r *Runner) Run(ctx context.Context, rows iter.Seq2[Row, error]) (Summary, error) {
	start := time.Now()
	if r.Booker == nil || r.Journal == nil {
		return Summary{}, errors.New("batch: Runner needs a Booker and a Journal")
	}
	ru := &run{r: r, cfg: r.config(), id: newRunID(), start: start, journal: context.WithoutCancel(ctx)}
	var intake context.Context
	intake, ru.stop = context.WithCancelCause(ctx)
	defer ru.stop(nil)
	ru.ctx = intake
	ru.sendCtx, ru.stopSends = context.WithCancelCause(context.WithoutCancel(ctx))
	defer ru.stopSends(nil)

	// Once intake stops, in-flight rows get the drain timeout.
	var bg sync.WaitGroup
	finished := make(chan struct{})
	bg.Go(func() {
		select {
		case <-intake.Done():
		case <-finished:
			return
		}
		t := time.NewTimer(ru.cfg.drainTimeout)
		defer t.Stop()
		select {
		case <-t.C:
			ru.stopSends(fmt.Errorf("%w: drain timeout of %s passed", ErrInterrupted, ru.cfg.drainTimeout))
		case <-finished:
		}
	})

	var (
		summary Summary
		results = make(chan Result, ru.cfg.concurrency)
		tasks   = make(chan task, ru.chunkSize())
		workers sync.WaitGroup
	)
	bg.Go(func() {
		for res := range results {
			summary.add(res)
			if r.OnResult != nil {
				r.OnResult(res)
			}
		}
	})
	for range ru.cfg.concurrency {
		workers.Go(func() {
			for t := range tasks {
				results <- ru.process(t)
			}
		})
	}

	readErr := ru.dispatch(rows, tasks, results)
	close(tasks)
	workers.Wait()
	close(results)
	close(finished)
	bg.Wait()
	summary.Elapsed = time.Since(start)

	switch {
	case ru.fatal() != nil:
		return summary, ru.fatal()
	case readErr != nil:
		return summary, readErr
	case ctx.Err() != nil:
		return summary, fmt.Errorf("%w: %w", ErrInterrupted, context.Cause(ctx))
	}
	return summary, nil
}

// fail ends the run because of err: no new rows, and requests in flight
// are abandoned (their rows stay "sending" and are settled next time).
func (ru *run) fail(err error) {
	ru.mu.Lock()
	first := ru.fatalErr == nil
	if first {
		ru.fatalErr = err
	}
	ru.mu.Unlock()
	if first {
		ru.stop(err)
		ru.stopSends(err)
	}
}

// fatal returns the error that ended the run, if any.
func (ru *run) fatal() error {
	ru.mu.Lock()
	defer ru.mu.Unlock()
	return ru.fatalErr
}

func (ru *run) chunkSize() int {
	return min(max(4*ru.cfg.concurrency, 16), 256)
}

// dispatch reads rows a chunk at a time, looks each up in the journal,
// stamps the chunk with this run's id in one journal write, and hands the
// rows to the workers in input order. Memory holds at most a few chunks and
// the rows in flight, whatever the size of the input.
func (ru *run) dispatch(rows iter.Seq2[Row, error], tasks chan<- task, results chan<- Result) error {
	next, stopRows := iter.Pull2(rows)
	defer stopRows()
	size := ru.chunkSize()
	chunk := make([]task, 0, size)
	stamps := make([]Entry, 0, size)
	inChunk := make(map[string]struct{}, size)

	// abandon reports rows read but never handed to a worker.
	abandon := func(ts []task) {
		for _, t := range ts {
			results <- ru.interrupted(Result{Line: t.row.Line, ExternalReference: t.ref}, t.entry)
		}
	}
	for {
		if ru.ctx.Err() != nil {
			return nil
		}
		chunk, stamps = chunk[:0], stamps[:0]
		clear(inChunk)
		eof := false
		var readErr error
		for len(chunk) < size {
			row, err, ok := next()
			if !ok {
				eof = true
				break
			}
			if err != nil {
				var re *RowError
				if !errors.As(err, &re) {
					// The rows read so far are still booked.
					readErr = fmt.Errorf("batch: read input: %w", err)
					eof = true
					break
				}
				results <- Result{Line: re.Line, ExternalReference: re.ExternalReference, State: Failed, Err: err}
				continue
			}
			t, res, ok, err := ru.prepare(row, inChunk)
			if err != nil {
				ru.fail(err)
				return nil
			}
			if !ok {
				results <- res
				continue
			}
			inChunk[t.ref] = struct{}{}
			chunk = append(chunk, t)
			stamps = append(stamps, t.entry)
		}
		if err := ru.r.Journal.Put(ru.journal, stamps...); err != nil {
			ru.fail(fmt.Errorf("batch: journal: %w", err))
			return nil
		}
		for i, t := range chunk {
			select {
			case tasks <- t:
			case <-ru.ctx.Done():
				abandon(chunk[i:])
				return nil
			}
		}
		if eof {
			return readErr
		}
	}
}

// prepare checks one row and finds its journal entry. ok is false when the
// row is settled right here (res tells how); err is a journal failure.
func (ru *run) prepare(row Row, inChunk map[string]struct{}) (t task, res Result, ok bool, err error) {
	res = Result{Line: row.Line, State: Failed}
	if row.Request == nil {
		res.Err = errors.New("batch: row without a request")
		return t, res, false, nil
	}
	ref := row.Request.OrderExternalReference
	res.ExternalReference = ref
	if ref == "" {
		res.Err = errors.New("batch: row without order_external_reference")
		return t, res, false, nil
	}
	if _, dup := inChunk[ref]; dup {
		res.Err = ErrDuplicateRow
		return t, res, false, nil
	}
	e, found, err := ru.r.Journal.Get(ru.journal, ref)
	if err != nil {
		return t, res, false, fmt.Errorf("batch: journal: %w", err)
	}
	if found && e.RunID == ru.id {
		res.Err = ErrDuplicateRow
		return t, res, false, nil
	}
	if !found {
		e = Entry{ExternalReference: ref, State: Pending}
	}
	e.LastSend = ru.lastSendOf(e)
	e.RunID = ru.id
	return task{row: row, ref: ref, entry: e}, Result{}, true, nil
}

// lastSendOf is the latest moment an earlier attempt may have sent the
// row. A journal written before LastSend was recorded leaves it zero: a row
// it left sending counts as sent until its Book call's deadline would have
// passed (Updated plus BookTimeout), and a row it left unknown or failed as
// sent until the entry was written, since that happened after the call
// returned.
func (ru *run) lastSendOf(e Entry) time.Time {
	if !e.LastSend.IsZero() || e.State == Pending || e.State == Booked {
		return e.LastSend
	}
	updated := e.Updated
	if updated.IsZero() {
		// A journal that keeps no time: the entry is older than this run.
		updated = ru.start
	}
	if e.State == Sending {
		return updated.Add(ru.cfg.bookTimeout)
	}
	return updated
}

// process settles one row: Book, read the result with prio.OutcomeOf,
// journal it, and for an unknown outcome or a refusal of the moment wait
// for the time OutcomeOf gave and call Book again.
func (ru *run) process(t task) Result {
	e := t.entry
	res := Result{Line: t.row.Line, ExternalReference: t.ref}
	switch {
	case e.State == Booked:
		res.State, res.OrderReference, res.Earlier = Booked, e.OrderReference, true
		return res
	case e.State == Failed && !ru.r.RetryFailed:
		res.State, res.Earlier = Failed, true
		res.Err = fmt.Errorf("%w: %s", ErrEarlierFailure, e.Error)
		return res
	}
	resumed := e.State == Sending || e.State == Unknown
	if ru.ctx.Err() != nil {
		return ru.interrupted(res, e)
	}
	for call := 0; ; call++ {
		// Every send of this call is written before its deadline, so the
		// deadline, journaled first, bounds LastSend if the process dies
		// during the call. Book is told what was known before it.
		known := e.LastSend
		deadline := time.Now().Add(ru.cfg.bookTimeout)
		e.State, e.Attempts, e.LastSend = Sending, e.Attempts+1, later(known, deadline)
		if !ru.put(e) {
			return ru.stopped(res, e, ru.fatal(), false)
		}
		ctx, cancel := context.WithDeadline(ru.sendCtx, deadline)
		rec, err := ru.r.Booker.Book(ctx, t.row.Request, known)
		cancel()
		ended := time.Now()
		res.Sends += rec.Sends
		res.Lookups += rec.Lookups
		e.Sends += rec.Sends

		outcome, at := prio.OutcomeOf(err)
		e.LastSend = later(known, rec.LastSend)
		if rec.LastSend.IsZero() && rec.Sends > 0 && outcome != prio.OutcomeRetryLater {
			// The call sent and names no time: its sends ended by now.
			e.LastSend = later(e.LastSend, ended)
		}
		switch outcome {
		case prio.OutcomeBooked:
			e.State, e.OrderReference, e.Error = Booked, rec.OrderReference, ""
			if !ru.put(e) {
				return ru.stopped(res, e, ru.fatal(), false)
			}
			res.State, res.OrderReference = Booked, rec.OrderReference
			res.Recovered = resumed && res.Sends == 0
			return res
		case prio.OutcomeRefused:
			e.State, e.Error = Failed, errorText(err)
			if !ru.put(e) {
				return ru.stopped(res, e, ru.fatal(), false)
			}
			if errors.Is(err, prio.ErrUnauthorized) || errors.Is(err, prio.ErrForbidden) {
				// No other row will fare better with these credentials.
				ru.fail(fmt.Errorf("batch: %s: %w", t.ref, err))
			}
			res.State, res.Err = Failed, err
			return res
		case prio.OutcomeUnknown:
			e.State = Unknown
		default: // prio.OutcomeRetryLater: nothing was booked
			e.State = Pending
		}
		e.Error = errorText(err)
		if ru.sendCtx.Err() != nil {
			// The drain timeout passed or the run failed: what is left
			// is for the next run.
			return ru.stopped(res, e, fmt.Errorf("%w: %w", context.Cause(ru.sendCtx), err), true)
		}
		if call >= ru.cfg.resolveAttempts {
			return ru.stopped(res, e, err, true)
		}
		if !ru.put(e) {
			return ru.stopped(res, e, ru.fatal(), false)
		}
		if !ru.waitUntil(at) {
			return ru.stopped(res, e, fmt.Errorf("%w: %w", ErrInterrupted, err), false)
		}
	}
}

// stopped reports a row the run leaves unsettled. With record set it is
// first journaled: as unknown, or as pending when it was proven unbooked
// and the run was interrupted (e.State says which).
func (ru *run) stopped(res Result, e Entry, err error, record bool) Result {
	if err == nil {
		err = ErrInterrupted
	}
	if record {
		if e.State != Pending || !errors.Is(err, ErrInterrupted) {
			e.State = Unknown
		}
		e.Error = errorText(err)
		ru.put(e)
	}
	res.State, res.Err = e.State, err
	if e.State != Pending {
		res.State = Unknown
	}
	return res
}

// interrupted reports a row the run stopped before sending. Its journal
// entry is left as it was: pending, or in doubt from an earlier run.
func (ru *run) interrupted(res Result, e Entry) Result {
	res.Err = ErrInterrupted
	switch e.State {
	case Pending:
		res.State = Pending
	case Failed:
		res.State = Failed
	default:
		res.State = Unknown
	}
	return res
}

// put writes e and reports whether it is durable; a failure ends the run.
func (ru *run) put(e Entry) bool {
	if ru.fatal() != nil {
		return false
	}
	if err := ru.r.Journal.Put(ru.journal, e); err != nil {
		ru.fail(fmt.Errorf("batch: journal: %w", err))
		return false
	}
	return true
}

// waitUntil sleeps until at unless the run is interrupted first.
func (ru *run) waitUntil(at time.Time) bool {
	d := time.Until(at)
	if d <= 0 {
		return ru.ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ru.ctx.Done():
		return false
	}
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func errorText(err error) string {
	s := err.Error()
	if len(s) > maxErrorText {
		s = s[:maxErrorText] + "…"
	}
	return s
}

func newRunID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return time.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}
