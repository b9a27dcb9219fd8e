package priotest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// api is a plain net/http client of the sandbox, as the SDK will be.
type api struct {
	t     testing.TB
	base  string
	hc    *http.Client
	token string
}

// reply is a response read in full.
type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.body, &m), "body: %s", r.body)
	return m
}

// errorCode is the "error" of an ErrorModel body.
func (r reply) errorCode(t testing.TB) string {
	t.Helper()
	code, _ := r.json(t)["error"].(string)
	return code
}

// newAPI is a client with its own connections over TCP.
func newAPI(t testing.TB, s *Server) *api {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &api{t: t, base: s.URL(), hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// pipeAPI is a client over in-memory pipes, for synctest bubbles.
func pipeAPI(t testing.TB, s *Server) *api {
	return &api{t: t, base: s.URL(), hc: s.PipeClient()}
}

// login fetches a token with the default credentials.
func (a *api) login() *api {
	a.t.Helper()
	r := a.tokenRequest(DefaultClientID, DefaultClientSecret, `{"grant_type":"client_credentials"}`)
	require.Equal(a.t, http.StatusOK, r.status, "token: %s", r.body)
	a.token = r.json(a.t)["access_token"].(string)
	return a
}

func (a *api) tokenRequest(id, secret, body string) reply {
	a.t.Helper()
	req, err := http.NewRequest(http.MethodPost, a.base+"/oauth2/token", bytes.NewBufferString(body))
	require.NoError(a.t, err)
	req.Header.Set("Content-Type", "application/json")
	if id != "" {
		req.SetBasicAuth(id, secret)
	}
	return a.send(req)
}

// request builds a request to path (below the base URL) with the token.
func (a *api) request(method, path string, body any, header ...string) *http.Request {
	a.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = bytes.NewBufferString(b)
	default:
		raw, err := json.Marshal(b)
		require.NoError(a.t, err)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, a.base+path, rd)
	require.NoError(a.t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return req
}

func (a *api) send(req *http.Request) reply {
	a.t.Helper()
	resp, err := a.hc.Do(req)
	require.NoError(a.t, err, "%s %s", req.Method, req.URL)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(a.t, err)
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

func (a *api) do(method, path string, body any, header ...string) reply {
	a.t.Helper()
	return a.send(a.request(method, path, body, header...))
}

// ticket is one line of a test order.
type ticket struct {
	product      string
	availability string
	adults       int
	children     int
}

func items(b ticket) []map[string]any {
	var out []map[string]any
	if b.adults > 0 {
		out = append(out, map[string]any{"product_type": "ADULT", "product_type_id": ProductTypeAdult, "product_type_count": b.adults})
	}
	if b.children > 0 {
		out = append(out, map[string]any{"product_type": "CHILD", "product_type_id": ProductTypeChild, "product_type_count": b.children})
	}
	return out
}

// orderBody is a direct-booking Create Order body.
func orderBody(ext string, lines ...ticket) map[string]any {
	var bookings []map[string]any
	for i, b := range lines {
		m := map[string]any{
			"booking_option_type":        "DIRECT_BOOKING",
			"booking_external_reference": fmt.Sprintf("%s-%d", ext, i+1),
			"product_id":                 b.product,
			"product_type_details":       items(b),
		}
		if b.availability != "" {
			m["product_availability_id"] = b.availability
		}
		bookings = append(bookings, m)
	}
	return map[string]any{"data": map[string]any{"order": map[string]any{
		"order_distributor_id":     DefaultDistributorID,
		"order_external_reference": ext,
		"order_language":           "en",
		"order_bookings":           bookings,
	}}}
}

func confirmBody(ext, reservationRef string) map[string]any {
	return map[string]any{"data": map[string]any{"order": map[string]any{
		"order_distributor_id":     DefaultDistributorID,
		"order_external_reference": ext,
		"order_language":           "en",
		"order_bookings": []map[string]any{{
			"booking_option_type":   "CONFIRM_RESERVATION",
			"reservation_reference": reservationRef,
		}},
	}}}
}

func reservationBody(ext string, lines ...ticket) map[string]any {
	var details []map[string]any
	for i, b := range lines {
		m := map[string]any{
			"booking_external_reference": fmt.Sprintf("%s-%d", ext, i+1),
			"product_id":                 b.product,
			"product_type_details":       items(b),
		}
		if b.availability != "" {
			m["product_availability_id"] = b.availability
		}
		details = append(details, m)
	}
	return map[string]any{"data": map[string]any{"reservation": map[string]any{
		"reservation_distributor_id":     DefaultDistributorID,
		"reservation_external_reference": ext,
		"reservation_details":            details,
	}}}
}

// dig walks nested maps and slices: dig(m, "data", "order", "order_bookings", 0, "booking_status").
func dig(t testing.TB, v any, path ...any) any {
	t.Helper()
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			require.True(t, ok, "%v is not an object at %q", v, k)
			v = m[k]
		case int:
			s, ok := v.([]any)
			require.True(t, ok && k < len(s), "%v has no index %d", v, k)
			v = s[k]
		}
	}
	return v
}

// firstSlot is the id of the first slot of product p on the day after the
// clock's now.
func firstSlot(t testing.TB, s *Server, p string) string {
	t.Helper()
	pr, ok := productByID(p)
	require.True(t, ok)
	slots := pr.slotsOn(s.Now().In(sandboxZone).AddDate(0, 0, 1))
	require.NotEmpty(t, slots)
	return slots[0].id
}

// openSpots asks the availability endpoint how many spots slot has open.
func openSpots(t testing.TB, a *api, product, slot string) int {
	t.Helper()
	day := slot[len(product)+1 : len(product)+9]
	date := day[:4] + "-" + day[4:6] + "-" + day[6:]
	r := a.do(http.MethodGet, "/products/"+product+"/availability?from_date="+url.QueryEscape(date), nil)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	for _, it := range dig(t, r.json(t), "data", "items").([]any) {
		if dig(t, it, "availability_id") == slot {
			return int(dig(t, it, "availability_spots", "availability_spots_open").(float64))
		}
	}
	t.Fatalf("slot %s not listed: %s", slot, r.body)
	return 0
}
