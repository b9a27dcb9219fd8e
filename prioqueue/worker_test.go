package prioqueue_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	prio "github.com/priosdk/prio-go"
	"github.com/priosdk/prio-go/prioqueue"
	"github.com/priosdk/prio-go/priotest"
)

// TestRootPackageImportsNoQueue keeps River, pgx and PostgreSQL out of what
// a user of package prio compiles.
func TestRootPackageImportsNoQueue(t *testing.T) {
	t.Parallel()
	out, err := exec.CommandContext(t.Context(), "go", "list", "-deps", "github.com/priosdk/prio-go").CombinedOutput()
	require.NoError(t, err, "%s", out)
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"github.com/riverqueue/", "github.com/jackc/", "github.com/priosdk/prio-go/prioqueue"} {
			assert.False(t, strings.HasPrefix(dep, banned), "package prio imports %s", dep)
		}
	}
}

const shopSchema = `CREATE TABLE shop_orders (
	id text PRIMARY KEY,
	booking text NOT NULL DEFAULT 'queued',
	order_reference text,
	settled_calls int NOT NULL DEFAULT 0)`

// markShopOrder is the shop's OnSettled: it updates the shop's own row.
func markShopOrder(ctx context.Context, tx pgx.Tx, job *river.Job[prioqueue.CreateOrderArgs], res *prioqueue.Result) error {
	_, err := tx.Exec(ctx, `UPDATE shop_orders SET booking = $2, order_reference = $3, settled_calls = settled_calls + 1 WHERE id = $1`,
		job.Args.ExternalReference, res.Outcome, res.OrderReference)
	return err
}

// checkout is the shop's transaction: its order row and the booking job,
// committed or rolled back together.
func checkout(t *testing.T, e *env, ref string, commit bool) {
	t.Helper()
	ctx := t.Context()
	tx, err := e.pool.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `INSERT INTO shop_orders (id) VALUES ($1)`, ref)
	require.NoError(t, err)
	_, err = e.queue.InsertTx(ctx, tx, args(t, request(ref)), nil)
	require.NoError(t, err)
	if commit {
		require.NoError(t, tx.Commit(ctx))
	} else {
		require.NoError(t, tx.Rollback(ctx))
	}
}

func TestEnqueueInTheShopsTransaction(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{
		sandbox: []priotest.Option{priotest.WithIdempotency(priotest.IdempotencyNone)},
		config:  func(c *prioqueue.Config) { c.OnSettled = markShopOrder },
	})
	_, err := e.pool.Exec(t.Context(), shopSchema)
	require.NoError(t, err)

	checkout(t, e, "SHOP-ROLLED-BACK", false)
	checkout(t, e, "SHOP-COMMITTED", true)

	s := e.waitSettled(t, "SHOP-COMMITTED", 30*time.Second)
	assert.Equal(t, rivertype.JobStateCompleted, s.State)
	require.NotNil(t, s.Result)
	assert.True(t, s.Result.Booked(), "%+v", s.Result)
	assert.NotEmpty(t, s.Result.OrderReference)
	assert.Equal(t, 1, e.sandbox.OrdersFor("SHOP-COMMITTED"))

	var booking, orderRef string
	var calls int
	require.NoError(t, e.pool.QueryRow(t.Context(), `SELECT booking, order_reference, settled_calls FROM shop_orders WHERE id = 'SHOP-COMMITTED'`).Scan(&booking, &orderRef, &calls))
	assert.Equal(t, "booked", booking)
	assert.Equal(t, s.Result.OrderReference, orderRef)
	assert.Equal(t, 1, calls)

	// The rolled-back checkout left neither its row nor a job, and booked
	// nothing.
	_, ok, err := prioqueue.Lookup(t.Context(), e.pool, priotest.DefaultDistributorID, "SHOP-ROLLED-BACK")
	require.NoError(t, err)
	assert.False(t, ok, "a job survived the rollback")
	assert.Zero(t, e.sandbox.OrdersFor("SHOP-ROLLED-BACK"))
	var rows int
	require.NoError(t, e.pool.QueryRow(t.Context(), `SELECT count(*) FROM shop_orders WHERE id = 'SHOP-ROLLED-BACK'`).Scan(&rows))
	assert.Zero(t, rows)
	assert.Equal(t, 1, e.sandbox.Stats().OrdersTotal)
}

func TestTheSameBookingTwiceIsOneJob(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{sandbox: []priotest.Option{priotest.WithIdempotency(priotest.IdempotencyNone)}, noStart: true})
	first, err := e.queue.Insert(t.Context(), args(t, request("TWICE")), nil)
	require.NoError(t, err)
	other := request("TWICE")
	(*other.OrderBookings[0].ProductTypeDetails)[0].ProductTypeCount = 3 // the same booking, a changed body
	second, err := e.queue.Insert(t.Context(), args(t, other), nil)
	require.NoError(t, err)
	assert.False(t, first.UniqueSkippedAsDuplicate)
	assert.True(t, second.UniqueSkippedAsDuplicate)
	assert.Equal(t, first.Job.ID, second.Job.ID)

	e.start(t)
	e.waitSettled(t, "TWICE", 30*time.Second)
	assert.Equal(t, 1, e.sandbox.OrdersFor("TWICE"))
	// Once booked, the booking stays one job.
	third, err := e.queue.Insert(t.Context(), args(t, request("TWICE")), nil)
	require.NoError(t, err)
	assert.True(t, third.UniqueSkippedAsDuplicate)
}

func TestRefusalCancelsTheJobWithItsReason(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{config: func(c *prioqueue.Config) { c.OnSettled = markShopOrder }})
	_, err := e.pool.Exec(t.Context(), shopSchema)
	require.NoError(t, err)
	_, err = e.pool.Exec(t.Context(), `INSERT INTO shop_orders (id) VALUES ('REFUSED-1')`)
	require.NoError(t, err)
	req := request("REFUSED-1")
	req.OrderBookings[0].ProductId = prio.Ptr("no-such-product")
	_, err = e.queue.Insert(t.Context(), args(t, req), nil)
	require.NoError(t, err)

	s := e.waitSettled(t, "REFUSED-1", 30*time.Second)
	assert.Equal(t, rivertype.JobStateCancelled, s.State)
	require.NotNil(t, s.Result)
	assert.True(t, s.Result.Refused(), "%+v", s.Result)
	assert.GreaterOrEqual(t, s.Result.StatusCode, 400)
	require.Len(t, s.Errors, 1, "one attempt: a refusal is not retried")
	assert.Contains(t, s.Errors[0].Error, `booking "REFUSED-1" refused`)
	assert.Zero(t, e.sandbox.OrdersFor("REFUSED-1"))

	var booking string
	var calls int
	require.NoError(t, e.pool.QueryRow(t.Context(), `SELECT booking, settled_calls FROM shop_orders WHERE id = 'REFUSED-1'`).Scan(&booking, &calls))
	assert.Equal(t, "refused", booking)
	assert.Equal(t, 1, calls)

	// Corrected, the booking can be enqueued again under its reference.
	again, err := e.queue.Insert(t.Context(), args(t, request("REFUSED-1")), nil)
	require.NoError(t, err)
	assert.False(t, again.UniqueSkippedAsDuplicate)
}

// TestUnknownOutcomeWaitsOutTheHorizon: the sandbox deduplicates nothing
// and processes the first create 1.5 s late, after the client gave up at
// 300 ms. Sending again before that processing is over would book twice;
// the worker snoozes until the horizon has passed, then settles the job.
func TestUnknownOutcomeWaitsOutTheHorizon(t *testing.T) {
	t.Parallel()
	slow := priotest.Sequence("createOrder", priotest.FaultDelay)
	slow.Delay = 1500 * time.Millisecond
	e := newEnv(t, envOptions{
		sandbox: []priotest.Option{priotest.WithIdempotency(priotest.IdempotencyNone), priotest.WithFaults(slow)},
		policy:  func(p *prio.RetryPolicy) { p.BookingAttemptTimeout = 300 * time.Millisecond },
	})
	start := time.Now()
	_, err := e.queue.Insert(t.Context(), args(t, request("LATE-1")), nil)
	require.NoError(t, err)

	s := e.waitSettled(t, "LATE-1", 30*time.Second)
	assert.Equal(t, rivertype.JobStateCompleted, s.State)
	require.NotNil(t, s.Result)
	assert.True(t, s.Result.Booked(), "%+v", s.Result)
	assert.Equal(t, 1, e.sandbox.OrdersFor("LATE-1"), "booked twice")
	assert.Zero(t, e.sandbox.Stats().DuplicateExternalReferences)
	t.Logf("settled after %s", time.Since(start).Round(time.Millisecond))
}

// TestAQueueInASchemaOfItsOwn: River's tables live in a schema the River
// client names (river.Config.Schema), and the search path has none. The
// worker's own writes (the send bound after an unknown outcome, the mark
// of a refusal handed to OnSettled) go to that schema's job table, so a
// late booking, a booking and a refusal all settle exactly once; reads go
// through prioqueue.Schema.
func TestAQueueInASchemaOfItsOwn(t *testing.T) {
	t.Parallel()
	slow := priotest.Sequence("createOrder", priotest.FaultDelay)
	slow.Delay = 1500 * time.Millisecond
	e := newEnv(t, envOptions{
		schema:  "bookings",
		sandbox: []priotest.Option{priotest.WithIdempotency(priotest.IdempotencyNone), priotest.WithFaults(slow)},
		policy:  func(p *prio.RetryPolicy) { p.BookingAttemptTimeout = 300 * time.Millisecond },
		config: func(c *prioqueue.Config) {
			c.OnSettled = markShopOrder
			// The first attempt ends before the horizon: unknown.
			c.SendWindow = time.Second
		},
	})
	_, err := e.pool.Exec(t.Context(), shopSchema)
	require.NoError(t, err)
	_, err = e.pool.Exec(t.Context(), `INSERT INTO shop_orders (id) VALUES ('LATE-1'), ('BOOK-1'), ('REFUSED-1')`)
	require.NoError(t, err)

	// The first create is processed late: the attempt's outcome is
	// unknown, and the worker records its send bound on the job.
	_, err = e.queue.Insert(t.Context(), args(t, request("LATE-1")), nil)
	require.NoError(t, err)
	late := e.waitSettled(t, "LATE-1", 30*time.Second)
	assert.Equal(t, rivertype.JobStateCompleted, late.State)
	var bounded bool
	require.NoError(t, e.pool.QueryRow(t.Context(), `SELECT metadata ? 'prioqueue_send_by' FROM bookings.river_job WHERE id = $1`, late.JobID).Scan(&bounded))
	assert.True(t, bounded, "the unknown outcome's send bound is on the job")
	assert.Equal(t, 1, e.sandbox.OrdersFor("LATE-1"), "booked twice")

	refused := request("REFUSED-1")
	refused.OrderBookings[0].ProductId = prio.Ptr("no-such-product")
	_, err = e.queue.Insert(t.Context(), args(t, request("BOOK-1")), nil)
	require.NoError(t, err)
	_, err = e.queue.Insert(t.Context(), args(t, refused), nil)
	require.NoError(t, err)
	assert.Equal(t, rivertype.JobStateCompleted, e.waitSettled(t, "BOOK-1", 30*time.Second).State)
	r := e.waitSettled(t, "REFUSED-1", 30*time.Second)
	assert.Equal(t, rivertype.JobStateCancelled, r.State)
	assert.Len(t, r.Errors, 1, "one attempt: a refusal is not retried")

	rows, err := e.pool.Query(t.Context(), `SELECT id, booking, settled_calls FROM shop_orders ORDER BY id`)
	require.NoError(t, err)
	got := map[string]string{}
	for rows.Next() {
		var id, booking string
		var calls int
		require.NoError(t, rows.Scan(&id, &booking, &calls))
		got[id] = fmt.Sprintf("%s %d", booking, calls)
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, map[string]string{"BOOK-1": "booked 1", "LATE-1": "booked 1", "REFUSED-1": "refused 1"}, got)
	assert.Zero(t, e.sandbox.Stats().DuplicateExternalReferences)

	// The search path holds no River tables; a bad schema name is refused
	// before any query.
	_, _, err = prioqueue.Lookup(t.Context(), e.pool, priotest.DefaultDistributorID, "BOOK-1")
	assert.ErrorContains(t, err, "river_job")
	_, _, err = prioqueue.Schema("bookings; DROP TABLE x").Lookup(t.Context(), e.pool, priotest.DefaultDistributorID, "BOOK-1")
	assert.ErrorContains(t, err, "schema name")
}

// TestAnEarlierAttemptsSendIsWaitedFor: an earlier attempt may have sent
// until now, as recorded either by the worker (an unknown outcome) or by
// River (the rescue of an attempt whose worker died). The next attempt must
// send nothing until the horizon has passed since then (for a rescue, since
// then plus the attempt timeout); if the earlier attempt's order shows up,
// it is found and nothing is sent.
func TestAnEarlierAttemptsSendIsWaitedFor(t *testing.T) {
	t.Parallel()
	const sendWindow, settleWindow = time.Second, time.Second
	for _, tc := range []struct {
		name    string
		rescued bool
		landed  bool
	}{
		{"recorded bound, its order landed", false, true},
		{"recorded bound, it never arrived", false, false},
		{"rescued, its order landed", true, true},
		{"rescued, it never arrived", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{
				sandbox: []priotest.Option{priotest.WithIdempotency(priotest.IdempotencyNone)},
				config:  func(c *prioqueue.Config) { c.SendWindow, c.SettleWindow = sendWindow, settleWindow },
				noStart: true,
			})
			ref := strings.NewReplacer(" ", "-", ",", "").Replace(tc.name)
			res, err := e.queue.Insert(t.Context(), args(t, request(ref)), nil)
			require.NoError(t, err)
			at := time.Now()
			wait := testHorizon
			if tc.rescued {
				rescue, _ := json.Marshal(rivertype.AttemptError{At: at, Attempt: 1, Error: "rescued"})
				_, err = e.pool.Exec(t.Context(), `UPDATE river_job SET attempt = 1, errors = ARRAY[$2::jsonb] WHERE id = $1`, res.Job.ID, string(rescue))
				wait += sendWindow + settleWindow
			} else {
				mark, _ := json.Marshal(map[string]time.Time{"prioqueue_send_by": at})
				_, err = e.pool.Exec(t.Context(), `UPDATE river_job SET metadata = metadata || $2::jsonb WHERE id = $1`, res.Job.ID, string(mark))
			}
			require.NoError(t, err)
			if tc.landed {
				// The earlier attempt's request, processed after it died:
				// sent by a client of its own, as the dead process had.
				dead, err := prio.NewClient(prio.WithServer(e.sandbox))
				require.NoError(t, err)
				time.AfterFunc(time.Second, func() {
					if _, err := dead.Orders.Create(context.Background(), request(ref)); err != nil {
						t.Error(err)
					}
				})
			}
			e.start(t)
			s := e.waitSettled(t, ref, 30*time.Second)
			assert.Equal(t, rivertype.JobStateCompleted, s.State)
			assert.Equal(t, 1, e.sandbox.OrdersFor(ref), "booked twice")
			if tc.landed {
				assert.Zero(t, s.Result.Sends, "the worker sent although the order was there")
			} else {
				assert.GreaterOrEqual(t, s.FinalizedAt.Sub(at), wait, "sent before the earlier attempt's sends were decidable")
			}
		})
	}
}

// TestConcurrencyBoundsTheCalls holds more jobs than the worker may book at
// once: no more than Config.Concurrency create requests reach Prio at a
// time, and every job is booked.
func TestConcurrencyBoundsTheCalls(t *testing.T) {
	t.Parallel()
	counter := &inflightCounter{next: http.DefaultTransport, hold: 30 * time.Millisecond}
	e := newEnv(t, envOptions{
		maxWorkers: 8,
		config:     func(c *prioqueue.Config) { c.Concurrency = 2 },
		client:     []prio.Option{prio.WithHTTPClient(&http.Client{Transport: counter})},
	})
	const jobs = 12
	for i := range jobs {
		_, err := e.queue.Insert(t.Context(), args(t, request(fmt.Sprintf("BOUND-%02d", i))), nil)
		require.NoError(t, err)
	}
	for i := range jobs {
		s := e.waitSettled(t, fmt.Sprintf("BOUND-%02d", i), 30*time.Second)
		require.True(t, s.Result.Booked(), "%+v", s.Result)
	}
	assert.Equal(t, int64(jobs), counter.total.Load(), "create requests")
	assert.Equal(t, int64(2), counter.max.Load(), "create requests at Prio at once")
}

// inflightCounter counts the create requests in flight, holding each for a
// while so that concurrent ones overlap.
type inflightCounter struct {
	next            http.RoundTripper
	hold            time.Duration
	now, max, total atomic.Int64
}

func (c *inflightCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/orders") {
		return c.next.RoundTrip(r)
	}
	c.total.Add(1)
	n := c.now.Add(1)
	defer c.now.Add(-1)
	for m := c.max.Load(); n > m && !c.max.CompareAndSwap(m, n); m = c.max.Load() {
	}
	time.Sleep(c.hold)
	return c.next.RoundTrip(r)
}

func TestNewCreateOrderArgs(t *testing.T) {
	t.Parallel()
	_, err := prioqueue.NewCreateOrderArgs("501", &prio.OrderRequest{})
	assert.ErrorIs(t, err, prioqueue.ErrInvalidArgs)
	_, err = prioqueue.NewCreateOrderArgs("", request("X"))
	assert.ErrorIs(t, err, prioqueue.ErrInvalidArgs)
	req := request("X")
	req.OrderDistributorId = "999"
	_, err = prioqueue.NewCreateOrderArgs("501", req)
	assert.ErrorIs(t, err, prioqueue.ErrInvalidArgs)
	a, err := prioqueue.NewCreateOrderArgs("501", request("X"))
	require.NoError(t, err)
	assert.Equal(t, "501", a.Order.OrderDistributorId)
	assert.Equal(t, prioqueue.Kind, a.Kind())

	var refused error = &prioqueue.RefusedError{Result: prioqueue.Result{ExternalReference: "X"}, Err: prio.ErrInvalidRequest}
	assert.True(t, errors.Is(refused, prio.ErrInvalidRequest))
}
