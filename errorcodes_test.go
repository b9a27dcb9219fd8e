package prio_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	prio "github.com/priosdk/prio-go"
	"github.com/priosdk/prio-go/priotest"
)

// A refusal's code is a prio.ErrorCode a caller can switch on, and the
// statuses of what was booked compare with prio's constants.
func TestErrorCodesAndStatuses(t *testing.T) {
	t.Parallel()
	s := priotest.NewServer(t)
	c := newClient(t, s)

	_, err := c.Orders.Create(t.Context(), orderFor("codes-declined", priotest.ProductDeclined))
	var ae *prio.APIError
	require.True(t, errors.As(err, &ae), "%v", err)
	assert.Equal(t, prio.CodeBookingDeclined, ae.Code)
	switch ae.Code {
	case prio.CodeBookingDeclined:
	default:
		t.Fatalf("code %q", ae.Code)
	}

	order, err := c.Orders.Create(t.Context(), orderFor("codes-booked", priotest.ProductOpen))
	require.NoError(t, err)
	assert.Equal(t, prio.OrderConfirmed, order.OrderStatus)
	assert.Equal(t, prio.BookingConfirmed, order.OrderBookings[0].BookingStatus)
}
