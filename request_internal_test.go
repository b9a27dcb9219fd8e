package prio

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/priosdk/prio-go/generated"
)

// newJSONPost stands in for the generated builder on Create Order's path;
// whatever the base URL, it must build the request the builder builds.
func TestNewJSONPostMatchesTheGeneratedBuilder(t *testing.T) {
	t.Parallel()
	body := []byte(`{"data":{"kind":"order","order":{"order_external_reference":"r-1"}}}`)
	for _, base := range []string{
		Sandbox.BaseURL(),
		Production.BaseURL(),
		"https://proxy.example:8443/prio/v3.8/distributor/",
		"http://127.0.0.1:41234/v3.8/distributor",
		"https://proxy.example/a%20b/v3.8/distributor",
	} {
		t.Run(base, func(t *testing.T) {
			t.Parallel()
			c, err := NewClient(WithBaseURL(base), WithCredentials("id", "s"), WithDistributorID("501"))
			require.NoError(t, err)
			want, err := generated.NewCreateOrderRequestWithBody(c.raw.Server, "application/json", bytes.NewReader(body))
			require.NoError(t, err)
			ctx := context.WithValue(context.Background(), markerKey{}, "marker")
			got := newJSONPost(ctx, c.orders, body)

			assert.Equal(t, want.Method, got.Method)
			assert.Equal(t, want.URL.String(), got.URL.String())
			assert.Equal(t, *want.URL, *got.URL, "the URL's parts, raw path included")
			assert.Equal(t, want.Host, got.Host)
			assert.Equal(t, [3]any{want.Proto, want.ProtoMajor, want.ProtoMinor}, [3]any{got.Proto, got.ProtoMajor, got.ProtoMinor})
			assert.Equal(t, want.Header, got.Header)
			assert.Equal(t, want.ContentLength, got.ContentLength)
			assert.Equal(t, readAll(t, want.Body), readAll(t, got.Body))
			require.NotNil(t, got.GetBody)
			again, err := got.GetBody()
			require.NoError(t, err)
			assert.Equal(t, body, readAll(t, again), "GetBody starts over")
			assert.Equal(t, "marker", got.Context().Value(markerKey{}), "the request carries the caller's context")

			got.URL.Path += "/changed"
			assert.NotEqual(t, got.URL.Path, c.orders.Path, "each request has its own URL")
		})
	}
}

type markerKey struct{}

func readAll(t *testing.T, r io.ReadCloser) []byte {
	t.Helper()
	require.NotNil(t, r)
	defer r.Close()
	b, err := io.ReadAll(r)
	require.NoError(t, err)
	return b
}

// Create Order's request carries the same headers whichever builder made
// it: the application headers, Accept and the key, and nothing lost.
func TestCreateRequestHeaders(t *testing.T) {
	t.Parallel()
	var seen http.Header
	c, err := NewClient(WithBaseURL("http://127.0.0.1:1/v3.8/distributor"), WithCredentials("id", "s"),
		WithDistributorID("501"), WithAppHeader("App-Name", "tester"), WithHTTPClient(&http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if r.URL.Path == "/v3.8/distributor/orders" && r.Method == http.MethodPost && seen == nil {
				seen = r.Header.Clone()
			}
			return &http.Response{StatusCode: http.StatusBadRequest, Header: http.Header{"Content-Type": {"application/json"}},
				Body: io.NopCloser(strings.NewReader(`{"error":"INVALID_REQUEST"}`)), Request: r}, nil
		})}))
	require.NoError(t, err)
	c.auth.tokens.last.Store(&oauth2.Token{AccessToken: "tok", Expiry: time.Now().Add(time.Hour)})
	_, err = c.Orders.Create(context.Background(), &OrderRequest{OrderExternalReference: "r-h",
		OrderBookings: []BookingOption{{ProductId: Ptr("1")}}}, WithHeader("X-Extra", "1"))
	require.Error(t, err)
	require.NotNil(t, seen, "the request reached the transport")
	assert.Equal(t, "application/json", seen.Get("Content-Type"))
	assert.Equal(t, "application/json", seen.Get("Accept"))
	assert.Equal(t, "Bearer tok", seen.Get("Authorization"))
	assert.Equal(t, DeriveKey("501", "createOrder", "r-h"), seen.Get(keyHeader))
	assert.Equal(t, "1", seen.Get("X-Extra"))
	assert.Equal(t, "1", seen.Get(attemptHeader))
	assert.Equal(t, "tester", seen.Get("App-Name"))
	assert.Equal(t, seen.Get(keyHeader), seen.Get(referenceHeader))
}
