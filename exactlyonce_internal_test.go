package prio

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/priosdk/prio-go/generated"
)

// fakePrio answers the token endpoint and hands every other request to
// api, over a fakeWire, for tests of the booking path that need answers
// no sandbox gives.
func fakePrio(api func(n int, req *http.Request) *http.Response) *fakeWire {
	calls := 0
	return &fakeWire{answer: func(_ int, req *http.Request) (*http.Response, error) {
		if strings.HasSuffix(req.URL.Path, "/oauth2/token") {
			return wireReply(req, 200, `{"access_token":"tok","token_type":"Bearer","expires_in":3600}`), nil
		}
		calls++
		return api(calls, req), nil
	}}
}

func fakeClient(t *testing.T, w *fakeWire, p RetryPolicy) *Client {
	t.Helper()
	c, err := NewClient(WithBaseURL("https://prio.test/v3.8/distributor"), WithCredentials("id", "secret"),
		WithDistributorID("501"), WithRetryPolicy(p), WithHTTPClient(&http.Client{Transport: w}))
	require.NoError(t, err)
	return c
}

func orderJSON(t *testing.T, ref, extRef string) generated.ConfirmedOrderModel {
	t.Helper()
	var o generated.ConfirmedOrderModel
	raw := `{"order_reference":"` + ref + `","order_external_reference":"` + extRef + `","order_distributor_id":"501",
		"order_language":"en","order_channel":"PARTNER","order_status":"ORDER_CONFIRMED","order_view_type":"DISTRIBUTOR",
		"order_pricing":{"price_subtotal":"10.00","price_total":"10.00"},
		"order_bookings":[{"booking_external_reference":"","booking_status":"BOOKING_CONFIRMED","product_id":"30001",
		"product_admission_type":"TIME_OPEN","product_type_redemption_status":"ACTIVE",
		"booking_pricing":{"price_subtotal":"10.00","price_total":"10.00"},
		"product_type_details":[{"product_type":"ADULT","product_type_id":"101","product_type_count":1,
		"product_type_redemption_status":"ACTIVE","product_type_pricing":{"price_subtotal":"10.00","price_total":"10.00"}}]}]}`
	require.NoError(t, json.Unmarshal([]byte(raw), &o))
	return o
}

func ordersPage(t *testing.T, page, pages int, orders ...generated.ConfirmedOrderModel) string {
	t.Helper()
	if orders == nil {
		orders = []generated.ConfirmedOrderModel{}
	}
	b, err := json.Marshal(map[string]any{"api_version": "3.8.0", "data": map[string]any{
		"kind": "order", "current_item_count": len(orders), "items_per_page": 100, "start_index": (page-1)*100 + 1,
		"total_items": pages * 100, "page_index": page, "total_pages": pages, "items": orders}})
	require.NoError(t, err)
	return string(b)
}

func directRequest(ref string) *OrderRequest {
	return &OrderRequest{OrderExternalReference: ref, OrderBookings: []BookingOption{{
		ProductId: Ptr("30001"), ProductTypeDetails: &[]ProductTypeDetail{{ProductTypeId: "101", ProductTypeCount: 1}}}}}
}

// TestLookupFollowsEveryPage: Prio's filter may list other orders first
// (page 1 full of them); the look-up reads every page before it calls the
// order absent.
func TestLookupFollowsEveryPage(t *testing.T) {
	t.Parallel()
	var others []generated.ConfirmedOrderModel
	for range 100 {
		others = append(others, orderJSON(t, "9000", "paged-other"))
	}
	w := fakePrio(func(_ int, req *http.Request) *http.Response {
		switch {
		case req.Method == http.MethodGet && req.URL.Query().Get("page") == "2":
			return wireReply(req, 200, ordersPage(t, 2, 2, orderJSON(t, "9001", "paged")))
		case req.Method == http.MethodGet:
			return wireReply(req, 200, ordersPage(t, 1, 2, others...))
		}
		return wireReply(req, 500, `{"error":"UNEXPECTED","error_reference":"x"}`)
	})
	c := fakeClient(t, w, testPolicy())
	order, err := c.Orders.Create(t.Context(), directRequest("paged"), WithLookupFirst())
	require.NoError(t, err)
	assert.Equal(t, "9001", *order.OrderReference)
	gets := 0
	for _, r := range w.requests() {
		if strings.Contains(r.url, "/oauth2/") {
			continue
		}
		assert.Equal(t, http.MethodGet, r.method, "found on page 2: nothing sent")
		assert.Contains(t, r.url, "cache=false", "the look-up reads the source of truth")
		gets++
	}
	assert.Equal(t, 2, gets, "both pages read")
}

// TestCreateHonoursRetryAfterBetweenRounds: Prio answered 503 with
// Retry-After: 2 and the look-up proved the order absent; the re-send
// waits the two seconds.
func TestCreateHonoursRetryAfterBetweenRounds(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		w := fakePrio(func(n int, req *http.Request) *http.Response {
			switch {
			case req.Method == http.MethodGet:
				return wireReply(req, 200, ordersPage(t, 1, 1))
			case n == 1:
				return wireReply(req, 503, `{"error":"SERVICE_UNAVAILABLE","error_reference":"e1"}`, "Retry-After", "2")
			}
			b, _ := json.Marshal(map[string]any{"api_version": "3.8.0", "data": map[string]any{"kind": "order", "order": orderJSON(t, "9002", "after")}})
			return wireReply(req, 201, string(b))
		})
		c := fakeClient(t, w, testPolicy())
		_, err := c.Orders.Create(t.Context(), directRequest("after"))
		require.NoError(t, err)
		var posts []time.Time
		for _, r := range w.requests() {
			if r.method == http.MethodPost && !strings.Contains(r.url, "/oauth2/") {
				posts = append(posts, r.at)
			}
		}
		require.Len(t, posts, 2)
		assert.GreaterOrEqual(t, posts[1].Sub(posts[0]), 2*time.Second)
	})
}

// TestHoldExpiryAfterADoubtfulConfirm: the first confirmation was processed
// (a 500 after it), the cached list does not show it, and a re-send would
// be told the hold expired. The source-of-truth look-up finds the order;
// ErrHoldExpired is never reported for a hold the first send confirmed.
func TestHoldExpiryAfterADoubtfulConfirm(t *testing.T) {
	t.Parallel()
	w := fakePrio(func(n int, req *http.Request) *http.Response {
		switch {
		case req.Method == http.MethodGet && req.URL.Query().Get("cache") == "false":
			return wireReply(req, 200, ordersPage(t, 1, 1, orderJSON(t, "9003", "confirm-doubt")))
		case req.Method == http.MethodGet:
			return wireReply(req, 200, ordersPage(t, 1, 1))
		case n == 1:
			return wireReply(req, 500, `{"error":"INTERNAL_SERVER_ERROR","error_reference":"e1"}`)
		}
		return wireReply(req, 400, `{"error":"RESERVATION_EXPIRED","error_reference":"e2"}`)
	})
	c := fakeClient(t, w, testPolicy())
	res := &Reservation{ReservationReference: Ptr("R1")}
	order, err := c.Reservations.Confirm(t.Context(), *res.ReservationReference, &OrderRequest{OrderExternalReference: "confirm-doubt"})
	require.NoError(t, err)
	assert.Equal(t, "9003", *order.OrderReference)
}

// TestGuardCountsReplayed401: the 401 that makes a GET fetch a new token and
// send again is an answer Prio counts, as is the second 401.
func TestGuardCountsReplayed401(t *testing.T) {
	t.Parallel()
	w := fakePrio(func(_ int, req *http.Request) *http.Response {
		return wireReply(req, 401, `{"error":"INVALID_TOKEN","error_reference":"e"}`)
	})
	p := testPolicy()
	p.ClientErrorLimit = 4
	c := fakeClient(t, w, p)
	for range 2 {
		_, err := c.Orders.Get(t.Context(), "9004")
		require.ErrorIs(t, err, ErrUnauthorized)
	}
	sent := w.count()
	_, err := c.Orders.Get(t.Context(), "9004")
	var le *LocalLimitError
	require.ErrorAs(t, err, &le, "four 401s counted: two per call")
	assert.Equal(t, sent, w.count(), "nothing sent once the guard is closed")
}

// TestUnknownWaitsForTheLookupsLimit: when the look-up itself is refused
// with a wait (Prio's Retry-After, the client's 4XX guard), the booking is
// decidable no earlier than that wait, not a second later.
func TestUnknownWaitsForTheLookupsLimit(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		w := fakePrio(func(_ int, req *http.Request) *http.Response {
			if req.Method == http.MethodGet {
				return wireReply(req, 429, `{"error":"TOO_MANY_REQUESTS","error_reference":"e2"}`, "Retry-After", "120")
			}
			return wireReply(req, 500, `{"error":"INTERNAL_SERVER_ERROR","error_reference":"e1"}`)
		})
		c := fakeClient(t, w, testPolicy())
		start := time.Now()
		_, err := c.Orders.Create(t.Context(), directRequest("limited-lookup"))
		var ue *OutcomeUnknownError
		require.ErrorAs(t, err, &ue)
		require.ErrorIs(t, ue.LookupErr, ErrRateLimited)
		assert.Equal(t, start.Add(120*time.Second), ue.DecidableAt)
	})
}
