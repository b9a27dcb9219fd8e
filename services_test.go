package prio_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
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

	order, err := c.Reservations.Confirm(ctx, res, prio.OrderRequest{OrderExternalReference: "res-1-order"})
	require.NoError(t, err)
	assert.Equal(t, "ORDER_CONFIRMED", string(order.OrderStatus))

	// Confirming the same hold under another external reference is refused.
	_, err = c.Reservations.Confirm(ctx, res, prio.OrderRequest{OrderExternalReference: "res-1-order-b"})
	assert.ErrorIs(t, err, prio.ErrConflict)

	// Cancelling a second reservation gives its capacity back.
	res2, err := c.Reservations.Create(ctx, &prio.Reservation{ReservationExternalReference: "res-2",
		ReservationDetails: []prio.ReservationLine{line}})
	require.NoError(t, err)
	_, err = c.Reservations.Cancel(ctx, *res2.ReservationReference, nil, "changed mind")
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

	// Our side: a hold known to have lapsed is not sent at all.
	time.Sleep(80 * time.Millisecond)
	before := s.Stats().RequestsTotal
	_, err = c.Reservations.Confirm(ctx, res, prio.OrderRequest{OrderExternalReference: "short-hold-order"})
	assert.ErrorIs(t, err, prio.ErrHoldExpired)
	assert.Equal(t, before, s.Stats().RequestsTotal)

	// Prio's side: a stale copy that still looks valid gets Prio's refusal,
	// also as ErrHoldExpired, and is not retried.
	stale := *res
	future := prio.DateTime{Time: time.Now().Add(time.Hour)}
	stale.ReservationValidUntil = &future
	var info prio.CallInfo
	_, err = c.Reservations.Confirm(ctx, &stale, prio.OrderRequest{OrderExternalReference: "short-hold-order-2"}, prio.WithInfo(&info))
	assert.ErrorIs(t, err, prio.ErrHoldExpired)
	assert.Equal(t, 1, info.Sends)
	assert.Equal(t, 0, s.OrdersFor("short-hold-order-2"))
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

// recordingPrio is a minimal stand-in for Prio for the calls the sandbox does
// not simulate: it issues a token and records each API request.
type recordingPrio struct {
	mu   sync.Mutex
	reqs []recorded
}

type recorded struct {
	method, path, query, key string
	body                     map[string]any
}

func (p *recordingPrio) handler(answer string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if strings.HasSuffix(r.URL.Path, "/oauth2/token") {
			_, _ = io.WriteString(w, `{"access_token":"tok","token_type":"Bearer","expires_in":3600}`)
			return
		}
		rec := recorded{method: r.Method, path: r.URL.Path, query: r.URL.RawQuery, key: r.Header.Get("Idempotency-Key")}
		if b, _ := io.ReadAll(r.Body); len(b) > 0 {
			_ = json.Unmarshal(b, &rec.body)
		}
		p.mu.Lock()
		p.reqs = append(p.reqs, rec)
		p.mu.Unlock()
		_, _ = io.WriteString(w, answer)
	})
}

func TestReservationChangesOnTheWire(t *testing.T) {
	t.Parallel()
	p := &recordingPrio{}
	srv := httptest.NewServer(p.handler(`{"api_version":"3.8.0","data":{"kind":"reservation","reservation":{"reservation_reference":"RES12345","reservation_distributor_id":"501","reservation_external_reference":"cart-1","reservation_details":[]}}}`))
	defer srv.Close()
	c, err := prio.NewClient(prio.WithBaseURL(srv.URL+"/v3.8/distributor"), prio.WithCredentials("id", "secret"),
		prio.WithDistributorID("501"), prio.WithRetryPolicy(fastPolicy()))
	require.NoError(t, err)
	ctx := t.Context()

	line := prio.ReservationLine{BookingExternalReference: "cart-1-2", ProductId: "30001",
		ProductTypeDetails: []prio.ProductTypeDetail{{ProductTypeId: "101", ProductTypeCount: 3}}}
	res, err := c.Reservations.Update(ctx, "RES12345", &prio.Reservation{ReservationExternalReference: "cart-1", ReservationDetails: []prio.ReservationLine{line}})
	require.NoError(t, err)
	assert.Equal(t, "RES12345", *res.ReservationReference)
	_, err = c.Reservations.AddPromocode(ctx, "RES12345", "SUMMER10")
	require.NoError(t, err)
	_, err = c.Reservations.RemovePromocode(ctx, "RES12345", "SUMMER10")
	require.NoError(t, err)
	_, err = c.Reservations.Cancel(ctx, "RES12345", []string{"LINE0001"}, "")
	require.NoError(t, err)

	p.mu.Lock()
	defer p.mu.Unlock()
	require.Len(t, p.reqs, 4)
	upd := p.reqs[0]
	assert.Equal(t, "PUT /v3.8/distributor/reservations/RES12345", upd.method+" "+upd.path)
	data := upd.body["data"].(map[string]any)["reservation"].(map[string]any)
	assert.Equal(t, "501", data["reservation_distributor_id"], "the client's distributor id is filled in")
	assert.NotContains(t, data, "reservation_pricing", "nothing read-only or unset is sent")

	add := p.reqs[1]
	assert.Equal(t, "POST /v3.8/distributor/reservations/RES12345/promocode", add.method+" "+add.path)
	assert.Equal(t, "promo_code=SUMMER10", add.query)
	assert.Equal(t, prio.DeriveKey("501", "addPromocode", "RES12345\x00SUMMER10"), add.key, "a POST carries a derived key")

	rm := p.reqs[2]
	assert.Equal(t, "DELETE /v3.8/distributor/reservations/RES12345/promocode/SUMMER10", rm.method+" "+rm.path)
	cancel := p.reqs[3]
	assert.Equal(t, "DELETE /v3.8/distributor/reservations/RES12345", cancel.method+" "+cancel.path)
	assert.Equal(t, "booking_reservation_reference=LINE0001", cancel.query)
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
