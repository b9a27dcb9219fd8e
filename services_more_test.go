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
