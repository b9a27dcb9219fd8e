package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/priosdk/prio-go/priotest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func post(t *testing.T, url, auth, body string, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", auth)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func TestServeWithFlags(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var logs syncBuffer
	ready := make(chan *priotest.Server, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, []string{
			"-addr", "127.0.0.1:0", "-idempotency", "none", "-seed", "7",
			"-faults", `{"sequences":{"getProducts":["html"]}}`,
			"-client-id", "me", "-client-secret", "pw", "-distributor-id", "777",
		}, &logs, func(s *priotest.Server) { ready <- s })
	}()
	s := <-ready
	assert.Contains(t, logs.String(), "url="+s.URL())
	assert.True(t, strings.HasSuffix(s.URL(), "/v3.8/distributor"))

	status, body := post(t, s.URL()+"/oauth2/token", "Basic bWU6cHc=", `{"grant_type":"client_credentials"}`)
	require.Equal(t, http.StatusOK, status, body)
	token := body[strings.Index(body, `"access_token":"`)+len(`"access_token":"`):]
	token = token[:strings.Index(token, `"`)]

	order := `{"data":{"order":{"order_distributor_id":"777","order_external_reference":"cli-1","order_language":"en",` +
		`"order_bookings":[{"booking_option_type":"DIRECT_BOOKING","product_id":"30001","product_type_details":[{"product_type_id":"101","product_type_count":1}]}]}}}`
	for range 2 {
		status, body = post(t, s.URL()+"/orders", "Bearer "+token, order, "Idempotency-Key", "cli-key")
		require.Equal(t, http.StatusCreated, status, body)
	}
	assert.Equal(t, 2, s.OrdersFor("cli-1"), "-idempotency none books twice")
	assert.Equal(t, 1, s.Stats().DuplicateExternalReferences)

	req, err := http.NewRequest(http.MethodGet, s.URL()+"/products", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadGateway, resp.StatusCode, "-faults took the profile document")

	cancel()
	require.NoError(t, <-done)
	assert.Contains(t, logs.String(), "prio-sandbox stopping")
}

func TestBadArguments(t *testing.T) {
	for _, args := range [][]string{
		{"-idempotency", "maybe"},
		{"-faults", "chaos"},
		{"-token-ttl", "0s"},
		{"-cache-lag", "-1s"},
		{"-gateway-delay", "1s"},                        // longer than the default origin delay
		{"-gateway-delay", "1s", "-origin-delay", "1s"}, // the origin must be slower
		{"-origin-delay", "-1s"},
		{"-addr", "127.0.0.1:0", "extra"},
		{"-no-such-flag"},
	} {
		err := run(t.Context(), args, io.Discard)
		assert.Error(t, err, "%v", args)
	}
	assert.True(t, errors.Is(run(t.Context(), []string{"-h"}, io.Discard), flag.ErrHelp))
}

func get(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// TestCacheAndGatewayFlags: -cache-lag hides a new order from cached
// reads, -gateway-delay and -origin-delay time a gateway fault of the
// profile, and -token-ttl takes less than a second.
func TestCacheAndGatewayFlags(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ready := make(chan *priotest.Server, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, []string{
			"-addr", "127.0.0.1:0", "-cache-lag", "1h", "-token-ttl", "900ms",
			"-faults", `{"sequences":{"createOrder":["gateway_504"]}}`,
			"-gateway-delay", "10ms", "-origin-delay", "200ms",
		}, io.Discard, func(s *priotest.Server) { ready <- s })
	}()
	s := <-ready
	assert.Equal(t, 10*time.Millisecond, s.Faults().GatewayDelay)
	assert.Equal(t, 200*time.Millisecond, s.Faults().OriginDelay)

	status, body := post(t, s.URL()+"/oauth2/token", "Basic c2FuZGJveC1jbGllbnQ6c2FuZGJveC1zZWNyZXQ=", `{"grant_type":"client_credentials"}`)
	require.Equal(t, http.StatusOK, status, body)
	assert.Contains(t, body, `"expires_in":1`)
	token := body[strings.Index(body, `"access_token":"`)+len(`"access_token":"`):]
	token = token[:strings.Index(token, `"`)]

	order := `{"data":{"order":{"order_distributor_id":"501","order_external_reference":"cli-gw","order_language":"en",` +
		`"order_bookings":[{"booking_option_type":"DIRECT_BOOKING","product_id":"30001","product_type_details":[{"product_type_id":"101","product_type_count":1}]}]}}}`
	status, body = post(t, s.URL()+"/orders", "Bearer "+token, order)
	assert.Equal(t, http.StatusGatewayTimeout, status)
	assert.Contains(t, body, "504 Gateway Time-out")
	deadline := time.Now().Add(10 * time.Second)
	for s.OrdersFor("cli-gw") == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	require.Equal(t, 1, s.OrdersFor("cli-gw"), "the origin booked it")

	status, body = get(t, s.URL()+"/orders?order_external_reference=cli-gw", token)
	require.Equal(t, http.StatusOK, status, body)
	assert.Contains(t, body, `"total_items":0`, "the cache is an hour behind")
	status, body = get(t, s.URL()+"/orders?order_external_reference=cli-gw&cache=false", token)
	require.Equal(t, http.StatusOK, status, body)
	assert.Contains(t, body, `"total_items":1`)
	assert.Equal(t, 1, s.Stats().CachedReads)
	assert.Equal(t, 1, s.Stats().UncachedReads)

	cancel()
	require.NoError(t, <-done)
}
