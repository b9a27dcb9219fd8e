package priotest

import (
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/priosdk/prio-go/generated"
	"github.com/priosdk/prio-go/internal/apiserver"
)

// The seeded promocodes. Add Promocode applies them to a reservation; the
// order confirming it keeps them, with the same discount.
const (
	// PromoPercent takes PromoPercentOff percent off the subtotal.
	PromoPercent = "SANDBOX10"
	// PromoFixed takes PromoFixedOffCents (in EUR cents) off, never more
	// than what is left to pay.
	PromoFixed = "SANDBOX5"
	// PromoExpired is a known but expired code: Add Promocode answers 422
	// INVALID_PROMOCODE with a message for the guest, as for an unknown code.
	PromoExpired = "EXPIRED2020"
)

// The discounts of the seeded promocodes.
const (
	PromoPercentOff    = 10
	PromoFixedOffCents = 500
)

const codeInvalidPromocode = "INVALID_PROMOCODE"

type promocode struct {
	code        string
	title       string
	percent     int // percentage off the subtotal
	fixedCents  int // amount off
	declinedMsg string
}

var promocodes = []promocode{
	{code: PromoPercent, title: "Sandbox 10% off", percent: PromoPercentOff},
	{code: PromoFixed, title: "Sandbox EUR 5 off", fixedCents: PromoFixedOffCents},
	{code: PromoExpired, title: "Sandbox 2020 offer", declinedMsg: "This promocode expired on 31 December 2020."},
}

func promocodeByCode(code string) (promocode, bool) {
	for _, p := range promocodes {
		if p.code == code {
			return p, true
		}
	}
	return promocode{}, false
}

// discounts applies codes to subtotal cents in order: each discount is
// taken from what the earlier ones left, never below zero. It returns the
// discount of each code and the total left.
func discounts(subtotal int, codes []string) (offs []int, total int) {
	total = subtotal
	for _, c := range codes {
		p, _ := promocodeByCode(c)
		off := min(total*p.percent/100+p.fixedCents, total)
		total -= off
		offs = append(offs, off)
	}
	return offs, total
}

// promoPricing prices subtotal cents with the codes applied.
func promoPricing(subtotal int, codes []string) (generated.Pricing, *[]generated.AppliedPromocode) {
	offs, total := discounts(subtotal, codes)
	lines := make([]generated.PromoCodePricing, 0, len(codes))
	applied := make([]generated.AppliedPromocode, 0, len(codes))
	for i, c := range codes {
		p, _ := promocodeByCode(c)
		lines = append(lines, generated.PromoCodePricing{PromoCode: p.code, PromoAmount: money(offs[i])})
		applied = append(applied, generated.AppliedPromocode{PromoCode: p.code, PromoTitle: p.title})
	}
	out := pricing(total)
	out.PriceSubtotal = pricing(subtotal).PriceSubtotal
	out.PricePromocodes = &lines
	return out, &applied
}

// amendable refuses changes to a reservation that can take none: confirmed,
// no longer holding anything, or paid.
func (st *state) amendable(r *reservation) *apiError {
	switch {
	case r.orderRef != "":
		return errorf(http.StatusConflict, codeReservationConfirmed, "Reservation %s was confirmed by order %s.", r.ref, r.orderRef)
	case r.anyStatus(generated.BOOKINGRESERVATIONEXPIRED) && !r.active():
		return errorf(http.StatusConflict, codeReservationExpired, "Reservation %s expired at %s.", r.ref, dt(r.validUntil))
	case !r.active():
		return errorf(http.StatusConflict, codeReservationCancelled, "Reservation %s was cancelled.", r.ref)
	case st.paid(r.ref):
		return errorf(http.StatusConflict, codeReservationPaid, "Reservation %s is paid and can no longer be amended.", r.ref)
	}
	return nil
}

// AddPromocode applies a seeded promocode to a reservation. Unknown and
// expired codes answer 422 INVALID_PROMOCODE; applying a code twice
// answers the reservation unchanged.
func (h handlers) AddPromocode(ctx context.Context, req apiserver.AddPromocodeRequestObject) (apiserver.AddPromocodeResponseObject, error) {
	code := req.Params.PromoCode
	out, err := h.reservationResponse(ctx, req.ReservationReference, func(now time.Time, r *reservation) *apiError {
		if e := h.s.st.amendable(r); e != nil {
			return e
		}
		p, ok := promocodeByCode(code)
		switch {
		case !ok:
			return errorf(http.StatusUnprocessableEntity, codeInvalidPromocode, "The promocode %s is not valid.", code)
		case p.declinedMsg != "":
			return errorf(http.StatusUnprocessableEntity, codeInvalidPromocode, "%s", p.declinedMsg)
		case slices.Contains(r.promos, code):
			return nil
		}
		r.promos = append(r.promos, code)
		r.modified = now
		return nil
	})
	if err != nil {
		return nil, err
	}
	return apiserver.AddPromocode200JSONResponse(out), nil
}

// RemovePromocode takes a code off a reservation; a code that is not on it
// answers 404.
func (h handlers) RemovePromocode(ctx context.Context, req apiserver.RemovePromocodeRequestObject) (apiserver.RemovePromocodeResponseObject, error) {
	code := req.PromoCode
	out, err := h.reservationResponse(ctx, req.ReservationReference, func(now time.Time, r *reservation) *apiError {
		if e := h.s.st.amendable(r); e != nil {
			return e
		}
		if !slices.Contains(r.promos, code) {
			return errorf(http.StatusNotFound, "NOT_FOUND", "Reservation %s has no promocode %s.", r.ref, code)
		}
		r.promos = slices.DeleteFunc(r.promos, func(c string) bool { return c == code })
		r.modified = now
		return nil
	})
	if err != nil {
		return nil, err
	}
	return apiserver.RemovePromocode200JSONResponse(out), nil
}
