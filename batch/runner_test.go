package batch

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	prio "github.com/priosdk/prio-go"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// assertExactlyOnce checks that every reference in want has one order on
// the server and the journal records it as booked with that order.
func assertExactlyOnce(t *testing.T, srv *fakeServer, j *MemoryJournal, want []string) {
	t.Helper()
	orders := srv.booked()
	entries := j.Entries()
	for _, ref := range want {
		if assert.Len(t, orders[ref], 1, "orders for %s", ref) {
			assert.Equal(t, Booked, entries[ref].State, "journal state of %s", ref)
			assert.Equal(t, orders[ref][0], entries[ref].OrderReference, "journal order of %s", ref)
		}
	}
}

func TestRunBooksEveryRowOnce(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		srv := newFakeServer()
		j := NewMemoryJournal()
		var got collect
		refs := refsN("ok-", 200)
		r := &Runner{Booker: &fakeBooker{srv: srv}, Journal: j, OnResult: got.add}
		sum, err := r.Run(t.Context(), rowsOf(refs...))
		require.NoError(t, err)

		assert.Equal(t, Summary{Rows: 200, Booked: 200, Sends: 200, Elapsed: sum.Elapsed}, sum)
		assert.Equal(t, "booked=200 failed=0 unknown=0 sends=200 elapsed=0s", sum.String())
		assertExactlyOnce(t, srv, j, refs)
		res := got.byRef()
		require.Len(t, res, 200)
		for _, ref := range refs {
			assert.Equal(t, Booked, res[ref].State)
			assert.Equal(t, srv.booked()[ref][0], res[ref].OrderReference)
			assert.Equal(t, 1, res[ref].Sends)
			assert.NoError(t, res[ref].Err)
		}
		assert.LessOrEqual(t, srv.peak, DefaultConcurrency)
	})
}

func TestRunningAFinishedInputAgainSendsNothing(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		srv := newFakeServer()
		j := NewMemoryJournal()
		refs := append(refsN("ok-", 50), "refused-1", "lost-1")
		r := &Runner{Booker: &fakeBooker{srv: srv}, Journal: j}
		first, err := r.Run(t.Context(), rowsOf(refs...))
		require.NoError(t, err)
		require.Equal(t, 51, first.Booked)
		require.Equal(t, 1, first.Failed)

		var got collect
		r.OnResult = got.add
		creates, finds := srv.totalCreates(), srv.totalFinds()
		again, err := r.Run(t.Context(), rowsOf(refs...))
		require.NoError(t, err)
		assert.Equal(t, 0, again.Sends)
		assert.Equal(t, 0, again.Lookups)
		assert.Equal(t, creates, srv.totalCreates(), "creates sent on the second run")
		assert.Equal(t, finds, srv.totalFinds(), "look-ups on the second run")
		assert.Equal(t, 51, again.Booked)
		assert.Equal(t, 1, again.Failed)
		assert.Equal(t, 52, again.Earlier)
		refused := got.byRef()["refused-1"]
		assert.ErrorIs(t, refused.Err, ErrEarlierFailure)
		assert.Contains(t, refused.Err.Error(), "INVALID_REQUEST")
		assert.Equal(t, srv.booked()["ok-0007"][0], got.byRef()["ok-0007"].OrderReference)
	})
}

// TestRowsInDoubtAreSettledByLookup books one row of each kind of trouble
// and checks what the runner made of Book's results: OutcomeOf alone
// decides, the waits come from DecidableAt or the time a refusal of the
// moment names, and a row in doubt is never sent twice.
func TestRowsInDoubtAreSettledByLookup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		ref      string
		state    State
		sends    int
		lookups  int
		orders   int
		elapsed  time.Duration // virtual time the row takes
		errMatch error
	}{
		{ref: "ok-1", state: Booked, sends: 1},
		// The answer was lost after the order was made: Book finds it.
		{ref: "lost-1", state: Booked, sends: 1, lookups: 1},
		// The answer was lost and the order lands 5 s later: unknown until
		// the horizon has passed, then found, never sent again.
		{ref: "slow-1", state: Booked, sends: 1, lookups: 2, elapsed: fakeHorizon},
		// 503 before processing, proven absent: retry later (5 s), then sent again.
		{ref: "busy-1", state: Booked, sends: 2, lookups: 1, elapsed: 5 * time.Second},
		{ref: "refused-1", state: Failed, sends: 1, errMatch: prio.ErrInvalidRequest},
		// 409 and nothing found: a refusal.
		{ref: "conflict-1", state: Failed, sends: 1, lookups: 1, errMatch: prio.ErrConflict},
		// The client's 4XX guard asks for 20 s: the row waits that long.
		{ref: "limited-1", state: Booked, sends: 1, elapsed: 20 * time.Second},
		// The order exists but look-ups keep failing: unknown after the
		// horizon and DefaultResolveAttempts more calls, never re-sent.
		{ref: "lostfind-1", state: Unknown, sends: 1, lookups: 1 + DefaultResolveAttempts, orders: 1, elapsed: fakeHorizon, errMatch: prio.ErrOutcomeUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				srv := newFakeServer()
				j := NewMemoryJournal()
				var got collect
				r := &Runner{Booker: &fakeBooker{srv: srv}, Journal: j, OnResult: got.add}
				sum, err := r.Run(t.Context(), rowsOf(tt.ref))
				require.NoError(t, err)
				res := got.byRef()[tt.ref]
				assert.Equal(t, tt.state, res.State)
				assert.Equal(t, tt.sends, res.Sends, "sends")
				assert.Equal(t, tt.lookups, res.Lookups, "look-ups")
				assert.Equal(t, tt.elapsed, sum.Elapsed, "virtual time")
				if tt.orders == 0 && tt.state == Booked {
					tt.orders = 1
				}
				assert.Len(t, srv.booked()[tt.ref], tt.orders)
				if tt.errMatch != nil {
					assert.ErrorIs(t, res.Err, tt.errMatch)
				} else {
					assert.NoError(t, res.Err)
				}
				e := j.Entries()[tt.ref]
				assert.Equal(t, tt.state, e.State, "journal state")
				assert.Equal(t, tt.sends, e.Sends, "journal sends")
				if tt.state == Booked {
					assert.Equal(t, res.OrderReference, e.OrderReference)
				} else {
					assert.NotEmpty(t, e.Error)
				}
			})
		})
	}
}

// TestSendingBoundIsJournaledBeforeBook checks what the journal holds
// while Book runs and what Book is told: the entry says sending with the
// call's deadline as LastSend, and Book gets the LastSend known before
// the call, not that bound.
func TestSendingBoundIsJournaledBeforeBook(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		j := NewMemoryJournal()
		earlier := time.Now().Add(-time.Hour)
		require.NoError(t, j.Put(context.Background(), Entry{ExternalReference: "ok-1", State: Unknown, LastSend: earlier, RunID: "old"}))
		var seen []Entry
		var passed []time.Time
		b := bookerFunc(func(ctx context.Context, req *prio.OrderRequest, lastSend time.Time) (Receipt, error) {
			e, _, _ := j.Get(ctx, req.OrderExternalReference)
			seen = append(seen, e)
			passed = append(passed, lastSend)
			dl, ok := ctx.Deadline()
			assert.True(t, ok, "Book has a deadline")
			assert.Equal(t, e.LastSend, dl, "the journaled bound is the call's deadline")
			if len(seen) == 1 {
				time.Sleep(time.Second)
				return Receipt{Sends: 1, Lookups: 1, LastSend: time.Now()},
					&prio.OutcomeUnknownError{LastSend: time.Now(), DecidableAt: time.Now().Add(3 * time.Second)}
			}
			return Receipt{OrderReference: "ORD1", Lookups: 1}, nil
		})
		start := time.Now()
		var got collect
		r := &Runner{Booker: b, Journal: j, BookTimeout: time.Minute, OnResult: got.add}
		_, err := r.Run(t.Context(), rowsOf("ok-1"))
		require.NoError(t, err)
		require.Len(t, seen, 2)
		assert.Equal(t, Sending, seen[0].State)
		assert.Equal(t, start.Add(time.Minute), seen[0].LastSend)
		assert.Equal(t, earlier, passed[0], "Book gets the LastSend known before the call")
		// After the unknown outcome: LastSend is what Book reported, and
		// the second call waits for DecidableAt.
		assert.Equal(t, start.Add(time.Second), passed[1])
		assert.Equal(t, start.Add(4*time.Second).Add(time.Minute), seen[1].LastSend)
		res := got.byRef()["ok-1"]
		assert.Equal(t, Booked, res.State)
		assert.False(t, res.Recovered, "the first call sent")
		assert.Equal(t, 2, res.Lookups)
		assert.Equal(t, 1, res.Sends)
	})
}

type bookerFunc func(ctx context.Context, req *prio.OrderRequest, lastSend time.Time) (Receipt, error)

func (f bookerFunc) Book(ctx context.Context, req *prio.OrderRequest, lastSend time.Time) (Receipt, error) {
	return f(ctx, req, lastSend)
}

// TestResumeAfterCrashAtEveryStep kills the simulated process at every
// step of a run in turn (each journal write, each request before it is
// sent and after it was processed, each look-up), then runs again with the
// same journal and server, and checks that every row is booked exactly
// once and that a third run sends nothing.
func TestResumeAfterCrashAtEveryStep(t *testing.T) {
	t.Parallel()
	refs := []string{"ok-1", "lost-1", "slow-1", "ok-2", "busy-1", "refused-1", "findfail-1", "ok-3"}
	good := []string{"ok-1", "lost-1", "slow-1", "ok-2", "busy-1", "findfail-1", "ok-3"}

	// A clean run tells how many steps there are.
	var steps int64
	synctest.Test(t, func(t *testing.T) {
		c := &crasher{}
		srv := newFakeServer()
		r := &Runner{Booker: &fakeBooker{srv: srv, crash: c}, Journal: &crashJournal{NewMemoryJournal(), c}, Concurrency: 1}
		_, err := r.Run(t.Context(), rowsOf(refs...))
		require.NoError(t, err)
		steps = c.steps.Load()
	})
	require.Greater(t, steps, int64(20))

	for at := int64(1); at <= steps; at++ {
		t.Run(fmt.Sprintf("step%02d", at), func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				srv := newFakeServer()
				j := NewMemoryJournal()
				c := &crasher{at: at}
				crashed := &Runner{Booker: &fakeBooker{srv: srv, crash: c}, Journal: &crashJournal{j, c}, Concurrency: 1}
				_, err := crashed.Run(t.Context(), rowsOf(refs...))
				require.ErrorIs(t, err, errCrashed, "the crash must end the run")
				beforeResume := j.Entries()

				r := &Runner{Booker: &fakeBooker{srv: srv}, Journal: j, Concurrency: 1}
				sum, err := r.Run(t.Context(), rowsOf(refs...))
				require.NoError(t, err)
				assert.Equal(t, len(good), sum.Booked)
				assert.Equal(t, 1, sum.Failed)
				assert.Zero(t, sum.Unknown)
				assertExactlyOnce(t, srv, j, good)
				assert.Empty(t, srv.booked()["refused-1"])
				assert.Equal(t, Failed, j.Entries()["refused-1"].State)
				for ref, e := range beforeResume {
					if e.State == Sending || e.State == Unknown {
						assert.Positive(t, srv.finds[ref], "%s was left %s but not looked up", ref, e.State)
					}
				}

				again, err := r.Run(t.Context(), rowsOf(refs...))
				require.NoError(t, err)
				assert.Zero(t, again.Sends)
				assert.Zero(t, again.Lookups)
			})
		})
	}
}

// TestResumeAfterRandomCrashes crashes concurrent runs at random steps,
// including during the recovery run, before a final clean run.
func TestResumeAfterRandomCrashes(t *testing.T) {
	t.Parallel()
	var refs []string
	for i := range 40 {
		prefix := []string{"ok-", "ok-", "lost-", "busy-", "findfail-", "slow-"}[i%6]
		refs = append(refs, fmt.Sprintf("%s%02d", prefix, i))
	}
	for seed := range uint64(25) {
		t.Run(fmt.Sprintf("seed%02d", seed), func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(seed, 99))
			synctest.Test(t, func(t *testing.T) {
				srv := newFakeServer()
				j := NewMemoryJournal()
				for range 2 {
					c := &crasher{at: 1 + rng.Int64N(150)}
					r := &Runner{Booker: &fakeBooker{srv: srv, crash: c}, Journal: &crashJournal{j, c}, Concurrency: 4}
					_, _ = r.Run(t.Context(), rowsOf(refs...))
				}
				r := &Runner{Booker: &fakeBooker{srv: srv}, Journal: j, Concurrency: 4}
				sum, err := r.Run(t.Context(), rowsOf(refs...))
				require.NoError(t, err)
				assert.Equal(t, len(refs), sum.Booked)
				assertExactlyOnce(t, srv, j, refs)
			})
		})
	}
}

// TestRowsLeftSendingWaitForTheHorizon resumes rows a dead process left
// sending a moment ago, whose orders are still being processed: they are
// looked up first, and not sent again until their journaled LastSend plus
// the horizon has passed, while the rows behind them go ahead on the other
// workers; an interruption during that wait leaves them in doubt.
func TestRowsLeftSendingWaitForTheHorizon(t *testing.T) {
	t.Parallel()
	doubt := []string{"ok-d1", "ok-d2", "ok-d3"}
	refs := append(append([]string{}, doubt...), refsN("ok-p", 30)...)
	// ok-d1 landed, ok-d2 is still being processed, ok-d3 never arrived.
	seed := func(srv *fakeServer, j *MemoryJournal) time.Time {
		last := time.Now().Add(-time.Second)
		srv.mu.Lock()
		srv.seq++
		srv.orders["ok-d1"] = []string{"ORD-early"}
		srv.landing["ok-d2"] = []time.Time{time.Now().Add(3 * time.Second)}
		srv.mu.Unlock()
		for i, ref := range doubt {
			st := []State{Sending, Unknown, Sending}[i]
			require.NoError(t, j.Put(context.Background(), Entry{ExternalReference: ref, State: st, Attempts: 1, Sends: 1, LastSend: last, RunID: "earlier"}))
		}
		return last
	}
	t.Run("complete", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			srv := newFakeServer()
			j := NewMemoryJournal()
			last := seed(srv, j)
			start := time.Now()
			var got collect
			r := &Runner{Booker: &fakeBooker{srv: srv}, Journal: j, Concurrency: 4, OnResult: got.add}
			sum, err := r.Run(t.Context(), rowsOf(refs...))
			require.NoError(t, err)
			assert.Equal(t, len(refs), sum.Booked)
			assert.Equal(t, 30+1, sum.Sends, "only ok-d3, which never arrived, is sent again")
			assert.Equal(t, 2, sum.Recovered)
			for _, ref := range refs[3:] {
				assert.Equal(t, start, srv.created[ref], "%s waited for the rows in doubt", ref)
			}
			assert.Equal(t, last.Add(fakeHorizon), srv.created["ok-d3"], "ok-d3 sent before the horizon passed")
			assert.Equal(t, fakeHorizon-time.Second, sum.Elapsed)
			assertExactlyOnce(t, srv, j, refs)
		})
	})
	t.Run("interrupted", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			srv := newFakeServer()
			j := NewMemoryJournal()
			last := seed(srv, j)
			ctx, cancel := context.WithTimeout(t.Context(), time.Second)
			defer cancel()
			var got collect
			r := &Runner{Booker: &fakeBooker{srv: srv}, Journal: j, Concurrency: 4, OnResult: got.add}
			sum, err := r.Run(ctx, rowsOf(refs...))
			require.ErrorIs(t, err, ErrInterrupted)
			assert.Equal(t, 31, sum.Booked)
			assert.Equal(t, 2, sum.Unknown)
			for _, ref := range doubt[1:] {
				assert.Equal(t, Unknown, got.byRef()[ref].State)
				assert.ErrorIs(t, got.byRef()[ref].Err, ErrInterrupted)
				e := j.Entries()[ref]
				assert.Equal(t, Unknown, e.State)
				assert.Equal(t, last, e.LastSend, "%s: the bound of the dead process's send is kept", ref)
			}
			assert.Zero(t, srv.creates["ok-d2"]+srv.creates["ok-d3"])
		})
	})
}

// TestOldJournalRowsLeftSending resumes rows of a journal written before
// LastSend was kept: a row left sending counts as sent until Updated plus
// BookTimeout, one left unknown until Updated.
func TestOldJournalRowsLeftSending(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		srv := newFakeServer()
		j := NewMemoryJournal()
		written := time.Now()
		require.NoError(t, j.Put(context.Background(),
			Entry{ExternalReference: "ok-s", State: Sending, Attempts: 1, RunID: "old"},
			Entry{ExternalReference: "ok-u", State: Unknown, Attempts: 1, RunID: "old"}))
		time.Sleep(time.Second)
		r := &Runner{Booker: &fakeBooker{srv: srv}, Journal: j, BookTimeout: 30 * time.Second}
		_, err := r.Run(t.Context(), rowsOf("ok-s", "ok-u"))
		require.NoError(t, err)
		assert.Equal(t, written.Add(30*time.Second+fakeHorizon), srv.created["ok-s"])
		assert.Equal(t, written.Add(fakeHorizon), srv.created["ok-u"])
		assertExactlyOnce(t, srv, j, []string{"ok-s", "ok-u"})
	})
}

func TestConcurrencyIsBounded(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		srv := newFakeServer()
		release := make(chan struct{})
		srv.block = func(ctx context.Context, _ string) error {
			select {
			case <-release:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		r := &Runner{Booker: &fakeBooker{srv: srv}, Journal: NewMemoryJournal(), Concurrency: 3}
		done := make(chan Summary)
		go func() {
			sum, _ := r.Run(t.Context(), rowsOf(refsN("ok-", 30)...))
			done <- sum
		}()
		synctest.Wait()
		srv.mu.Lock()
		assert.Equal(t, 3, srv.inFlight)
		srv.mu.Unlock()
		close(release)
		sum := <-done
		assert.Equal(t, 30, sum.Booked)
		assert.Equal(t, 3, srv.peak)
	})
}

func TestInterruptLetsInFlightRowsFinish(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		srv := newFakeServer()
		release := make(chan struct{})
		srv.block = func(ctx context.Context, _ string) error {
			select {
			case <-release:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		j := NewMemoryJournal()
		refs := refsN("ok-", 100)
		ctx, cancel := context.WithCancel(t.Context())
		r := &Runner{Booker: &fakeBooker{srv: srv}, Journal: j, Concurrency: 2}
		type out struct {
			sum Summary
			err error
		}
		done := make(chan out)
		go func() {
			sum, err := r.Run(ctx, rowsOf(refs...))
			done <- out{sum, err}
		}()
		synctest.Wait() // two rows are in Book, the rest queued
		cancel()
		synctest.Wait()
		time.Sleep(5 * time.Second) // in flight past the cancel, within the drain timeout
		close(release)
		o := <-done
		require.ErrorIs(t, o.err, ErrInterrupted)
		require.ErrorIs(t, o.err, context.Canceled)
		assert.Equal(t, 2, o.sum.Booked, "the two rows in flight finish")
		assert.Zero(t, o.sum.Unknown)
		assert.Zero(t, o.sum.Failed)
		assert.Equal(t, o.sum.Rows, o.sum.Booked+o.sum.Pending)
		assert.Less(t, o.sum.Rows, len(refs), "intake stopped")
		assert.Equal(t, 2, srv.totalCreates())
		for ref, e := range j.Entries() {
			assert.Contains(t, []State{Booked, Pending}, e.State, ref)
		}

		srv.block = nil
		sum, err := (&Runner{Booker: &fakeBooker{srv: srv}, Journal: j}).Run(t.Context(), rowsOf(refs...))
		require.NoError(t, err)
		assert.Equal(t, 100, sum.Booked)
		assert.Equal(t, 98, sum.Sends)
		assert.Zero(t, sum.Lookups, "pending rows are sent without a look-up")
		assertExactlyOnce(t, srv, j, refs)
	})
}

func TestDrainTimeoutRecordsRowsInFlightAsUnknown(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		srv := newFakeServer()
		srv.block = func(ctx context.Context, _ string) error {
			<-ctx.Done()
			return context.Cause(ctx)
		}
		j := NewMemoryJournal()
		refs := refsN("ok-", 10)
		ctx, cancel := context.WithCancel(t.Context())
		r := &Runner{Booker: &fakeBooker{srv: srv}, Journal: j, Concurrency: 2, DrainTimeout: 7 * time.Second}
		go func() {
			synctest.Wait()
			cancel()
		}()
		sum, err := r.Run(ctx, rowsOf(refs...))
		require.ErrorIs(t, err, ErrInterrupted)
		assert.Equal(t, 2, sum.Unknown)
		assert.Zero(t, sum.Booked)
		assert.Equal(t, 7*time.Second, sum.Elapsed)
		unknown := 0
		for _, e := range j.Entries() {
			if e.State == Unknown {
				unknown++
				assert.Contains(t, e.Error, "drain timeout")
			}
		}
		assert.Equal(t, 2, unknown)

		srv.block = nil
		sum, err = (&Runner{Booker: &fakeBooker{srv: srv}, Journal: j}).Run(t.Context(), rowsOf(refs...))
		require.NoError(t, err)
		assert.Equal(t, 10, sum.Booked)
		assert.Equal(t, 4, sum.Lookups, "the two rows in doubt are looked up, and again after the horizon")
		assert.Equal(t, 10, sum.Sends)
		assertExactlyOnce(t, srv, j, refs)
	})
}

func TestJournalFailureStopsTheRun(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		srv := newFakeServer()
		j := &failingJournal{Journal: NewMemoryJournal()}
		j.n.Store(1) // the dispatcher's stamp succeeds, the first "sending" fails
		r := &Runner{Booker: &fakeBooker{srv: srv}, Journal: j}
		_, err := r.Run(t.Context(), rowsOf(refsN("ok-", 50)...))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "disk full")
		assert.Zero(t, srv.totalCreates(), "nothing may be sent without its sending record")
	})
}

func TestRefusedCredentialsStopTheRun(t *testing.T) {
	t.Parallel()
	for _, code := range []int{401, 403} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				var creates atomic.Int64
				b := bookerFunc(func(context.Context, *prio.OrderRequest, time.Time) (Receipt, error) {
					creates.Add(1)
					return Receipt{Sends: 1}, &prio.APIError{StatusCode: code, Operation: "createOrder"}
				})
				_, err := (&Runner{Booker: b, Journal: NewMemoryJournal(), Concurrency: 2}).Run(t.Context(), rowsOf(refsN("ok-", 100)...))
				require.ErrorIs(t, err, map[int]error{401: prio.ErrUnauthorized, 403: prio.ErrForbidden}[code])
				assert.LessOrEqual(t, creates.Load(), int64(2), "at most the rows already in flight")
			})
		})
	}
}

// TestOutcomeOfDecides checks that the runner reads Book's errors as
// prio.OutcomeOf does, including those no HTTP status describes.
func TestOutcomeOfDecides(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		err   error
		state State
		calls int
	}{
		{"reference conflict", &prio.ReferenceConflictError{ExternalReference: "ok-1", Reason: "other product"}, Failed, 1},
		{"invalid argument", fmt.Errorf("%w: order_bookings is empty", prio.ErrInvalidArgument), Failed, 1},
		{"422", &prio.APIError{StatusCode: 422}, Failed, 1},
		{"unknown", &prio.OutcomeUnknownError{DecidableAt: time.Now().Add(time.Second)}, Unknown, 1 + DefaultResolveAttempts},
		{"500 proven absent", &prio.APIError{StatusCode: 500}, Unknown, 1 + DefaultResolveAttempts},
		{"unrecognised", errors.New("something else"), Unknown, 1 + DefaultResolveAttempts},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				calls := 0
				b := bookerFunc(func(context.Context, *prio.OrderRequest, time.Time) (Receipt, error) {
					calls++
					return Receipt{}, tt.err
				})
				var got collect
				j := NewMemoryJournal()
				_, err := (&Runner{Booker: b, Journal: j, OnResult: got.add}).Run(t.Context(), rowsOf("ok-1"))
				require.NoError(t, err)
				assert.Equal(t, tt.state, got.byRef()["ok-1"].State)
				assert.ErrorIs(t, got.byRef()["ok-1"].Err, tt.err)
				assert.Equal(t, tt.state, j.Entries()["ok-1"].State)
				assert.Equal(t, tt.calls, calls)
			})
		})
	}
}

// TestRowSettledAfterFiveUnknowns: a row whose first five Book calls end
// unknown (a look-up failing each time, as against a flaky API) is still
// settled within the run by the default Runner.
func TestRowSettledAfterFiveUnknowns(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		calls := 0
		b := bookerFunc(func(context.Context, *prio.OrderRequest, time.Time) (Receipt, error) {
			calls++
			if calls <= 5 {
				return Receipt{Sends: 1}, &prio.OutcomeUnknownError{DecidableAt: time.Now().Add(time.Second)}
			}
			return Receipt{OrderReference: "ORD-1"}, nil
		})
		var got collect
		j := NewMemoryJournal()
		sum, err := (&Runner{Booker: b, Journal: j, OnResult: got.add}).Run(t.Context(), rowsOf("ok-1"))
		require.NoError(t, err)
		assert.Equal(t, 1, sum.Booked)
		assert.Equal(t, 6, calls)
		assert.Equal(t, Booked, j.Entries()["ok-1"].State)
		assert.Equal(t, "ORD-1", got.byRef()["ok-1"].OrderReference)
	})
}

func TestDuplicateReferencesInTheInput(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		srv := newFakeServer()
		j := NewMemoryJournal()
		var got collect
		// The same reference within one chunk and across chunks.
		refs := append([]string{"ok-a", "ok-b", "ok-a"}, refsN("ok-x", 300)...)
		refs = append(refs, "ok-b", "ok-a")
		r := &Runner{Booker: &fakeBooker{srv: srv}, Journal: j, OnResult: got.add}
		sum, err := r.Run(t.Context(), rowsOf(refs...))
		require.NoError(t, err)
		assert.Equal(t, 302, sum.Booked)
		assert.Equal(t, 3, sum.Failed)
		dups := 0
		for _, res := range got.all {
			if errors.Is(res.Err, ErrDuplicateRow) {
				dups++
			}
		}
		assert.Equal(t, 3, dups)
		assertExactlyOnce(t, srv, j, []string{"ok-a", "ok-b"})

		// A new run of the same input is not confused by the earlier one.
		again, err := r.Run(t.Context(), rowsOf(refs...))
		require.NoError(t, err)
		assert.Equal(t, 302, again.Booked)
		assert.Equal(t, 3, again.Failed)
		assert.Zero(t, again.Sends)
	})
}

func TestInputErrors(t *testing.T) {
	t.Parallel()
	badRow := &RowError{Line: 2, ExternalReference: "ok-bad", Err: errors.New("product_type_count: not a number")}
	readErr := errors.New("unexpected EOF")
	tests := []struct {
		name    string
		items   []any // *prio.OrderRequest or error
		wantErr error
		booked  int
		failed  int
	}{
		{name: "row error is a failed row", items: []any{request("ok-1"), badRow, request("ok-2")}, booked: 2, failed: 1},
		{name: "read error ends the run", items: []any{request("ok-1"), readErr, request("ok-2")}, wantErr: readErr, booked: 1},
		{name: "row without reference", items: []any{request(""), request("ok-1")}, booked: 1, failed: 1},
		{name: "row without request", items: []any{(*prio.OrderRequest)(nil), request("ok-1")}, booked: 1, failed: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				rows := func(yield func(Row, error) bool) {
					for i, it := range tt.items {
						var ok bool
						switch v := it.(type) {
						case error:
							ok = yield(Row{}, v)
						case *prio.OrderRequest:
							ok = yield(Row{Line: i + 1, Request: v}, nil)
						}
						if !ok {
							return
						}
					}
				}
				var got collect
				sum, err := (&Runner{Booker: &fakeBooker{srv: newFakeServer()}, Journal: NewMemoryJournal(), OnResult: got.add}).Run(t.Context(), rows)
				if tt.wantErr != nil {
					require.ErrorIs(t, err, tt.wantErr)
				} else {
					require.NoError(t, err)
				}
				assert.Equal(t, tt.booked, sum.Booked)
				assert.Equal(t, tt.failed, sum.Failed)
				if tt.items[1] == badRow {
					assert.ErrorIs(t, got.byRef()["ok-bad"].Err, badRow.Err)
					assert.Equal(t, 2, got.byRef()["ok-bad"].Line)
				}
			})
		})
	}
}

func TestRetryFailedLooksUpAndSendsAgain(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		srv := newFakeServer()
		j := NewMemoryJournal()
		r := &Runner{Booker: &fakeBooker{srv: srv}, Journal: j}
		_, err := r.Run(t.Context(), rowsOf("refused-1", "ok-1"))
		require.NoError(t, err)
		r.RetryFailed = true
		time.Sleep(fakeHorizon) // a later run: the refused send is long over
		sum, err := r.Run(t.Context(), rowsOf("refused-1", "ok-1"))
		require.NoError(t, err)
		assert.Equal(t, 1, sum.Lookups)
		assert.Equal(t, 1, sum.Sends)
		assert.Equal(t, 1, sum.Failed)
		assert.Equal(t, 2, j.Entries()["refused-1"].Attempts)
	})
}

// TestInputIsStreamed checks that the runner reads only a bounded window
// ahead of the rows it has settled, however long the input.
func TestInputIsStreamed(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const n = 20000
		var read, settled, worst atomic.Int64
		rows := iter.Seq2[Row, error](func(yield func(Row, error) bool) {
			for i := range n {
				ahead := read.Add(1) - settled.Load()
				if ahead > worst.Load() {
					worst.Store(ahead)
				}
				if !yield(Row{Line: i + 1, Request: request(fmt.Sprintf("ok-%06d", i))}, nil) {
					return
				}
			}
		})
		r := &Runner{Booker: &fakeBooker{srv: newFakeServer()}, Journal: NewMemoryJournal(), Concurrency: 4,
			OnResult: func(Result) { settled.Add(1) }}
		sum, err := r.Run(t.Context(), rows)
		require.NoError(t, err)
		require.Equal(t, n, sum.Booked)
		// Two chunks (one queued, one being stamped), the rows in the
		// workers and the results waiting for OnResult.
		bound := int64(2*16 + 2*4 + 1)
		assert.LessOrEqual(t, worst.Load(), bound)
	})
}

func TestSummaryString(t *testing.T) {
	t.Parallel()
	s := Summary{Booked: 3, Failed: 2, Unknown: 1, Sends: 7, Elapsed: 1234567 * time.Microsecond}
	assert.Equal(t, "booked=3 failed=2 unknown=1 sends=7 elapsed=1.235s", s.String())
}

func TestRunnerNeedsBookerAndJournal(t *testing.T) {
	t.Parallel()
	_, err := (&Runner{Journal: NewMemoryJournal()}).Run(t.Context(), rowsOf("ok-1"))
	require.Error(t, err)
	assert.True(t, strings.Contains(err.Error(), "Booker"))
}

// BenchmarkRunner measures the runner's own cost per row: an instant fake
// Booker and the in-memory journal.
func BenchmarkRunner(b *testing.B) {
	refs := refsN("ok-", b.N)
	r := &Runner{Booker: &fakeBooker{srv: newFakeServer()}, Journal: NewMemoryJournal()}
	b.ReportAllocs()
	b.ResetTimer()
	sum, err := r.Run(b.Context(), rowsOf(refs...))
	if err != nil || sum.Booked != b.N {
		b.Fatal(sum, err)
	}
}
