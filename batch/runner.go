package batch

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"sync"
	"time"

	prio "github.com/priosdk/prio-go"
)

// Booker books orders and finds them again. ClientBooker adapts a
// *prio.Client; tests use fakes. All workers share one Booker, so it must
// be safe for concurrent use.
type Booker interface {
	// Book creates the order. The Receipt tells how many create requests
	// were sent, also when err is not nil. Only a 4XX answer (an
	// *prio.APIError) or a refusal before sending (prio.ErrInvalidArgument,
	// prio.ErrKeyReused) makes the row fail; any other error, such as one
	// matching prio.ErrOutcomeUnknown, leaves the runner in doubt: it looks
	// the order up before sending again.
	Book(ctx context.Context, req *prio.OrderRequest) (Receipt, error)
	// Find returns the order reference of the order booked under the
	// external reference, or an error matching prio.ErrNotFound when
	// there is proven to be none.
	Find(ctx context.Context, externalReference string) (orderReference string, err error)
}

// Receipt is what Book reports besides its error.
type Receipt struct {
	OrderReference string
	Sends          int // create requests that left the process
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
	// interrupted before the row was sent.
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
	Pending   int // not sent because the run was interrupted
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
	DefaultResolveAttempts = 4
	DefaultResolveDelay    = 2 * time.Second
	maxResolveDelay        = time.Minute
	maxErrorText           = 1000
)

// Runner books rows with a fixed number of workers, recording each row's
// state in Journal before and after every create request. A Runner may be
// used for several runs one after the other, not for two at once on the
// same journal.
type Runner struct {
	Booker  Booker  // required
	Journal Journal // required

	// Concurrency is the number of rows in flight at once (default 8).
	// The workers share the Booker, hence its rate limit and retry budget.
	Concurrency int
	// DrainTimeout is how long rows already sent may take to finish once
	// the run's context is cancelled (default 30 s). Rows still in flight
	// then are recorded as unknown and looked up by the next run.
	DrainTimeout time.Duration
	// ResolveAttempts bounds the rounds spent on a row in doubt within one
	// run, each round a look-up and, if that proves the order absent, one
	// more create (default 4). A row still in doubt after them is
	// recorded as unknown.
	ResolveAttempts int
	// ResolveDelay is how long a row in doubt is left alone before it is
	// looked up, doubling each round up to a minute (default 2 s), or as
	// long as a rate limit asks if that is longer. It gives a request that
	// is still being processed by Prio time to land, so that the look-up
	// sees it: it should exceed the time the server may go on processing a
	// request whose client is gone. Rows an earlier run left in doubt are
	// looked up once this much time has passed since the start of the run.
	ResolveDelay time.Duration
	// RetryFailed makes rows that failed in an earlier run be tried again
	// (after a look-up) instead of reported as failed.
	RetryFailed bool
	// OnResult, if set, is called with every row's result, from one
	// goroutine at a time, in the order rows finish.
	OnResult func(Result)
}

type runConfig struct {
	concurrency     int
	drainTimeout    time.Duration
	resolveAttempts int
	resolveDelay    time.Duration
}

func (r *Runner) config() runConfig {
	c := runConfig{
		concurrency:     r.Concurrency,
		drainTimeout:    r.DrainTimeout,
		resolveAttempts: r.ResolveAttempts,
		resolveDelay:    r.ResolveDelay,
	}
	if c.concurrency <= 0 {
		c.concurrency = DefaultConcurrency
	}
	if c.drainTimeout <= 0 {
		c.drainTimeout = DefaultDrainTimeout
	}
	if c.resolveAttempts <= 0 {
		c.resolveAttempts = DefaultResolveAttempts
	}
	if c.resolveDelay <= 0 {
		c.resolveDelay = DefaultResolveDelay
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
// are abandoned (their rows stay "sending" and are looked up next time).
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
// rows to the workers. Rows an earlier run left in doubt are held back
// until the resolve delay has passed since the start of the run (see
// Runner.ResolveDelay), while the rows behind them go ahead; at most two
// chunks are held so. Memory holds at most a few chunks and the rows in
// flight, whatever the size of the input.
func (ru *run) dispatch(rows iter.Seq2[Row, error], tasks chan<- task, results chan<- Result) error {
	next, stopRows := iter.Pull2(rows)
	defer stopRows()
	size := ru.chunkSize()
	chunk := make([]task, 0, size)
	stamps := make([]Entry, 0, size)
	inChunk := make(map[string]struct{}, size)
	gate := ru.start.Add(ru.cfg.resolveDelay)
	held := make([]task, 0, 2*size)

	send := func(t task) bool {
		select {
		case tasks <- t:
			return true
		case <-ru.ctx.Done():
			return false
		}
	}
	// abandon reports rows read but never handed to a worker.
	abandon := func(ts []task) {
		for _, t := range ts {
			results <- ru.interrupted(Result{Line: t.row.Line, ExternalReference: t.ref}, t.entry)
		}
	}
	// release hands over the held rows once the gate is open, waiting
	// for it when wait is set.
	release := func(wait bool) bool {
		if len(held) == 0 {
			return true
		}
		if time.Now().Before(gate) {
			if !wait {
				return true
			}
			if !ru.wait(time.Until(gate)) {
				abandon(held)
				held = held[:0]
				return false
			}
		}
		for i, t := range held {
			if !send(t) {
				abandon(held[i:])
				held = held[:0]
				return false
			}
		}
		held = held[:0]
		return true
	}

	var readErr error
	for {
		if ru.ctx.Err() != nil {
			abandon(held)
			return nil
		}
		chunk, stamps = chunk[:0], stamps[:0]
		clear(inChunk)
		eof := false
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
				abandon(held)
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
			abandon(held)
			return nil
		}
		for i, t := range chunk {
			if (t.entry.State == Sending || t.entry.State == Unknown) && time.Now().Before(gate) {
				if len(held) < cap(held) {
					held = append(held, t)
					continue
				}
				if !release(true) {
					abandon(chunk[i:])
					return nil
				}
			}
			if !send(t) {
				abandon(chunk[i:])
				abandon(held)
				return nil
			}
		}
		if !release(eof) {
			return nil
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
	e.RunID = ru.id
	return task{row: row, ref: ref, entry: e}, Result{}, true, nil
}

// verdict is what an answer to a create request proves.
type verdict int

const (
	verdictBooked  verdict = iota
	verdictRefused         // no order was made; the row fails
	verdictFatal           // no order was made, and no other row will fare better
	verdictDoubt           // an order may or may not exist
)

// judge classifies Book's error. Only a 4XX answer, or the client's
// refusal of the request before sending it, proves that no order was made;
// everything else (an outcome-unknown error, a 5XX, a dropped connection,
// a timeout, a local rate limit) is treated as doubt and settled by a
// look-up, which costs one GET and cannot book twice.
func judge(err error) verdict {
	if err == nil {
		return verdictBooked
	}
	if errors.Is(err, prio.ErrOutcomeUnknown) {
		return verdictDoubt
	}
	if errors.Is(err, prio.ErrInvalidArgument) || errors.Is(err, prio.ErrKeyReused) {
		// Refused by the client before anything was sent.
		return verdictRefused
	}
	var apiErr *prio.APIError
	if !errors.As(err, &apiErr) {
		return verdictDoubt
	}
	switch code := apiErr.StatusCode; {
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return verdictFatal
	case code == http.StatusRequestTimeout || code == http.StatusConflict || code == http.StatusTooManyRequests:
		// 409 may mean the external reference is already booked.
		return verdictDoubt
	case code >= 400 && code < 500:
		return verdictRefused
	}
	return verdictDoubt
}

// process settles one row.
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
	inDoubt := e.State != Pending
	if e.State == Sending || e.State == Unknown {
		// An earlier run may have died with a request still being
		// processed. It died before this run started, so waiting until
		// the resolve delay has passed since the start gives that request
		// at least as long to land as a doubt within a run gets.
		if !ru.wait(time.Until(ru.start.Add(ru.cfg.resolveDelay))) {
			return ru.interrupted(res, e)
		}
	}
	var lastErr error
	for round := 0; round < ru.cfg.resolveAttempts; round++ {
		if inDoubt {
			if round > 0 && !ru.wait(max(ru.delay(round), retryAfter(lastErr))) {
				return ru.giveUp(res, e, lastErr, true)
			}
			orderRef, err := ru.r.Booker.Find(ru.sendCtx, t.ref)
			res.Lookups++
			switch {
			case err == nil:
				e.State, e.OrderReference, e.Error = Booked, orderRef, ""
				if !ru.put(e) {
					return ru.giveUp(res, e, ru.fatal(), false)
				}
				res.State, res.OrderReference = Booked, orderRef
				res.Recovered = res.Sends == 0
				return res
			case errors.Is(err, prio.ErrNotFound):
				// Proven absent: sending again cannot book twice.
			default:
				lastErr = err
				if ru.sendCtx.Err() != nil {
					return ru.giveUp(res, e, lastErr, true)
				}
				continue
			}
		}
		if ru.ctx.Err() != nil {
			return ru.interrupted(res, e)
		}
		e.State, e.Attempts = Sending, e.Attempts+1
		if !ru.put(e) {
			return ru.giveUp(res, e, ru.fatal(), false)
		}
		rec, err := ru.r.Booker.Book(ru.sendCtx, t.row.Request)
		res.Sends += rec.Sends
		e.Sends += rec.Sends
		switch v := judge(err); v {
		case verdictBooked:
			e.State, e.OrderReference, e.Error = Booked, rec.OrderReference, ""
			if !ru.put(e) {
				return ru.giveUp(res, e, ru.fatal(), false)
			}
			res.State, res.OrderReference = Booked, rec.OrderReference
			return res
		case verdictRefused, verdictFatal:
			e.State, e.Error = Failed, errorText(err)
			if !ru.put(e) {
				return ru.giveUp(res, e, ru.fatal(), false)
			}
			if v == verdictFatal {
				ru.fail(fmt.Errorf("batch: %s: %w", t.ref, err))
			}
			res.State, res.Err = Failed, err
			return res
		}
		lastErr, inDoubt = err, true
		if ru.sendCtx.Err() != nil {
			return ru.giveUp(res, e, lastErr, true)
		}
	}
	return ru.giveUp(res, e, lastErr, true)
}

// giveUp records the row as unknown (when record is set and the journal
// still works) and reports it so.
func (ru *run) giveUp(res Result, e Entry, err error, record bool) Result {
	if err == nil {
		err = ErrInterrupted
	}
	if record {
		e.State, e.Error = Unknown, errorText(err)
		ru.put(e)
	}
	res.State, res.Err = Unknown, err
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

// wait sleeps for d unless the run is interrupted first.
func (ru *run) wait(d time.Duration) bool {
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

// delay is the wait before look-up round n (n ≥ 1).
func (ru *run) delay(n int) time.Duration {
	d := ru.cfg.resolveDelay
	for i := 1; i < n && d < maxResolveDelay; i++ {
		d *= 2
	}
	return min(d, maxResolveDelay)
}

// retryAfter is how long a rate limit that refused the last request asked
// to wait (Prio's Retry-After, or the client's own 4XX guard or limiter),
// capped at a minute; 0 for other errors.
func retryAfter(err error) time.Duration {
	var d time.Duration
	var local *prio.LocalLimitError
	var apiErr *prio.APIError
	switch {
	case errors.As(err, &local):
		d = local.RetryAfter
	case errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusTooManyRequests:
		d = apiErr.RetryAfter
	}
	return min(d, maxResolveDelay)
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
