package priotest

import (
	"encoding/json"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/priosdk/prio-go/generated"
)

func TestReservationHoldsThenExpires(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		s, err := NewUnstarted(WithHoldTime(10 * time.Minute))
		require.NoError(t, err)
		defer s.Close()
		a := pipeAPI(t, s).login()
		slot := firstSlot(t, s, ProductTimeSlot)

		r := a.do(http.MethodPost, "/reservations", reservationBody("hold-1", ticket{product: ProductTimeSlot, availability: slot, adults: 3}))
		require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
		res := dig(t, r.json(t), "data", "reservation")
		ref := dig(t, res, "reservation_reference").(string)
		assert.Equal(t, "reservation", dig(t, r.json(t), "data", "kind"))
		assert.Equal(t, "BOOKING_RESERVED", dig(t, res, "reservation_details", 0, "booking_status"))
		until, err := time.Parse(time.RFC3339, dig(t, res, "reservation_valid_until").(string))
		require.NoError(t, err)
		assert.True(t, until.Equal(s.Now().Add(10*time.Minute)), "valid until now + hold time, got %s", until)
		assert.Equal(t, SlotCapacity-3, openSpots(t, a, ProductTimeSlot, slot), "the hold takes capacity")

		time.Sleep(10*time.Minute - time.Second)
		assert.Equal(t, SlotCapacity-3, openSpots(t, a, ProductTimeSlot, slot), "still held just before it runs out")

		time.Sleep(time.Second)
		assert.Equal(t, SlotCapacity, openSpots(t, a, ProductTimeSlot, slot), "an expired hold gives its capacity back")
		got := a.do(http.MethodGet, "/reservations/"+ref, nil)
		require.Equal(t, http.StatusOK, got.status, "expired reservations can still be read")
		assert.Equal(t, "BOOKING_RESERVATION_EXPIRED", dig(t, got.json(t), "data", "reservation", "reservation_details", 0, "booking_status"))

		confirm := a.do(http.MethodPost, "/orders", confirmBody("hold-1-order", ref))
		assert.Equal(t, http.StatusConflict, confirm.status, "%s", confirm.body)
		assert.Equal(t, "RESERVATION_EXPIRED", confirm.errorCode(t))
		assert.Zero(t, s.OrdersFor("hold-1-order"))
	})
}

func TestReservationExpiresWithoutRequests(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		s, err := NewUnstarted(WithHoldTime(time.Minute))
		require.NoError(t, err)
		defer s.Close()
		a := pipeAPI(t, s).login()
		slot := firstSlot(t, s, ProductTimeDate)
		r := a.do(http.MethodPost, "/reservations", reservationBody("quiet", ticket{product: ProductTimeDate, availability: slot, adults: 4}))
		require.Equal(t, http.StatusCreated, r.status, "%s", r.body)

		time.Sleep(2 * time.Minute)
		synctest.Wait()
		s.mu.Lock()
		held := s.st.usage[slot].held
		s.mu.Unlock()
		assert.Zero(t, held, "the server's own timer released the hold")
	})
}

func TestConfirmReservation(t *testing.T) {
	t.Parallel()
	s := NewServer(t, WithIdempotency(IdempotencyNone))
	a := newAPI(t, s).login()
	slot := firstSlot(t, s, ProductTimeSlot)
	r := a.do(http.MethodPost, "/reservations", reservationBody("cart-1",
		ticket{product: ProductTimeSlot, availability: slot, adults: 2},
		ticket{product: ProductOpen, adults: 1, children: 1}))
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	res := dig(t, r.json(t), "data", "reservation")
	ref := dig(t, res, "reservation_reference").(string)
	assert.Equal(t, "97.50", dig(t, res, "reservation_pricing", "price_total"), "2 x 30.00 + 25.00 + 12.50")

	o := a.do(http.MethodPost, "/orders", confirmBody("cart-1-order", ref))
	require.Equal(t, http.StatusCreated, o.status, "%s", o.body)
	order := dig(t, o.json(t), "data", "order")
	assert.Equal(t, "ORDER_CONFIRMED", dig(t, order, "order_status"))
	assert.Len(t, dig(t, order, "order_bookings"), 2)
	assert.Equal(t, "97.50", dig(t, order, "order_pricing", "price_total"))
	assert.Equal(t, SlotCapacity-2, openSpots(t, a, ProductTimeSlot, slot), "confirmed spots stay taken")

	again := a.do(http.MethodPost, "/orders", confirmBody("cart-1-order-again", ref))
	assert.Equal(t, http.StatusConflict, again.status, "a reservation is confirmed once, even without idempotency")
	assert.Equal(t, "RESERVATION_ALREADY_CONFIRMED", again.errorCode(t))

	cancel := a.do(http.MethodDelete, "/reservations/"+ref, nil)
	assert.Equal(t, http.StatusConflict, cancel.status, "a confirmed reservation is cancelled through its order")

	got := a.do(http.MethodGet, "/reservations/"+ref, nil)
	assert.Equal(t, "BOOKING_CONFIRMED", dig(t, got.json(t), "data", "reservation", "reservation_details", 1, "booking_status"))
}

func TestCancelReservation(t *testing.T) {
	t.Parallel()
	s := NewServer(t)
	a := newAPI(t, s).login()
	slot := firstSlot(t, s, ProductTimeSlot)
	r := a.do(http.MethodPost, "/reservations", reservationBody("drop-1",
		ticket{product: ProductTimeSlot, availability: slot, adults: 2},
		ticket{product: ProductTimeSlot, availability: slot, adults: 3}))
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	res := dig(t, r.json(t), "data", "reservation")
	ref := dig(t, res, "reservation_reference").(string)
	line := dig(t, res, "reservation_details", 0, "booking_reservation_reference").(string)
	require.Equal(t, SlotCapacity-5, openSpots(t, a, ProductTimeSlot, slot))

	partial := a.do(http.MethodDelete, "/reservations/"+ref+"?booking_reservation_reference="+line, nil)
	require.Equal(t, http.StatusOK, partial.status, "%s", partial.body)
	assert.Equal(t, "BOOKING_RESERVATION_CANCELLED", dig(t, partial.json(t), "data", "reservation", "reservation_details", 0, "booking_status"))
	assert.Equal(t, "BOOKING_RESERVED", dig(t, partial.json(t), "data", "reservation", "reservation_details", 1, "booking_status"))
	assert.Equal(t, SlotCapacity-3, openSpots(t, a, ProductTimeSlot, slot))

	require.Equal(t, http.StatusOK, a.do(http.MethodDelete, "/reservations/"+ref, nil).status)
	assert.Equal(t, SlotCapacity, openSpots(t, a, ProductTimeSlot, slot))
	assert.Equal(t, http.StatusOK, a.do(http.MethodDelete, "/reservations/"+ref, nil).status, "cancelling twice is harmless")

	confirm := a.do(http.MethodPost, "/orders", confirmBody("drop-1-order", ref))
	assert.Equal(t, http.StatusConflict, confirm.status)
	assert.Equal(t, "RESERVATION_CANCELLED", confirm.errorCode(t))
	assert.Equal(t, http.StatusNotFound, a.do(http.MethodGet, "/reservations/70000000", nil).status)
}

func TestReservationCapacityAndDecline(t *testing.T) {
	t.Parallel()
	s := NewServer(t)
	a := newAPI(t, s).login()
	slot := firstSlot(t, s, ProductTimeSlot)
	full := a.do(http.MethodPost, "/reservations", reservationBody("big", ticket{product: ProductTimeSlot, availability: slot, adults: SlotCapacity + 1}))
	assert.Equal(t, http.StatusConflict, full.status)
	assert.Equal(t, "NO_AVAILABILITY", full.errorCode(t))

	r := a.do(http.MethodPost, "/reservations", reservationBody("zoo", ticket{product: ProductDeclined, adults: 1}))
	require.Equal(t, http.StatusCreated, r.status, "the declining supplier holds fine")
	ref := dig(t, r.json(t), "data", "reservation", "reservation_reference").(string)
	o := a.do(http.MethodPost, "/orders", confirmBody("zoo-order", ref))
	assert.Equal(t, http.StatusUnprocessableEntity, o.status)
	assert.Equal(t, "BOOKING_DECLINED", o.errorCode(t))
	got := a.do(http.MethodGet, "/reservations/"+ref, nil)
	assert.Equal(t, "BOOKING_RESERVED", dig(t, got.json(t), "data", "reservation", "reservation_details", 0, "booking_status"), "a declined confirmation leaves the hold")
}

// TestReservationFromGeneratedModels sends a reservation encoded from the
// generated request model, as the SDK does, and reads the answer back into
// the generated response model.
func TestReservationFromGeneratedModels(t *testing.T) {
	t.Parallel()
	s := NewServer(t)
	a := newAPI(t, s).login()
	body := generated.CreateReservationRequest{Data: generated.CreateReservationRequestData{Reservation: generated.ReservationModel{
		ReservationDistributorId:     DefaultDistributorID,
		ReservationExternalReference: "gen-1",
		ReservationDetails: []generated.ReservationDetail{{
			BookingExternalReference: "gen-1-1",
			ProductId:                ProductOpen,
			ProductTypeDetails: []generated.RegularBookingItem{{
				ProductType: ptr(generated.ProductTypeADULT), ProductTypeId: ProductTypeAdult, ProductTypeCount: 2,
			}},
		}},
	}}}
	raw, err := json.Marshal(body)
	require.NoError(t, err)
	r := a.do(http.MethodPost, "/reservations", raw)
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	var out generated.ReservationDetailResponse
	require.NoError(t, json.Unmarshal(r.body, &out))
	require.Len(t, out.Data.Reservation.ReservationDetails, 1)
	assert.Len(t, out.Data.Reservation.ReservationDetails[0].ProductTypeDetails, 2)
	assert.Equal(t, generated.BOOKINGRESERVED, deref(out.Data.Reservation.ReservationDetails[0].BookingStatus))
}
