package batch_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	prio "github.com/priosdk/prio-go"
	"github.com/priosdk/prio-go/batch"
	"github.com/priosdk/prio-go/generated"
	"github.com/priosdk/prio-go/priotest"
)

// sandbox starts a sandbox that deduplicates nothing.
func sandbox(t *testing.T, opts ...priotest.Option) *priotest.Server {
	t.Helper()
	s, err := priotest.Start("127.0.0.1:0", append([]priotest.Option{priotest.WithIdempotency(priotest.IdempotencyNone), priotest.WithRequestLimit(0)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return s
}

// newClient is a client for s with short waits; edit changes its policy.
// Each client stands for one process: it knows nothing of the sends of
// another.
func newClient(t *testing.T, s *priotest.Server, edit func(*prio.RetryPolicy)) *prio.Client {
	t.Helper()
	p := prio.DefaultRetryPolicy()
	p.BookingAttemptTimeout, p.AttemptTimeout = 2*time.Second, 2*time.Second
	p.BaseDelay, p.MaxDelay, p.RateLimitedDelay = time.Millisecond, 10*time.Millisecond, 10*time.Millisecond
	p.RequestsPerMinute = 0
	p.ProcessingHorizon = 2 * time.Second
	if edit != nil {
		edit(&p)
	}
	c, err := prio.NewClient(
		prio.WithServer(s),
		prio.WithRetryPolicy(p),
	)
	require.NoError(t, err)
	return c
}

func openOrder(ref string) *prio.OrderRequest {
	pid := priotest.ProductOpen
	return &prio.OrderRequest{
		OrderExternalReference: ref,
		OrderBookings: []generated.BookingOption{{
			ProductId:          &pid,
			ProductTypeDetails: &[]generated.RegularBookingItem{{ProductTypeId: priotest.ProductTypeAdult, ProductTypeCount: 1}},
		}},
	}
}

func rowsOf(refs ...string) func(yield func(batch.Row, error) bool) {
	return func(yield func(batch.Row, error) bool) {
		for i, ref := range refs {
			if !yield(batch.Row{Line: i + 1, Request: openOrder(ref)}, nil) {
				return
			}
		}
	}
}

func TestClientBooker(t *testing.T) {
	t.Parallel()
	// The first create is processed but its connection dropped: Create
	// finds the order instead of booking it again.
	s := sandbox(t, priotest.WithFaults(priotest.Sequence("createOrder", priotest.FaultDropAfter)))
	b := batch.ClientBooker(newClient(t, s, nil))

	rec, err := b.Book(t.Context(), openOrder("CB-1"), time.Time{})
	require.NoError(t, err)
	assert.NotEmpty(t, rec.OrderReference)
	assert.Equal(t, 1, rec.Sends)
	assert.Equal(t, 1, rec.Lookups)
	assert.Equal(t, 1, s.OrdersFor("CB-1"))

	// Another process, told of an earlier attempt, looks up and sends
	// nothing.
	other := batch.ClientBooker(newClient(t, s, nil))
	again, err := other.Book(t.Context(), openOrder("CB-1"), time.Now())
	require.NoError(t, err)
	assert.Equal(t, rec.OrderReference, again.OrderReference)
	assert.Equal(t, batch.Receipt{OrderReference: rec.OrderReference, Lookups: 1}, again)

	// Not found, but the earlier attempt's send may still be processed:
	// unknown until the horizon has passed, nothing sent.
	last := time.Now()
	rec, err = other.Book(t.Context(), openOrder("CB-missing"), last)
	outcome, at := prio.OutcomeOf(err)
	require.Equal(t, prio.OutcomeUnknown, outcome, "%v", err)
	assert.Equal(t, last.Add(2*time.Second), at)
	assert.Equal(t, batch.Receipt{Lookups: 1, LastSend: last}, rec)
	assert.Zero(t, s.OrdersFor("CB-missing"))

	pid := priotest.ProductDeclined
	declined := openOrder("CB-2")
	declined.OrderBookings[0].ProductId = &pid
	rec, err = b.Book(t.Context(), declined, time.Time{})
	var apiErr *prio.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, 422, apiErr.StatusCode)
	assert.Equal(t, 1, rec.Sends)
}

// TestRunnerWithClientOnFlakySandbox books through the real client
// against a sandbox that injects faults and deduplicates nothing.
func TestRunnerWithClientOnFlakySandbox(t *testing.T) {
	t.Parallel()
	flaky, err := priotest.ProfileByName("flaky")
	require.NoError(t, err)
	s := sandbox(t, priotest.WithFaults(flaky), priotest.WithSeed(3), priotest.WithOrderCacheLag(3*time.Second))
	j, err := batch.OpenSQLite(filepath.Join(t.TempDir(), "j.journal"))
	require.NoError(t, err)
	defer j.Close()

	const n = 150
	refs := make([]string, n)
	for i := range refs {
		refs[i] = fmt.Sprintf("FLAKY-%03d", i)
	}
	r := &batch.Runner{Booker: batch.ClientBooker(newClient(t, s, nil)), Journal: j}
	sum, err := r.Run(t.Context(), rowsOf(refs...))
	require.NoError(t, err)
	assert.Equal(t, n, sum.Booked, "%+v", sum)
	st := s.Stats()
	assert.Equal(t, n, st.OrdersTotal)
	assert.Zero(t, st.DuplicateExternalReferences)

	again, err := r.Run(t.Context(), rowsOf(refs...))
	require.NoError(t, err)
	assert.Equal(t, n, again.Booked)
	assert.Zero(t, again.Sends)
	assert.Equal(t, n, s.Stats().OrdersTotal)
}

// slowFirstCreate holds the first create for delay before processing it.
func slowFirstCreate(delay time.Duration) priotest.Profile {
	p := priotest.Sequence("createOrder", priotest.FaultDelay)
	p.Delay = delay
	return p
}

// shortSends gives up on a booking send after 300 ms.
func shortSends(p *prio.RetryPolicy) { p.BookingAttemptTimeout = 300 * time.Millisecond }

// TestSlowProcessingIsNotBookedTwice: the first send is processed 1.5 s
// after it arrived, long after the client gave up on it (300 ms), but
// within the horizon (2 s): the row is settled by a look-up once the
// horizon has passed, with one order.
func TestSlowProcessingIsNotBookedTwice(t *testing.T) {
	t.Parallel()
	s := sandbox(t, priotest.WithFaults(slowFirstCreate(1500*time.Millisecond)))
	r := &batch.Runner{Booker: batch.ClientBooker(newClient(t, s, shortSends)), Journal: batch.NewMemoryJournal()}
	start := time.Now()
	sum, err := r.Run(t.Context(), rowsOf("SLOW-1"))
	require.NoError(t, err)
	time.Sleep(time.Until(start.Add(1500 * time.Millisecond))) // the slow send has been processed
	assert.Equal(t, 1, sum.Booked, "%+v", sum)
	assert.Equal(t, 1, s.OrdersFor("SLOW-1"))
	assert.Equal(t, 1, sum.Sends)
}

// TestResumeWhileTheDeadRunsSendIsProcessed: a process sent a row, gave
// up on the send after 300 ms and died inside its Book call, which had a
// 1 s timeout, leaving the row sending with that deadline as LastSend.
// The sandbox processes the send 2.5 s after it arrived. A new process
// (its own client, which knows nothing of the send) resumes at once: the
// row must wait for LastSend plus the horizon and find the order, not
// book it again after an early empty look-up.
func TestResumeWhileTheDeadRunsSendIsProcessed(t *testing.T) {
	t.Parallel()
	s := sandbox(t, priotest.WithFaults(slowFirstCreate(2500*time.Millisecond)))
	j := batch.NewMemoryJournal()
	deadline := deadRun(t, s, j, "RESUME-1", time.Second)

	r := &batch.Runner{Booker: batch.ClientBooker(newClient(t, s, shortSends)), Journal: j, BookTimeout: time.Second}
	sum, err := r.Run(t.Context(), rowsOf("RESUME-1"))
	require.NoError(t, err)
	assert.False(t, time.Now().Before(deadline.Add(2*time.Second)), "settled before the horizon passed")
	// Count once the dead run's send has surely been processed (2.5 s
	// after it left, before deadline plus 2 s).
	time.Sleep(time.Until(deadline.Add(2 * time.Second)))
	assert.Equal(t, 1, s.OrdersFor("RESUME-1"))
	assert.Equal(t, 1, sum.Booked, "%+v", sum)
	assert.Equal(t, 1, sum.Recovered)
	assert.Zero(t, sum.Sends)
}

// TestResumeWithLaggingCacheAndLostAnswer: the dead process's send was
// processed and answered 500, its look-up failed too, and Prio's order
// cache lags 3 s behind. The resumed row is found in the source of truth,
// not sent again.
func TestResumeWithLaggingCacheAndLostAnswer(t *testing.T) {
	t.Parallel()
	faults := priotest.Sequence("createOrder", priotest.Fault5xxAfter)
	faults.Sequences["listOrders"] = []priotest.FaultKind{priotest.Fault5xxBefore}
	s := sandbox(t, priotest.WithOrderCacheLag(3*time.Second), priotest.WithFaults(faults))
	j := batch.NewMemoryJournal()
	deadRun(t, s, j, "LAG-1", time.Second)

	r := &batch.Runner{Booker: batch.ClientBooker(newClient(t, s, shortSends)), Journal: j, BookTimeout: time.Second}
	sum, err := r.Run(t.Context(), rowsOf("LAG-1", "LAG-2"))
	require.NoError(t, err)
	assert.Equal(t, 2, sum.Booked, "%+v", sum)
	assert.Equal(t, 1, s.OrdersFor("LAG-1"))
	assert.Equal(t, 1, s.OrdersFor("LAG-2"))
	assert.Equal(t, 1, sum.Recovered)
	assert.Equal(t, 1, sum.Sends, "LAG-2 only")
	st := s.Stats()
	assert.Zero(t, st.DuplicateExternalReferences)
	assert.Zero(t, st.CachedReads, "a look-up that may prove absence reads the source of truth")
}

// deadRun plays a process that journals ref as sending with its Book
// deadline (bookTimeout ahead), sends it once with a 300 ms send timeout,
// and dies before it can journal anything more. It returns the deadline.
func deadRun(t *testing.T, s *priotest.Server, j batch.Journal, ref string, bookTimeout time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(bookTimeout)
	require.NoError(t, j.Put(t.Context(), sendingEntry(ref, deadline)))
	c := newClient(t, s, func(p *prio.RetryPolicy) { shortSends(p); p.MaxSends = 1 })
	ctx, cancel := context.WithDeadline(t.Context(), deadline)
	defer cancel()
	_, _ = c.Orders.Create(ctx, openOrder(ref))
	return deadline
}
