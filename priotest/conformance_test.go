package priotest

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fixtures is the state every conformance call starts from: one of
// everything a path or query can name.
type fixtures struct {
	order, reservation, contact, webhook string
	paidPayment, pendingPayment          string
	date                                 string // a day with availability, YYYY-MM-DD
	slot                                 string // a ProductTimeSlot availability on that day
}

func seedFixtures(t *testing.T, s *Server, a *api) fixtures {
	t.Helper()
	var f fixtures
	f.slot = firstSlot(t, s, ProductTimeSlot)
	day := f.slot[len(ProductTimeSlot)+1 : len(ProductTimeSlot)+9]
	f.date = day[:4] + "-" + day[4:6] + "-" + day[6:]

	wh := a.do(http.MethodPost, "/webhooks", map[string]any{"data": map[string]any{"webhook": map[string]any{
		"webhook_url": "http://127.0.0.1:1/hook", "webhook_events": []string{"ORDER_CREATE"}}}})
	require.Equal(t, http.StatusCreated, wh.status, "%s", wh.body)
	f.webhook = dig(t, wh.json(t), "data", "webhook", "webhook_id").(string)

	body := orderBody("conf-1", ticket{product: ProductTimeSlot, availability: f.slot, adults: 2, children: 1})
	dig(t, body, "data", "order").(map[string]any)["order_contacts"] = []map[string]any{{
		"contact_type": "BOOKER", "contact_email": "booker@example.com", "contact_name_first": "Ada", "contact_name_last": "Lovelace"}}
	o := a.do(http.MethodPost, "/orders", body)
	require.Equal(t, http.StatusCreated, o.status, "%s", o.body)
	f.order = dig(t, o.json(t), "data", "order", "order_reference").(string)
	f.contact = dig(t, o.json(t), "data", "order", "order_contacts", 0, "contact_uid").(string)

	r := a.do(http.MethodPost, "/reservations", reservationBody("conf-r", ticket{product: ProductOpen, adults: 2}))
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	f.reservation = dig(t, r.json(t), "data", "reservation", "reservation_reference").(string)
	pr := a.do(http.MethodPost, "/reservations/"+f.reservation+"/promocode?promo_code="+PromoFixed, nil)
	require.Equal(t, http.StatusOK, pr.status, "%s", pr.body)

	paid := a.do(http.MethodPost, "/payments?order_reference="+f.order, paymentBody("MANUAL", "conf-pay-1"))
	require.Equal(t, http.StatusCreated, paid.status, "%s", paid.body)
	f.paidPayment = dig(t, paid.json(t), "data", "payment", "payment_details", "payment_id").(string)
	pending := a.do(http.MethodPost, "/payments?order_reference="+f.reservation, paymentBody("ADYEN_DROP_IN", "conf-pay-2"))
	require.Equal(t, http.StatusCreated, pending.status, "%s", pending.body)
	f.pendingPayment = dig(t, pending.json(t), "data", "payment", "payment_details", "payment_id").(string)
	return f
}

func paymentBody(objectType, ext string) map[string]any {
	return map[string]any{"data": map[string]any{"payment": map[string]any{
		"payment_object_type": objectType, "payment_merchant_reference": "m-" + ext, "payment_external_reference": ext,
		"payment_method": "ONLINE", "return_url": "https://shop.example/return", "payment_terminal_id": "T1",
		"payment_customer_id": "guest-1",
	}}}
}

// conformanceCall is a valid request for one operation.
type conformanceCall struct {
	method, path string // path below the base URL, with its query
	body         any
}

// conformanceCalls has one valid request per operationId of the spec.
func conformanceCalls(f fixtures) map[string]conformanceCall {
	get := func(p string) conformanceCall { return conformanceCall{method: http.MethodGet, path: p} }
	q := url.QueryEscape
	return map[string]conformanceCall{
		"getToken":               {method: http.MethodPost, path: "/oauth2/token", body: map[string]any{"grant_type": "client_credentials"}},
		"getSystemPing":          get("/system/ping"),
		"getSystemStatus":        get("/system/status"),
		"getSystemSpecification": get("/system/docs"),

		"getProducts":            get("/products?items_per_page=2"),
		"getProduct":             get("/products/" + ProductTimeSlot),
		"getProductAvailability": get("/products/" + ProductTimeSlot + "/availability?from_date=" + f.date),
		"getAvailability":        get("/availability?from_date=" + f.date + "&product_id=" + ProductTimeSlot + "&product_id=" + ProductTimeDate),
		"getProductCategories":   get("/products/categories"),
		"getProductDestinations": get("/products/destinations"),
		"getProductLocations":    get("/products/locations?product_id=" + ProductOpen),
		"getProductRoutes":       get("/products/routes"),
		"getProductTaxes":        get("/products/taxes?tax_region=NL"),
		"getCurrencyRates":       get("/products/currency_rates?currency_date=" + f.date + "&currency_base=USD"),
		"getProductStock":        get("/products/stock?include_disabled=true"),

		"createReservation": {method: http.MethodPost, path: "/reservations",
			body: reservationBody("conf-r2", ticket{product: ProductTimeSlot, availability: f.slot, adults: 1})},
		"getReservation":    get("/reservations/" + f.reservation),
		"cancelReservation": {method: http.MethodDelete, path: "/reservations/" + f.reservation},
		"updateReservation": {method: http.MethodPut, path: "/reservations/" + f.reservation,
			body: reservationBody("conf-r", ticket{product: ProductTimeSlot, availability: f.slot, adults: 1})},
		"addPromocode":    {method: http.MethodPost, path: "/reservations/" + f.reservation + "/promocode?promo_code=" + PromoPercent},
		"removePromocode": {method: http.MethodDelete, path: "/reservations/" + f.reservation + "/promocode/" + PromoFixed},

		"createOrder": {method: http.MethodPost, path: "/orders", body: orderBody("conf-2", ticket{product: ProductOpen, adults: 1})},
		"getOrders":   get("/orders?order_external_reference=conf-1"),
		"getOrder":    get("/orders/" + f.order),
		"updateOrder": {method: http.MethodPut, path: "/orders/" + f.order, body: map[string]any{"data": map[string]any{"order": map[string]any{
			"order_distributor_id": DefaultDistributorID, "order_external_reference": "conf-1", "order_language": "en",
			"order_channel": "PARTNER", "order_status": "ORDER_CONFIRMED", "order_view_type": "DISTRIBUTOR",
			"order_contacts": []map[string]any{{"contact_type": "GUEST", "contact_name_first": "Grace"}},
		}}}},
		"cancelOrder": {method: http.MethodDelete, path: "/orders/" + f.order},
		"getVoucher":  get("/orders/" + f.order + "/voucher"),

		"getContacts": get("/contacts?contact_type=BOOKER"),
		"getContact":  get("/contacts/" + f.contact + "?include_versions=true"),
		"updateContact": {method: http.MethodPut, path: "/contacts/" + f.contact + "?order_reference=" + f.order,
			body: map[string]any{"data": map[string]any{"contact": map[string]any{
				"contact_type": "BOOKER", "contact_email": "ada@example.com", "contact_name_first": "Ada"}}}},

		"addPayment":  {method: http.MethodPost, path: "/payments?order_reference=" + f.reservation, body: paymentBody("MANUAL", "conf-pay-3")},
		"getPayments": get("/payments?order_reference=" + f.order),
		"cancelPayment": {method: http.MethodDelete, path: "/payments?payment_id=" + f.paidPayment + "&refund_amount=" + q("10.00") +
			"&refund_reason=" + q("guest asked")},
		"getPaymentConfig":  get("/payments/config?payment_gateway_type=ADYEN&order_reference=" + f.order),
		"addPaymentDetails": {method: http.MethodPost, path: "/payments/" + f.pendingPayment + "/details", body: map[string]any{"data": "3ds-result"}},

		"addWebhook": {method: http.MethodPost, path: "/webhooks", body: map[string]any{"data": map[string]any{"webhook": map[string]any{
			"webhook_url": "http://127.0.0.1:1/other", "webhook_events": []string{"ORDER_CANCEL"}}}}},
		"getWebhooks":   get("/webhooks"),
		"removeWebhook": {method: http.MethodDelete, path: "/webhooks/" + f.webhook},
		"addNotification": {method: http.MethodPost, path: "/notifications", body: map[string]any{"data": map[string]any{"notification": map[string]any{
			"notification_event": "ORDER_UPDATE", "notification_item_id": f.order, "notification_status": "DELIVERY_PENDING"}}}},
		"getNotifications": get("/notifications"),
	}
}

// TestEveryOperationConforms sends a valid request for every operation of
// api/openapi.yaml to a fresh sandbox and validates the answer against the
// spec's response schema for its status. It fails when the spec has an
// operation without a request here, when an operation answers 501 or any
// other failure, and when an answer does not match the spec.
func TestEveryOperationConforms(t *testing.T) {
	t.Parallel()
	sp, err := loadSpec()
	require.NoError(t, err)
	calls := conformanceCalls(fixtures{})
	var ops []string
	for path, item := range sp.doc.Paths.Map() {
		for method, op := range item.Operations() {
			ops = append(ops, op.OperationID)
			c, ok := calls[op.OperationID]
			if assert.True(t, ok, "no conformance request for %s %s (%s)", method, path, op.OperationID) {
				assert.Equal(t, method, c.method, "%s", op.OperationID)
			}
		}
	}
	slices.Sort(ops)
	for id := range calls {
		assert.Contains(t, ops, id, "a conformance request for an operation the spec does not have")
	}
	for _, id := range ops {
		t.Run(id, func(t *testing.T) {
			t.Parallel()
			s := NewServer(t, WithSlowSupplierDelay(0))
			a := newAPI(t, s).login()
			c := conformanceCalls(seedFixtures(t, s, a))[id]
			req := a.request(c.method, c.path, c.body)
			if id == "getToken" {
				req.Header.Del("Authorization")
				req.SetBasicAuth(DefaultClientID, DefaultClientSecret)
			}
			var body []byte
			if req.Body != nil {
				body, _ = io.ReadAll(req.Body)
				req.Body = io.NopCloser(bytes.NewReader(body))
			}
			r := a.send(req)
			require.NotEqual(t, http.StatusNotImplemented, r.status, "%s answers 501: %s", id, r.body)
			require.True(t, r.status >= 200 && r.status < 300, "%s %s answered %d: %s", c.method, c.path, r.status, r.body)
			validateAnswer(t, sp, req, body, r)
		})
	}
}

// validateAnswer checks r against the spec's response for the operation
// and status of req.
func validateAnswer(t *testing.T, sp *spec, req *http.Request, body []byte, r reply) {
	t.Helper()
	probe := req.Clone(context.Background())
	probe.Body = io.NopCloser(bytes.NewReader(body))
	rest := strings.TrimPrefix(probe.URL.Path, basePath)
	route, params, err := sp.route(probe, rest)
	require.NoError(t, err)
	probe.URL.Path = rest
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: probe, PathParams: params, Route: route},
		Status:                 r.status,
		Header:                 r.header,
		Body:                   io.NopCloser(bytes.NewReader(r.body)),
		Options: &openapi3filter.Options{MultiError: true, IncludeResponseStatus: true,
			SchemaValidationOptions: []openapi3.SchemaValidationOption{openapi3.DisableSchemaErrorDetails()}},
	}
	require.NoError(t, openapi3filter.ValidateResponse(context.Background(), in), "%s", r.body)
}

// TestErrorAnswersMatchTheSpec validates refusals too: a missing order and
// a declined promocode answer in Prio's ErrorModel as the spec declares.
func TestErrorAnswersMatchTheSpec(t *testing.T) {
	t.Parallel()
	sp, err := loadSpec()
	require.NoError(t, err)
	s := NewServer(t)
	a := newAPI(t, s).login()
	f := seedFixtures(t, s, a)
	for _, c := range []struct {
		path   string
		method string
		status int
	}{
		{"/orders/00000000", http.MethodGet, http.StatusNotFound},
		{"/reservations/" + f.reservation + "/promocode?promo_code=" + PromoExpired, http.MethodPost, http.StatusUnprocessableEntity},
		{"/contacts/nobody", http.MethodGet, http.StatusNotFound},
	} {
		req := a.request(c.method, c.path, nil)
		r := a.send(req)
		require.Equal(t, c.status, r.status, "%s", r.body)
		validateAnswer(t, sp, req, nil, r)
	}
}
