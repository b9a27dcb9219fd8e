package priotest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// delivery is one callback the receiver got.
type delivery struct {
	auth        string
	contentType string
	body        map[string]any
}

// receiver is a webhook endpoint that fails the first `failFirst` calls.
func receiver(t *testing.T, failFirst int32) (*httptest.Server, <-chan delivery) {
	t.Helper()
	ch := make(chan delivery, 32)
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		ch <- delivery{auth: r.Header.Get("Authorization"), contentType: r.Header.Get("Content-Type"), body: m}
		if calls.Add(1) <= failFirst {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return srv, ch
}

func next(t *testing.T, ch <-chan delivery) delivery {
	t.Helper()
	select {
	case d := <-ch:
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("no webhook delivery")
		return delivery{}
	}
}

func addWebhook(t *testing.T, a *api, url, auth string, payload bool, events ...string) string {
	t.Helper()
	r := a.do(http.MethodPost, "/webhooks", map[string]any{"data": map[string]any{"webhook": map[string]any{
		"webhook_url": url, "webhook_auth": auth, "webhook_events": events, "webhook_payload": payload,
	}}})
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	wh := dig(t, r.json(t), "data", "webhook")
	assert.Equal(t, "ENABLED", dig(t, wh, "webhook_status"))
	assert.Nil(t, wh.(map[string]any)["webhook_auth"], "the secret is not shown back")
	return dig(t, wh, "webhook_id").(string)
}

func TestWebhookOrderEvents(t *testing.T) {
	t.Parallel()
	s := NewServer(t)
	a := newAPI(t, s).login()
	srv, got := receiver(t, 0)
	addWebhook(t, a, srv.URL, "dXNlcjpwYXNz", true, "ORDER_CREATE", "ORDER_CANCEL")

	r := a.do(http.MethodPost, "/orders", orderBody("hook-1", ticket{product: ProductOpen, adults: 1}))
	require.Equal(t, http.StatusCreated, r.status)
	ref := dig(t, r.json(t), "data", "order", "order_reference").(string)

	d := next(t, got)
	assert.Equal(t, "Basic dXNlcjpwYXNz", d.auth)
	assert.Equal(t, "application/json", d.contentType)
	assert.Equal(t, "3.8.0", d.body["api_version"])
	assert.Equal(t, "notification", dig(t, d.body, "data", "kind"))
	n := dig(t, d.body, "data", "notification")
	assert.Equal(t, "ORDER_CREATE", dig(t, n, "notification_event"))
	assert.Equal(t, ref, dig(t, n, "notification_item_id"))
	assert.Equal(t, DefaultDistributorID, dig(t, n, "notification_account_id"))
	assert.Len(t, dig(t, n, "notification_id").(string), 36)
	assert.NotContains(t, dig(t, n, "notification_created"), "Z")
	assert.Equal(t, ref, dig(t, d.body, "data", "order", "order_reference"), "the order rides along")

	require.Equal(t, http.StatusOK, a.do(http.MethodDelete, "/orders/"+ref, nil).status)
	d = next(t, got)
	assert.Equal(t, "ORDER_CANCEL", dig(t, d.body, "data", "notification", "notification_event"))
	assert.Equal(t, "ORDER_CANCELLED", dig(t, d.body, "data", "order", "order_status"))
}

func TestWebhookSlowOrderUpdate(t *testing.T) {
	t.Parallel()
	s := NewServer(t, WithSlowSupplierDelay(50*time.Millisecond))
	a := newAPI(t, s).login()
	srv, got := receiver(t, 0)
	addWebhook(t, a, srv.URL, "", false, "ORDER_UPDATE")
	r := a.do(http.MethodPost, "/orders", orderBody("hook-slow", ticket{product: ProductSlow, adults: 1}))
	require.Equal(t, http.StatusCreated, r.status)
	ref := dig(t, r.json(t), "data", "order", "order_reference").(string)

	d := next(t, got) // no request needed: the server confirms on its own
	assert.Equal(t, "ORDER_UPDATE", dig(t, d.body, "data", "notification", "notification_event"))
	assert.Equal(t, ref, dig(t, d.body, "data", "notification", "notification_item_id"))
	assert.Empty(t, d.auth)
	assert.Nil(t, dig(t, d.body, "data").(map[string]any)["order"], "webhook_payload false sends no order")
	assert.Equal(t, "ORDER_CONFIRMED", dig(t, a.do(http.MethodGet, "/orders/"+ref, nil).json(t), "data", "order", "order_status"))
}

func TestWebhookRedelivery(t *testing.T) {
	t.Parallel()
	s := NewServer(t)
	a := newAPI(t, s).login()
	srv, got := receiver(t, 2)
	addWebhook(t, a, srv.URL, "", true, "ORDER_CREATE")
	require.Equal(t, http.StatusCreated, a.do(http.MethodPost, "/orders", orderBody("hook-retry", ticket{product: ProductOpen, adults: 1})).status)
	ids := map[string]bool{}
	for range 3 {
		d := next(t, got)
		ids[dig(t, d.body, "data", "notification", "notification_id").(string)] = true
	}
	assert.Len(t, ids, 1, "a redelivery carries the same notification_id")
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().WebhooksDelivered == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	assert.Equal(t, 1, s.Stats().WebhooksDelivered)
}

func TestWebhookManagementAndTestNotification(t *testing.T) {
	t.Parallel()
	s := NewServer(t)
	a := newAPI(t, s).login()
	srv, got := receiver(t, 0)
	id := addWebhook(t, a, srv.URL, "", true, "PRODUCT_UPDATE")
	other := addWebhook(t, a, srv.URL+"/other", "", true, "ORDER_CREATE")

	l := a.do(http.MethodGet, "/webhooks", nil)
	require.Equal(t, http.StatusOK, l.status, "%s", l.body)
	assert.EqualValues(t, 2, dig(t, l.json(t), "data", "total_items"))

	note := map[string]any{"data": map[string]any{"notification": map[string]any{
		"notification_event": "ORDER_UPDATE", "notification_item_id": "12345678", "notification_status": "DELIVERY_PENDING",
	}}}
	require.Equal(t, http.StatusOK, a.do(http.MethodPost, "/notifications", note).status)
	for range 2 {
		d := next(t, got)
		assert.Equal(t, "ORDER_UPDATE", dig(t, d.body, "data", "notification", "notification_event"), "every webhook gets the test notification")
	}

	require.Equal(t, http.StatusOK, a.do(http.MethodDelete, "/webhooks/"+id, nil).status)
	assert.Equal(t, http.StatusNotFound, a.do(http.MethodDelete, "/webhooks/"+id, nil).status)
	l = a.do(http.MethodGet, "/webhooks", nil)
	assert.EqualValues(t, 1, dig(t, l.json(t), "data", "total_items"))
	assert.Equal(t, other, dig(t, l.json(t), "data", "items", 0, "webhook_id"))
}
