package prio_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	prio "github.com/priosdk/prio-go"
	"github.com/priosdk/prio-go/priotest"
)

// The plain shapes encode as the models written out by hand would.
func TestBookingShapesEncodeAsTheModels(t *testing.T) {
	t.Parallel()
	item := prio.Item{ProductID: "p1", AvailabilityID: "a1", Tickets: []prio.ProductTypeDetail{prio.Tickets("adult", 2)}}

	got, err := json.Marshal(prio.Bookings(item))
	require.NoError(t, err)
	want, err := json.Marshal([]prio.BookingOption{{BookingOptionType: prio.DirectBooking, ProductId: prio.Ptr("p1"),
		ProductAvailabilityId: prio.Ptr("a1"), ProductTypeDetails: &[]prio.ProductTypeDetail{{ProductTypeId: "adult", ProductTypeCount: 2}}}})
	require.NoError(t, err)
	assert.JSONEq(t, string(want), string(got))

	got, err = json.Marshal(prio.ReservationLines(item, prio.Item{ProductID: "p2", Reference: "mine", Tickets: item.Tickets}))
	require.NoError(t, err)
	want, err = json.Marshal([]prio.ReservationLine{
		{BookingExternalReference: "p1-1", ProductId: "p1", ProductAvailabilityId: prio.Ptr("a1"),
			ProductTypeDetails: []prio.ProductTypeDetail{{ProductTypeId: "adult", ProductTypeCount: 2}}},
		{BookingExternalReference: "mine", ProductId: "p2", ProductTypeDetails: []prio.ProductTypeDetail{{ProductTypeId: "adult", ProductTypeCount: 2}}},
	})
	require.NoError(t, err)
	assert.JSONEq(t, string(want), string(got))

	got, err = json.Marshal(prio.Contacts(prio.Person{FirstName: "Ada", Email: "ada@example.com"}, prio.Person{Type: prio.ContactGuest, LastName: "B"}))
	require.NoError(t, err)
	assert.JSONEq(t, `[{"contact_type":"BOOKER","contact_name_first":"Ada","contact_email":"ada@example.com"},
		{"contact_type":"GUEST","contact_name_last":"B"}]`, string(got))
	assert.Nil(t, prio.Contacts())

	// The items are copied: changing one afterwards changes no request.
	b := item.Booking()
	item.Tickets[0].ProductTypeCount = 9
	assert.Equal(t, 2, (*b.ProductTypeDetails)[0].ProductTypeCount)
}

// Neither Create of a reservation nor its Update writes into the
// caller's value.
func TestReservationCallsLeaveTheRequestAlone(t *testing.T) {
	t.Parallel()
	s := priotest.NewServer(t)
	c := newClient(t, s)
	req := &prio.Reservation{ReservationExternalReference: "untouched",
		ReservationDetails: prio.ReservationLines(prio.Item{ProductID: priotest.ProductOpen, Tickets: []prio.ProductTypeDetail{prio.Tickets(priotest.ProductTypeAdult, 1)}})}
	res, err := c.Reservations.Create(t.Context(), req)
	require.NoError(t, err)
	assert.Empty(t, req.ReservationDistributorId)
	assert.Equal(t, "501", res.ReservationDistributorId)

	upd := &prio.Reservation{ReservationExternalReference: "untouched", ReservationDetails: req.ReservationDetails}
	_, err = c.Reservations.Update(t.Context(), res.GetReservationReference(), upd)
	require.NoError(t, err)
	assert.Empty(t, upd.ReservationDistributorId)
}

// The generated getters read optional fields without a nil check, through
// nil models too.
func TestGettersAreNilSafe(t *testing.T) {
	t.Parallel()
	var none *prio.Order
	assert.Empty(t, none.GetOrderReference())
	assert.Nil(t, none.GetOrderContacts())

	var line prio.BookingOption
	assert.Empty(t, line.GetBookingPricing().GetPriceTotal().String(), "a nil nested model chains to a zero value")
	line = prio.Item{ProductID: "p1"}.Booking()
	assert.Equal(t, "p1", line.GetProductId())
	assert.Empty(t, line.GetProductAvailabilityId())
}
