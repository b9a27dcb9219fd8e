package prio

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/priosdk/prio-go/generated"
)

// ReservationsService holds capacity before payment and confirms it.
type ReservationsService struct{ c *Client }

// Create holds capacity for one or more products. Prio wants one
// reservation per order; change it later with Update. The idempotency key
// is derived from the distributor id and ReservationExternalReference, so
// retries (automatic, or yours after a crash) hold capacity only once on a
// server that honours keys. req is not changed: the client's distributor
// id, when missing, is filled in on a copy.
func (s *ReservationsService) Create(ctx context.Context, req *Reservation, opts ...CallOption) (*Reservation, error) {
	if req == nil || strings.TrimSpace(req.ReservationExternalReference) == "" {
		return nil, fmt.Errorf("%w: reservation_external_reference is required", ErrInvalidArgument)
	}
	if len(req.ReservationDetails) == 0 {
		return nil, fmt.Errorf("%w: reservation_details is empty", ErrInvalidArgument)
	}
	req = s.withDistributor(req)
	k, err := s.c.newCall("createReservation", opts)
	if err != nil {
		return nil, err
	}
	k.booking = true
	if k.key == "" {
		k.key = DeriveKey(s.c.cfg.distributorID, "createReservation", req.ReservationExternalReference)
	}
	return s.sendBody(ctx, k, req, func(ctx context.Context, body []byte, eds ...generated.RequestEditorFn) (*http.Response, error) {
		return s.c.raw.CreateReservationWithBody(ctx, "application/json", bytes.NewReader(body), eds...)
	})
}

// withDistributor returns req, or a copy of it with the client's
// distributor id when it names none: the caller's value is never changed.
func (s *ReservationsService) withDistributor(req *Reservation) *Reservation {
	if req.ReservationDistributorId != "" {
		return req
	}
	cp := *req
	cp.ReservationDistributorId = s.c.cfg.distributorID
	return &cp
}

// sendBody encodes a reservation once, guards its key, and runs the call.
func (s *ReservationsService) sendBody(ctx context.Context, k *call, req *Reservation,
	fn func(ctx context.Context, body []byte, eds ...generated.RequestEditorFn) (*http.Response, error)) (*Reservation, error) {
	kind := generated.Kind("reservation")
	body, err := json.Marshal(generated.CreateReservationRequest{Data: generated.CreateReservationRequestData{Kind: &kind, Reservation: *req}})
	if err != nil {
		return nil, fmt.Errorf("%w: encoding the reservation: %v", ErrInvalidArgument, err)
	}
	if k.key != "" {
		if err := s.c.keys.check(k.key, body); err != nil {
			return nil, k.finish(err)
		}
	}
	var out generated.ReservationDetailResponse
	err = s.c.simpleCall(ctx, k, &out, func(ctx context.Context, eds ...generated.RequestEditorFn) (*http.Response, error) {
		return fn(ctx, body, eds...)
	})
	if err != nil {
		return nil, err
	}
	return &out.Data.Reservation, nil
}

// Get returns a reservation. Expired reservations stay readable for about
// ten days.
func (s *ReservationsService) Get(ctx context.Context, reservationReference string, opts ...CallOption) (*Reservation, error) {
	r, err := s.GetIfModified(ctx, reservationReference, time.Time{}, opts...)
	if err != nil {
		return nil, err
	}
	return r.Value, nil
}

// GetIfModified returns a reservation only if it changed since the given
// time; otherwise NotModified is set. A zero since makes it an ordinary Get.
func (s *ReservationsService) GetIfModified(ctx context.Context, reservationReference string, since time.Time, opts ...CallOption) (Conditional[Reservation], error) {
	if reservationReference == "" {
		return Conditional[Reservation]{}, fmt.Errorf("%w: empty reservation reference", ErrInvalidArgument)
	}
	var out generated.ReservationDetailResponse
	lm, err := s.c.conditional(ctx, "getReservation", opts, since, &out, func(ctx context.Context, eds ...generated.RequestEditorFn) (*http.Response, error) {
		return s.c.raw.GetReservation(ctx, reservationReference, nil, eds...)
	})
	if errors.Is(err, errNotModified) {
		return Conditional[Reservation]{NotModified: true, LastModified: lm}, nil
	}
	if err != nil {
		return Conditional[Reservation]{}, err
	}
	return Conditional[Reservation]{Value: &out.Data.Reservation, LastModified: lm}, nil
}

// Update changes a reservation: a line with an empty
// booking_reservation_reference is added, a line with one replaces that
// line (quantities are overwritten, not added). Send only the lines to
// change. req is not changed.
func (s *ReservationsService) Update(ctx context.Context, reservationReference string, req *Reservation, opts ...CallOption) (*Reservation, error) {
	if reservationReference == "" || req == nil {
		return nil, fmt.Errorf("%w: reservation reference and body are required", ErrInvalidArgument)
	}
	req = s.withDistributor(req)
	k, err := s.c.newCall("updateReservation", opts)
	if err != nil {
		return nil, err
	}
	return s.sendBody(ctx, k, req, func(ctx context.Context, body []byte, eds ...generated.RequestEditorFn) (*http.Response, error) {
		return s.c.raw.UpdateReservationWithBody(ctx, reservationReference, "application/json", bytes.NewReader(body), eds...)
	})
}

// Cancel releases a whole reservation, or only some of its lines, and
// returns it. It takes the same options as Orders.Cancel: BookingReferences
// names the lines (their booking_reservation_reference values) and Reason
// is sent as the cancellation reason; a nil o releases the whole
// reservation. Prio refunds any payment made, so ProductTypeTransaction and
// NoRefund, which only orders know, are refused with ErrInvalidArgument.
func (s *ReservationsService) Cancel(ctx context.Context, reservationReference string, o *CancelOptions, opts ...CallOption) (*Reservation, error) {
	if reservationReference == "" {
		return nil, fmt.Errorf("%w: empty reservation reference", ErrInvalidArgument)
	}
	p := &generated.CancelReservationParams{}
	if o != nil {
		if len(o.ProductTypeTransaction) > 0 || o.NoRefund {
			return nil, fmt.Errorf("%w: a reservation is cancelled by line or whole, and always refunded: ProductTypeTransaction and NoRefund are for orders", ErrInvalidArgument)
		}
		if len(o.BookingReferences) > 0 {
			lines := slices.Clone(o.BookingReferences)
			p.BookingReservationReference = &lines
		}
		if o.Reason != "" {
			reason := o.Reason
			p.CancellationReason = &reason
		}
	}
	var out generated.ReservationDetailResponse
	err := s.c.simple(ctx, "cancelReservation", opts, &out, func(ctx context.Context, eds ...generated.RequestEditorFn) (*http.Response, error) {
		return s.c.raw.CancelReservation(ctx, reservationReference, p, eds...)
	})
	if err != nil {
		return nil, err
	}
	return &out.Data.Reservation, nil
}

// AddPromocode applies a promo code to a reservation and returns it with
// updated prices. A declined code fails with Prio's INVALID_PROMOCODE, whose
// Message may be shown to the guest.
func (s *ReservationsService) AddPromocode(ctx context.Context, reservationReference, code string, opts ...CallOption) (*Reservation, error) {
	if reservationReference == "" || code == "" {
		return nil, fmt.Errorf("%w: reservation reference and promo code are required", ErrInvalidArgument)
	}
	k, err := s.c.newCall("addPromocode", opts)
	if err != nil {
		return nil, err
	}
	if k.key == "" {
		k.key = DeriveKey(s.c.cfg.distributorID, "addPromocode", reservationReference+"\x00"+code)
	}
	var out generated.ReservationDetailResponse
	err = s.c.simpleCall(ctx, k, &out, func(ctx context.Context, eds ...generated.RequestEditorFn) (*http.Response, error) {
		return s.c.raw.AddPromocode(ctx, reservationReference, &generated.AddPromocodeParams{PromoCode: code}, eds...)
	})
	if err != nil {
		return nil, err
	}
	return &out.Data.Reservation, nil
}

// RemovePromocode removes a promo code from a reservation.
func (s *ReservationsService) RemovePromocode(ctx context.Context, reservationReference, code string, opts ...CallOption) (*Reservation, error) {
	if reservationReference == "" || code == "" {
		return nil, fmt.Errorf("%w: reservation reference and promo code are required", ErrInvalidArgument)
	}
	var out generated.ReservationDetailResponse
	err := s.c.simple(ctx, "removePromocode", opts, &out, func(ctx context.Context, eds ...generated.RequestEditorFn) (*http.Response, error) {
		return s.c.raw.RemovePromocode(ctx, reservationReference, code, eds...)
	})
	if err != nil {
		return nil, err
	}
	return &out.Data.Reservation, nil
}

// Confirm books a held reservation, named by its reservation_reference
// (what a shop keeps of a cart): it creates the order described by order
// (its external reference, contacts, options) with one CONFIRM_RESERVATION
// booking, through Orders.Create and all its guarantees. order is not
// changed; its OrderBookings must be empty, since Confirm sets them.
//
// Prio's refusal of an expired hold matches ErrHoldExpired and is not
// retried. When the caller knows the hold's end (the reservation's
// ReservationValidUntil), WithHoldUntil lets Confirm fail with
// ErrHoldExpired once it has passed, before anything is sent.
func (s *ReservationsService) Confirm(ctx context.Context, reservationReference string, order *OrderRequest, opts ...CallOption) (*Order, error) {
	if reservationReference == "" {
		return nil, fmt.Errorf("%w: empty reservation reference", ErrInvalidArgument)
	}
	if order == nil {
		return nil, fmt.Errorf("%w: nil order request: Confirm needs at least its order_external_reference", ErrInvalidArgument)
	}
	if len(order.OrderBookings) > 0 {
		return nil, fmt.Errorf("%w: Confirm sets order_bookings itself", ErrInvalidArgument)
	}
	if until := buildCallOptions(opts).holdUntil; !until.IsZero() && !s.c.cfg.now().Before(until) {
		return nil, fmt.Errorf("%w: reservation %s was valid until %s", ErrHoldExpired, reservationReference, until.Format(time.RFC3339))
	}
	req := *order
	ref := reservationReference
	req.OrderBookings = []BookingOption{{BookingOptionType: ConfirmReservation, ReservationReference: &ref}}
	return s.c.Orders.Create(ctx, &req, opts...)
}

// WithHoldUntil tells Reservations.Confirm when the reservation's hold
// ends (its ReservationValidUntil), so that a hold known to have lapsed
// fails with ErrHoldExpired without a request; other calls ignore it.
// Without it Confirm sends, and Prio's refusal matches ErrHoldExpired.
func WithHoldUntil(validUntil time.Time) CallOption {
	return func(o *callOptions) { o.holdUntil = validUntil }
}
