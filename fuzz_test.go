package prio

// Fuzz targets for the parsers that read the network, and the huge-body
// tests. Seed corpora live in testdata/fuzz/<target>/; .ci/run runs each
// target briefly. FuzzParseRetryAfter (retryafter_test.go),
// FuzzErrorReference (retry_test.go) and wire.FuzzParseDateTime cover
// Retry-After, error_reference and date-time parsing on their own.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/priosdk/prio-go/generated"
)

// fuzzBody is a response body that counts what was read and whether it
// was closed.
type fuzzBody struct {
	r      io.Reader
	read   int64
	closed bool
}

func (b *fuzzBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.read += int64(n)
	return n, err
}

func (b *fuzzBody) Close() error {
	b.closed = true
	return nil
}

// emailLike finds what the redaction must have removed from an error text.
var emailLike = regexp.MustCompile(`[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}`)

// FuzzNewAPIError: any non-2xx answer (any status, content type,
// Retry-After and body: JSON, truncated JSON, HTML, binary) gives an
// *APIError that carries the status, maps to the right sentinel, reads at
// most 64 KiB, closes the body, reports truncation, and prints no e-mail
// address that came in Prio's human-readable fields.
func FuzzNewAPIError(f *testing.F) {
	f.Add(uint16(0), "application/json", "", []byte(`{"error":"INVALID_REQUEST","error_reference":"R-1","errors":["a: required"]}`))
	f.Add(uint16(100), "text/html", "", []byte("<html><body>502 Bad Gateway</body></html>"))
	f.Add(uint16(29), "application/json", "7", []byte(`{"error":"TOO_MANY","error_reference":"R-2"`))
	f.Add(uint16(103), "application/json; charset=utf-8", "Sun, 06 Nov 1994 08:49:37 GMT", []byte(""))
	f.Add(uint16(22), "application/json", "", []byte(`{"error":"X","error_description":"guest maren@example.com rejected"}`))
	f.Add(uint16(0), "", "", []byte(`{"error":"X","error_reference":"R","errors":[{"field":"f"}]}`))
	f.Fuzz(func(t *testing.T, status uint16, contentType, retryAfter string, body []byte) {
		code := 400 + int(status%200)
		rb := &fuzzBody{r: bytes.NewReader(body)}
		resp := &http.Response{StatusCode: code, Header: http.Header{}, Body: rb}
		if contentType != "" {
			resp.Header.Set("Content-Type", contentType)
		}
		if retryAfter != "" {
			resp.Header.Set("Retry-After", retryAfter)
		}
		e := newAPIError(resp, "createOrder")
		if e == nil {
			t.Fatal("nil *APIError")
		}
		if e.StatusCode != code {
			t.Fatalf("status %d, want %d", e.StatusCode, code)
		}
		if !rb.closed {
			t.Fatal("body not closed")
		}
		if rb.read > maxErrorBody+1 {
			t.Fatalf("read %d bytes of the body, cap is %d", rb.read, maxErrorBody)
		}
		if e.BodyTruncated != (len(body) > maxErrorBody) {
			t.Fatalf("BodyTruncated %v for a %d-byte body", e.BodyTruncated, len(body))
		}
		if e.RetryAfter < 0 {
			t.Fatalf("negative RetryAfter %v", e.RetryAfter)
		}
		for sentinel, want := range map[error]bool{
			ErrInvalidRequest: code == 400 || code == 422,
			ErrUnauthorized:   code == 401,
			ErrForbidden:      code == 403,
			ErrNotFound:       code == 404,
			ErrConflict:       code == 409,
			ErrRateLimited:    code == 429,
			ErrServer:         code >= 500,
			ErrOutcomeUnknown: false,
		} {
			if errors.Is(e, sentinel) != want {
				t.Fatalf("errors.Is(HTTP %d, %v) = %v", code, sentinel, !want)
			}
		}
		msg := e.Error()
		if !strings.Contains(msg, fmt.Sprintf("HTTP %d", code)) {
			t.Fatalf("message %q does not name the status", msg)
		}
		_ = fmt.Sprintf("%+v %#v", e, e)

		// What Prio writes for humans is redacted before it is printed.
		shown := (&APIError{StatusCode: code, Description: e.Description, Message: e.Message}).Error()
		if m := emailLike.FindString(shown); m != "" {
			t.Fatalf("message %q shows the e-mail-like %q", shown, m)
		}

		// A body that is Prio's error model is read field for field.
		var want errorBody
		if len(body) <= maxErrorBody && json.Unmarshal(body, &want) == nil && bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")) {
			if string(e.Code) != text(want.Error) || e.Reference != text(want.ErrorReference) || e.Message != text(want.ErrorMessage) ||
				e.Description != text(want.ErrorDescription) || e.URI != text(want.ErrorURI) || len(e.Details) != len(details(want.Errors)) {
				t.Fatalf("error model %q read as %+v", body, e)
			}
		}
	})
}

// FuzzRetryWait: whatever Retry-After a server sends with whatever
// status, the wait the policy chooses is never negative, never longer
// than the policy allows, and never shorter than an ask it obeys.
func FuzzRetryWait(f *testing.F) {
	f.Add(uint16(429), "1", uint8(0))
	f.Add(uint16(503), "120", uint8(3))
	f.Add(uint16(503), "Sun, 06 Nov 1994 08:49:37 GMT", uint8(1))
	f.Add(uint16(429), "", uint8(9))
	f.Add(uint16(500), "9223372036854775807", uint8(255))
	f.Add(uint16(502), "-1", uint8(2))
	now := time.Date(2026, 5, 12, 14, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, status uint16, retryAfter string, n uint8) {
		p := DefaultRetryPolicy()
		resp := &http.Response{StatusCode: int(status), Header: http.Header{}}
		if retryAfter != "" {
			resp.Header.Set("Retry-After", retryAfter)
		}
		wait, asked, ok := p.retryWait(int(n), resp, now)
		if wait < 0 || asked < 0 {
			t.Fatalf("negative wait %v or ask %v", wait, asked)
		}
		if !ok {
			if asked <= p.MaxRetryAfter {
				t.Fatalf("gave up on an ask of %v, within MaxRetryAfter %v", asked, p.MaxRetryAfter)
			}
			return
		}
		if limit := max(p.MaxDelay, p.MaxRetryAfter); wait > limit {
			t.Fatalf("wait %v is over %v", wait, limit)
		}
		if d, has := parseRetryAfter(resp.Header.Get("Retry-After"), now); has && wait < d {
			t.Fatalf("wait %v is shorter than the %v asked", wait, d)
		}
	})
}

// fuzzDecode checks the decode path of the services on one body: it
// either fails with ErrMalformedResponse, or gives a value that encodes
// again (Update Order sends back what was read) and whose encoding is
// stable from the second round on. The first round may normalise (a Z
// becomes +00:00, an empty date-time becomes null, then absent); after
// that nothing may change.
func fuzzDecode[T any](t *testing.T, body []byte) {
	var out T
	err := decodeBody(bytes.NewReader(body), &out)
	if err != nil {
		if !errors.Is(err, ErrMalformedResponse) {
			t.Fatalf("error %v is not ErrMalformedResponse", err)
		}
		return
	}
	enc := func(v T) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("a decoded %T does not encode: %v", v, err)
		}
		return b
	}
	dec := func(b []byte) T {
		var v T
		if err := decodeBody(bytes.NewReader(b), &v); err != nil {
			t.Fatalf("an encoded %T does not decode: %v\n%s", v, err, b)
		}
		return v
	}
	once := enc(out)
	twice := enc(dec(once))
	thrice := enc(dec(twice))
	if !bytes.Equal(twice, thrice) {
		t.Fatalf("round trips keep changing the %T:\n%s\n%s", out, twice, thrice)
	}
}

// FuzzDecodeOrderResponse fuzzes the body of Create Order and Get Order.
func FuzzDecodeOrderResponse(f *testing.F) {
	f.Add([]byte(`{"api_version":"3.8.0","data":{"kind":"order","order":{"order_reference":"1","order_external_reference":"r","order_created":"2026-05-12T14:00:00Z","order_bookings":[]}}}`))
	f.Add([]byte(`<html>502</html>`))
	f.Add([]byte(`{"data":{"order":`))
	f.Fuzz(fuzzDecode[generated.OrderDetailResponse])
}

// FuzzDecodeOrderListResponse fuzzes the body of List Orders: the look-up
// that decides whether Create Order re-sends.
func FuzzDecodeOrderListResponse(f *testing.F) {
	f.Add([]byte(`{"api_version":"3.8.0","data":{"kind":"order","current_item_count":0,"items_per_page":50,"start_index":1,"total_items":0,"page_index":1,"total_pages":0,"items":[]}}`))
	f.Add([]byte(`{"data":{"items":[{"order_external_reference":"r","order_created":"2026-05-12T14:00:00+02:00"}]}}`))
	f.Fuzz(fuzzDecode[generated.OrderListResponse])
}

// FuzzDecodeReservationResponse fuzzes the body of the reservation calls.
func FuzzDecodeReservationResponse(f *testing.F) {
	f.Add([]byte(`{"api_version":"3.8.0","data":{"kind":"reservation","reservation":{"reservation_reference":"R1","reservation_valid_until":"2026-05-12T14:15:00+02:00"}}}`))
	f.Add([]byte(`{"data":{"reservation":{"reservation_details":[{"booking_reservation_valid_until":"2026-05-12T14:15:00.123Z"}]}}}`))
	f.Fuzz(fuzzDecode[generated.ReservationDetailResponse])
}

// hugeBody streams size bytes: prefix, then 'x' for the rest. It never
// holds the body; served counts what was read from it.
type hugeBody struct {
	prefix []byte
	size   int64
	off    int64
	served *atomic.Int64
}

func (h *hugeBody) Read(p []byte) (int, error) {
	if h.off >= h.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), h.size-h.off))
	for i := range n {
		if pos := h.off + int64(i); pos < int64(len(h.prefix)) {
			p[i] = h.prefix[pos]
		} else {
			p[i] = 'x'
		}
	}
	h.off += int64(n)
	h.served.Add(int64(n))
	return n, nil
}

// hugeServer answers the token request, then every other request with
// status and a body of size bytes that starts with prefix.
func hugeServer(t *testing.T, status int, contentType string, prefix string, size int64) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var served atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/oauth2/token") {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"access_token":"huge-body-token","token_type":"Bearer","expires_in":3600}`)
			return
		}
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		_, _ = io.Copy(w, &hugeBody{prefix: []byte(prefix), size: size, served: &served}) // fails once the client hangs up
	}))
	t.Cleanup(s.Close)
	return s, &served
}

// TestHugeBodiesBoundedMemory: a 100 MB answer, as a misbehaving proxy or
// server could send, gives a typed error and costs a bounded amount of
// memory, whether it is an error answer or a 2xx. The body is generated
// on the fly and never held whole by the test.
//
// Not parallel: the memory figures are process-wide, so nothing else may
// run meanwhile (parallel tests wait until every sequential test is done).
func TestHugeBodiesBoundedMemory(t *testing.T) {
	const size = 100 << 20
	// The SDK refuses success bodies past 8 MiB (maxResponseBody) and reads
	// 64 KiB of an error body; 80 MiB leaves room for buffers around that
	// and is still well under the body itself.
	const bound = 80 << 20
	cases := []struct {
		name        string
		status      int
		contentType string
		prefix      string
		check       func(t *testing.T, err error)
	}{
		{"500 HTML page", http.StatusInternalServerError, "text/html", "<html><body>", func(t *testing.T, err error) {
			var ae *APIError
			require.ErrorAs(t, err, &ae)
			assert.Equal(t, http.StatusInternalServerError, ae.StatusCode)
			assert.True(t, ae.BodyTruncated)
			assert.ErrorIs(t, err, ErrServer)
		}},
		{"400 JSON error model", http.StatusBadRequest, "application/json", `{"error":"INVALID_REQUEST","error_description":"`, func(t *testing.T, err error) {
			var ae *APIError
			require.ErrorAs(t, err, &ae)
			assert.True(t, ae.BodyTruncated)
			assert.ErrorIs(t, err, ErrInvalidRequest)
		}},
		{"200 order", http.StatusOK, "application/json", `{"api_version":"3.8.0","data":{"kind":"order","order":{"order_reference":"`, func(t *testing.T, err error) {
			assert.ErrorIs(t, err, ErrResponseTooLarge)
		}},
		{"200 HTML page", http.StatusOK, "text/html", "<html>", func(t *testing.T, err error) {
			// Either is right: refused for its size before parsing, or
			// refused as soon as the parser sees it is not JSON.
			if !errors.Is(err, ErrMalformedResponse) && !errors.Is(err, ErrResponseTooLarge) {
				t.Errorf("error %v is neither ErrMalformedResponse nor ErrResponseTooLarge", err)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, served := hugeServer(t, c.status, c.contentType, c.prefix, size)
			p := DefaultRetryPolicy()
			p.MaxSends = 1
			client, err := NewClient(WithBaseURL(s.URL+"/v3.8/distributor"), WithCredentials("id", "secret"),
				WithDistributorID("501"), WithRetryPolicy(p))
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()

			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err = client.Orders.Get(ctx, "5120260301417")
			runtime.ReadMemStats(&after)

			require.Error(t, err)
			c.check(t, err)
			allocated := after.TotalAlloc - before.TotalAlloc
			t.Logf("%s: %d MiB allocated for a %d MiB body (%d MiB served before the client stopped reading)",
				c.name, allocated>>20, size>>20, served.Load()>>20)
			assert.Less(t, allocated, uint64(bound), "allocated for one refused answer")
			assert.Less(t, int64(after.HeapInuse)-int64(before.HeapInuse), int64(bound), "heap grown by one refused answer")
			s.CloseClientConnections()
		})
	}
}
