package prio_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/priosdk/prio-go"
	"github.com/priosdk/prio-go/priotest"
)

// TestGetUpdateKeepsUnknownFields: Prio adds fields within a version, and
// Update Order replaces the order with what is sent. Get, change one field,
// Update must send every field back, including those this SDK does not know,
// or the update deletes them.
func TestGetUpdateKeepsUnknownFields(t *testing.T) {
	t.Parallel()
	s := priotest.NewServer(t)
	c := newClient(t, s)
	ctx := t.Context()
	created, err := c.Orders.Create(ctx, orderFor("extra-1", priotest.ProductOpen))
	require.NoError(t, err)
	ref := *created.OrderReference
	bookingRef := *created.OrderBookings[0].BookingReference

	orderFields := map[string]json.RawMessage{
		"order_loyalty_tier":  json.RawMessage(`"GOLD"`),
		"order_carbon_offset": json.RawMessage(`{"kg":12.50,"certificate":"CO2-77"}`),
		"order_big_number":    json.RawMessage(`12345678901234567890.123456789`),
	}
	bookingFields := map[string]json.RawMessage{"booking_seat_map": json.RawMessage(`[{"row":"A","seat":1}]`)}
	require.True(t, s.AddOrderFields(ref, orderFields, map[string]map[string]json.RawMessage{bookingRef: bookingFields}))

	got, err := c.Orders.Get(ctx, ref)
	require.NoError(t, err)
	requireFields(t, orderFields, got.AdditionalProperties, "Get keeps the order's unknown fields")
	requireFields(t, bookingFields, got.OrderBookings[0].AdditionalProperties, "and the booking's")

	upd, err := prio.UpdateOf(got)
	require.NoError(t, err)
	upd.OrderLanguage = "de"
	updated, err := c.Orders.Update(ctx, ref, upd)
	require.NoError(t, err)
	assert.Equal(t, "de", updated.OrderLanguage, "the change is applied")
	requireFields(t, orderFields, updated.AdditionalProperties, "Update sent the order's unknown fields back")
	requireFields(t, bookingFields, updated.OrderBookings[0].AdditionalProperties, "and the booking's")

	again, err := c.Orders.Get(ctx, ref)
	require.NoError(t, err)
	requireFields(t, orderFields, again.AdditionalProperties, "nothing was lost on the server")

	// The control: an update built without them deletes them, as on Prio.
	bare := prio.OrderUpdate{OrderDistributorId: "501", OrderExternalReference: "extra-1", OrderLanguage: "en"}
	after, err := c.Orders.Update(ctx, ref, &bare)
	require.NoError(t, err)
	assert.Empty(t, after.AdditionalProperties, "the sandbox replaces the order with what is sent")
}

// requireFields checks that got holds every field of want with the same
// JSON text.
func requireFields(t *testing.T, want, got map[string]json.RawMessage, msg string) {
	t.Helper()
	for k, v := range want {
		require.Contains(t, got, k, msg)
		assert.JSONEq(t, string(v), string(got[k]), "%s: %s", msg, k)
		if k == "order_big_number" {
			assert.Equal(t, string(v), string(got[k]), "%s: a number keeps its digits", msg)
		}
	}
}
