package prio_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	prio "github.com/priosdk/prio-go"
	"github.com/priosdk/prio-go/api"
	"github.com/priosdk/prio-go/generated"
	"github.com/priosdk/prio-go/priotest"
	"github.com/priosdk/prio-go/wire"
)

// The tests in this file are the exactly-once rule under the ways Prio can
// behave by its own documentation: order lists served from a lagging
// cache, gateways answering for a slow origin, slow processing, short
// tokens. Each runs against a sandbox that deduplicates nothing, so a
// second send that gets processed is a second order.

func createSends(s *priotest.Server) int {
	n := 0
	for _, r := range s.Requests() {
		if r.Operation == "createOrder" {
			n++
		}
	}
	return n
}

// TestCreateCachedListAfterProcessedFailure: the send was processed and
// its answer lost or replaced by a 500, and Prio's cached order list does
// not show the order yet. The look-up reads the source of truth, so Create
// finds the order instead of booking it again.
func TestCreateCachedListAfterProcessedFailure(t *testing.T) {
	t.Parallel()
	for _, seq := range [][]priotest.FaultKind{
		{priotest.Fault5xxAfter},
		{priotest.FaultDropAfter},
		{priotest.FaultResetMidBody},
		{priotest.Fault5xxAfter, priotest.Fault5xxAfter, priotest.Fault5xxAfter},
	} {
		t.Run(fmt.Sprint(seq), func(t *testing.T) {
			t.Parallel()
			s := priotest.NewServer(t, priotest.WithIdempotency(priotest.IdempotencyNone),
				priotest.WithOrderCacheLag(3*time.Second), priotest.WithFaults(priotest.Sequence("createOrder", seq...)))
			c := newClient(t, s)
			var info prio.CallInfo
			order, err := c.Orders.Create(t.Context(), orderFor("cached-list", priotest.ProductOpen), prio.WithInfo(&info))
			require.NoError(t, err)
			assert.Equal(t, "cached-list", order.OrderExternalReference)
			assert.Equal(t, 1, s.OrdersFor("cached-list"), "booked once")
			assert.Equal(t, 1, info.Sends)
			assert.Equal(t, 1, info.Lookups)
			assert.Positive(t, s.Stats().UncachedReads, "the look-up read the source of truth")
		})
	}
}

// TestCreateGatewayBeforeSlowOrigin: a CDN or load balancer answers 502,
// 503, 504 or 524 with its own page while the origin goes on and books. An
// empty look-up then proves nothing until the processing horizon has
// passed: Create reports the booking as unknown, and the caller's next
// Create, once it is decidable, finds the order.
func TestCreateGatewayBeforeSlowOrigin(t *testing.T) {
	t.Parallel()
	for _, kind := range []priotest.FaultKind{priotest.FaultGateway502, priotest.FaultGateway503, priotest.FaultGateway504, priotest.FaultGateway524} {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			profile := priotest.Sequence("createOrder", kind)
			profile.GatewayDelay, profile.OriginDelay = 10*time.Millisecond, 200*time.Millisecond
			s := priotest.NewServer(t, priotest.WithIdempotency(priotest.IdempotencyNone), priotest.WithFaults(profile))
			// The horizon is ten times the origin's delay, so that a loaded
			// machine cannot make the sandbox break the promise it stands for.
			p := fastPolicy()
			p.ProcessingHorizon = 2 * time.Second
			c := newClient(t, s, prio.WithRetryPolicy(p))
			ref := "gateway-" + string(kind)
			before := time.Now()
			_, err := c.Orders.Create(t.Context(), orderFor(ref, priotest.ProductOpen))
			var ue *prio.OutcomeUnknownError
			require.ErrorAs(t, err, &ue, "a gateway's page is no answer from Prio")
			assert.False(t, errors.Is(err, prio.ErrServer), "a possible booking is not a server error")
			assert.True(t, ue.DecidableAt.After(before.Add(p.ProcessingHorizon)), "decidable a horizon after the send")
			assert.Equal(t, 1, createSends(s), "no re-send before the horizon")

			order, _ := createSettled(t, c, orderFor(ref, priotest.ProductOpen))
			assert.Equal(t, ref, order.OrderExternalReference)
			assert.Equal(t, 1, s.OrdersFor(ref), "booked once")
			assert.Equal(t, 1, createSends(s))
		})
	}
}

// TestCreateRetriedWhileFirstSendProcesses: the caller's own retry after
// an unknown outcome, while the first send is still being processed (1.5
// s of processing against a 300 ms send timeout). The repeat sends nothing
// and says unknown again (never 409 ErrConflict); once decidable, it finds
// the one order.
func TestCreateRetriedWhileFirstSendProcesses(t *testing.T) {
	t.Parallel()
	for _, mode := range []priotest.IdempotencyMode{priotest.IdempotencyNone, priotest.IdempotencyHeader} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			profile := priotest.Sequence("createOrder", priotest.FaultDelay)
			profile.Delay = 1500 * time.Millisecond
			s := priotest.NewServer(t, priotest.WithIdempotency(mode), priotest.WithFaults(profile))
			p := fastPolicy()
			p.BookingAttemptTimeout = 300 * time.Millisecond
			p.ProcessingHorizon = 3 * time.Second
			c := newClient(t, s, prio.WithRetryPolicy(p))
			ref := "retried-" + string(mode)

			_, err := c.Orders.Create(t.Context(), orderFor(ref, priotest.ProductOpen))
			require.ErrorIs(t, err, prio.ErrOutcomeUnknown)
			var info prio.CallInfo
			_, err = c.Orders.Create(t.Context(), orderFor(ref, priotest.ProductOpen), prio.WithInfo(&info))
			require.ErrorIs(t, err, prio.ErrOutcomeUnknown)
			assert.False(t, errors.Is(err, prio.ErrConflict))
			assert.Zero(t, info.Sends, "nothing sent while the first send may be processing")

			order, _ := createSettled(t, c, orderFor(ref, priotest.ProductOpen))
			assert.Equal(t, ref, order.OrderExternalReference)
			assert.Equal(t, 1, s.OrdersFor(ref))
			assert.Equal(t, 1, createSends(s))
		})
	}
}

// TestCreateAfterRestartWaitsForThePreviousAttempt: a new process (a new
// client) passes the time of the previous attempt's last send; before the
// horizon has passed since then, an empty look-up does not license a send.
func TestCreateAfterRestartWaitsForThePreviousAttempt(t *testing.T) {
	t.Parallel()
	profile := priotest.Sequence("createOrder", priotest.FaultDelay)
	profile.Delay = 400 * time.Millisecond
	s := priotest.NewServer(t, priotest.WithIdempotency(priotest.IdempotencyNone), priotest.WithFaults(profile))
	p := fastPolicy()
	p.BookingAttemptTimeout = 100 * time.Millisecond
	p.ProcessingHorizon = 2 * time.Second // far past the 400 ms of processing
	first := newClient(t, s, prio.WithRetryPolicy(p))
	_, err := first.Orders.Create(t.Context(), orderFor("restart", priotest.ProductOpen))
	var ue *prio.OutcomeUnknownError
	require.ErrorAs(t, err, &ue)
	require.False(t, ue.LastSend.IsZero())

	second := newClient(t, s, prio.WithRetryPolicy(p))
	var info prio.CallInfo
	_, err = second.Orders.Create(t.Context(), orderFor("restart", priotest.ProductOpen), prio.WithPreviousAttempt(ue.LastSend), prio.WithInfo(&info))
	require.ErrorIs(t, err, prio.ErrOutcomeUnknown)
	assert.Zero(t, info.Sends)
	assert.Equal(t, 1, info.Lookups)

	order, _ := createSettled(t, second, orderFor("restart", priotest.ProductOpen), prio.WithPreviousAttempt(ue.LastSend))
	assert.Equal(t, "restart", order.OrderExternalReference)
	assert.Equal(t, 1, s.OrdersFor("restart"))
}

// shiftingClock is a sandbox clock that can jump ahead by by, to expire
// every token the sandbox has issued.
type shiftingClock struct {
	by     time.Duration
	offset atomic.Int64
}

func (c *shiftingClock) now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *shiftingClock) jump()          { c.offset.Add(int64(c.by)) }

// jumpTransport jumps the clock when a request matching when goes out, or
// after its answer comes back.
type jumpTransport struct {
	clock  *shiftingClock
	before func(*http.Request) bool
	after  func(*http.Request) bool
	once   sync.Once
}

func (j *jumpTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if j.before != nil && j.before(r) {
		j.once.Do(j.clock.jump)
	}
	resp, err := http.DefaultTransport.RoundTrip(r)
	if j.after != nil && j.after(r) {
		j.once.Do(j.clock.jump)
	}
	return resp, err
}

func isCreate(r *http.Request) bool {
	return r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/orders")
}

// TestCreateRefreshesTokenOn401: a 401 on Create Order proves the order was
// not processed; the client fetches a new token once and sends the same
// bytes again, instead of reporting a refusal (which batch would record as
// a failed row).
func TestCreateRefreshesTokenOn401(t *testing.T) {
	t.Parallel()
	clock := &shiftingClock{by: 2 * time.Hour}
	s := priotest.NewServer(t, priotest.WithIdempotency(priotest.IdempotencyNone), priotest.WithClock(clock.now))
	c := newClient(t, s, prio.WithHTTPClient(&http.Client{Transport: &jumpTransport{clock: clock, before: isCreate}}))
	var info prio.CallInfo
	order, err := c.Orders.Create(t.Context(), orderFor("refresh-401", priotest.ProductOpen), prio.WithInfo(&info))
	require.NoError(t, err)
	assert.Equal(t, "refresh-401", order.OrderExternalReference)
	var statuses []int
	var bodies []string
	for _, r := range s.Requests() {
		if r.Operation == "createOrder" {
			statuses = append(statuses, r.Status)
			bodies = append(bodies, r.BodySHA256)
		}
	}
	assert.Equal(t, []int{http.StatusUnauthorized, http.StatusCreated}, statuses)
	assert.Equal(t, bodies[0], bodies[1], "the same bytes")
	assert.Equal(t, 2, info.Sends)
	assert.Equal(t, 1, s.OrdersFor("refresh-401"))
}

// TestCreateTokenExpiresAfterDoubtfulSend: a 500 after processing, the
// list cached, and the token expires before the next request. The order
// exists, so Create returns it: the expired token is replaced, and neither
// a refusal nor a second order comes of it.
func TestCreateTokenExpiresAfterDoubtfulSend(t *testing.T) {
	t.Parallel()
	// The jump (2 s) outlasts the token (1.5 s) but not the cache lag (3 s).
	clock := &shiftingClock{by: 2 * time.Second}
	s := priotest.NewServer(t, priotest.WithIdempotency(priotest.IdempotencyNone), priotest.WithClock(clock.now),
		priotest.WithOrderCacheLag(3*time.Second), priotest.WithTokenTTL(1500*time.Millisecond), priotest.WithFaults(priotest.Sequence("createOrder", priotest.Fault5xxAfter)))
	c := newClient(t, s, prio.WithHTTPClient(&http.Client{Transport: &jumpTransport{clock: clock, after: isCreate}}))
	order, err := c.Orders.Create(t.Context(), orderFor("expired-after-500", priotest.ProductOpen))
	require.NoError(t, err)
	assert.Equal(t, "expired-after-500", order.OrderExternalReference)
	assert.Equal(t, 1, s.OrdersFor("expired-after-500"))
}

// TestTokenWaitEndsWithTheCaller: with a token endpoint that never
// answers, a call returns when its own context ends, not when the token
// request's own bound (30 s) does.
func TestTokenWaitEndsWithTheCaller(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		s, err := priotest.NewUnstarted(priotest.WithFaults(priotest.Sequence("getToken", priotest.FaultHang)))
		require.NoError(t, err)
		defer s.Close()
		c, err := prio.NewClient(prio.WithBaseURL(s.URL()), prio.WithHTTPClient(s.PipeClient()),
			prio.WithCredentials(priotest.DefaultClientID, priotest.DefaultClientSecret), prio.WithDistributorID("501"))
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err = c.Orders.Create(ctx, orderFor("token-hangs", priotest.ProductOpen))
		require.Error(t, err)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, 300*time.Millisecond, time.Since(start), "the caller's deadline ends the wait")
	})
}

// TestShortTokensAreReused: a token that lives 5 s is reused until shortly
// before it expires, not fetched again for every request.
func TestShortTokensAreReused(t *testing.T) {
	t.Parallel()
	s := priotest.NewServer(t, priotest.WithTokenTTL(5*time.Second))
	c := newClient(t, s)
	for range 20 {
		_, err := c.Products.Get(t.Context(), priotest.ProductOpen)
		require.NoError(t, err)
	}
	tokens := 0
	for _, r := range s.Requests() {
		if r.Operation == "getToken" {
			tokens++
		}
	}
	assert.Equal(t, 1, tokens)
}

// TestGuardHoldsUnderConcurrency: 80 concurrent bookings that Prio
// declines. Every send reserves its place in the 4XX guard before it
// leaves, so Prio never sees more 4XX answers in a minute than the guard
// allows, and never bans the client.
func TestGuardHoldsUnderConcurrency(t *testing.T) {
	t.Parallel()
	s := priotest.NewServer(t)
	c := newClient(t, s)
	var wg sync.WaitGroup
	var refused, local atomic.Int64
	for i := range 80 {
		wg.Go(func() {
			_, err := c.Orders.Create(t.Context(), orderFor(fmt.Sprintf("declined-%d", i), priotest.ProductDeclined))
			var le *prio.LocalLimitError
			switch {
			case errors.As(err, &le):
				local.Add(1)
			case err != nil:
				refused.Add(1)
			}
		})
	}
	wg.Wait()
	st := s.Stats()
	assert.LessOrEqual(t, st.MaxClientErrorsPerMinute, prio.DefaultRetryPolicy().ClientErrorLimit)
	assert.Zero(t, st.Bans)
	assert.Equal(t, int64(prio.DefaultRetryPolicy().ClientErrorLimit), refused.Load(), "the guard's allowance was used")
	assert.Equal(t, int64(80-prio.DefaultRetryPolicy().ClientErrorLimit), local.Load(), "the rest were never sent")
}

// TestGuardCountsTokenRefusals: a refused client secret is a 4XX from the
// token endpoint, and Prio counts it like any other.
func TestGuardCountsTokenRefusals(t *testing.T) {
	t.Parallel()
	s := priotest.NewServer(t)
	c, err := prio.NewClient(prio.WithBaseURL(s.URL()), prio.WithCredentials(priotest.DefaultClientID, "wrong"),
		prio.WithDistributorID("501"), prio.WithRetryPolicy(fastPolicy()))
	require.NoError(t, err)
	for range 70 {
		_, err := c.Products.Get(t.Context(), priotest.ProductOpen)
		require.Error(t, err)
	}
	tokens := 0
	for _, r := range s.Requests() {
		if r.Operation == "getToken" {
			tokens++
		}
	}
	assert.Equal(t, prio.DefaultRetryPolicy().ClientErrorLimit, tokens)
	assert.Zero(t, s.Stats().Bans)
	_, err = c.Products.Get(t.Context(), priotest.ProductOpen)
	assert.ErrorIs(t, err, prio.ErrRateLimited)
}

// TestCreateChangedBodyAfterRestart: a Create for a reference that is
// already booked with other counts (a new process, told to look first)
// does not pass the old order off as the new request's result.
func TestCreateChangedBodyAfterRestart(t *testing.T) {
	t.Parallel()
	s := priotest.NewServer(t, priotest.WithIdempotency(priotest.IdempotencyNone))
	three := orderFor("changed", priotest.ProductOpen)
	(*three.OrderBookings[0].ProductTypeDetails)[0].ProductTypeCount = 3
	booked, err := newClient(t, s).Orders.Create(t.Context(), three)
	require.NoError(t, err)

	_, err = newClient(t, s).Orders.Create(t.Context(), orderFor("changed", priotest.ProductOpen), prio.WithLookupFirst())
	require.ErrorIs(t, err, prio.ErrKeyReused)
	var rc *prio.ReferenceConflictError
	require.ErrorAs(t, err, &rc)
	require.NotNil(t, rc.Order)
	assert.Equal(t, *booked.OrderReference, *rc.Order.OrderReference)
	assert.Contains(t, rc.Reason, "1 asked, 3 in the order")
	assert.Equal(t, 1, s.OrdersFor("changed"))

	// The same request is recognised as the booking it is.
	again, err := newClient(t, s).Orders.Create(t.Context(), three, prio.WithLookupFirst())
	require.NoError(t, err)
	assert.Equal(t, *booked.OrderReference, *again.OrderReference)
}

// TestCreateLeavesTheRequestAlone: defaults go on a copy, so one request
// can be shared by goroutines.
func TestCreateLeavesTheRequestAlone(t *testing.T) {
	t.Parallel()
	s := priotest.NewServer(t)
	c := newClient(t, s)
	req := orderFor("untouched", priotest.ProductOpen)
	_, err := c.Orders.Create(t.Context(), req)
	require.NoError(t, err)
	assert.Empty(t, req.OrderDistributorId)
	assert.Empty(t, req.OrderLanguage)
	assert.Empty(t, req.OrderBookings[0].BookingOptionType)
}

// TestCleanCreateIsOneSend: the rule costs nothing when nothing goes wrong.
func TestCleanCreateIsOneSend(t *testing.T) {
	t.Parallel()
	s := priotest.NewServer(t, priotest.WithOrderCacheLag(3*time.Second))
	c := newClient(t, s)
	var info prio.CallInfo
	_, err := c.Orders.Create(t.Context(), orderFor("clean", priotest.ProductOpen), prio.WithInfo(&info))
	require.NoError(t, err)
	assert.Equal(t, 1, info.Sends)
	assert.Zero(t, info.Lookups)
}

// TestReconcileWaitsOutTheHorizon: Reconcile of a booking whose send got a
// gateway's page does not give up before the processing horizon has passed
// since that send, however short GiveUpAfter is.
func TestReconcileWaitsOutTheHorizon(t *testing.T) {
	t.Parallel()
	profile := priotest.Sequence("createOrder", priotest.FaultGateway502)
	profile.GatewayDelay, profile.OriginDelay = 10*time.Millisecond, 300*time.Millisecond
	s := priotest.NewServer(t, priotest.WithIdempotency(priotest.IdempotencyNone), priotest.WithFaults(profile))
	p := fastPolicy()
	p.ProcessingHorizon = 2 * time.Second // far past the origin's 300 ms
	c := newClient(t, s, prio.WithRetryPolicy(p), prio.WithReconcileSchedule(prio.ReconcileSchedule{Interval: 20 * time.Millisecond, Count: 5,
		MaxInterval: 50 * time.Millisecond, GiveUpAfter: 10 * time.Millisecond}))
	_, err := c.Orders.Create(t.Context(), orderFor("reconcile-horizon", priotest.ProductOpen))
	require.ErrorIs(t, err, prio.ErrOutcomeUnknown)
	order, err := c.Orders.Reconcile(t.Context(), "reconcile-horizon")
	require.NoError(t, err, "the order landed within the horizon")
	assert.Equal(t, "reconcile-horizon", order.OrderExternalReference)
	assert.Equal(t, 1, s.OrdersFor("reconcile-horizon"))
}

// TestDateTimeQueryParametersOnTheWire: every date-time query parameter of
// the spec goes out as a full date-time with the caller's offset: never a
// bare date, never Z.
func TestDateTimeQueryParametersOnTheWire(t *testing.T) {
	t.Parallel()
	builders := map[string]struct {
		params any
		build  func(params any) (*http.Request, error)
	}{
		"getOrders": {&generated.GetOrdersParams{}, func(p any) (*http.Request, error) {
			return generated.NewGetOrdersRequest("https://x/v3.8/distributor", p.(*generated.GetOrdersParams))
		}},
		"getProducts": {&generated.GetProductsParams{}, func(p any) (*http.Request, error) {
			return generated.NewGetProductsRequest("https://x/v3.8/distributor", p.(*generated.GetProductsParams))
		}},
		"getProductStock": {&generated.GetProductStockParams{}, func(p any) (*http.Request, error) {
			return generated.NewGetProductStockRequest("https://x/v3.8/distributor", p.(*generated.GetProductStockParams))
		}},
		"getProductAvailability": {&generated.GetProductAvailabilityParams{}, func(p any) (*http.Request, error) {
			return generated.NewGetProductAvailabilityRequest("https://x/v3.8/distributor", "1", p.(*generated.GetProductAvailabilityParams))
		}},
	}
	doc, err := openapi3.NewLoader().LoadFromData(api.Spec)
	require.NoError(t, err)
	at := wire.NewDateTime(time.Date(2026, 5, 12, 14, 0, 0, 0, time.FixedZone("", 4*3600)))
	utc := wire.NewDateTime(time.Date(2026, 5, 12, 10, 0, 0, 0, time.UTC))
	checked := 0
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			for _, pr := range append(item.Parameters, op.Parameters...) {
				p := pr.Value
				if p.In != "query" || p.Schema == nil || p.Schema.Value.Format != "date-time" {
					continue
				}
				b, ok := builders[op.OperationID]
				require.True(t, ok, "no request builder for %s (parameter %s)", op.OperationID, p.Name)
				for want, v := range map[string]wire.DateTime{"2026-05-12T14:00:00+04:00": at, "2026-05-12T10:00:00+00:00": utc} {
					params := reflect.New(reflect.TypeOf(b.params).Elem())
					setByForm(t, params.Elem(), p.Name, v)
					req, err := b.build(params.Interface())
					require.NoError(t, err)
					assert.Equal(t, want, req.URL.Query().Get(p.Name), "%s %s", op.OperationID, p.Name)
				}
				checked++
			}
		}
	}
	assert.GreaterOrEqual(t, checked, 6, "every date-time query parameter of the spec")
}

func setByForm(t *testing.T, v reflect.Value, name string, dt wire.DateTime) {
	t.Helper()
	for i := range v.NumField() {
		if tag, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("form"), ","); tag == name {
			f := v.Field(i)
			require.Equal(t, reflect.TypeOf(&dt), f.Type(), "%s is a *wire.DateTime", name)
			f.Set(reflect.ValueOf(&dt))
			return
		}
	}
	t.Fatalf("no field for query parameter %s", name)
}

// gzipFront compresses every answer of next, as a gateway in front of Prio
// may: Content-Encoding gzip and no Content-Length, so net/http
// decompresses the stream and the SDK reads a body of unknown length.
// While cuts is above zero, a Create Order answer is cut off halfway
// through its compressed bytes and the connection dropped, after Prio has
// processed the order.
type gzipFront struct {
	next http.Handler
	cuts atomic.Int32
}

func (g *gzipFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := httptest.NewRecorder()
	g.next.ServeHTTP(rec, r)
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	_, _ = zw.Write(rec.Body.Bytes())
	_ = zw.Close()
	for k, vs := range rec.Header() {
		w.Header()[k] = vs
	}
	w.Header().Del("Content-Length")
	w.Header().Set("Content-Encoding", "gzip")
	body := zb.Bytes()
	if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/orders") && g.cuts.Add(-1) >= 0 {
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body[:len(body)/2])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(body)
}

// TestCreateOverCompressedAnswers: behind a gateway that compresses, a
// clean Create is one send whose order decodes; and an answer cut off in
// the middle of its compressed stream is a send in doubt, settled by the
// look-up, not a decoding error and not a second order.
func TestCreateOverCompressedAnswers(t *testing.T) {
	t.Parallel()
	s := priotest.NewServer(t, priotest.WithIdempotency(priotest.IdempotencyNone))
	front := &gzipFront{next: s.Handler()}
	ts := httptest.NewServer(front)
	defer ts.Close()
	c, err := prio.NewClient(prio.WithBaseURL(ts.URL+"/v3.8/distributor"),
		prio.WithCredentials(priotest.DefaultClientID, priotest.DefaultClientSecret),
		prio.WithDistributorID(priotest.DefaultDistributorID), prio.WithRetryPolicy(fastPolicy()))
	require.NoError(t, err)

	var info prio.CallInfo
	order, err := c.Orders.Create(t.Context(), orderFor("gzip-clean", priotest.ProductOpen), prio.WithInfo(&info))
	require.NoError(t, err)
	assert.Equal(t, "gzip-clean", order.OrderExternalReference)
	assert.NotEmpty(t, order.OrderReference)
	assert.Equal(t, 1, info.Sends)
	assert.Zero(t, info.Lookups)

	front.cuts.Store(1)
	order, err = c.Orders.Create(t.Context(), orderFor("gzip-cut", priotest.ProductOpen), prio.WithInfo(&info))
	require.NoError(t, err)
	assert.Equal(t, "gzip-cut", order.OrderExternalReference)
	assert.Equal(t, 1, info.Sends, "a cut answer is never re-sent blind")
	assert.Positive(t, info.Lookups, "the order was found by its reference")
	assert.Equal(t, 1, s.OrdersFor("gzip-cut"))
	assert.Equal(t, 1, s.OrdersFor("gzip-clean"))
}
