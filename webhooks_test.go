package prio

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/priosdk/prio-go/generated"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const testWebhookAuth = "cHJpby13ZWJob29rOnMzY3IzdC12YWx1ZQ=="

// hookNote is the notification part of a payload, as the sandbox sends it.
func hookNote(id, event, item string) map[string]any {
	return map[string]any{
		"notification_id":         id,
		"notification_status":     "DELIVERY_PENDING",
		"notification_event":      event,
		"notification_account_id": "501",
		"notification_item_id":    item,
		"notification_created":    "2026-05-12T14:00:00+02:00",
	}
}

func hookOrder(ref, ext string) map[string]any {
	return map[string]any{
		"order_reference":          ref,
		"order_external_reference": ext,
		"order_status":             "ORDER_CONFIRMED",
		"order_distributor_id":     "501",
		"order_language":           "en",
		"order_channel":            "API",
		"order_view_type":          "DISTRIBUTOR",
		"order_bookings":           []any{},
		"order_pricing":            map[string]any{},
		"order_created":            "2026-05-12T14:00:00+02:00",
	}
}

// hookPayload wraps a notification (and an order, when not nil) in the
// envelope the sandbox uses.
func hookPayload(t testing.TB, note map[string]any, order map[string]any) []byte {
	t.Helper()
	data := map[string]any{"kind": "notification", "notification": note}
	if order != nil {
		data["order"] = order
	}
	b, err := json.Marshal(map[string]any{"api_version": "3.8.0", "data": data})
	require.NoError(t, err)
	return b
}

// hookRecorder collects the events a handler passes on, and can be told to fail.
type hookRecorder struct {
	mu     sync.Mutex
	events []WebhookEvent
	fail   func(n int, ev WebhookEvent) error // n counts calls from 1
}

func (rc *hookRecorder) fn(_ context.Context, ev WebhookEvent) error {
	rc.mu.Lock()
	rc.events = append(rc.events, ev)
	n, fail := len(rc.events), rc.fail
	rc.mu.Unlock()
	if fail != nil {
		return fail(n, ev)
	}
	return nil
}

func (rc *hookRecorder) calls() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.events)
}

func (rc *hookRecorder) last(t testing.TB) WebhookEvent {
	t.Helper()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	require.NotEmpty(t, rc.events)
	return rc.events[len(rc.events)-1]
}

// countingBody yields n bytes of filler (or of src while it lasts) and
// counts how many were taken, to prove what the handler really reads.
type countingBody struct {
	src  []byte
	n    int64
	read atomic.Int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	off := c.read.Load()
	if off >= c.n {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), c.n-off)]
	for i := range p {
		if j := off + int64(i); j < int64(len(c.src)) {
			p[i] = c.src[j]
		} else {
			p[i] = ' '
		}
	}
	c.read.Add(int64(len(p)))
	return len(p), nil
}

func deliverHook(t testing.TB, h http.Handler, body []byte, auth string) *httptest.ResponseRecorder {
	t.Helper()
	return deliverHookReader(t, h, bytes.NewReader(body), auth)
}

func deliverHookReader(t testing.TB, h http.Handler, body io.Reader, auth string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequestWithContext(context.Background(), http.MethodPost, "/prio/webhook", body)
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func TestWebhookAuth(t *testing.T) {
	t.Parallel()
	body := hookPayload(t, hookNote("8c1b2d0e-0000-4000-8000-000000000001", EventOrderCreate, "ORD-1"), nil)
	tests := []struct {
		name   string
		header string
		want   int
	}{
		{"missing", "", http.StatusUnauthorized},
		{"wrong value", "Basic d3Jvbmc6dmFsdWU=", http.StatusUnauthorized},
		{"bearer scheme", "Bearer " + testWebhookAuth, http.StatusUnauthorized},
		{"no scheme", testWebhookAuth, http.StatusUnauthorized},
		{"value with suffix", "Basic " + testWebhookAuth + "x", http.StatusUnauthorized},
		{"value cut short", "Basic " + testWebhookAuth[:len(testWebhookAuth)-1], http.StatusUnauthorized},
		{"scheme only", "Basic ", http.StatusUnauthorized},
		{"scheme glued", "Basic" + testWebhookAuth, http.StatusUnauthorized},
		{"right", "Basic " + testWebhookAuth, http.StatusOK},
		{"scheme in lower case", "basic " + testWebhookAuth, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var rc hookRecorder
			h := NewWebhookHandler(rc.fn, WithWebhookAuth(testWebhookAuth))
			src := &countingBody{src: body, n: int64(len(body))}
			w := deliverHookReader(t, h, src, tt.header)
			require.Equal(t, tt.want, w.Code)
			if tt.want == http.StatusUnauthorized {
				assert.Zero(t, rc.calls(), "receiver called without credentials")
				assert.Zero(t, src.read.Load(), "body read before the credentials were checked")
				assert.True(t, strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Basic"))
			} else {
				assert.Equal(t, 1, rc.calls())
			}
		})
	}
}

func TestWebhookWithoutAuthAcceptsAll(t *testing.T) {
	t.Parallel()
	var rc hookRecorder
	h := NewWebhookHandler(rc.fn)
	body := hookPayload(t, hookNote("id-1", EventOrderCreate, "ORD-1"), nil)
	assert.Equal(t, http.StatusOK, deliverHook(t, h, body, "").Code)
	assert.Equal(t, http.StatusOK, deliverHook(t, h, hookPayload(t, hookNote("id-2", EventOrderCreate, "ORD-1"), nil), "Basic anything").Code)
	assert.Equal(t, 2, rc.calls())
}

func TestWebhookEmptyAuthValueRefusesAll(t *testing.T) {
	t.Parallel()
	var rc hookRecorder
	h := NewWebhookHandler(rc.fn, WithWebhookAuth(""))
	body := hookPayload(t, hookNote("id-1", EventOrderCreate, "ORD-1"), nil)
	for _, header := range []string{"", "Basic ", "Basic  ", "Basic x"} {
		assert.Equal(t, http.StatusUnauthorized, deliverHook(t, h, body, header).Code, "header %q", header)
	}
	assert.Zero(t, rc.calls())
}

func TestWebhookMethods(t *testing.T) {
	t.Parallel()
	var rc hookRecorder
	h := NewWebhookHandler(rc.fn)
	body := hookPayload(t, hookNote("id-1", EventOrderCreate, "ORD-1"), nil)
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions} {
		req := httptest.NewRequestWithContext(t.Context(), m, "/prio/webhook", bytes.NewReader(body))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		assert.Equal(t, http.StatusMethodNotAllowed, w.Code, m)
		assert.Equal(t, http.MethodPost, w.Header().Get("Allow"), m)
	}
	assert.Zero(t, rc.calls())
}

func TestWebhookDuplicatesDropped(t *testing.T) {
	t.Parallel()
	var rc hookRecorder
	h := NewWebhookHandler(rc.fn, WithWebhookAuth(testWebhookAuth))
	auth := "Basic " + testWebhookAuth

	first := hookPayload(t, hookNote("5f0e-id-1", EventOrderCreate, "ORD-1"), nil)
	require.Equal(t, http.StatusOK, deliverHook(t, h, first, auth).Code)
	require.Equal(t, http.StatusOK, deliverHook(t, h, first, auth).Code)
	assert.Equal(t, 1, rc.calls(), "an identical redelivery reached the receiver")

	// Prio may change the delivery status between attempts; the id decides.
	again := hookNote("5f0e-id-1", EventOrderCreate, "ORD-1")
	again["notification_status"] = "DELIVERY_FAILED"
	require.Equal(t, http.StatusOK, deliverHook(t, h, hookPayload(t, again, nil), auth).Code)
	assert.Equal(t, 1, rc.calls(), "a redelivery with another status reached the receiver")

	second := hookPayload(t, hookNote("5f0e-id-2", EventOrderCreate, "ORD-1"), nil)
	require.Equal(t, http.StatusOK, deliverHook(t, h, second, auth).Code)
	assert.Equal(t, 2, rc.calls(), "a new notification was dropped")
	assert.Equal(t, "5f0e-id-2", rc.last(t).ID)
}

func TestWebhookWithoutIDDedupedByBody(t *testing.T) {
	t.Parallel()
	var rc hookRecorder
	h := NewWebhookHandler(rc.fn)
	note := hookNote("", EventOrderUpdate, "ORD-1")
	delete(note, "notification_id")
	body := hookPayload(t, note, nil)
	require.Equal(t, http.StatusOK, deliverHook(t, h, body, "").Code)
	require.Equal(t, http.StatusOK, deliverHook(t, h, body, "").Code)
	assert.Equal(t, 1, rc.calls())

	note["notification_item_id"] = "ORD-2"
	require.Equal(t, http.StatusOK, deliverHook(t, h, hookPayload(t, note, nil), "").Code)
	assert.Equal(t, 2, rc.calls())
}

func TestWebhookDedupeOff(t *testing.T) {
	t.Parallel()
	var rc hookRecorder
	h := NewWebhookHandler(rc.fn, WithWebhookDedupe(0, time.Hour))
	body := hookPayload(t, hookNote("id-1", EventOrderCreate, "ORD-1"), nil)
	for range 3 {
		require.Equal(t, http.StatusOK, deliverHook(t, h, body, "").Code)
	}
	assert.Equal(t, 3, rc.calls())
}

func TestWebhookReceiverFailureIsRedelivered(t *testing.T) {
	t.Parallel()
	rc := hookRecorder{fail: func(n int, _ WebhookEvent) error {
		if n == 1 {
			return errors.New("database unavailable")
		}
		return nil
	}}
	h := NewWebhookHandler(rc.fn)
	body := hookPayload(t, hookNote("id-1", EventOrderCreate, "ORD-1"), nil)

	w := deliverHook(t, h, body, "")
	assert.GreaterOrEqual(t, w.Code, 500, "a failed receiver must not be acknowledged")
	assert.Zero(t, h.dedupe.size(), "a failed notification was remembered as handled")

	assert.Equal(t, http.StatusOK, deliverHook(t, h, body, "").Code)
	assert.Equal(t, 2, rc.calls(), "the redelivery was not handled")

	assert.Equal(t, http.StatusOK, deliverHook(t, h, body, "").Code)
	assert.Equal(t, 2, rc.calls(), "a handled redelivery reached the receiver again")
}

func TestWebhookReceiverPanicFreesID(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		rc := hookRecorder{fail: func(n int, _ WebhookEvent) error {
			if n == 1 {
				panic("receiver bug")
			}
			return nil
		}}
		h := NewWebhookHandler(rc.fn)
		body := hookPayload(t, hookNote("id-1", EventOrderCreate, "ORD-1"), nil)
		func() {
			defer func() { assert.NotNil(t, recover(), "the panic was swallowed") }()
			deliverHook(t, h, body, "")
		}()
		// Were the id still held, this would wait forever and synctest
		// would report the deadlock.
		assert.Equal(t, http.StatusOK, deliverHook(t, h, body, "").Code)
		assert.Equal(t, 2, rc.calls())
	})
}

func TestWebhookBodyCap(t *testing.T) {
	t.Parallel()
	const limit = 4 << 10
	valid := hookPayload(t, hookNote("id-1", EventOrderCreate, "ORD-1"), nil)
	tests := []struct {
		name     string
		size     int64 // bytes the sender has
		declared bool  // sends Content-Length
		want     int
	}{
		{"exactly the cap", limit, true, http.StatusOK},
		{"exactly the cap, streamed", limit, false, http.StatusOK},
		{"one byte over, declared", limit + 1, true, http.StatusRequestEntityTooLarge},
		{"one byte over, streamed", limit + 1, false, http.StatusRequestEntityTooLarge},
		{"100 MB declared", 100 << 20, true, http.StatusRequestEntityTooLarge},
		{"100 MB streamed", 100 << 20, false, http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var rc hookRecorder
			h := NewWebhookHandler(rc.fn, WithWebhookMaxBody(limit))
			src := &countingBody{src: valid, n: tt.size}
			req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/prio/webhook", src)
			req.ContentLength = -1
			if tt.declared {
				req.ContentLength = tt.size
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			require.Equal(t, tt.want, w.Code)
			assert.LessOrEqual(t, src.read.Load(), int64(limit+1), "read past the cap")
			if tt.want == http.StatusRequestEntityTooLarge {
				assert.Zero(t, rc.calls())
				if tt.declared {
					assert.Zero(t, src.read.Load(), "read a body whose declared length is over the cap")
				}
			} else {
				assert.Equal(t, 1, rc.calls())
			}
		})
	}
}

func TestWebhookDefaultBodyCap(t *testing.T) {
	t.Parallel()
	var rc hookRecorder
	h := NewWebhookHandler(rc.fn)
	src := &countingBody{src: []byte(`{"data":`), n: 100 << 20}
	w := deliverHookReader(t, h, src, "")
	assert.Equal(t, http.StatusRequestEntityTooLarge, w.Code)
	assert.LessOrEqual(t, src.read.Load(), int64(1<<20+1))
	assert.Zero(t, rc.calls())
}

// Over a real connection the refusal must reach the sender and the server
// must not drain the rest of the body.
func TestWebhookBodyCapOverHTTP(t *testing.T) {
	t.Parallel()
	var rc hookRecorder
	srv := httptest.NewServer(NewWebhookHandler(rc.fn, WithWebhookMaxBody(1<<10)))
	t.Cleanup(srv.Close)

	body := bytes.Repeat([]byte(" "), 64<<10)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL, bytes.NewReader(body))
	require.NoError(t, err)
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	assert.True(t, resp.Close, "the connection should be closed after a refused body")
	assert.Zero(t, rc.calls())
}

func TestWebhookMalformed(t *testing.T) {
	t.Parallel()
	valid := string(hookPayload(t, hookNote("id-1", EventOrderCreate, "ORD-1"), nil))
	tests := []struct{ name, body string }{
		{"empty", ""},
		{"not JSON", "notification_id=1"},
		{"truncated", valid[:len(valid)/2]},
		{"trailing garbage", valid + "}"},
		{"array", "[" + valid + "]"},
		{"string", `"ORDER_CREATE"`},
		{"null", "null"},
		{"no notification", `{"api_version":"3.8.0","data":{"kind":"notification"}}`},
		{"notification is a string", `{"data":{"notification":"ORDER_CREATE"}}`},
		{"notification is null", `{"data":{"notification":null}}`},
		{"id is an object", `{"data":{"notification":{"notification_id":{"x":1},"notification_event":"ORDER_CREATE"}}}`},
		{"event is a list", `{"data":{"notification":{"notification_id":"1","notification_event":["ORDER_CREATE"]}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var rc hookRecorder
			h := NewWebhookHandler(rc.fn)
			w := deliverHook(t, h, []byte(tt.body), "")
			assert.Equal(t, http.StatusBadRequest, w.Code)
			assert.Zero(t, rc.calls())
		})
	}
}

func TestWebhookDecode(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 5, 12, 12, 0, 0, 0, time.UTC)
	withCreated := func(created string) map[string]any {
		n := hookNote("id-1", EventOrderCreate, "ORD-1")
		n["notification_created"] = created
		return n
	}
	bare := func(note map[string]any, order map[string]any) []byte {
		m := map[string]any{"notification": note}
		if order != nil {
			m["order"] = order
		}
		b, err := json.Marshal(m)
		require.NoError(t, err)
		return b
	}
	badOrder := hookOrder("ORD-1", "ext-1")
	badOrder["order_bookings"] = "not a list"

	tests := []struct {
		name      string
		body      []byte
		typ       string
		created   time.Time
		orderRef  string
		extRef    string
		withOrder bool
	}{
		{
			name: "full payload", body: hookPayload(t, hookNote("id-1", EventOrderCreate, "ORD-1"), hookOrder("ORD-1", "ext-1")),
			typ: EventOrderCreate, created: at, orderRef: "ORD-1", extRef: "ext-1", withOrder: true,
		},
		{
			name: "Z timestamp", body: hookPayload(t, withCreated("2026-05-12T12:00:00Z"), nil),
			typ: EventOrderCreate, created: at, orderRef: "ORD-1",
		},
		{
			name: "fractional seconds", body: hookPayload(t, withCreated("2026-05-12T14:00:00.000+02:00"), nil),
			typ: EventOrderCreate, created: at, orderRef: "ORD-1",
		},
		{
			name: "unreadable timestamp kept as zero", body: hookPayload(t, withCreated("12/05/2026 14:00"), nil),
			typ: EventOrderCreate, orderRef: "ORD-1",
		},
		{
			name: "no envelope", body: bare(hookNote("id-1", EventOrderCancel, "ORD-1"), hookOrder("ORD-1", "ext-1")),
			typ: EventOrderCancel, created: at, orderRef: "ORD-1", extRef: "ext-1", withOrder: true,
		},
		{
			name: "no api_version or kind",
			body: []byte(`{"data":{"notification":{"notification_id":"id-1","notification_event":"ORDER_UPDATE","notification_item_id":"ORD-1","notification_created":"2026-05-12T12:00:00Z"}}}`),
			typ:  EventOrderUpdate, created: at, orderRef: "ORD-1",
		},
		{
			name: "unknown event type and fields",
			body: []byte(`{"api_version":"9.0.0","shiny":true,"data":{"kind":"notification","extra":[1,2],"notification":{"notification_id":"id-1","notification_event":"ORDER_TELEPORT","notification_item_id":"ORD-1","notification_created":"2026-05-12T12:00:00Z","notification_mood":"calm"}}}`),
			typ:  "ORDER_TELEPORT", created: at, orderRef: "ORD-1",
		},
		{
			name: "payment event carries its order", body: hookPayload(t, hookNote("id-1", EventPaymentCreate, "PAY-9"), hookOrder("ORD-1", "ext-1")),
			typ: EventPaymentCreate, created: at, orderRef: "ORD-1", extRef: "ext-1", withOrder: true,
		},
		{
			name: "product event concerns no order", body: hookPayload(t, hookNote("id-1", EventProductUpdate, "PROD-3"), nil),
			typ: EventProductUpdate, created: at,
		},
		{
			name: "undecodable order kept out, event kept", body: hookPayload(t, hookNote("id-1", EventOrderCreate, "ORD-1"), badOrder),
			typ: EventOrderCreate, created: at, orderRef: "ORD-1",
		},
		{
			name: "numeric ids",
			body: []byte(`{"data":{"notification":{"notification_id":123456,"notification_event":"ORDER_CREATE","notification_account_id":501,"notification_item_id":"ORD-1","notification_created":"2026-05-12T12:00:00Z"}}}`),
			typ:  EventOrderCreate, created: at, orderRef: "ORD-1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var rc hookRecorder
			h := NewWebhookHandler(rc.fn)
			require.Equal(t, http.StatusOK, deliverHook(t, h, tt.body, "").Code)
			ev := rc.last(t)
			assert.Equal(t, tt.typ, ev.Type)
			assert.True(t, ev.Created.Equal(tt.created), "created %v, want %v", ev.Created, tt.created)
			assert.Equal(t, tt.orderRef, ev.OrderReference())
			assert.Equal(t, tt.extRef, ev.ExternalReference())
			assert.Equal(t, tt.withOrder, ev.Order != nil)
			assert.JSONEq(t, string(tt.body), string(ev.Raw))
			assert.NotEmpty(t, ev.ID)
		})
	}
}

func TestWebhookDecodeFields(t *testing.T) {
	t.Parallel()
	var rc hookRecorder
	h := NewWebhookHandler(rc.fn)
	note := hookNote("8c1b2d0e-aaaa-4000-8000-000000000001", EventOrderCancel, "ORD-77")
	note["notification_note"] = "cancelled by supplier"
	note["notification_account_id"] = 501
	require.Equal(t, http.StatusOK, deliverHook(t, h, hookPayload(t, note, hookOrder("ORD-77", "shop-42")), "").Code)
	ev := rc.last(t)
	assert.Equal(t, "8c1b2d0e-aaaa-4000-8000-000000000001", ev.ID)
	assert.Equal(t, "DELIVERY_PENDING", ev.Status)
	assert.Equal(t, "501", ev.AccountID)
	assert.Equal(t, "ORD-77", ev.ItemID)
	assert.Equal(t, "cancelled by supplier", ev.Note)
	require.NotNil(t, ev.Order)
	assert.Equal(t, "shop-42", ev.Order.OrderExternalReference)
	assert.EqualValues(t, "ORDER_CONFIRMED", ev.Order.OrderStatus)
	require.NotNil(t, ev.Order.OrderCreated)
	assert.True(t, ev.Order.OrderCreated.Equal(time.Date(2026, 5, 12, 12, 0, 0, 0, time.UTC)))
}

func TestWebhookEventReferences(t *testing.T) {
	t.Parallel()
	ref, other := "ORD-1", "ORD-2"
	tests := []struct {
		name     string
		ev       WebhookEvent
		orderRef string
		extRef   string
	}{
		{"order event, no payload", WebhookEvent{Type: EventOrderUpdate, ItemID: ref}, ref, ""},
		{"order event prefers the item id", WebhookEvent{Type: EventOrderUpdate, ItemID: ref, Order: hookOrderModel(other, "ext")}, ref, "ext"},
		{"order event without item id", WebhookEvent{Type: EventOrderCreate, Order: hookOrderModel(ref, "ext")}, ref, "ext"},
		{"other event with order", WebhookEvent{Type: EventRedemption, ItemID: "BK-5", Order: hookOrderModel(ref, "ext")}, ref, "ext"},
		{"other event without order", WebhookEvent{Type: EventRedemption, ItemID: "BK-5"}, "", ""},
		{"zero", WebhookEvent{}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.orderRef, tt.ev.OrderReference())
			assert.Equal(t, tt.extRef, tt.ev.ExternalReference())
		})
	}
}

func hookOrderModel(ref, ext string) *generated.ConfirmedOrderModel {
	o := &generated.ConfirmedOrderModel{OrderExternalReference: ext}
	if ref != "" {
		o.OrderReference = &ref
	}
	return o
}

func TestWebhookNotify(t *testing.T) {
	t.Parallel()
	type call struct{ what, orderRef, extRef string }
	var mu sync.Mutex
	var calls []call
	record := func(c call) {
		mu.Lock()
		calls = append(calls, c)
		mu.Unlock()
	}
	h := NewWebhookHandler(
		func(_ context.Context, ev WebhookEvent) error {
			record(call{"fn", ev.ID, ""})
			return nil
		},
		WithWebhookNotify(func(orderRef, extRef string) { record(call{"notify", orderRef, extRef}) }),
	)
	deliveries := [][]byte{
		hookPayload(t, hookNote("n1", EventOrderCreate, "ORD-1"), hookOrder("ORD-1", "ext-1")),
		hookPayload(t, hookNote("n1", EventOrderCreate, "ORD-1"), hookOrder("ORD-1", "ext-1")), // duplicate
		hookPayload(t, hookNote("n2", EventOrderUpdate, "ORD-2"), nil),
		hookPayload(t, hookNote("n3", EventProductUpdate, "PROD-1"), nil),
		hookPayload(t, hookNote("n4", "ORDER_SOMETHING_NEW", "ORD-4"), nil),
	}
	for _, b := range deliveries {
		require.Equal(t, http.StatusOK, deliverHook(t, h, b, "").Code)
	}
	want := []call{
		{"notify", "ORD-1", "ext-1"}, {"fn", "n1", ""},
		{"notify", "ORD-2", ""}, {"fn", "n2", ""},
		{"fn", "n3", ""},
		{"notify", "ORD-4", ""}, {"fn", "n4", ""},
	}
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, want, calls)
}

func TestWebhookNotifyOnly(t *testing.T) {
	t.Parallel()
	var got []string
	h := NewWebhookHandler(nil, WithWebhookNotify(func(orderRef, extRef string) { got = append(got, orderRef+"/"+extRef) }))
	require.Equal(t, http.StatusOK, deliverHook(t, h, hookPayload(t, hookNote("n1", EventOrderCancel, "ORD-1"), hookOrder("ORD-1", "ext-1")), "").Code)
	assert.Equal(t, []string{"ORD-1/ext-1"}, got)
}

// Copies of one notification arriving together: the receiver runs once at a
// time for that id, the copies wait, then are answered without running it.
func TestWebhookConcurrentCopies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		failFirst bool
		wantCalls int
	}{
		{"first succeeds", false, 1},
		{"first fails, a waiting copy takes over", true, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				release := make(chan struct{})
				var running, maxRunning, calls atomic.Int32
				h := NewWebhookHandler(func(ctx context.Context, _ WebhookEvent) error {
					n := calls.Add(1)
					r := running.Add(1)
					defer running.Add(-1)
					if r > maxRunning.Load() {
						maxRunning.Store(r)
					}
					if n == 1 {
						<-release
						if tt.failFirst {
							return errors.New("first attempt fails")
						}
					}
					return nil
				})
				body := hookPayload(t, hookNote("same-id", EventOrderCreate, "ORD-1"), nil)
				const copies = 8
				codes := make(chan int, copies)
				for range copies {
					go func() { codes <- deliverHook(t, h, body, "").Code }()
				}
				synctest.Wait()
				assert.EqualValues(t, 1, calls.Load(), "copies ran while the first was in progress")
				close(release)
				got := map[int]int{}
				for range copies {
					got[<-codes]++
				}
				assert.EqualValues(t, tt.wantCalls, calls.Load())
				assert.EqualValues(t, 1, maxRunning.Load())
				if tt.failFirst {
					assert.Equal(t, map[int]int{http.StatusInternalServerError: 1, http.StatusOK: copies - 1}, got)
				} else {
					assert.Equal(t, map[int]int{http.StatusOK: copies}, got)
				}
			})
		})
	}
}

func TestWebhookWaitingCopyGivesUp(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		h := NewWebhookHandler(func(context.Context, WebhookEvent) error {
			<-release
			return nil
		})
		body := hookPayload(t, hookNote("same-id", EventOrderCreate, "ORD-1"), nil)
		first := make(chan int, 1)
		go func() { first <- deliverHook(t, h, body, "").Code }()
		synctest.Wait()

		ctx, cancel := context.WithCancel(t.Context())
		req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/", bytes.NewReader(body))
		w := httptest.NewRecorder()
		done := make(chan struct{})
		go func() { h.ServeHTTP(w, req); close(done) }()
		synctest.Wait()
		cancel()
		<-done
		assert.Equal(t, http.StatusServiceUnavailable, w.Code)

		close(release)
		assert.Equal(t, http.StatusOK, <-first)
	})
}

// Many notifications and their copies over real connections, for -race.
func TestWebhookConcurrentOverHTTP(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	seen := map[string]int{}
	srv := httptest.NewServer(NewWebhookHandler(func(_ context.Context, ev WebhookEvent) error {
		mu.Lock()
		seen[ev.ID]++
		mu.Unlock()
		return nil
	}, WithWebhookAuth(testWebhookAuth)))
	t.Cleanup(srv.Close)

	const ids, copies = 20, 5
	var wg sync.WaitGroup
	errs := make(chan error, ids*copies)
	for i := range ids {
		body := hookPayload(t, hookNote(fmt.Sprintf("id-%d", i), EventOrderUpdate, fmt.Sprintf("ORD-%d", i)), nil)
		for range copies {
			wg.Go(func() {
				req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL, bytes.NewReader(body))
				if err != nil {
					errs <- err
					return
				}
				req.Header.Set("Authorization", "Basic "+testWebhookAuth)
				resp, err := srv.Client().Do(req)
				if err != nil {
					errs <- err
					return
				}
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					errs <- fmt.Errorf("status %d", resp.StatusCode)
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	mu.Lock()
	defer mu.Unlock()
	assert.Len(t, seen, ids)
	for id, n := range seen {
		assert.Equal(t, 1, n, id)
	}
}

func TestWebhookDedupeBounds(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var rc hookRecorder
		h := NewWebhookHandler(rc.fn, WithWebhookDedupe(3, time.Hour))
		send := func(id string) {
			t.Helper()
			require.Equal(t, http.StatusOK, deliverHook(t, h, hookPayload(t, hookNote(id, EventOrderUpdate, "ORD-1"), nil), "").Code)
		}
		for _, id := range []string{"a", "b", "c", "d"} {
			send(id)
		}
		require.Equal(t, 4, rc.calls())
		assert.Equal(t, 3, h.dedupe.size())

		send("d")
		require.Equal(t, 4, rc.calls(), "a remembered id was handled again")
		send("a") // pushed out by d: handled again, and now pushes out b
		require.Equal(t, 5, rc.calls(), "the oldest id was not forgotten")
		send("c")
		require.Equal(t, 5, rc.calls())

		time.Sleep(59 * time.Minute)
		send("d")
		require.Equal(t, 5, rc.calls(), "an id was forgotten before its TTL")
		time.Sleep(time.Minute)
		send("d")
		require.Equal(t, 6, rc.calls(), "an id outlived its TTL")
		assert.LessOrEqual(t, h.dedupe.size(), 3)
	})
}

func TestWebhookDedupeMemoryBounded(t *testing.T) {
	t.Parallel()
	d := newWebhookDedupe(100, 0)
	for i := range 10_000 {
		dup, release, err := d.acquire(t.Context(), fmt.Sprintf("id-%d", i))
		require.NoError(t, err)
		require.False(t, dup)
		release(true)
	}
	assert.Equal(t, 100, d.size())
	d.mu.Lock()
	defer d.mu.Unlock()
	assert.LessOrEqual(t, len(d.queue)-d.head, 100)
	assert.LessOrEqual(t, cap(d.queue), 1024, "the queue keeps spent entries")
	assert.Empty(t, d.inflight)
}

// hookPipe serves HTTP over net.Pipe so that a real server and client can run
// inside a synctest bubble.
type hookPipe struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

type hookPipeAddr struct{}

func (hookPipeAddr) Network() string { return "pipe" }
func (hookPipeAddr) String() string  { return "pipe" }

func newHookPipe() *hookPipe {
	return &hookPipe{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (p *hookPipe) Accept() (net.Conn, error) {
	select {
	case c := <-p.conns:
		return c, nil
	case <-p.done:
		return nil, net.ErrClosed
	}
}

func (p *hookPipe) Close() error {
	p.once.Do(func() { close(p.done) })
	return nil
}

func (p *hookPipe) Addr() net.Addr { return hookPipeAddr{} }

func (p *hookPipe) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case p.conns <- server:
		return client, nil
	case <-p.done:
	case <-ctx.Done():
	}
	_ = client.Close()
	_ = server.Close()
	return nil, net.ErrClosed
}

// serveHookPipe starts h on a pipe network and returns a client for it; all of
// it is shut down when the test ends.
func serveHookPipe(t *testing.T, h http.Handler) *http.Client {
	t.Helper()
	pn := newHookPipe()
	srv := &http.Server{Handler: h}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(pn)
	}()
	tr := &http.Transport{DialContext: pn.dial}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		_ = srv.Close()
		<-served
	})
	return &http.Client{Transport: tr}
}

// A sender that stops mid-body must not hold the handler beyond the read
// timeout.
func TestWebhookStalledBody(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var rc hookRecorder
		client := serveHookPipe(t, NewWebhookHandler(rc.fn, WithWebhookReadTimeout(5*time.Second)))
		body := hookPayload(t, hookNote("id-1", EventOrderCreate, "ORD-1"), nil)
		pr, pw := io.Pipe()
		defer func() { _ = pw.Close() }()
		go func() { _, _ = pw.Write(body[:len(body)/2]) }()

		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://prio.test/hook", pr)
		require.NoError(t, err)
		req.ContentLength = int64(len(body))
		start := time.Now()
		resp, err := client.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		assert.Equal(t, http.StatusRequestTimeout, resp.StatusCode)
		assert.Equal(t, 5*time.Second, time.Since(start))
		assert.Zero(t, rc.calls())
	})
}

// The read deadline covers the body only: a receiver that takes longer than
// it keeps a live context, and the answer still reaches the sender.
func TestWebhookSlowReceiverKeepsContext(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		client := serveHookPipe(t, NewWebhookHandler(func(ctx context.Context, _ WebhookEvent) error {
			select {
			case <-time.After(time.Minute):
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}, WithWebhookReadTimeout(5*time.Second)))
		body := hookPayload(t, hookNote("id-1", EventOrderCreate, "ORD-1"), nil)
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://prio.test/hook", bytes.NewReader(body))
		require.NoError(t, err)
		resp, err := client.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode)
	})
}

// The receiver's context ends when the sender goes away.
func TestWebhookReceiverContextEndsWithRequest(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		started := make(chan struct{})
		ended := make(chan error, 1)
		client := serveHookPipe(t, NewWebhookHandler(func(ctx context.Context, _ WebhookEvent) error {
			close(started)
			<-ctx.Done()
			ended <- ctx.Err()
			return ctx.Err()
		}))
		body := hookPayload(t, hookNote("id-1", EventOrderCreate, "ORD-1"), nil)
		ctx, cancel := context.WithCancel(t.Context())
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://prio.test/hook", bytes.NewReader(body))
		require.NoError(t, err)
		sent := make(chan error, 1)
		go func() {
			resp, err := client.Do(req)
			if err == nil {
				_ = resp.Body.Close()
			}
			sent <- err
		}()
		<-started
		cancel()
		assert.ErrorIs(t, <-sent, context.Canceled)
		assert.ErrorIs(t, <-ended, context.Canceled)
	})
}

func TestWebhookLogsNoSecrets(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	fail := true
	h := NewWebhookHandler(func(context.Context, WebhookEvent) error {
		if fail {
			fail = false
			return errors.New("store down")
		}
		return nil
	}, WithWebhookAuth(testWebhookAuth), WithWebhookLogger(logger), WithWebhookMaxBody(2<<10))

	order := hookOrder("ORD-1", "ext-1")
	order["order_contacts"] = []any{map[string]any{"contact_email": "guest@example.com", "contact_name": "Ada Guest"}}
	body := hookPayload(t, hookNote("id-1", EventOrderCreate, "ORD-1"), order)
	right := "Basic " + testWebhookAuth
	require.Equal(t, http.StatusUnauthorized, deliverHook(t, h, body, "Basic wrong-guess-Zm9vOmJhcg==").Code)
	require.Equal(t, http.StatusBadRequest, deliverHook(t, h, []byte(`{"guest":"Ada Guest","x":`), right).Code)
	require.Equal(t, http.StatusRequestEntityTooLarge, deliverHook(t, h, bytes.Repeat(body, 10), right).Code)
	require.Equal(t, http.StatusInternalServerError, deliverHook(t, h, body, right).Code)
	require.Equal(t, http.StatusOK, deliverHook(t, h, body, right).Code)
	require.Equal(t, http.StatusOK, deliverHook(t, h, body, right).Code)

	out := buf.String()
	for _, secret := range []string{testWebhookAuth, "wrong-guess", "guest@example.com", "Ada Guest"} {
		assert.NotContains(t, out, secret)
	}
	for _, msg := range []string{"refused credentials", "not a notification", "body not read", "receiver failed", "store down", "duplicate", "handled"} {
		assert.Contains(t, out, msg)
	}
}

func FuzzDecodeWebhookEvent(f *testing.F) {
	f.Add(hookPayload(f, hookNote("id-1", EventOrderCreate, "ORD-1"), hookOrder("ORD-1", "ext-1")))
	f.Add([]byte(`{"notification":{"notification_id":12,"notification_created":"2026-05-12T12:00:00Z"}}`))
	f.Add([]byte(`{"data":{"notification":{"notification_event":"X"},"order":null}}`))
	f.Add([]byte(`{"data":{"notification":{}},"notification":{"notification_id":"outer"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, _, err := decodeWebhookEvent(body)
		if err != nil {
			return
		}
		assert.Equal(t, body, []byte(ev.Raw))
		assert.Equal(t, ev.ID, strings.TrimSpace(ev.ID))
		_ = ev.OrderReference()
		_ = ev.ExternalReference()
	})
}
