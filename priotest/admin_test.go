package priotest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func adminDo(t *testing.T, s *Server, method, path, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, s.AdminURL()+path, strings.NewReader(body))
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

func TestAdminStatsAndReset(t *testing.T) {
	t.Parallel()
	s := NewServer(t, WithIdempotency(IdempotencyNone))
	a := newAPI(t, s).login()
	for range 2 {
		require.Equal(t, http.StatusCreated, a.do(http.MethodPost, "/orders", orderBody("twice", ticket{product: ProductOpen, adults: 1})).status)
	}
	require.Equal(t, http.StatusCreated, a.do(http.MethodPost, "/orders", orderBody("once", ticket{product: ProductOpen, adults: 1})).status)

	status, body := adminDo(t, s, http.MethodGet, "/_sandbox/stats", "")
	require.Equal(t, http.StatusOK, status)
	var m map[string]any
	require.NoError(t, json.Unmarshal(body, &m))
	assert.EqualValues(t, 3, m["orders_total"])
	assert.EqualValues(t, 2, m["external_references"])
	assert.EqualValues(t, 1, m["duplicate_external_references"])
	assert.EqualValues(t, 4, m["requests_total"], "token and three orders; admin calls do not count")
	assert.EqualValues(t, 0, m["faults_injected"])
	assert.Equal(t, 2, s.OrdersFor("twice"))

	status, _ = adminDo(t, s, http.MethodPost, "/_sandbox/reset", "")
	require.Equal(t, http.StatusNoContent, status)
	assert.Equal(t, Stats{}, s.Stats())
	assert.Zero(t, s.OrdersFor("twice"))
	assert.Empty(t, s.Requests())
	assert.Equal(t, http.StatusOK, a.do(http.MethodGet, "/products", nil).status, "tokens survive a reset")
	assert.EqualValues(t, 0, list(t, a, "")["total_items"])

	status, _ = adminDo(t, s, http.MethodGet, "/_sandbox/nothing", "")
	assert.Equal(t, http.StatusNotFound, status)
}

func TestAdminFaults(t *testing.T) {
	t.Parallel()
	s := NewServer(t)
	a := newAPI(t, s).login()

	status, body := adminDo(t, s, http.MethodPut, "/_sandbox/faults", "hostile")
	require.Equal(t, http.StatusOK, status, "%s", body)
	assert.Equal(t, "hostile", s.Faults().Name)

	status, body = adminDo(t, s, http.MethodPut, "/_sandbox/faults", `{"name":"one-html","sequences":{"getProducts":["html"]}}`)
	require.Equal(t, http.StatusOK, status, "%s", body)
	status, body = adminDo(t, s, http.MethodGet, "/_sandbox/faults", "")
	require.Equal(t, http.StatusOK, status)
	assert.Contains(t, string(body), `"one-html"`)
	assert.Equal(t, http.StatusBadGateway, a.do(http.MethodGet, "/products", nil).status)
	assert.Equal(t, http.StatusOK, a.do(http.MethodGet, "/products", nil).status)

	status, _ = adminDo(t, s, http.MethodPut, "/_sandbox/faults", "chaos")
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, "one-html", s.Faults().Name, "a bad profile changes nothing")
}

func TestRecordedRequests(t *testing.T) {
	t.Parallel()
	s := NewServer(t)
	a := newAPI(t, s).login()
	body := `{"data":{"order":{"order_distributor_id":"501","order_external_reference":"rec-1","order_language":"en",` +
		`"order_bookings":[{"booking_option_type":"DIRECT_BOOKING","product_id":"30001","product_type_details":[{"product_type_id":"101","product_type_count":1}]}]}}}`
	r := a.do(http.MethodPost, "/orders", body, "Idempotency-Key", "rec-key", "App-Attempt", "2")
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)

	recs := s.Requests()
	require.Len(t, recs, 2)
	sum := sha256.Sum256([]byte(body))
	assert.Equal(t, RecordedRequest{
		Time:           recs[1].Time,
		Method:         http.MethodPost,
		Path:           "/v3.8/distributor/orders",
		Operation:      "createOrder",
		IdempotencyKey: "rec-key",
		Attempt:        2,
		BodySHA256:     hex.EncodeToString(sum[:]),
		Status:         http.StatusCreated,
	}, recs[1])
	assert.Equal(t, "getToken", recs[0].Operation)

	status, raw := adminDo(t, s, http.MethodGet, "/_sandbox/requests", "")
	require.Equal(t, http.StatusOK, status)
	var listed []RecordedRequest
	require.NoError(t, json.Unmarshal(raw, &listed))
	require.Len(t, listed, 2)
	assert.Equal(t, "rec-key", listed[1].IdempotencyKey)
}
