package prio

import (
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

// Booking option types.
const (
	DirectBooking      = "DIRECT_BOOKING"
	ConfirmReservation = "CONFIRM_RESERVATION"
)

// OrdersService books, reads, changes and cancels orders.
type OrdersService struct{ c *Client }

// maxCreateRounds bounds how often Create sends: the first send and at
// most two re-sends after a look-up proved the order absent.
const maxCreateRounds = 3

// Create books an order and returns it. It is safe to call again after any
// failure, with the same request, from this process or another: it never
// books twice and never loses a booking, even against a server that ignores
// idempotency keys.
//
// The idempotency key is derived from the distributor id and
// OrderExternalReference (unless WithIdempotencyKey gives one), and the body
// is encoded once and sent byte for byte the same each time. When a send
// ends in doubt (the request was written and then the answer timed out, the
// connection dropped, or a 5xx came back), Create does not send again
// blindly: it lists orders by external reference from Prio's source of
// truth. Found, it returns that order. Proven absent, it sends again. Not
// proven (the look-up failed, or a send that got no answer from Prio's
// application may still be processed: see the package documentation), it
// returns *OutcomeUnknownError, whose DecidableAt says when calling Create
// again (or Reconcile) can settle it.
//
// Calling Create again for a reference this client already sent, or with
// WithLookupFirst or WithPreviousAttempt, looks the order up before
// sending; an order found that does not match the request (products,
// product types, counts) gives a *ReferenceConflictError.
//
// The request is not changed: missing defaults (the client's distributor
// id, order_language "en", booking_option_type DIRECT_BOOKING) are filled in
// on a copy.
func (s *OrdersService) Create(ctx context.Context, req *OrderRequest, opts ...CallOption) (*Order, error) {
	req, err := s.prepare(req)
	if err != nil {
		return nil, err
	}
	k, err := s.c.newCall("createOrder", opts)
	if err != nil {
		return nil, err
	}
	k.booking, k.doubt = true, true
	if k.key == "" {
		k.key = DeriveKey(s.c.cfg.distributorID, "createOrder", req.OrderExternalReference)
	}
	kind := generated.Kind("order")
	body, err := json.Marshal(generated.CreateOrderRequest{Data: generated.CreateOrderRequestData{Kind: &kind, Order: *req}})
	if err != nil {
		return nil, fmt.Errorf("%w: encoding the order: %v", ErrInvalidArgument, err)
	}
	prior, err := s.c.keys.begin(k.key, body)
	if err != nil {
		return nil, k.finish(err)
	}
	k.body = body
	ctx = k.startCall(ctx) // the look-ups' spans are children of this call's
	b := &booking{s: s, k: k, req: req, body: body, horizon: s.c.doer.policy.ProcessingHorizon, start: time.Now()}
	b.know(prior, k.opts)
	order, err := b.run(ctx)
	s.c.keys.end(prior, err == nil, b.lastSend, b.doubtUntil)
	if err != nil && b.forget {
		s.c.keys.forget(k.key)
	}
	return order, err
}

// booking is one Create Order call on its way: what it knows of the sends
// of its key (this call's and earlier ones) and what it has learnt.
type booking struct {
	s       *OrdersService
	k       *call
	req     *OrderRequest
	body    []byte
	horizon time.Duration
	start   time.Time

	// lookFirst: an earlier attempt may have booked, so look before the
	// first send.
	lookFirst bool
	// firstSend is the earliest known send of the key, for the look-up's
	// date window.
	firstSend time.Time
	// lastSend is the latest moment a send in doubt may have been
	// written; doubtUntil is until when such a send may still be
	// processed. Before doubtUntil an empty look-up proves nothing.
	lastSend, doubtUntil time.Time
	// inDoubt: some send of the key, in this call or an earlier one, may
	// have been acted on.
	inDoubt bool
	// forget releases the key for a corrected request: set when Prio
	// refused the only send outright.
	forget bool
	// lastStatus is the status of the latest answer; lastErr what became
	// of the latest send.
	lastStatus int
	lastErr    error
}

// know takes in what the client and the caller know of earlier sends.
func (b *booking) know(prior keyState, o *callOptions) {
	b.lookFirst = prior.repeat || o.lookupFirst
	b.firstSend = prior.firstSend
	b.noteDoubt(prior.lastSend, prior.doubtUntil)
	if !o.prevSend.IsZero() {
		b.noteDoubt(o.prevSend, o.prevSend.Add(b.horizon))
		if b.firstSend.IsZero() || o.prevSend.Before(b.firstSend) {
			b.firstSend = o.prevSend
		}
	}
	if prior.inflight > 0 {
		// Another call of this process is sending the key right now: its
		// send may land at any moment until its own timeout and horizon.
		now := time.Now()
		p := b.s.c.doer.policy
		b.noteDoubt(now, now.Add(p.BookingAttemptTimeout+b.horizon))
	}
	b.inDoubt = !b.doubtUntil.IsZero()
}

// noteDoubt records a send that may be processed until until.
func (b *booking) noteDoubt(sent, until time.Time) {
	if sent.After(b.lastSend) {
		b.lastSend = sent
	}
	if until.After(b.doubtUntil) {
		b.doubtUntil = until
	}
}

// decidable reports whether an empty look-up made now proves the order
// absent: no send of the key can still be processed.
func (b *booking) decidable() bool { return !time.Now().Before(b.doubtUntil) }

func (b *booking) run(ctx context.Context) (*Order, error) {
	k := b.k
	if b.lookFirst {
		k.lookups++
		found, err := b.lookup(ctx)
		switch {
		case err == nil:
			return b.found(found)
		case !errors.Is(err, errOrderAbsent):
			return nil, b.unknown(nil, err)
		case !b.decidable():
			return nil, b.unknown(nil, nil)
		}
		b.inDoubt = false // proven absent: every earlier send is over
	}
	send := func(ctx context.Context, eds ...generated.RequestEditorFn) (*http.Response, error) {
		return b.s.c.sendJSON(ctx, b.s.c.orders, b.body, eds)
	}
	for round := range maxCreateRounds {
		if round > 0 {
			// Proven absent: wait as asked (or back off), then re-send
			// with the same key and body.
			if err := b.pause(ctx, round); err != nil {
				return nil, k.finish(b.lastErr)
			}
		}
		var refused *APIError // a refusal that is final unless an earlier send booked
		if b.firstSend.IsZero() {
			b.firstSend = time.Now()
		}
		resp, err := k.send(ctx, send)
		ended := time.Now()
		if err != nil {
			var te *TransportError
			switch {
			case errors.As(err, &te) && te.InDoubt:
				b.inDoubt = true
				b.noteDoubt(ended, ended.Add(b.horizon))
			case !b.inDoubt:
				// Nothing reached the server, in this call or before.
				return nil, k.finish(err)
			}
			b.lastErr = err
		} else {
			b.lastStatus = resp.StatusCode
			switch code := resp.StatusCode; {
			case code/100 == 2:
				var out generated.OrderDetailResponse
				derr := k.decode(resp, &out)
				if derr == nil {
					return &out.Data.Order, k.finish(nil) // this send's own order
				}
				// Prio answered 2xx but the answer cannot be read: the
				// order should exist; until the horizon has passed, not
				// finding it proves nothing.
				b.inDoubt, b.lastErr = true, derr
				b.noteDoubt(ended, ended.Add(b.horizon))
			case code >= 500 && code != http.StatusNotImplemented:
				b.inDoubt = true
				if !answeredByPrio(resp) {
					// A gateway's page, a 504, a 52x: Prio's application
					// may still be processing the request.
					b.noteDoubt(ended, ended.Add(b.horizon))
				}
				b.lastErr = newAPIError(resp, k.operation)
			default:
				ae := newAPIError(resp, k.operation)
				b.lastErr = ae
				switch {
				case code == http.StatusConflict && (b.inDoubt || keyInUse(ae)):
					// Another send of this key is still being processed.
					b.inDoubt = true
					b.noteDoubt(ended, ended.Add(b.horizon))
				case code == http.StatusConflict:
					// A 409 may mean the reference is booked already: look.
					refused = ae
				case b.inDoubt:
					// Refused now, but an earlier send may have booked.
					refused = ae
				default:
					return nil, b.refuse(ae)
				}
			}
		}
		if ctx.Err() != nil {
			return nil, b.unknown(b.lastErr, nil)
		}
		// The look-up is paid from the retry budget like a retry: in an
		// outage, bookings must not double the load with look-ups.
		if !b.s.c.doer.budget.withdraw() {
			return nil, b.unknown(b.lastErr, ErrRetryBudgetExhausted)
		}
		k.lookups++
		found, lerr := b.lookup(ctx)
		switch {
		case lerr == nil:
			return b.found(found)
		case !errors.Is(lerr, errOrderAbsent):
			return nil, b.unknown(b.lastErr, lerr)
		case !b.decidable():
			// Absent for now, but a send may still arrive or complete.
			return nil, b.unknown(b.lastErr, nil)
		case refused != nil:
			return nil, b.refuse(refused)
		}
		// Proven absent: every send so far is over and booked nothing.
		b.inDoubt = false
	}
	// Every round ended without an order and the last look-up proved the
	// order absent: nothing was booked. Report the last failure as it was.
	return nil, k.finish(b.lastErr)
}

// refuse reports a refusal that is final: no send of the key booked.
func (b *booking) refuse(ae *APIError) error {
	if isHoldExpired(ae) {
		return b.k.finish(fmt.Errorf("%w: %w", ErrHoldExpired, ae))
	}
	if !b.inDoubt && ae.StatusCode != http.StatusConflict && ae.StatusCode != http.StatusTooManyRequests {
		// Refused without effect: a corrected request may reuse the
		// derived key.
		b.forget = true
	}
	return b.k.finish(ae)
}

// found checks an order found by a look-up against the request: it may be
// another request's booking under the same reference.
func (b *booking) found(o *Order) (*Order, error) {
	if reason := mismatch(b.req, o); reason != "" {
		return nil, b.k.finish(&ReferenceConflictError{ExternalReference: b.req.OrderExternalReference, Order: o, Reason: reason})
	}
	return o, b.k.finish(nil)
}

// unknown reports the booking as undecided.
func (b *booking) unknown(sendErr, lookupErr error) error {
	k := b.k
	inf := k.info()
	if k.opts.info != nil {
		*k.opts.info = inf
	}
	k.endCall(inf, outcomeUnknown)
	at := b.doubtUntil
	if now := time.Now(); at.Before(now) {
		// The look-up failed, not the horizon: try again shortly, or when
		// a limit that refused it allows.
		at = now.Add(max(time.Second, askedWait(lookupErr)))
	}
	return &OutcomeUnknownError{Operation: k.operation, IdempotencyKey: k.key, ExternalReference: b.req.OrderExternalReference,
		Sends: inf.Sends, Lookups: inf.Lookups, LastStatus: b.lastStatus, Elapsed: inf.Elapsed,
		LastSend: b.lastSend, DecidableAt: at, SendErr: sendErr, LookupErr: lookupErr}
}

// askedWait is how long a refusal asked to wait before asking again: the
// client's own limits (4XX guard, rate limiter) or Prio's Retry-After; 0
// when err names no wait.
func askedWait(err error) time.Duration {
	var (
		local *LocalLimitError
		api   *APIError
	)
	switch {
	case errors.As(err, &local):
		return local.RetryAfter
	case errors.As(err, &api):
		return api.RetryAfter
	}
	return 0
}

// lookup reads the order from Prio's source of truth, in a window that
// covers the key's first known send.
func (b *booking) lookup(ctx context.Context) (*Order, error) {
	return b.s.find(ctx, b.req.OrderExternalReference, b.firstSend, asFollowUp)
}

// pause waits before re-send number round: the Retry-After of the last
// answer or the backoff, whichever is longer. It gives up (non-nil) when
// the wait would outlast ctx or is longer than the policy allows.
func (b *booking) pause(ctx context.Context, round int) error {
	p := b.s.c.doer.policy
	wait := p.backoff(round - 1)
	var ae *APIError
	if errors.As(b.lastErr, &ae) && ae.RetryAfter > 0 {
		if ae.RetryAfter > p.MaxRetryAfter {
			return errors.New("retry-after too long")
		}
		wait = max(wait, ae.RetryAfter)
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Add(wait).Before(dl) {
		return context.DeadlineExceeded
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// answeredByPrio reports whether an error answer came from Prio's
// application itself: its JSON error model (error and error_reference),
// on a status other than 504 and the 52x of CDNs, which by their nature say
// that the application did not answer in time. A gateway's page, an empty
// body or anything else leaves the request's fate open.
func answeredByPrio(resp *http.Response) bool {
	if resp.StatusCode == http.StatusGatewayTimeout || (resp.StatusCode >= 520 && resp.StatusCode <= 527) {
		return false
	}
	if !isJSON(resp.Header.Get("Content-Type")) {
		return false
	}
	bb, ok := resp.Body.(interface{ Bytes() []byte })
	if !ok {
		return false
	}
	var eb struct {
		Error          string `json:"error"`
		ErrorReference string `json:"error_reference"`
	}
	return json.Unmarshal(bb.Bytes(), &eb) == nil && eb.Error != "" && eb.ErrorReference != ""
}

// keyInUse recognises a refusal saying that another request with the same
// idempotency key is still being processed.
func keyInUse(ae *APIError) bool {
	c := strings.ToUpper(string(ae.Code))
	return strings.Contains(c, "IN_USE") || strings.Contains(c, "IN_PROGRESS") || strings.Contains(c, "PROCESSING")
}

// mismatch says how an order found under the request's external reference
// differs from the request (a product and type asked for with another
// count, or not there), or "" when it matches. A confirmation of a reservation is not compared: the
// request names no products.
func mismatch(req *OrderRequest, o *Order) string {
	want := map[[2]string]int{}
	for _, bo := range req.OrderBookings {
		if bo.BookingOptionType == ConfirmReservation {
			return ""
		}
		if bo.ProductId == nil || bo.ProductTypeDetails == nil {
			continue
		}
		for _, d := range *bo.ProductTypeDetails {
			want[[2]string{*bo.ProductId, d.ProductTypeId}] += max(d.ProductTypeCount, 1)
		}
	}
	got := map[[2]string]int{}
	for _, cb := range o.OrderBookings {
		for _, d := range cb.ProductTypeDetails {
			got[[2]string{cb.ProductId, d.ProductTypeId}] += max(d.ProductTypeCount, 1)
		}
	}
	if len(want) == 0 {
		return ""
	}
	// Lines Prio adds (the parts of a combination, say) are not a
	// mismatch; a line asked for with another count, or missing, is.
	for key, n := range want {
		if got[key] != n {
			return fmt.Sprintf("product %s, type %s: %d asked, %d in the order", key[0], key[1], n, got[key])
		}
	}
	return ""
}

// prepare checks a request and returns a copy with the defaults filled in.
func (s *OrdersService) prepare(in *OrderRequest) (*OrderRequest, error) {
	if in == nil {
		return nil, fmt.Errorf("%w: nil order request", ErrInvalidArgument)
	}
	if strings.TrimSpace(in.OrderExternalReference) == "" {
		return nil, fmt.Errorf("%w: order_external_reference is required: it is the booking's identity across retries and restarts", ErrInvalidArgument)
	}
	if len(in.OrderBookings) == 0 {
		return nil, fmt.Errorf("%w: order_bookings is empty", ErrInvalidArgument)
	}
	req := *in
	req.OrderBookings = slices.Clone(in.OrderBookings)
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
				return nil, fmt.Errorf("%w: booking %d confirms a reservation but has no reservation_reference", ErrInvalidArgument, i)
			}
		}
	}
	if confirms > 1 || (confirms == 1 && len(req.OrderBookings) > 1) {
		return nil, fmt.Errorf("%w: an order confirms at most one reservation and mixes no other bookings with it", ErrInvalidArgument)
	}
	return &req, nil
}

// isHoldExpired recognises Prio's refusal to confirm a reservation whose
// hold has lapsed.
func isHoldExpired(ae *APIError) bool {
	return ae.StatusCode >= 400 && ae.StatusCode < 500 && strings.Contains(strings.ToUpper(string(ae.Code)), "EXPIRED")
}

// errOrderAbsent is what FindByExternalReference wraps when Prio lists no
// order for the reference (it also matches ErrNotFound).
var errOrderAbsent = fmt.Errorf("%w: no order with this external reference", ErrNotFound)

// lookupWindowMargin is how far before the earliest known send a look-up
// starts listing: Prio lists the last three months unless told, and a
// booking's first send may predate what this process knows of it.
const lookupWindowMargin = 31 * 24 * time.Hour

// lookupPageSize is the page size of look-ups by external reference.
const lookupPageSize = 100

// FindByExternalReference returns the order booked under an external
// reference, read from Prio's source of truth (cache=false, every page), so
// that an order booked a moment ago is found. When Prio lists none, the
// error matches ErrNotFound. When Prio lists several (a duplicate made
// outside this SDK), the earliest is returned. Prio lists orders of the last
// three months. Finding nothing proves the booking absent only once no send
// of it can still be processed (the rule in the package documentation);
// to settle a booking, call Create again or Reconcile, which apply it.
func (s *OrdersService) FindByExternalReference(ctx context.Context, externalReference string, opts ...CallOption) (*Order, error) {
	return s.find(ctx, externalReference, time.Time{}, opts...)
}

// find is FindByExternalReference listing from firstSend minus a margin
// (Prio's default window when firstSend is zero).
func (s *OrdersService) find(ctx context.Context, externalReference string, firstSend time.Time, opts ...CallOption) (*Order, error) {
	if externalReference == "" {
		return nil, fmt.Errorf("%w: empty external reference", ErrInvalidArgument)
	}
	perPage, noCache := lookupPageSize, "false"
	params := &ListOrdersParams{OrderExternalReference: &externalReference, DistributorId: &s.c.cfg.distributorID,
		ItemsPerPage: &perPage, Cache: &noCache}
	if !firstSend.IsZero() {
		from := wire.NewDateTime(firstSend.Add(-lookupWindowMargin))
		params.OrderCreatedFrom = &from
	}
	var match []Order
	for o, err := range s.List(ctx, params, opts...) {
		if err != nil {
			return nil, err
		}
		if o.OrderExternalReference == externalReference {
			match = append(match, *o)
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

// CancelOptions narrows a cancellation, of an order (Orders.Cancel) or of a
// reservation (Reservations.Cancel). The zero value, like nil, cancels the
// whole order or reservation and refunds any payment.
type CancelOptions struct {
	// BookingReferences cancels only these bookings: an order's
	// booking_reference values, or a reservation's lines (their
	// booking_reservation_reference values).
	BookingReferences      []string
	ProductTypeTransaction []string // orders only: cancel only these tickets (advanced)
	Reason                 string   // sent as cancellation_reason
	NoRefund               bool     // orders only: keep payments (Prio refunds by default)
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
// it polls Prio's source of truth on the client's ReconcileSchedule until
// the order is listed in a final state and returns it. A webhook event for
// the order (see WithWebhookNotify) ends a wait at once.
//
// When no order appears, Reconcile gives up with an error matching
// ErrNotFound (the booking did not happen and may be made again with the
// same external reference) once GiveUpAfter has passed since the last send
// of the booking that may have reached Prio, and never before the
// processing horizon has passed since then. The last send is what this
// client knows of the reference's derived key, or what WithPreviousAttempt
// says; with neither, the count starts when Reconcile does. When ctx ends
// first, the error is an *OutcomeUnknownError.
func (s *OrdersService) Reconcile(ctx context.Context, externalReference string, opts ...CallOption) (*Order, error) {
	if externalReference == "" {
		return nil, fmt.Errorf("%w: empty external reference", ErrInvalidArgument)
	}
	o := buildCallOptions(opts)
	sched := s.c.cfg.reconcile
	start := s.c.cfg.now()
	known := s.c.keys.known(DeriveKey(s.c.cfg.distributorID, "createOrder", externalReference))
	base := start
	if last := latest(known.lastSend, o.prevSend); !last.IsZero() {
		base = last
	}
	giveUpAt := time.Time{}
	if sched.GiveUpAfter > 0 {
		giveUpAt = base.Add(max(sched.GiveUpAfter, s.c.doer.policy.ProcessingHorizon))
		giveUpAt = latest(giveUpAt, known.doubtUntil)
	}
	firstSend := known.firstSend
	if firstSend.IsZero() {
		firstSend = o.prevSend
	}
	wake, cancel := s.c.waiters.add(externalReference)
	defer cancel()
	var last error
	for n := 0; ; n++ {
		order, err := s.find(ctx, externalReference, firstSend, opts...)
		switch {
		case err == nil:
			if orderSettled(order) {
				return order, nil
			}
			if order.OrderReference != nil {
				s.c.waiters.alias(externalReference, *order.OrderReference)
			}
		case errors.Is(err, ErrNotFound):
			if !giveUpAt.IsZero() && !s.c.cfg.now().Before(giveUpAt) {
				return nil, fmt.Errorf("prio: reconcile %q: %w: none listed by %s", externalReference, errOrderAbsent, giveUpAt.Format(time.RFC3339))
			}
		default:
			last = err
		}
		wait := sched.wait(n)
		if !giveUpAt.IsZero() {
			if until := giveUpAt.Sub(s.c.cfg.now()); until > 0 && until < wait {
				wait = until // poll once more right when the horizon passes
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, &OutcomeUnknownError{Operation: "reconcile", ExternalReference: externalReference,
				Lookups: n + 1, Elapsed: s.c.cfg.now().Sub(start), LastSend: known.lastSend,
				DecidableAt: latest(giveUpAt, s.c.cfg.now()), SendErr: ctx.Err(), LookupErr: last}
		case <-wake:
			t.Stop()
		case <-t.C:
		}
	}
}

// latest returns the later of two times.
func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// orderSettled reports whether an order has left every processing state.
func orderSettled(o *Order) bool {
	switch o.OrderStatus {
	case OrderPending, OrderReview, "ORDER_PROCESSING": // the last is not in the spec's list
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
