package prio_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	prio "github.com/priosdk/prio-go"
	"github.com/priosdk/prio-go/priotest"
)

// fastPolicy keeps the default decisions but shrinks every wait, so fault
// tests against the sandbox finish in milliseconds.
func fastPolicy() prio.RetryPolicy {
	p := prio.DefaultRetryPolicy()
	p.BaseDelay = time.Millisecond
	p.MaxDelay = 5 * time.Millisecond
	p.AttemptTimeout = 2 * time.Second
	p.BookingAttemptTimeout = 2 * time.Second
	p.RateLimitedDelay = 10 * time.Millisecond
	p.MaxRetryAfter = 2 * time.Second // the sandbox asks for 1 s
	// The sandbox's slowest injected processing (a 250 ms delay fault)
	// ends well within it.
	p.ProcessingHorizon = 500 * time.Millisecond
	return p
}

// createSettled books req the way a caller is told to: Create, and after
// an unknown outcome Create again once it is decidable. It fails the test
// after a few rounds.
func createSettled(t *testing.T, c *prio.Client, req *prio.OrderRequest, opts ...prio.CallOption) (*prio.Order, int) {
	t.Helper()
	for round := 1; round <= 5; round++ {
		order, err := c.Orders.Create(t.Context(), req, opts...)
		var ue *prio.OutcomeUnknownError
		if !errors.As(err, &ue) {
			require.NoError(t, err)
			return order, round
		}
		require.False(t, ue.DecidableAt.IsZero(), "an unknown outcome says when it is decidable")
		time.Sleep(time.Until(ue.DecidableAt))
	}
	t.Fatalf("%s still unknown after 5 rounds", req.OrderExternalReference)
	return nil, 0
}

func newClient(t *testing.T, s *priotest.Server, opts ...prio.Option) *prio.Client {
	t.Helper()
	base := []prio.Option{
		prio.WithServer(s),
		prio.WithRetryPolicy(fastPolicy()),
	}
	c, err := prio.NewClient(append(base, opts...)...)
	require.NoError(t, err)
	return c
}

func orderFor(ref, product string) *prio.OrderRequest {
	return &prio.OrderRequest{
		OrderExternalReference: ref,
		OrderBookings: []prio.BookingOption{{
			ProductId:          prio.Ptr(product),
			ProductTypeDetails: &[]prio.ProductTypeDetail{{ProductTypeId: priotest.ProductTypeAdult, ProductTypeCount: 1}},
		}},
	}
}

var modes = []priotest.IdempotencyMode{priotest.IdempotencyBoth, priotest.IdempotencyHeader, priotest.IdempotencyReference, priotest.IdempotencyNone}

// TestCreateExactlyOnceUnderFaults is the promise: whatever goes wrong on
// the first sends, and whatever the server does about idempotency, Create
// returns the order and the server holds exactly one.
func TestCreateExactlyOnceUnderFaults(t *testing.T) {
	t.Parallel()
	faults := [][]priotest.FaultKind{
		{priotest.FaultDropAfter},
		{priotest.Fault5xxAfter},
		{priotest.Fault5xxBefore},
		{priotest.FaultResetMidBody},
		{priotest.FaultTruncatedJSON},
		{priotest.FaultMalformedJSON},
		{priotest.FaultHTML},
		{priotest.Fault429},
		{priotest.FaultDropAfter, priotest.Fault5xxAfter},
		{priotest.Fault5xxBefore, priotest.FaultDropAfter, priotest.Fault5xxAfter},
	}
	for _, mode := range modes {
		for _, seq := range faults {
			name := fmt.Sprintf("%s/%v", mode, seq)
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				s := priotest.NewServer(t, priotest.WithIdempotency(mode), priotest.WithFaults(priotest.Sequence("createOrder", seq...)))
				c := newClient(t, s)
				ref := "ext-" + strings.NewReplacer("/", "-", " ", "-", "[", "", "]", "").Replace(name)
				var info prio.CallInfo
				order, rounds := createSettled(t, c, orderFor(ref, priotest.ProductOpen), prio.WithInfo(&info))
				require.NotNil(t, order.OrderReference)
				if seq[0] != priotest.FaultHTML {
					assert.Equal(t, 1, rounds, "decided within the first call")
				}
				assert.Equal(t, ref, order.OrderExternalReference)
				assert.Equal(t, 1, s.OrdersFor(ref), "exactly one order on the server")
				assert.Equal(t, 0, s.Stats().DuplicateExternalReferences)
				assert.Equal(t, prio.DeriveKey("501", "createOrder", ref), info.IdempotencyKey)
				assert.GreaterOrEqual(t, info.Sends, 1)

				// Every Create send carried the same key and the same body.
				var sends []priotest.RecordedRequest
				for _, r := range s.Requests() {
					if r.Operation == "createOrder" {
						sends = append(sends, r)
					}
				}
				require.NotEmpty(t, sends)
				for i, r := range sends {
					assert.Equal(t, info.IdempotencyKey, r.IdempotencyKey)
					assert.Equal(t, sends[0].BodySHA256, r.BodySHA256)
					assert.GreaterOrEqual(t, r.Attempt, 1, "send %d carries App-Attempt", i)
				}
				if rounds == 1 {
					assert.Equal(t, len(sends), info.Sends, "reported sends are the sends the server saw")
				}
			})
		}
	}
}

// TestCreateLooksUpBeforeResending checks the order of events after a
// doubtful failure: no second Create send happens before a look-up.
func TestCreateLooksUpBeforeResending(t *testing.T) {
	t.Parallel()
	s := priotest.NewServer(t, priotest.WithIdempotency(priotest.IdempotencyNone),
		priotest.WithFaults(priotest.Sequence("createOrder", priotest.Fault5xxBefore)))
	c := newClient(t, s)
	var info prio.CallInfo
	_, err := c.Orders.Create(t.Context(), orderFor("lookup-first", priotest.ProductOpen), prio.WithInfo(&info))
	require.NoError(t, err)
	var ops []string
	for _, r := range s.Requests() {
		if r.Operation == "createOrder" || r.Operation == "getOrders" {
			ops = append(ops, r.Operation)
		}
	}
	assert.Equal(t, []string{"createOrder", "getOrders", "createOrder"}, ops)
	assert.Equal(t, 2, info.Sends)
	assert.Equal(t, 1, info.Lookups)
	assert.Equal(t, 1, s.OrdersFor("lookup-first"))
}

// TestCreateOutcomeUnknownThenReconcile: when the look-up fails too, Create
// says so with a typed error carrying everything needed, and Reconcile
// settles it.
func TestCreateOutcomeUnknownThenReconcile(t *testing.T) {
	t.Parallel()
	failLookups := make([]priotest.FaultKind, 4)
	for i := range failLookups {
		failLookups[i] = priotest.Fault5xxBefore
	}
	s := priotest.NewServer(t, priotest.WithIdempotency(priotest.IdempotencyNone),
		priotest.WithFaults(priotest.Sequence("createOrder", priotest.FaultDropAfter).With(priotest.Sequence("getOrders", failLookups...))))
	c := newClient(t, s, prio.WithReconcileSchedule(prio.ReconcileSchedule{Interval: 5 * time.Millisecond, Count: 3, MaxInterval: 20 * time.Millisecond}))

	_, err := c.Orders.Create(t.Context(), orderFor("unknown-1", priotest.ProductOpen))
	require.Error(t, err)
	require.ErrorIs(t, err, prio.ErrOutcomeUnknown)
	var ue *prio.OutcomeUnknownError
	require.ErrorAs(t, err, &ue)
	assert.Equal(t, "unknown-1", ue.ExternalReference)
	assert.Equal(t, prio.DeriveKey("501", "createOrder", "unknown-1"), ue.IdempotencyKey)
	assert.Equal(t, 1, ue.Sends)
	assert.Positive(t, ue.Elapsed)

	order, err := c.Orders.Reconcile(t.Context(), "unknown-1")
	require.NoError(t, err)
	assert.Equal(t, "unknown-1", order.OrderExternalReference)
	assert.Equal(t, 1, s.OrdersFor("unknown-1"))

	// Calling Create again after the unknown outcome books nothing new, even
	// on a server without idempotency: the client remembers the key and
	// looks first.
	var info prio.CallInfo
	again, err := c.Orders.Create(t.Context(), orderFor("unknown-1", priotest.ProductOpen), prio.WithInfo(&info))
	require.NoError(t, err)
	assert.Equal(t, *order.OrderReference, *again.OrderReference)
	assert.Equal(t, 0, info.Sends)
	assert.Equal(t, 1, info.Lookups)
	assert.Equal(t, 1, s.OrdersFor("unknown-1"))

	// A new client (as after a restart) asked to look first does the same.
	fresh := newClient(t, s)
	again, err = fresh.Orders.Create(t.Context(), orderFor("unknown-1", priotest.ProductOpen), prio.WithLookupFirst())
	require.NoError(t, err)
	assert.Equal(t, *order.OrderReference, *again.OrderReference)
	assert.Equal(t, 1, s.OrdersFor("unknown-1"))
}

func TestCreateRefusals(t *testing.T) {
	t.Parallel()
	s := priotest.NewServer(t)
	c := newClient(t, s)
	ctx := t.Context()

	_, err := c.Orders.Create(ctx, nil)
	assert.ErrorIs(t, err, prio.ErrInvalidArgument)
	_, err = c.Orders.Create(ctx, orderFor("", priotest.ProductOpen))
	assert.ErrorIs(t, err, prio.ErrInvalidArgument)
	_, err = c.Orders.Create(ctx, &prio.OrderRequest{OrderExternalReference: "no-bookings"})
	assert.ErrorIs(t, err, prio.ErrInvalidArgument)
	_, err = c.Orders.Create(ctx, orderFor("bad-key", priotest.ProductOpen), prio.WithIdempotencyKey("has space"))
	assert.ErrorIs(t, err, prio.ErrInvalidArgument)
	assert.ErrorIs(t, err, prio.ErrInvalidKey)
	_, err = c.Orders.Create(ctx, orderFor("bad-policy", priotest.ProductOpen), prio.WithCallRetryPolicy(prio.RetryPolicy{}))
	assert.ErrorIs(t, err, prio.ErrInvalidArgument)
	assert.Zero(t, s.Stats().RequestsTotal, "nothing was sent for invalid input")

	// A declined booking is a definitive answer: typed, not retried, and
	// not booked.
	var info prio.CallInfo
	_, err = c.Orders.Create(ctx, orderFor("declined-1", priotest.ProductDeclined), prio.WithInfo(&info))
	require.Error(t, err)
	var ae *prio.APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, http.StatusUnprocessableEntity, ae.StatusCode)
	assert.Equal(t, prio.CodeBookingDeclined, ae.Code)
	assert.NotEmpty(t, ae.Reference)
	assert.Equal(t, 1, ae.Sends)
	assert.Equal(t, info.IdempotencyKey, ae.IdempotencyKey)
	assert.ErrorIs(t, err, prio.ErrInvalidRequest)
	assert.Equal(t, 0, s.OrdersFor("declined-1"))

	// Same external reference, different body: refused locally.
	_, err = c.Orders.Create(ctx, orderFor("twice", priotest.ProductOpen))
	require.NoError(t, err)
	before := s.Stats().RequestsTotal
	_, err = c.Orders.Create(ctx, orderFor("twice", priotest.ProductTimeDate))
	assert.ErrorIs(t, err, prio.ErrKeyReused)
	assert.Equal(t, before, s.Stats().RequestsTotal)
}

func TestCreateConcurrentSameReference(t *testing.T) {
	t.Parallel()
	for _, mode := range []priotest.IdempotencyMode{priotest.IdempotencyBoth, priotest.IdempotencyHeader, priotest.IdempotencyReference} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			s := priotest.NewServer(t, priotest.WithIdempotency(mode))
			c := newClient(t, s)
			var wg sync.WaitGroup
			refs := make([]string, 8)
			for i := range refs {
				wg.Go(func() {
					o, err := c.Orders.Create(t.Context(), orderFor("same-ref", priotest.ProductOpen))
					if err == nil {
						refs[i] = *o.OrderReference
					} else if !errors.Is(err, prio.ErrOutcomeUnknown) {
						assert.ErrorIs(t, err, prio.ErrConflict, "a concurrent twin is refused or told to wait, never booked")
					}
				})
			}
			wg.Wait()
			assert.Equal(t, 1, s.OrdersFor("same-ref"))
			booked := map[string]bool{}
			for _, r := range refs {
				if r != "" {
					booked[r] = true
				}
			}
			assert.Len(t, booked, 1, "at least one caller got the order, and every one that did got the same")
			again, _ := createSettled(t, c, orderFor("same-ref", priotest.ProductOpen))
			assert.True(t, booked[*again.OrderReference], "a twin that waits gets the same order")
			assert.Equal(t, 1, s.OrdersFor("same-ref"))
		})
	}
}

func TestOrderLifecycle(t *testing.T) {
	t.Parallel()
	s := priotest.NewServer(t)
	c := newClient(t, s)
	ctx := t.Context()

	for i := range 7 {
		_, err := c.Orders.Create(ctx, orderFor(fmt.Sprintf("life-%d", i), priotest.ProductOpen))
		require.NoError(t, err)
	}
	o, err := c.Orders.FindByExternalReference(ctx, "life-3")
	require.NoError(t, err)
	got, err := c.Orders.Get(ctx, *o.OrderReference)
	require.NoError(t, err)
	assert.Equal(t, "life-3", got.OrderExternalReference)

	_, err = c.Orders.FindByExternalReference(ctx, "never-booked")
	assert.ErrorIs(t, err, prio.ErrNotFound)

	// List walks every page.
	perPage := 3
	n := 0
	seen := map[string]bool{}
	for o, err := range c.Orders.List(ctx, &prio.ListOrdersParams{ItemsPerPage: &perPage}) {
		require.NoError(t, err)
		n++
		seen[o.OrderExternalReference] = true
	}
	assert.Equal(t, 7, n)
	assert.Len(t, seen, 7)
	page, err := c.Orders.ListPage(ctx, &prio.ListOrdersParams{ItemsPerPage: &perPage, Page: prio.Ptr(3)})
	require.NoError(t, err)
	assert.Equal(t, 3, page.TotalPages)
	assert.Len(t, page.Orders, 1)

	v, err := c.Orders.Voucher(ctx, *o.OrderReference, nil)
	require.NoError(t, err)
	assert.NotEmpty(t, v.URL)

	cancelled, err := c.Orders.Cancel(ctx, *o.OrderReference, nil)
	require.NoError(t, err)
	assert.Equal(t, "ORDER_CANCELLED", string(cancelled.OrderStatus))

	_, err = c.Orders.Get(ctx, "doesnotexist")
	assert.ErrorIs(t, err, prio.ErrNotFound)
}

func TestReconcileSlowSupplier(t *testing.T) {
	t.Parallel()
	s := priotest.NewServer(t, priotest.WithSlowSupplierDelay(100*time.Millisecond))
	c := newClient(t, s, prio.WithReconcileSchedule(prio.ReconcileSchedule{Interval: 20 * time.Millisecond, Count: 5, MaxInterval: 50 * time.Millisecond}))
	o, err := c.Orders.Create(t.Context(), orderFor("slow-1", priotest.ProductSlow))
	require.NoError(t, err)
	assert.Equal(t, "ORDER_PENDING", string(o.OrderStatus))
	settled, err := c.Orders.Reconcile(t.Context(), "slow-1")
	require.NoError(t, err)
	assert.Equal(t, "ORDER_CONFIRMED", string(settled.OrderStatus))
}

func TestReconcileGivesUpOnAbsentOrder(t *testing.T) {
	t.Parallel()
	s := priotest.NewServer(t)
	c := newClient(t, s, prio.WithReconcileSchedule(prio.ReconcileSchedule{Interval: 5 * time.Millisecond, Count: 2, MaxInterval: 10 * time.Millisecond, GiveUpAfter: 30 * time.Millisecond}))
	_, err := c.Orders.Reconcile(t.Context(), "ghost")
	assert.ErrorIs(t, err, prio.ErrNotFound)
	assert.False(t, errors.Is(err, prio.ErrOutcomeUnknown))
}

// TestCreateTimeoutIsNotResent: a send whose answer timed out may still be
// running at Prio; finding no order right away proves nothing, so Create
// does not send again (which would book twice on a server without
// idempotency) and leaves the order to Reconcile.
func TestCreateTimeoutIsNotResent(t *testing.T) {
	t.Parallel()
	s := priotest.NewServer(t, priotest.WithIdempotency(priotest.IdempotencyNone),
		priotest.WithFaults(priotest.Sequence("createOrder", priotest.FaultHang)))
	c := newClient(t, s)
	p := fastPolicy()
	p.BookingAttemptTimeout = 200 * time.Millisecond
	var info prio.CallInfo
	_, err := c.Orders.Create(t.Context(), orderFor("timed-out", priotest.ProductOpen), prio.WithCallRetryPolicy(p), prio.WithInfo(&info))
	require.ErrorIs(t, err, prio.ErrOutcomeUnknown)
	assert.Equal(t, 1, info.Sends, "no re-send after a timeout")
	assert.Equal(t, 1, info.Lookups)
	assert.Equal(t, 0, s.OrdersFor("timed-out"))
}
