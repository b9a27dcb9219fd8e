package priotest

import (
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/priosdk/prio-go/generated"
	"github.com/priosdk/prio-go/internal/apiserver"
)

// UpdateReservation changes a held reservation: a line without
// booking_reservation_reference is added, a line with one replaces that
// line (product, slot and counts). Held capacity moves with the lines: the
// old counts are released and the new ones held, all or nothing. The hold
// is extended by the hold time.
func (h handlers) UpdateReservation(ctx context.Context, req apiserver.UpdateReservationRequestObject) (apiserver.UpdateReservationResponseObject, error) {
	in := req.Body.Data.Reservation
	if e := h.checkDistributor(&in.ReservationDistributorId); e != nil {
		return nil, e
	}
	if len(in.ReservationDetails) == 0 {
		return nil, errorf(http.StatusBadRequest, codeInvalidRequest, "reservation_details is empty.")
	}
	s := h.s
	out, err := h.reservationResponse(ctx, req.ReservationReference, func(now time.Time, r *reservation) *apiError {
		st := s.st
		if e := st.amendable(r); e != nil {
			return e
		}
		type change struct {
			old  *resLine // nil for a new line
			line bookingLine
		}
		changes := make([]change, 0, len(in.ReservationDetails))
		for _, d := range in.ReservationDetails {
			var old *resLine
			if ref := deref(d.BookingReservationReference); ref != "" {
				i := slices.IndexFunc(r.lines, func(l *resLine) bool { return l.ref == ref })
				if i < 0 {
					return errorf(http.StatusNotFound, "NOT_FOUND", "Reservation %s has no line %s.", r.ref, ref)
				}
				old = r.lines[i]
				if old.status != generated.BOOKINGRESERVED {
					return errorf(http.StatusConflict, codeReservationCancelled, "Line %s of reservation %s is %s.", ref, r.ref, old.status)
				}
				if slices.ContainsFunc(changes, func(c change) bool { return c.old == old }) {
					return errorf(http.StatusBadRequest, codeInvalidRequest, "Line %s is sent twice.", ref)
				}
			}
			l, e := parseLine(now, d.ProductId, d.ProductAvailabilityId, d.ProductTypeDetails)
			if e != nil {
				return e
			}
			l.extRef, l.language = d.BookingExternalReference, deref(d.BookingLanguage)
			changes = append(changes, change{old: old, line: l})
		}
		// Release what the replaced lines hold, check the new lines against
		// what is then open, and put the old holds back if they do not fit.
		hold := func(l bookingLine, n int) {
			if l.slot != nil {
				st.use(l.slot.id).held += n * l.pax()
			}
		}
		lines := make([]bookingLine, 0, len(changes))
		for _, c := range changes {
			if c.old != nil {
				hold(c.old.line, -1)
			}
			lines = append(lines, c.line)
		}
		if e := st.checkCapacity(lines); e != nil {
			for _, c := range changes {
				if c.old != nil {
					hold(c.old.line, 1)
				}
			}
			return e
		}
		for _, c := range changes {
			hold(c.line, 1)
			if c.old != nil {
				c.old.line = c.line
				continue
			}
			r.lines = append(r.lines, &resLine{ref: st.next('6'), line: c.line, status: generated.BOOKINGRESERVED})
		}
		r.modified = now
		r.validUntil = now.Add(s.cfg.holdTime)
		s.scheduleSettle(s.cfg.holdTime)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return apiserver.UpdateReservation200JSONResponse(out), nil
}
