package priotest

import (
	"cmp"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/priosdk/prio-go/generated"
	"github.com/priosdk/prio-go/internal/apiserver"
	"github.com/priosdk/prio-go/wire"
)

const (
	codeReservationPaid    = "RESERVATION_PAID"
	codePaymentNotAllowed  = "PAYMENT_NOT_ALLOWED"
	codeInvalidAmount      = "INVALID_PAYMENT_AMOUNT"
	codePaymentFinal       = "PAYMENT_NOT_CHANGEABLE"
	paymentObjectManual    = "MANUAL"
	paymentObjectRecurring = "ADYEN_RECURRING"
	paymentObjectMews      = "MEWS_BILL"
)

// payment is a guest payment of an order or a reservation. MANUAL,
// ADYEN_RECURRING and MEWS_BILL payments are PAID at once; every other flow
// stays PENDING until Submit Additional Payment Details completes it. Each
// has a (never reachable) hosted payment link.
type payment struct {
	id         string
	target     string // order or reservation reference
	bookings   []string
	class      *generated.PaymentClass
	req        generated.PaymentRequestType
	cents      int
	refunded   int
	status     generated.PaymentStatus
	refundNote *string
	created    time.Time
	modified   time.Time
	link       string
}

// paid reports whether a payment of the order or reservation ref went
// through.
func (st *state) paid(ref string) bool {
	return slices.ContainsFunc(st.ext.payments, func(p *payment) bool {
		return p.target == ref && (p.status == generated.PaymentStatusPAID || p.status == generated.PaymentStatusAUTHORIZED)
	})
}

func (p *payment) model() generated.PaymentDetails {
	r := p.req
	ptype := generated.CAPTURE
	if p.refunded > 0 {
		ptype = generated.REFUND
	}
	m := generated.PaymentDetails{
		PaymentId:                &p.id,
		PaymentOrderReference:    ptr(p.target),
		PaymentAmount:            ptr(money(p.cents)),
		PaymentTotal:             ptr(money(p.cents - p.refunded)),
		PaymentCurrencyCode:      cmp.Or(deref(r.PaymentCurrencyCode), "EUR"),
		PaymentCurrencyAmount:    r.PaymentCurrencyAmount,
		PaymentCurrencyRate:      r.PaymentCurrencyRate,
		PaymentExternalReference: ptr(r.PaymentExternalReference),
		PaymentMerchantReference: r.PaymentMerchantReference,
		PaymentMethod:            r.PaymentMethod,
		PaymentContact:           r.PaymentContact,
		PaymentNotes:             r.PaymentNotes,
		PaymentScheme:            r.PaymentScheme,
		PaymentRecurring:         ptr(deref(r.PaymentRecurring)),
		PaymentRecurringType:     r.PaymentRecurringType,
		PaymentClass:             p.class,
		PaymentStatus:            p.status,
		PaymentType:              ptype,
		PaymentRefundReason:      p.refundNote,
		PaymentCreated:           dtp(p.created),
		PaymentCreatedName:       ptr("Sandbox API"),
		PaymentCreatedEmail:      ptr("api@sandbox.example"),
	}
	if len(p.bookings) > 0 {
		m.PaymentBookingReferences = ptr(slices.Clone(p.bookings))
	}
	if p.refunded > 0 {
		m.PaymentRefundType = ptr(generated.RefundTypePSP)
	}
	if p.link != "" && p.status == generated.PaymentStatusPENDING {
		m.PaymentLink = ptr(p.link)
	}
	gateway := string(cmp.Or(deref(r.PaymentGatewayType), generated.PaymentGatewayTypeNONE))
	m.PaymentGatewayDetails = &generated.PaymentGatewayDetails{
		PaymentGatewayType:              gateway,
		PaymentCustomerId:               r.PaymentCustomerId,
		PaymentMerchantAccountName:      deref(r.PaymentMerchantAccountName),
		PaymentServiceProviderReference: ptr(p.pspReference()),
	}
	return m
}

func (p *payment) pspReference() string {
	if ref := deref(p.req.PaymentServiceProviderReference); ref != "" {
		return ref
	}
	return "PSP-" + p.id
}

// parseCents reads a decimal money string ("12.5", "12.50", "12").
func parseCents(s string) (int, bool) {
	whole, frac, _ := strings.Cut(strings.TrimSpace(s), ".")
	if len(frac) > 2 {
		return 0, false
	}
	w, err := strconv.Atoi(whole)
	if err != nil || w < 0 || strings.HasPrefix(whole, "+") {
		return 0, false
	}
	f := 0
	if frac != "" {
		if f, err = strconv.Atoi(frac + strings.Repeat("0", 2-len(frac))); err != nil || f < 0 {
			return 0, false
		}
	}
	return w*100 + f, true
}

// due is what is left to pay for the order or reservation ref (only the
// given bookings or lines, when any), and whether ref exists.
func (st *state) due(ref string, bookings []string) (int, *apiError) {
	if o, ok := st.ordersByRef[ref]; ok {
		if o.status == generated.ORDERCANCELLED {
			return 0, errorf(http.StatusConflict, "ORDER_CANCELLED", "Order %s is cancelled.", o.ref)
		}
		if o.settlement != nil && (*o.settlement == generated.SettlementTypeEXTERNAL || *o.settlement == generated.SettlementTypeINVOICE) {
			return 0, errorf(http.StatusUnprocessableEntity, codePaymentNotAllowed, "Order %s is settled %s; guest payments need DIRECT or VENUE settlement.", o.ref, *o.settlement)
		}
		if st.paid(o.ref) {
			return 0, errorf(http.StatusConflict, codePaymentNotAllowed, "Order %s is paid already.", o.ref)
		}
		if len(bookings) == 0 {
			_, total := discounts(o.totalCents(), o.promos)
			return total, nil
		}
		n := 0
		for _, ref := range bookings {
			i := slices.IndexFunc(o.bookings, func(b *booking) bool { return b.ref == ref })
			if i < 0 {
				return 0, errorf(http.StatusNotFound, "NOT_FOUND", "Order %s has no booking %s.", o.ref, ref)
			}
			n += o.bookings[i].cents()
		}
		return n, nil
	}
	r, ok := st.reservations[ref]
	if !ok {
		return 0, errorf(http.StatusNotFound, "NOT_FOUND", "No order or reservation %s.", ref)
	}
	if e := st.amendable(r); e != nil {
		return 0, e
	}
	n := 0
	for _, l := range r.lines {
		if l.status == generated.BOOKINGRESERVED && (len(bookings) == 0 || slices.Contains(bookings, l.ref)) {
			for _, it := range l.line.items {
				n += it.count * l.line.product.prices[it.typeID]
			}
		}
	}
	for _, ref := range bookings {
		if !slices.ContainsFunc(r.lines, func(l *resLine) bool { return l.ref == ref }) {
			return 0, errorf(http.StatusNotFound, "NOT_FOUND", "Reservation %s has no line %s.", r.ref, ref)
		}
	}
	if len(bookings) == 0 {
		_, n = discounts(n, r.promos)
	}
	return n, nil
}

// AddPayment starts a payment of an order or reservation (order_reference,
// required here) for what is due, or payment_amount when given.
func (h handlers) AddPayment(_ context.Context, req apiserver.AddPaymentRequestObject) (apiserver.AddPaymentResponseObject, error) {
	ref := deref(req.Params.OrderReference)
	if ref == "" {
		return nil, errorf(http.StatusBadRequest, codeInvalidRequest, "order_reference is required: the order or reservation to pay.")
	}
	in := req.Body.Data.Payment
	s := h.s
	s.mu.Lock()
	now := s.now()
	events := s.st.settle(now, distributorName)
	defer func() { s.mu.Unlock(); s.dispatch(events) }()
	var bookings []string
	if req.Params.BookingReference != nil {
		bookings = *req.Params.BookingReference
	}
	due, e := s.st.due(ref, bookings)
	if e != nil {
		return nil, e
	}
	cents := due
	if in.PaymentAmount != nil && *in.PaymentAmount != "" {
		n, ok := parseCents(string(*in.PaymentAmount))
		if !ok || n <= 0 || n > due {
			return nil, errorf(http.StatusUnprocessableEntity, codeInvalidAmount, "payment_amount %q must be a positive amount up to the %s due.", *in.PaymentAmount, money(due))
		}
		cents = n
	}
	p := &payment{
		id: s.st.uuid().String(), target: ref, bookings: bookings, class: req.Params.PaymentClass,
		req: in, cents: cents, status: generated.PaymentStatusPENDING, created: now, modified: now,
	}
	p.link = "https://checkout.priotest.invalid/pay/" + p.id
	switch in.PaymentObjectType {
	case paymentObjectManual, paymentObjectRecurring, paymentObjectMews:
		p.status = generated.PaymentStatusPAID
	}
	s.st.ext.payments = append(s.st.ext.payments, p)
	out := generated.MakePaymentResponse{
		PaymentDetails:                  p.model(),
		PaymentObjectType:               in.PaymentObjectType,
		PaymentServiceProviderReference: p.pspReference(),
		PaymentResultCode:               ptr("Authorised"),
		PaymentLink:                     ptr(p.link),
	}
	if p.status == generated.PaymentStatusPENDING {
		out.PaymentResultCode = ptr("RedirectShopper")
		out.PaymentLinkExpiresAt = dtp(now.Add(24 * time.Hour))
		out.PaymentAction = &map[string]json.RawMessage{"type": json.RawMessage(`"redirect"`), "url": jsonString(p.link)}
	}
	return apiserver.AddPayment201JSONResponse{
		ApiVersion: ptr(apiVersion),
		Data:       generated.CreatePaymentResponseData{Kind: generated.KindPayment, Payment: out},
	}, nil
}

// GetPayments lists payments, filtered and paged.
func (h handlers) GetPayments(ctx context.Context, req apiserver.GetPaymentsRequestObject) (apiserver.GetPaymentsResponseObject, error) {
	p := req.Params
	eq := func(want *string, have string) bool { return want == nil || *want == "" || *want == have }
	s := h.s
	s.mu.Lock()
	last := s.st.epoch
	var all []generated.PaymentDetails
	for _, x := range s.st.ext.payments {
		if !eq(p.OrderReference, x.target) || !eq(p.PaymentId, x.id) || !eq(p.PaymentMerchantReference, x.req.PaymentMerchantReference) ||
			!eq(p.PaymentServiceProviderReference, x.pspReference()) || !eq(p.PaymentExternalReference, x.req.PaymentExternalReference) ||
			!sameRaw(p.PaymentClass, x.class) {
			continue
		}
		all = append(all, x.model())
		if x.modified.After(last) {
			last = x.modified
		}
	}
	s.mu.Unlock()
	pg, e := paginate(len(all), p.ItemsPerPage, p.StartIndex, p.Page)
	if e != nil {
		return nil, e
	}
	setLastModified(ctx, last)
	items := all[pg.from:pg.to]
	return apiserver.GetPayments200JSONResponse{
		ApiVersion: ptr(apiVersion),
		Data: generated.PaymentListResponseData{
			Kind: generated.KindPayment, Items: nonNil(items),
			CurrentItemCount: len(items), ItemsPerPage: pg.perPage, StartIndex: pg.start,
			TotalItems: pg.total, PageIndex: pg.pageIndex, TotalPages: pg.totalPages,
		},
	}, nil
}

// CancelPayment cancels the latest matching payment still in progress, or
// refunds a paid one (refund_amount, or all that is left). At least one of
// payment_id, payment_merchant_reference,
// payment_service_provider_reference, order_reference and
// booking_reference must name it.
func (h handlers) CancelPayment(_ context.Context, req apiserver.CancelPaymentRequestObject) (apiserver.CancelPaymentResponseObject, error) {
	q := req.Params
	given := func(v *string) bool { return v != nil && *v != "" }
	if !given(q.PaymentId) && !given(q.PaymentMerchantReference) && !given(q.PaymentServiceProviderReference) &&
		!given(q.OrderReference) && (q.BookingReference == nil || len(*q.BookingReference) == 0) {
		return nil, errorf(http.StatusBadRequest, codeInvalidRequest, "Name the payment: payment_id, payment_merchant_reference, payment_service_provider_reference, order_reference or booking_reference.")
	}
	eq := func(want *string, have string) bool { return !given(want) || *want == have }
	s := h.s
	s.mu.Lock()
	defer s.mu.Unlock()
	var p *payment
	for _, x := range slices.Backward(s.st.ext.payments) {
		if !eq(q.PaymentId, x.id) || !eq(q.PaymentMerchantReference, x.req.PaymentMerchantReference) ||
			!eq(q.PaymentServiceProviderReference, x.pspReference()) || !eq(q.OrderReference, x.target) {
			continue
		}
		if q.BookingReference != nil && len(*q.BookingReference) > 0 && len(x.bookings) > 0 &&
			!slices.ContainsFunc(*q.BookingReference, func(b string) bool { return slices.Contains(x.bookings, b) }) {
			continue
		}
		p = x
		break
	}
	if p == nil {
		return nil, errorf(http.StatusNotFound, "NOT_FOUND", "No payment matches.")
	}
	now := s.now()
	switch p.status {
	case generated.PaymentStatusPENDING, generated.PaymentStatusINPROGRESS, generated.PaymentStatusPROCESSING:
		p.status = generated.PaymentStatusCANCELLED
	case generated.PaymentStatusPAID, generated.PaymentStatusAUTHORIZED, generated.PaymentStatusPARTIALREFUND:
		left := p.cents - p.refunded
		amount := left
		if given(q.RefundAmount) {
			n, ok := parseCents(*q.RefundAmount)
			if !ok || n <= 0 || n > left {
				return nil, errorf(http.StatusUnprocessableEntity, codeInvalidAmount, "refund_amount %q must be a positive amount up to the %s paid.", *q.RefundAmount, money(left))
			}
			amount = n
		}
		p.refunded += amount
		p.status = generated.PaymentStatusPARTIALREFUND
		if p.refunded == p.cents {
			p.status = generated.PaymentStatusREFUNDED
		}
		p.refundNote = q.RefundReason
	default:
		return nil, errorf(http.StatusConflict, codePaymentFinal, "Payment %s is %s.", p.id, p.status)
	}
	p.modified = now
	return apiserver.CancelPayment200JSONResponse{
		ApiVersion: ptr(apiVersion),
		Data:       generated.PaymentDetailsResponseData{Kind: generated.KindPayment, Payment: p.model()},
	}, nil
}

// paymentMethods is the Adyen-style method list Get Payment Configuration
// answers, as the JSON text the spec carries in payment_methods.
var paymentMethods = func() string {
	b, _ := json.Marshal(map[string]any{"paymentMethods": []map[string]string{
		{"name": "Credit Card", "type": "scheme"}, {"name": "iDEAL", "type": "ideal"},
	}})
	return string(b)
}()

// GetPaymentConfig answers a fixed provider configuration for an existing
// order or reservation.
func (h handlers) GetPaymentConfig(_ context.Context, req apiserver.GetPaymentConfigRequestObject) (apiserver.GetPaymentConfigResponseObject, error) {
	s := h.s
	s.mu.Lock()
	_, isOrder := s.st.ordersByRef[req.Params.OrderReference]
	_, isRes := s.st.reservations[req.Params.OrderReference]
	s.mu.Unlock()
	if !isOrder && !isRes {
		return nil, errorf(http.StatusNotFound, "NOT_FOUND", "No order or reservation %s.", req.Params.OrderReference)
	}
	return apiserver.GetPaymentConfig200JSONResponse{
		PaymentMethods:      ptr(paymentMethods),
		PaymentOriginDomain: ptr(s.AdminURL()),
		PaymentOriginKey:    ptr("pub.v2.priotest." + strings.ToLower(string(req.Params.PaymentGatewayType))),
	}, nil
}

// AddPaymentDetails completes a PENDING payment: it becomes PAID.
func (h handlers) AddPaymentDetails(_ context.Context, req apiserver.AddPaymentDetailsRequestObject) (apiserver.AddPaymentDetailsResponseObject, error) {
	if strings.TrimSpace(req.Body.Data) == "" {
		return nil, errorf(http.StatusBadRequest, codeInvalidRequest, "data is empty.")
	}
	s := h.s
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(s.st.ext.payments, func(p *payment) bool { return p.id == req.PaymentId })
	if i < 0 {
		return nil, errorf(http.StatusNotFound, "NOT_FOUND", "Payment %s does not exist.", req.PaymentId)
	}
	p := s.st.ext.payments[i]
	if p.status != generated.PaymentStatusPENDING && p.status != generated.PaymentStatusINPROGRESS {
		return nil, errorf(http.StatusConflict, codePaymentFinal, "Payment %s is %s.", p.id, p.status)
	}
	p.status, p.modified = generated.PaymentStatusPAID, s.now()
	return apiserver.AddPaymentDetails201JSONResponse{
		ApiVersion: ptr(apiVersion),
		Data: generated.SubmitPaymentDetailsResponseData{Kind: generated.KindPayment, Payment: generated.AdyenDropInPaymentResponse{
			PaymentDetails: p.model(), PaymentObjectType: p.req.PaymentObjectType, PaymentResultCode: ptr("Authorised"),
		}},
	}, nil
}

// jsonString is s as a JSON string.
func jsonString(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}

// sameRaw reports whether a filter (nil: none) matches a raw value by its
// text.
func sameRaw(filter, v *wire.Raw) bool {
	if filter == nil {
		return true
	}
	if v == nil {
		return false
	}
	a, _ := filter.Text()
	b, _ := v.Text()
	return a == b
}
