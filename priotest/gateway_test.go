package priotest

import (
	"encoding/json"
	"mime"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestGatewayFaults sends a Create Order through each gateway fault over
// TCP: the client gets the gateway's HTML page early, the key stays in
// flight while the origin works, and the order exists once the origin is
// done, when a repeat gets the stored answer.
func TestGatewayFaults(t *testing.T) {
	t.Parallel()
	const gatewayDelay, originDelay = 50 * time.Millisecond, time.Second
	tests := []struct {
		kind   FaultKind
		status int
		page   string // a fragment of the HTML page
		server string // who wrote it
	}{
		{FaultGateway502, http.StatusBadGateway, "<title>502 Bad Gateway</title>", "nginx"},
		{FaultGateway503, http.StatusServiceUnavailable, "<title>503 Service Temporarily Unavailable</title>", "nginx"},
		{FaultGateway504, http.StatusGatewayTimeout, "<title>504 Gateway Time-out</title>", "nginx"},
		{FaultGateway524, 524, "A timeout occurred", "Cloudflare"},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind), func(t *testing.T) {
			t.Parallel()
			p := Sequence("createOrder", tt.kind)
			p.GatewayDelay, p.OriginDelay = gatewayDelay, originDelay
			s := NewServer(t, WithFaults(p), WithIdempotency(IdempotencyHeader))
			a := newAPI(t, s).login()
			ext := "gw-" + string(tt.kind)
			body := orderBody(ext, ticket{product: ProductOpen, adults: 1})

			start := time.Now()
			r := a.do(http.MethodPost, "/orders", body, "Idempotency-Key", ext)
			elapsed := time.Since(start)
			assert.Equal(t, tt.status, r.status)
			mt, _, err := mime.ParseMediaType(r.header.Get("Content-Type"))
			require.NoError(t, err)
			assert.Equal(t, "text/html", mt)
			assert.Contains(t, string(r.body), tt.page)
			assert.Contains(t, string(r.body), tt.server)
			assert.False(t, json.Valid(r.body), "no Prio error body")
			assert.GreaterOrEqual(t, elapsed, gatewayDelay, "the gateway waits before giving up")
			assert.Less(t, elapsed, originDelay, "the client hears before the origin is done")

			recs := s.Requests()
			last := recs[len(recs)-1]
			assert.Equal(t, tt.status, last.Status)
			assert.Equal(t, tt.kind, last.Fault)
			assert.Equal(t, 1, s.Stats().FaultsInjected)

			busy := a.do(http.MethodPost, "/orders", body, "Idempotency-Key", ext)
			assert.Equal(t, http.StatusConflict, busy.status, "%s", busy.body)
			assert.Equal(t, codeIdempotencyInUse, busy.errorCode(t))
			if time.Since(start) < originDelay {
				assert.Zero(t, s.OrdersFor(ext), "the origin has not committed yet")
			}

			deadline := time.Now().Add(10 * time.Second)
			for s.OrdersFor(ext) == 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			require.Equal(t, 1, s.OrdersFor(ext), "the origin commits in the background")
			assert.GreaterOrEqual(t, time.Since(start), originDelay)

			var replay reply
			for time.Now().Before(deadline) {
				if replay = a.do(http.MethodPost, "/orders", body, "Idempotency-Key", ext); replay.status != http.StatusConflict {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			require.Equal(t, http.StatusCreated, replay.status, "%s", replay.body)
			assert.Equal(t, "true", replay.header.Get("Idempotent-Replayed"))
			assert.Equal(t, ext, dig(t, replay.json(t), "data", "order", "order_external_reference"))
			assert.Equal(t, 1, s.OrdersFor(ext), "the repeat did not book again")
		})
	}
}

// TestGatewayFaultTiming checks the delays exactly on synctest's clock, on
// an operation other than Create Order, with the default delays.
func TestGatewayFaultTiming(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		s, err := NewUnstarted(WithFaults(Sequence("cancelOrder", FaultGateway504)))
		require.NoError(t, err)
		defer s.Close()
		a := pipeAPI(t, s).login()
		created := a.do(http.MethodPost, "/orders", orderBody("gw-cancel", ticket{product: ProductOpen, adults: 1}))
		require.Equal(t, http.StatusCreated, created.status, "%s", created.body)
		ref := dig(t, created.json(t), "data", "order", "order_reference").(string)
		status := func() string {
			r := a.do(http.MethodGet, "/orders/"+ref+"?cache=false", nil)
			require.Equal(t, http.StatusOK, r.status, "%s", r.body)
			return dig(t, r.json(t), "data", "order", "order_status").(string)
		}

		start := time.Now()
		r := a.do(http.MethodDelete, "/orders/"+ref, nil)
		assert.Equal(t, http.StatusGatewayTimeout, r.status)
		assert.Equal(t, defaultGatewayDelay, time.Since(start))
		assert.Equal(t, "ORDER_CONFIRMED", status())

		time.Sleep(defaultOriginDelay - defaultGatewayDelay - time.Millisecond)
		assert.Equal(t, "ORDER_CONFIRMED", status(), "just before the origin is done")
		time.Sleep(time.Millisecond)
		synctest.Wait()
		assert.Equal(t, "ORDER_CANCELLED", status(), "the origin cancelled it")
	})
}

// TestGatewayOriginEndsOnClose: closing the server cancels an origin still
// at work and waits for it (goleak in TestMain checks nothing is left).
func TestGatewayOriginEndsOnClose(t *testing.T) {
	t.Parallel()
	p := Sequence("createOrder", FaultGateway502)
	p.GatewayDelay, p.OriginDelay = 10*time.Millisecond, time.Hour
	s, err := Start("", WithFaults(p))
	require.NoError(t, err)
	t.Cleanup(s.Close)
	a := newAPI(t, s).login()
	r := a.do(http.MethodPost, "/orders", orderBody("gw-close", ticket{product: ProductOpen, adults: 1}), "Idempotency-Key", "gw-close")
	require.Equal(t, http.StatusBadGateway, r.status)
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited for the origin's hour")
	}
	assert.Zero(t, s.OrdersFor("gw-close"), "the cancelled origin committed nothing")
}

func TestGatewayProfile(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		doc string
		ok  bool
	}{
		{`{"gateway_delay":"50ms","origin_delay":"300ms"}`, true},
		{`{"origin_delay":"2s"}`, true},
		{`{"gateway_delay":"1s"}`, false}, // the default origin delay, 500ms, is shorter
		{`{"gateway_delay":"300ms","origin_delay":"300ms"}`, false},
		{`{"gateway_delay":"-1s"}`, false},
		{`{"origin_delay":"later"}`, false},
		{`{"sequences":{"*":["gateway_524"]}}`, true},
	} {
		_, err := ParseProfile(tc.doc)
		if tc.ok {
			assert.NoError(t, err, tc.doc)
		} else {
			assert.Error(t, err, tc.doc)
		}
	}
	p := Profile{GatewayDelay: 75 * time.Millisecond, OriginDelay: 1500 * time.Millisecond}
	b, err := json.Marshal(p)
	require.NoError(t, err)
	assert.JSONEq(t, `{"gateway_delay":"75ms","origin_delay":"1.5s"}`, string(b))
	var back Profile
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, p, back)
	assert.Equal(t, Profile{Name: "a+b", GatewayDelay: time.Second, OriginDelay: 3 * time.Second},
		Profile{Name: "a", GatewayDelay: time.Second}.With(Profile{Name: "b", OriginDelay: 3 * time.Second}))

	_, err = Start("", WithFaults(Profile{GatewayDelay: time.Second, OriginDelay: time.Second}))
	assert.Error(t, err, "the server refuses an origin no slower than its gateway")
}
