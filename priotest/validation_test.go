package priotest

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRequestValidation(t *testing.T) {
	t.Parallel()
	s := NewServer(t)
	a := newAPI(t, s).login()

	withTravelDate := func(v string) map[string]any {
		b := orderBody("dt", ticket{product: ProductOpen, adults: 1})
		b["data"].(map[string]any)["order"].(map[string]any)["order_bookings"].([]map[string]any)[0]["booking_travel_date"] = v
		return b
	}
	noLanguage := orderBody("nolang", ticket{product: ProductOpen, adults: 1})
	delete(noLanguage["data"].(map[string]any)["order"].(map[string]any), "order_language")
	badCount := orderBody("count", ticket{product: ProductOpen, adults: 1})
	badCount["data"].(map[string]any)["order"].(map[string]any)["order_bookings"].([]map[string]any)[0]["product_type_details"] =
		[]map[string]any{{"product_type_id": ProductTypeAdult, "product_type_count": "two"}}

	tests := []struct {
		name   string
		method string
		path   string
		body   any
		header []string
		status int
		detail string // a substring of one errors[] entry
	}{
		{name: "missing required field", method: http.MethodPost, path: "/orders", body: noLanguage,
			status: http.StatusBadRequest, detail: "order_language"},
		{name: "wrong type", method: http.MethodPost, path: "/orders", body: badCount,
			status: http.StatusBadRequest, detail: "product_type_count"},
		{name: "Z date-time in the body", method: http.MethodPost, path: "/orders", body: withTravelDate("2030-05-12T14:00:00Z"),
			status: http.StatusBadRequest, detail: "the Z suffix is not supported"},
		{name: "Z date-time with fraction", method: http.MethodPost, path: "/orders", body: withTravelDate("2030-05-12T14:00:00.123Z"),
			status: http.StatusBadRequest, detail: "the Z suffix is not supported"},
		{name: "offset date-time in the body", method: http.MethodPost, path: "/orders", body: withTravelDate("2030-05-12T14:00:00+04:00"),
			status: http.StatusCreated},
		{name: "Z date-time in the query", method: http.MethodGet, path: "/orders?order_created_from=2030-01-01T00:00:00Z",
			status: http.StatusBadRequest, detail: "query parameter order_created_from"},
		{name: "offset date-time in the query", method: http.MethodGet, path: "/orders?order_created_from=" + url.QueryEscape("2030-01-01T00:00:00+00:00"),
			status: http.StatusOK},
		{name: "unescaped plus in the query", method: http.MethodGet, path: "/orders?order_created_from=2030-01-01T00:00:00+00:00",
			status: http.StatusBadRequest, detail: "order_created_from"},
		{name: "not a date", method: http.MethodGet, path: "/products/" + ProductTimeSlot + "/availability?from_date=tomorrow",
			status: http.StatusBadRequest, detail: "from_date"},
		{name: "not JSON", method: http.MethodPost, path: "/orders", body: "{not json",
			status: http.StatusBadRequest},
		{name: "wrong content type", method: http.MethodPost, path: "/orders", body: "x", header: []string{"Content-Type", "text/plain"},
			status: http.StatusBadRequest, detail: "Content-Type"},
		{name: "enum outside the list", method: http.MethodGet, path: "/orders?order_status=ORDER_LOST",
			status: http.StatusBadRequest, detail: "order_status"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := a.do(tt.method, tt.path, tt.body, tt.header...)
			require.Equal(t, tt.status, r.status, "%s", r.body)
			if tt.status != http.StatusBadRequest {
				return
			}
			m := r.json(t)
			assert.Equal(t, "INVALID_REQUEST", m["error"])
			assert.NotEmpty(t, m["error_reference"])
			if tt.detail != "" {
				details, _ := m["errors"].([]any)
				found := false
				for _, d := range details {
					found = found || strings.Contains(d.(string), tt.detail)
				}
				assert.True(t, found, "no errors[] entry mentions %q: %s", tt.detail, r.body)
			}
		})
	}
	assert.Equal(t, 1, s.Stats().OrdersTotal, "only the valid order was booked")
}

func TestRouting(t *testing.T) {
	t.Parallel()
	s := NewServer(t)
	a := newAPI(t, s).login()
	root := strings.TrimSuffix(s.URL(), "/v3.8/distributor")
	tests := []struct {
		name   string
		method string
		url    string
		status int
		code   string
	}{
		{"another API version", http.MethodGet, root + "/v3.5/distributor/products", http.StatusNotFound, "NOT_FOUND"},
		{"no base path", http.MethodGet, root + "/products", http.StatusNotFound, "NOT_FOUND"},
		{"base path prefix only", http.MethodGet, root + "/v3.8/distributorx/products", http.StatusNotFound, "NOT_FOUND"},
		{"unknown operation", http.MethodGet, s.URL() + "/bananas", http.StatusNotFound, "NOT_FOUND"},
		{"wrong method", http.MethodPatch, s.URL() + "/orders", http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED"},
		{"unknown contact", http.MethodGet, s.URL() + "/contacts/nobody", http.StatusNotFound, "NOT_FOUND"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, tt.url, nil)
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer "+a.token)
			r := a.send(req)
			assert.Equal(t, tt.status, r.status, "%s", r.body)
			assert.Equal(t, tt.code, r.errorCode(t))
			assert.Equal(t, "application/json", r.header.Get("Content-Type"))
		})
	}
}
