package prio

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/priosdk/prio-go/generated"
	"github.com/priosdk/prio-go/wire"
)

// Order is a booked order as Prio returns it.
type Order = generated.ConfirmedOrderModel

// OrderRequest is the body of Create Order: one or more bookings, either
// direct bookings or the confirmation of one reservation.
type OrderRequest = generated.CreateOrderModel

// OrderUpdate is the body of Update Order.
type OrderUpdate = generated.UpdateOrderModel

// BookingOption is one entry of OrderRequest.OrderBookings.
type BookingOption = generated.BookingOption

// ListOrdersParams filters List Orders.
type ListOrdersParams = generated.GetOrdersParams

// Booking option types.
const (
	DirectBooking      = "DIRECT_BOOKING"
	ConfirmReservation = "CONFIRM_RESERVATION"
)

// OrdersService books, reads, changes and cancels orders.
type OrdersService struct{ c *Client }

// maxCreateRounds bounds how often Create re-sends after a look-up proved
// the order absent.
const maxCreateRounds = 3

// Create books an order and returns it. It is safe to call again after any
// failure with the same request: the idempotency key is derived from the
// distributor id and OrderExternalReference (unless WithIdempotencyKey
// gives one), the body is encoded once and sent byte-identical, and when a
// send ends in doubt (timeout after the request was written, dropped
// connection, 5xx) Create looks the order up by its external reference
// before re-sending: found, it returns that order; proven absent after an
// answered 500, 502 or 503, it re-sends; otherwise (the look-up failed, or
// the doubtful send got no answer and may still be running) it returns
// *OutcomeUnknownError, which Reconcile settles. Calling Create again for a
// reference this client already sent looks the order up first. This holds
// even against a server that ignores idempotency keys.
//
// Missing defaults are filled in on req: the client's distributor id,
// order_language "en", and booking_option_type DIRECT_BOOKING.
func (s *OrdersService) Create(ctx context.Context, req *OrderRequest, opts ...CallOption) (*Order, error) {
	if err := s.prepare(req); err != nil {
		return nil, err
	}
	k, err := s.c.newCall("createOrder", opts)
	if err != nil {
		return nil, err
	}
	k.booking, k.doubt = true, true
	ref := req.OrderExternalReference
	if k.key == "" {
		k.key = DeriveKey(s.c.cfg.distributorID, "createOrder", ref)
	}
	kind := generated.Kind("order")
	body, err := json.Marshal(generated.CreateOrderRequest{Data: generated.CreateOrderRequestData{Kind: &kind, Order: *req}})
	if err != nil {
		return nil, fmt.Errorf("%w: encoding the order: %v", ErrInvalidArgument, err)
	}
	// A key this process already sent is a caller's retry of an earlier
	// Create whose outcome it may not know; after a restart the caller says
	// so with WithLookupFirst. Either way, look before sending.
	repeat, err := s.c.keys.record(k.key, body)
	if err != nil {
		return nil, k.finish(err)
	}
	if repeat || k.opts.lookupFirst {
		k.lookups++
		found, lerr := s.FindByExternalReference(ctx, ref)
		switch {
		case lerr == nil:
			return found, k.finish(nil)
		case !errors.Is(lerr, errOrderAbsent):
			return nil, k.finish(lerr)
		}
	}
	send := func(ctx context.Context, eds ...generated.RequestEditorFn) (*http.Response, error) {
		return s.c.raw.CreateOrderWithBody(ctx, "application/json", bytes.NewReader(body), eds...)
	}

	var (
		// inDoubt: some send may have been processed.
		inDoubt bool
		// answered: every doubtful send so far was answered by Prio with
		// a 500, 502 or 503, so its processing is over and a look-up
		// that finds nothing proves the order absent. A send that got no
		// answer (timeout, reset, dropped connection, 504, a 409 saying
		// the key is still in use) may still be on its way or running:
		// an empty look-up then proves nothing, and re-sending could book
		// twice on a server without idempotency.
		answered = true
		refused  *APIError // a definitive refusal of the latest send
		lastErr  error
		last     int // last HTTP status
	)
	unknown := func(cause error) error {
		inf := k.info()
		if k.opts.info != nil {
			*k.opts.info = inf
		}
		return &OutcomeUnknownError{Operation: k.operation, IdempotencyKey: k.key, ExternalReference: ref,
			Sends: inf.Sends, LastStatus: last, Elapsed: inf.Elapsed, Err: cause}
	}
	for range maxCreateRounds {
		refused = nil
		resp, err := k.send(ctx, send)
		if err == nil {
			last = resp.StatusCode
			switch {
			case resp.StatusCode/100 == 2:
				var out generated.OrderDetailResponse
				if derr := k.decode(resp, &out); derr != nil {
					// A 2xx we cannot read: the order exists; find it.
					inDoubt, answered, lastErr = true, false, derr
					break
				}
				return &out.Data.Order, k.finish(nil)
			case resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented:
				inDoubt, lastErr = true, newAPIError(resp, k.operation)
				answered = answered && resp.StatusCode != http.StatusGatewayTimeout
			case resp.StatusCode == http.StatusConflict && inDoubt:
				// An earlier send is still running or was processed.
				lastErr, answered = newAPIError(resp, k.operation), false
			default:
				ae := newAPIError(resp, k.operation)
				if isHoldExpired(ae) {
					return nil, k.finish(fmt.Errorf("%w: %w", ErrHoldExpired, ae))
				}
				if !inDoubt {
					if resp.StatusCode != http.StatusConflict && resp.StatusCode != http.StatusTooManyRequests {
						// Refused without effect: a corrected request may
						// reuse the derived key.
						s.c.keys.forget(k.key)
					}
					return nil, k.finish(ae)
				}
				// Refused now, but an earlier send may have booked.
				refused, lastErr = ae, ae
			}
		} else {
			var te *TransportError
			switch {
			case errors.As(err, &te) && te.InDoubt:
				inDoubt, answered, lastErr = true, false, err
			case !inDoubt:
				// Nothing reached the server in any round.
				return nil, k.finish(err)
			default:
				lastErr = err // this send left nothing; earlier ones are in doubt
			}
		}
		if ctx.Err() != nil {
			return nil, unknown(lastErr)
		}
		// The look-up is paid from the retry budget like a retry: in an
		// outage, bookings must not double the load with look-ups.
		if !s.c.doer.budget.withdraw() {
			return nil, unknown(errors.Join(lastErr, ErrRetryBudgetExhausted))
		}
		k.lookups++
		found, lerr := s.FindByExternalReference(ctx, ref, asFollowUp)
		switch {
		case lerr == nil:
			return found, k.finish(nil)
		case !errors.Is(lerr, errOrderAbsent):
			return nil, unknown(errors.Join(lastErr, lerr))
		case !answered:
			// Absent for now, but a send may still arrive or complete:
			// leave it to Reconcile rather than risk a second booking.
			return nil, unknown(lastErr)
		case refused != nil:
			return nil, k.finish(refused)
		}
		// Proven absent: re-send with the same key and body.
	}
	// Every round was answered with a 5xx and the last look-up found
	// nothing: the order does not exist. Report the last failure as it was.
	return nil, k.finish(lastErr)
}

func (s *OrdersService) prepare(req *OrderRequest) error {
	if req == nil {
		return fmt.Errorf("%w: nil order request", ErrInvalidArgument)
	}
	if strings.TrimSpace(req.OrderExternalReference) == "" {
		return fmt.Errorf("%w: order_external_reference is required: it is the booking's identity across retries and restarts", ErrInvalidArgument)
	}
	if len(req.OrderBookings) == 0 {
		return fmt.Errorf("%w: order_bookings is empty", ErrInvalidArgument)
	}
	if req.OrderDistributorId == "" {
		req.OrderDistributorId = s.c.cfg.distributorID
	}
	if req.OrderLanguage == "" {
		req.OrderLanguage = "en"
	}
	confirms := 0
	for i := range req.OrderBookings {
		b := &req.OrderBookings[i]
		if b.BookingOptionType == "" {
			b.BookingOptionType = DirectBooking
		}
		if b.BookingOptionType == ConfirmReservation {
			confirms++
			if b.ReservationReference == nil || *b.ReservationReference == "" {
				return fmt.Errorf("%w: booking %d confirms a reservation but has no reservation_reference", ErrInvalidArgument, i)
			}
		}
	}
	if confirms > 1 || (confirms == 1 && len(req.OrderBookings) > 1) {
		return fmt.Errorf("%w: an order confirms at most one reservation and mixes no other bookings with it", ErrInvalidArgument)
	}
	return nil
}

// isHoldExpired recognises Prio's refusal to confirm a reservation whose
// hold has lapsed.
func isHoldExpired(ae *APIError) bool {
	return ae.StatusCode >= 400 && ae.StatusCode < 500 && strings.Contains(strings.ToUpper(ae.Code), "EXPIRED")
}

// errOrderAbsent is what FindByExternalReference wraps when Prio lists no
// order for the reference (it also matches ErrNotFound).
var errOrderAbsent = fmt.Errorf("%w: no order with this external reference", ErrNotFound)

// FindByExternalReference returns the order booked under an external
// reference. When Prio lists none, the error matches ErrNotFound. When Prio
// lists several (a duplicate made outside this SDK), the earliest is
// returned.
func (s *OrdersService) FindByExternalReference(ctx context.Context, externalReference string, opts ...CallOption) (*Order, error) {
	if externalReference == "" {
		return nil, fmt.Errorf("%w: empty external reference", ErrInvalidArgument)
	}
	perPage := 50
	params := &ListOrdersParams{OrderExternalReference: &externalReference, DistributorId: &s.c.cfg.distributorID, ItemsPerPage: &perPage}
	page, err := s.ListPage(ctx, params, opts...)
	if err != nil {
		return nil, err
	}
	var match []Order
	for _, o := range page.Orders {
		if o.OrderExternalReference == externalReference {
			match = append(match, o)
		}
	}
	if len(match) == 0 {
		return nil, fmt.Errorf("%w (%q)", errOrderAbsent, externalReference)
	}
	slices.SortStableFunc(match, func(a, b Order) int { return createdAt(a).Compare(createdAt(b)) })
	return &match[0], nil
}

func createdAt(o Order) time.Time {
	if o.OrderCreated == nil {
		return time.Time{}
	}
	return o.OrderCreated.Time
}

// Get returns an order by Prio's order reference.
func (s *OrdersService) Get(ctx context.Context, orderReference string, opts ...CallOption) (*Order, error) {
	if orderReference == "" {
		return nil, fmt.Errorf("%w: empty order reference", ErrInvalidArgument)
	}
	var out generated.OrderDetailResponse
	err := s.c.simple(ctx, "getOrder", opts, &out, func(ctx context.Context, eds ...generated.RequestEditorFn) (*http.Response, error) {
		return s.c.raw.GetOrder(ctx, orderReference, nil, eds...)
	})
	if err != nil {
		return nil, err
	}
	return &out.Data.Order, nil
}

// OrderPage is one page of List Orders.
type OrderPage struct {
	Orders       []Order
	Page         int // 1-based
	TotalPages   int
	TotalItems   int
	ItemsPerPage int
}

// ListPage returns one page of orders. Set params.Page (or StartIndex) to
// choose it; Prio lists the last three months unless dates are given.
func (s *OrdersService) ListPage(ctx context.Context, params *ListOrdersParams, opts ...CallOption) (*OrderPage, error) {
	var out generated.OrderListResponse
	err := s.c.simple(ctx, "getOrders", opts, &out, func(ctx context.Context, eds ...generated.RequestEditorFn) (*http.Response, error) {
		return s.c.raw.GetOrders(ctx, params, eds...)
	})
	if err != nil {
		return nil, err
	}
	d := out.Data
	return &OrderPage{Orders: d.Items, Page: d.PageIndex, TotalPages: d.TotalPages, TotalItems: d.TotalItems, ItemsPerPage: d.ItemsPerPage}, nil
}

// List iterates over every order matching params, page after page. It stops
// at the first error, which it yields.
func (s *OrdersService) List(ctx context.Context, params *ListOrdersParams, opts ...CallOption) iter.Seq2[*Order, error] {
	p := ListOrdersParams{}
	if params != nil {
		p = *params
	}
	p.StartIndex = nil
	return paginate(func(n int) ([]Order, int, error) {
		p.Page = &n
		page, err := s.ListPage(ctx, &p, opts...)
		if err != nil {
			return nil, 0, err
		}
		return page.Orders, page.TotalPages, nil
	})
}

// Update changes an order. Prio replaces the top-level order with what is
// sent (omitted optional fields are removed), so send the complete order,
// and only the bookings to change.
func (s *OrdersService) Update(ctx context.Context, orderReference string, update *OrderUpdate, opts ...CallOption) (*Order, error) {
	if orderReference == "" || update == nil {
		return nil, fmt.Errorf("%w: order reference and update are required", ErrInvalidArgument)
	}
	var out generated.OrderDetailResponse
	err := s.c.simple(ctx, "updateOrder", opts, &out, func(ctx context.Context, eds ...generated.RequestEditorFn) (*http.Response, error) {
		return s.c.raw.UpdateOrder(ctx, orderReference, generated.UpdateOrderRequest{Data: generated.UpdateOrderRequestData{Order: *update}}, eds...)
	})
	if err != nil {
		return nil, err
	}
	return &out.Data.Order, nil
}

// CancelOptions narrows a cancellation. The zero value cancels the whole
// order and refunds any payment.
type CancelOptions struct {
	BookingReferences      []string // cancel only these bookings
	ProductTypeTransaction []string // cancel only these tickets (advanced)
	Reason                 string
	NoRefund               bool // keep payments (Prio refunds by default)
}

// Cancel cancels an order, whole or in part, and returns the updated order.
// Compare its order_pricing.price_total with what you charged.
func (s *OrdersService) Cancel(ctx context.Context, orderReference string, o *CancelOptions, opts ...CallOption) (*Order, error) {
	if orderReference == "" {
		return nil, fmt.Errorf("%w: empty order reference", ErrInvalidArgument)
	}
	p := &generated.CancelOrderParams{}
	if o != nil {
		if len(o.BookingReferences) > 0 {
			p.BookingReference = &o.BookingReferences
		}
		if len(o.ProductTypeTransaction) > 0 {
			p.ProductTypeTransactionId = &o.ProductTypeTransaction
		}
		if o.Reason != "" {
			p.CancellationReason = &o.Reason
		}
		if o.NoRefund {
			f := "false"
			p.PaymentRefund = &f
		}
	}
	var out generated.OrderDetailResponse
	err := s.c.simple(ctx, "cancelOrder", opts, &out, func(ctx context.Context, eds ...generated.RequestEditorFn) (*http.Response, error) {
		return s.c.raw.CancelOrder(ctx, orderReference, p, eds...)
	})
	if err != nil {
		return nil, err
	}
	return &out.Data.Order, nil
}

// VoucherOptions selects what Voucher returns.
type VoucherOptions struct {
	BookingReference string // one booking's voucher instead of the order's
	ForceRelease     bool   // release while the booking is still pending
	PDF              bool   // return the PDF bytes instead of a download URL
}

// Voucher is an order's voucher: a download URL, or the PDF itself.
type Voucher struct {
	URL string
	PDF []byte
}

// Voucher returns the voucher of an order.
func (s *OrdersService) Voucher(ctx context.Context, orderReference string, o *VoucherOptions, opts ...CallOption) (*Voucher, error) {
	if orderReference == "" {
		return nil, fmt.Errorf("%w: empty order reference", ErrInvalidArgument)
	}
	if o == nil {
		o = &VoucherOptions{}
	}
	p := &generated.GetVoucherParams{}
	if o.BookingReference != "" {
		p.BookingReference = &o.BookingReference
	}
	if o.ForceRelease {
		p.ForceRelease = wire.NewBool(true).Ptr()
	}
	k, err := s.c.newCall("getVoucher", opts)
	if err != nil {
		return nil, err
	}
	if o.PDF {
		k.opts.accept = "application/pdf"
	}
	resp, err := k.send(ctx, func(ctx context.Context, eds ...generated.RequestEditorFn) (*http.Response, error) {
		return s.c.raw.GetVoucher(ctx, orderReference, p, eds...)
	})
	if err != nil {
		return nil, k.finish(err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, k.finish(newAPIError(resp, k.operation))
	}
	defer resp.Body.Close()
	if o.PDF {
		b, truncated, rerr := readCapped(resp.Body, maxResponseBody)
		if rerr != nil {
			return nil, k.finish(fmt.Errorf("%w: %v", ErrMalformedResponse, rerr))
		}
		if truncated {
			return nil, k.finish(ErrResponseTooLarge)
		}
		return &Voucher{PDF: b}, k.finish(nil)
	}
	var out generated.GetVoucherResponseJSON
	if err := decodeBody(resp.Body, &out); err != nil {
		return nil, k.finish(err)
	}
	v := &Voucher{URL: out.Url}
	if v.URL == "" && out.Data.Url != nil {
		v.URL = *out.Data.Url
	}
	return v, k.finish(nil)
}

// ReconcileSchedule is how Reconcile polls: every Interval for Count
// polls, then at doubling intervals up to MaxInterval. Prio advises once a
// minute for the first five minutes.
type ReconcileSchedule struct {
	Interval    time.Duration
	Count       int
	MaxInterval time.Duration
	// GiveUpAfter ends Reconcile with an error matching ErrNotFound when no
	// order was ever listed for the reference for this long. Zero waits
	// until the context ends.
	GiveUpAfter time.Duration
}

// DefaultReconcileSchedule returns Prio's advice: a poll a minute for five
// minutes, then 2, 4, 8 and 15 minutes apart; give up on an order never
// seen after an hour.
func DefaultReconcileSchedule() ReconcileSchedule {
	return ReconcileSchedule{Interval: time.Minute, Count: 5, MaxInterval: 15 * time.Minute, GiveUpAfter: time.Hour}
}

// wait returns the pause before poll n (0-based, after the first).
func (r ReconcileSchedule) wait(n int) time.Duration {
	if n < r.Count || r.MaxInterval <= r.Interval {
		return r.Interval
	}
	d := r.Interval
	for i := r.Count; i <= n && d < r.MaxInterval; i++ {
		d *= 2
	}
	return min(d, r.MaxInterval)
}

// Reconcile settles an order whose outcome is unknown or still processing:
// it polls Prio on the client's ReconcileSchedule until the order is listed
// in a final state and returns it. A webhook event for the order (see
// WithWebhookNotify) ends a wait at once. When no order appears within
// GiveUpAfter the error matches ErrNotFound: the booking did not happen and
// may be made again with the same external reference. When ctx ends first,
// the error is an *OutcomeUnknownError.
func (s *OrdersService) Reconcile(ctx context.Context, externalReference string, opts ...CallOption) (*Order, error) {
	if externalReference == "" {
		return nil, fmt.Errorf("%w: empty external reference", ErrInvalidArgument)
	}
	sched := s.c.cfg.reconcile
	start := s.c.cfg.now()
	wake, cancel := s.c.waiters.add(externalReference)
	defer cancel()
	var last error
	for n := 0; ; n++ {
		o, err := s.FindByExternalReference(ctx, externalReference, opts...)
		switch {
		case err == nil:
			if orderSettled(o) {
				return o, nil
			}
			if o.OrderReference != nil {
				s.c.waiters.alias(externalReference, *o.OrderReference)
			}
		case errors.Is(err, ErrNotFound):
			if sched.GiveUpAfter > 0 && s.c.cfg.now().Sub(start) >= sched.GiveUpAfter {
				return nil, fmt.Errorf("prio: reconcile %q: %w after %s", externalReference, errOrderAbsent, sched.GiveUpAfter)
			}
		default:
			last = err
		}
		t := time.NewTimer(sched.wait(n))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, &OutcomeUnknownError{Operation: "reconcile", ExternalReference: externalReference,
				Elapsed: s.c.cfg.now().Sub(start), Err: errors.Join(ctx.Err(), last)}
		case <-wake:
			t.Stop()
		case <-t.C:
		}
	}
}

// orderSettled reports whether an order has left every processing state.
func orderSettled(o *Order) bool {
	switch o.OrderStatus {
	case "ORDER_PENDING", "ORDER_REVIEW", "ORDER_PROCESSING":
		return false
	}
	for _, b := range o.OrderBookings {
		st := string(b.BookingStatus)
		if strings.HasPrefix(st, "BOOKING_PROCESSING") || strings.HasPrefix(st, "BOOKING_PENDING") {
			return false
		}
	}
	return true
}
