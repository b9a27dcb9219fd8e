package priotest

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/stretchr/testify/require"
)

// TestAnswersMatchTheSpec validates the sandbox's own answers against
// api/openapi.yaml, so a client generated from the spec can read them.
func TestAnswersMatchTheSpec(t *testing.T) {
	t.Parallel()
	s := NewServer(t, WithSlowSupplierDelay(0))
	a := newAPI(t, s).login()
	sp, err := loadSpec()
	require.NoError(t, err)
	slot := firstSlot(t, s, ProductTimeSlot)
	day := slot[len(ProductTimeSlot)+1 : len(ProductTimeSlot)+9]
	date := day[:4] + "-" + day[4:6] + "-" + day[6:]

	order := a.do(http.MethodPost, "/orders", orderBody("spec-1", ticket{product: ProductTimeSlot, availability: slot, adults: 1, children: 1}))
	require.Equal(t, http.StatusCreated, order.status)
	ref := dig(t, order.json(t), "data", "order", "order_reference").(string)
	res := a.do(http.MethodPost, "/reservations", reservationBody("spec-r", ticket{product: ProductOpen, adults: 1}))
	require.Equal(t, http.StatusCreated, res.status)
	resRef := dig(t, res.json(t), "data", "reservation", "reservation_reference").(string)
	require.Equal(t, http.StatusCreated, a.do(http.MethodPost, "/webhooks", map[string]any{"data": map[string]any{"webhook": map[string]any{
		"webhook_url": "http://127.0.0.1:1/hook", "webhook_events": []string{"PRODUCT_UPDATE"}}}}).status)

	calls := []struct {
		method, path string
		body         any
	}{
		{http.MethodPost, "/oauth2/token", nil},
		{http.MethodGet, "/products", nil},
		{http.MethodGet, "/products/" + ProductTimeSlot, nil},
		{http.MethodGet, "/products/" + ProductTimeSlot + "/availability?from_date=" + date, nil},
		{http.MethodGet, "/availability?from_date=" + date, nil},
		{http.MethodPost, "/orders", orderBody("spec-2", ticket{product: ProductOpen, adults: 2})},
		{http.MethodGet, "/orders", nil},
		{http.MethodGet, "/orders/" + ref, nil},
		{http.MethodGet, "/orders/" + ref + "/voucher", nil},
		{http.MethodDelete, "/orders/" + ref, nil},
		{http.MethodPost, "/reservations", reservationBody("spec-r2", ticket{product: ProductTimeDate, availability: firstSlot(t, s, ProductTimeDate), adults: 1})},
		{http.MethodGet, "/reservations/" + resRef, nil},
		{http.MethodDelete, "/reservations/" + resRef, nil},
		{http.MethodGet, "/webhooks", nil},
		{http.MethodGet, "/orders/00000000", nil},
		{http.MethodGet, "/system/ping", nil},
	}
	for _, c := range calls {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			var req *http.Request
			if c.path == "/oauth2/token" {
				req = a.request(c.method, c.path, `{"grant_type":"client_credentials"}`)
				req.Header.Del("Authorization")
				req.SetBasicAuth(DefaultClientID, DefaultClientSecret)
			} else {
				req = a.request(c.method, c.path, c.body)
			}
			var body []byte
			if req.Body != nil {
				body, _ = io.ReadAll(req.Body)
				req.Body = io.NopCloser(bytes.NewReader(body))
			}
			r := a.send(req)
			require.Less(t, r.status, 500, "%s", r.body)

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
		})
	}
}
