package prio_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	prio "github.com/priosdk/prio-go"
	"github.com/priosdk/prio-go/generated"
	"github.com/priosdk/prio-go/priotest"
)

func TestProducts(t *testing.T) {
	t.Parallel()
	s := priotest.NewServer(t)
	c := newClient(t, s)
	ctx := t.Context()

	var ids []string
	perPage := 2
	for p, err := range c.Products.List(ctx, &prio.ListProductsParams{ItemsPerPage: &perPage}) {
		require.NoError(t, err)
		require.NotNil(t, p.ProductId)
		ids = append(ids, *p.ProductId)
	}
	assert.Contains(t, ids, priotest.ProductOpen)
	assert.Contains(t, ids, priotest.ProductTimeSlot)

	r, err := c.Products.GetIfModified(ctx, priotest.ProductTimeSlot, time.Time{})
	require.NoError(t, err)
	require.NotNil(t, r.Value)
	assert.False(t, r.NotModified)
	assert.Equal(t, "TIME_SLOT", string(r.Value.ProductAdmissionType))
	require.False(t, r.LastModified.IsZero(), "the sandbox sends Last-Modified")

	again, err := c.Products.GetIfModified(ctx, priotest.ProductTimeSlot, r.LastModified)
	require.NoError(t, err, "not modified is a result, not an error")
	assert.True(t, again.NotModified)
	assert.Nil(t, again.Value)

	page, err := c.Products.ListPageIfModified(ctx, nil, r.LastModified)
	require.NoError(t, err)
	assert.True(t, page.NotModified)

	_, err = c.Products.Get(ctx, "99999999")
	assert.ErrorIs(t, err, prio.ErrNotFound)

	day := time.Now().AddDate(0, 0, 3)
	slots, err := c.Products.Availability(ctx, priotest.ProductTimeSlot, &prio.AvailabilityParams{FromDate: prio.Date(day)})
	require.NoError(t, err)
	require.NotEmpty(t, slots)
	for _, sl := range slots {
		require.NotNil(t, sl.AvailabilityFromDateTime)
		assert.NotContains(t, sl.AvailabilityFromDateTime.String(), "Z")
	}
	multi, err := c.Products.MultiAvailability(ctx, &prio.MultiAvailabilityParams{FromDate: prio.Date(day),
		ProductId: &[]string{priotest.ProductTimeSlot, priotest.ProductTimeDate}})
	require.NoError(t, err)
	assert.Greater(t, len(multi), len(slots))

	_, err = c.Products.Availability(ctx, priotest.ProductTimeSlot, nil)
	assert.ErrorIs(t, err, prio.ErrInvalidArgument)
}

func TestReservationsHoldAndConfirm(t *testing.T) {
	t.Parallel()
	s := priotest.NewServer(t)
	c := newClient(t, s)
	ctx := t.Context()

	day := time.Now().AddDate(0, 0, 5)
	slots, err := c.Products.Availability(ctx, priotest.ProductTimeSlot, &prio.AvailabilityParams{FromDate: prio.Date(day)})
	require.NoError(t, err)
	require.NotEmpty(t, slots)
	slot := slots[0]
	open := slot.AvailabilitySpots.AvailabilitySpotsOpen

	line := prio.ReservationLine{
		BookingExternalReference: "line-1",
		ProductId:                priotest.ProductTimeSlot,
		ProductAvailabilityId:    slot.AvailabilityId,
		ProductTypeDetails:       []prio.ProductTypeDetail{{ProductTypeId: priotest.ProductTypeAdult, ProductTypeCount: 2}},
	}
	var info prio.CallInfo
	res, err := c.Reservations.Create(ctx, &prio.Reservation{ReservationExternalReference: "res-1",
		ReservationDetails: []prio.ReservationLine{line}}, prio.WithInfo(&info))
	require.NoError(t, err)
	require.NotNil(t, res.ReservationReference)
	assert.Equal(t, prio.DeriveKey("501", "createReservation", "res-1"), info.IdempotencyKey)
	require.NotNil(t, res.ReservationValidUntil)
	assert.True(t, res.ReservationValidUntil.After(time.Now()))

	slots, err = c.Products.Availability(ctx, priotest.ProductTimeSlot, &prio.AvailabilityParams{FromDate: prio.Date(day)})
	require.NoError(t, err)
	assert.Equal(t, open-2, slots[0].AvailabilitySpots.AvailabilitySpotsOpen, "the hold takes capacity")

	got, err := c.Reservations.Get(ctx, *res.ReservationReference)
	require.NoError(t, err)
	assert.Equal(t, "res-1", got.ReservationExternalReference)

	order, err := c.Reservations.Confirm(ctx, *res.ReservationReference, &prio.OrderRequest{OrderExternalReference: "res-1-order"})
	require.NoError(t, err)
	assert.Equal(t, "ORDER_CONFIRMED", string(order.OrderStatus))

	// Confirming the same hold under another external reference is refused.
	_, err = c.Reservations.Confirm(ctx, *res.ReservationReference, &prio.OrderRequest{OrderExternalReference: "res-1-order-b"})
	assert.ErrorIs(t, err, prio.ErrConflict)

	// Cancelling a second reservation gives its capacity back.
	res2, err := c.Reservations.Create(ctx, &prio.Reservation{ReservationExternalReference: "res-2",
		ReservationDetails: []prio.ReservationLine{line}})
	require.NoError(t, err)
	_, err = c.Reservations.Cancel(ctx, *res2.ReservationReference, &prio.CancelOptions{Reason: "changed mind"})
	require.NoError(t, err)
	slots, err = c.Products.Availability(ctx, priotest.ProductTimeSlot, &prio.AvailabilityParams{FromDate: prio.Date(day)})
	require.NoError(t, err)
	assert.Equal(t, open-2, slots[0].AvailabilitySpots.AvailabilitySpotsOpen, "only the confirmed order holds spots")
}

func TestConfirmExpiredHold(t *testing.T) {
	t.Parallel()
	s := priotest.NewServer(t, priotest.WithHoldTime(50*time.Millisecond))
	c := newClient(t, s)
	ctx := t.Context()
	res, err := c.Reservations.Create(ctx, &prio.Reservation{ReservationExternalReference: "short-hold",
		ReservationDetails: []prio.ReservationLine{{
			BookingExternalReference: "l1",
			ProductId:                priotest.ProductOpen,
			ProductTypeDetails:       []prio.ProductTypeDetail{{ProductTypeId: priotest.ProductTypeAdult, ProductTypeCount: 1}},
		}}})
	require.NoError(t, err)

	// Our side: a hold known to have lapsed (WithHoldUntil) is not sent
	// at all.
	time.Sleep(80 * time.Millisecond)
	before := s.Stats().RequestsTotal
	_, err = c.Reservations.Confirm(ctx, *res.ReservationReference, &prio.OrderRequest{OrderExternalReference: "short-hold-order"},
		prio.WithHoldUntil(res.ReservationValidUntil.Time))
	assert.ErrorIs(t, err, prio.ErrHoldExpired)
	assert.Equal(t, before, s.Stats().RequestsTotal)

	// Prio's side: without the hold's end (or with a stale one that still
	// looks valid), Prio's refusal also matches ErrHoldExpired, and is not
	// retried.
	var info prio.CallInfo
	_, err = c.Reservations.Confirm(ctx, *res.ReservationReference, &prio.OrderRequest{OrderExternalReference: "short-hold-order-2"},
		prio.WithHoldUntil(time.Now().Add(time.Hour)), prio.WithInfo(&info))
	assert.ErrorIs(t, err, prio.ErrHoldExpired)
	assert.Equal(t, 1, info.Sends)
	assert.Equal(t, 0, s.OrdersFor("short-hold-order-2"))
}

// Confirm and Cancel take what a shop keeps (the reservation reference)
// and the same options as the order calls; Confirm leaves the caller's
// request as it was.
func TestConfirmByReferenceAndCancelOptions(t *testing.T) {
	t.Parallel()
	s := priotest.NewServer(t)
	c := newClient(t, s)
	ctx := t.Context()
	line := prio.ReservationLine{BookingExternalReference: "l1", ProductId: priotest.ProductOpen,
		ProductTypeDetails: []prio.ProductTypeDetail{{ProductTypeId: priotest.ProductTypeAdult, ProductTypeCount: 1}}}
	res, err := c.Reservations.Create(ctx, &prio.Reservation{ReservationExternalReference: "by-ref", ReservationDetails: []prio.ReservationLine{line}})
	require.NoError(t, err)

	req := &prio.OrderRequest{OrderExternalReference: "by-ref-order"}
	order, err := c.Reservations.Confirm(ctx, *res.ReservationReference, req)
	require.NoError(t, err)
	assert.Equal(t, prio.OrderConfirmed, order.OrderStatus)
	assert.Empty(t, req.OrderBookings, "Confirm books on a copy")
	assert.Empty(t, req.OrderDistributorId)

	_, err = c.Reservations.Confirm(ctx, "", req)
	assert.ErrorIs(t, err, prio.ErrInvalidArgument)
	_, err = c.Reservations.Confirm(ctx, *res.ReservationReference, nil)
	assert.ErrorIs(t, err, prio.ErrInvalidArgument)

	res2, err := c.Reservations.Create(ctx, &prio.Reservation{ReservationExternalReference: "by-ref-2", ReservationDetails: []prio.ReservationLine{line}})
	require.NoError(t, err)
	before := s.Stats().RequestsTotal
	_, err = c.Reservations.Cancel(ctx, *res2.ReservationReference, &prio.CancelOptions{NoRefund: true})
	assert.ErrorIs(t, err, prio.ErrInvalidArgument, "a reservation is always refunded")
	assert.Equal(t, before, s.Stats().RequestsTotal, "refused before sending")
	got, err := c.Reservations.Cancel(ctx, *res2.ReservationReference, nil)
	require.NoError(t, err)
	assert.Equal(t, "by-ref-2", got.ReservationExternalReference)
}

func TestAPIEscapeHatch(t *testing.T) {
	t.Parallel()
	s := priotest.NewServer(t)
	c := newClient(t, s, prio.WithAppHeader("App-Name", "prio-go-tests"))
	ctx := t.Context()

	resp, err := c.API().GetProductsWithResponse(ctx, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode())
	require.NotNil(t, resp.JSON200)
	assert.NotEmpty(t, resp.JSON200.Data.Items)
	info, ok := prio.ResponseCallInfo(resp.HTTPResponse)
	require.True(t, ok)
	assert.Equal(t, 1, info.Sends)

	// A POST through API() gets a key of its own.
	kind := generated.Kind("webhook")
	url := "http://127.0.0.1:1/hook"
	wr, err := c.API().AddWebhookWithResponse(ctx, generated.CreateWebhookRequest{Data: generated.CreateWebhookRequestData{Kind: &kind,
		Webhook: generated.Webhook{WebhookUrl: &url, WebhookEvents: []generated.NotificationEvent{"ORDER_CREATE"}}}})
	require.NoError(t, err)
	assert.Equal(t, http.StatusCreated, wr.StatusCode())
	var key string
	for _, r := range s.Requests() {
		if r.Operation == "addWebhook" {
			key = r.IdempotencyKey
		}
	}
	assert.NoError(t, prio.ValidateKey(key))
}

func TestOrderUpdateAndPDFVoucher(t *testing.T) {
	t.Parallel()
	s := priotest.NewServer(t)
	c := newClient(t, s)
	ctx := t.Context()
	o, err := c.Orders.Create(ctx, orderFor("upd-1", priotest.ProductOpen))
	require.NoError(t, err)

	email := "guest@example.com"
	updated, err := c.Orders.Update(ctx, *o.OrderReference, &prio.OrderUpdate{
		OrderDistributorId:     "501",
		OrderExternalReference: "upd-1",
		OrderLanguage:          "en",
		OrderContacts:          &[]prio.Contact{{ContactEmail: &email}},
	})
	require.NoError(t, err)
	require.NotNil(t, updated.OrderVersion)
	require.NotNil(t, o.OrderVersion)
	assert.Greater(t, *updated.OrderVersion, *o.OrderVersion, "an update bumps the order version")

	v, err := c.Orders.Voucher(ctx, *o.OrderReference, &prio.VoucherOptions{PDF: true})
	require.NoError(t, err)
	assert.True(t, bytes.HasPrefix(v.PDF, []byte("%PDF")), "PDF bytes, not a URL")
	assert.Empty(t, v.URL)
}

func TestWebhookSubscriptions(t *testing.T) {
	t.Parallel()
	s := priotest.NewServer(t)
	c := newClient(t, s)
	ctx := t.Context()

	var mu sync.Mutex
	var got []prio.WebhookEvent
	receiver := httptest.NewServer(prio.NewWebhookHandler(func(_ context.Context, ev prio.WebhookEvent) error {
		mu.Lock()
		got = append(got, ev)
		mu.Unlock()
		return nil
	}))
	defer receiver.Close()

	url := receiver.URL
	w, err := c.Webhooks.Create(ctx, &prio.Webhook{WebhookUrl: &url, WebhookEvents: []generated.NotificationEvent{prio.EventOrderCreate}})
	require.NoError(t, err)
	require.NotNil(t, w.WebhookId)

	list, err := c.Webhooks.List(ctx)
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, *w.WebhookId, *list[0].WebhookId)

	require.NoError(t, c.Webhooks.Test(ctx, generated.WebhookNotification{
		NotificationEvent: prio.EventOrderCreate, NotificationStatus: "DELIVERY_PENDING", NotificationItemId: "test-item",
	}))
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 1 && got[0].ItemID == "test-item"
	}, 5*time.Second, 10*time.Millisecond, "the test notification reaches the receiver")

	require.NoError(t, c.Webhooks.Delete(ctx, *w.WebhookId))
	list, err = c.Webhooks.List(ctx)
	require.NoError(t, err)
	assert.Empty(t, list)

	_, err = c.Webhooks.Create(ctx, &prio.Webhook{WebhookUrl: &url})
	assert.ErrorIs(t, err, prio.ErrInvalidArgument)
}

func TestReservationIfModifiedSince(t *testing.T) {
	t.Parallel()
	s := priotest.NewServer(t)
	c := newClient(t, s)
	ctx := t.Context()
	res, err := c.Reservations.Create(ctx, &prio.Reservation{ReservationExternalReference: "ims-1",
		ReservationDetails: []prio.ReservationLine{{BookingExternalReference: "l1", ProductId: priotest.ProductOpen,
			ProductTypeDetails: []prio.ProductTypeDetail{{ProductTypeId: priotest.ProductTypeAdult, ProductTypeCount: 1}}}}})
	require.NoError(t, err)
	first, err := c.Reservations.GetIfModified(ctx, *res.ReservationReference, time.Time{})
	require.NoError(t, err)
	require.NotNil(t, first.Value)
	require.False(t, first.LastModified.IsZero())
	again, err := c.Reservations.GetIfModified(ctx, *res.ReservationReference, first.LastModified)
	require.NoError(t, err)
	assert.True(t, again.NotModified)
	assert.Nil(t, again.Value)
}
