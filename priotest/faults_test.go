package priotest

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFaultsOverTCP sends one Create Order through each fault on a real
// connection, checks what the client sees and whether the order was made,
// then retries with the same key: the client always ends with exactly one
// order.
func TestFaultsOverTCP(t *testing.T) {
	t.Parallel()
	type outcome struct {
		resp    *http.Response
		err     error // from the round trip
		body    []byte
		bodyErr error // from reading the body
	}
	tests := []struct {
		kind      FaultKind
		processed bool
		check     func(t *testing.T, o outcome)
	}{
		{FaultNone, true, func(t *testing.T, o outcome) {
			require.NoError(t, o.err)
			assert.Equal(t, http.StatusCreated, o.resp.StatusCode)
		}},
		{FaultDelay, true, func(t *testing.T, o outcome) {
			require.NoError(t, o.err)
			assert.Equal(t, http.StatusCreated, o.resp.StatusCode)
		}},
		{Fault5xxBefore, false, func(t *testing.T, o outcome) {
			require.NoError(t, o.err)
			assert.Equal(t, http.StatusServiceUnavailable, o.resp.StatusCode)
			assert.Contains(t, string(o.body), `"error":"SERVICE_UNAVAILABLE"`)
		}},
		{Fault5xxAfter, true, func(t *testing.T, o outcome) {
			require.NoError(t, o.err)
			assert.Equal(t, http.StatusInternalServerError, o.resp.StatusCode)
			assert.Contains(t, string(o.body), `"error":"INTERNAL_SERVER_ERROR"`)
		}},
		{FaultDropAfter, true, func(t *testing.T, o outcome) {
			require.Error(t, o.err, "no response at all")
		}},
		{FaultResetMidBody, true, func(t *testing.T, o outcome) {
			require.NoError(t, o.err, "status and headers arrive")
			assert.Equal(t, http.StatusCreated, o.resp.StatusCode)
			require.Error(t, o.bodyErr, "the body is cut")
			assert.Less(t, int64(len(o.body)), o.resp.ContentLength)
		}},
		{Fault429, false, func(t *testing.T, o outcome) {
			require.NoError(t, o.err)
			assert.Equal(t, http.StatusTooManyRequests, o.resp.StatusCode)
			assert.Equal(t, "3", o.resp.Header.Get("Retry-After"))
		}},
		{Fault429NoRetryAfter, false, func(t *testing.T, o outcome) {
			require.NoError(t, o.err)
			assert.Equal(t, http.StatusTooManyRequests, o.resp.StatusCode)
			assert.Empty(t, o.resp.Header.Values("Retry-After"))
		}},
		{FaultMalformedJSON, true, func(t *testing.T, o outcome) {
			require.NoError(t, o.err)
			require.NoError(t, o.bodyErr)
			assert.Equal(t, http.StatusCreated, o.resp.StatusCode)
			assert.Equal(t, "application/json", o.resp.Header.Get("Content-Type"))
			assert.False(t, json.Valid(o.body), "%s", o.body)
		}},
		{FaultTruncatedJSON, true, func(t *testing.T, o outcome) {
			require.NoError(t, o.err)
			require.NoError(t, o.bodyErr, "the transfer itself is complete")
			assert.Equal(t, http.StatusCreated, o.resp.StatusCode)
			assert.Equal(t, o.resp.ContentLength, int64(len(o.body)))
			assert.False(t, json.Valid(o.body), "%s", o.body)
			assert.True(t, strings.HasPrefix(string(o.body), `{"api_version":"3.8.0"`))
		}},
		{FaultHTML, false, func(t *testing.T, o outcome) {
			require.NoError(t, o.err)
			assert.Equal(t, http.StatusBadGateway, o.resp.StatusCode)
			assert.Equal(t, "text/html", o.resp.Header.Get("Content-Type"))
			assert.Contains(t, string(o.body), "<title>502 Bad Gateway</title>")
		}},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind), func(t *testing.T) {
			t.Parallel()
			p := Sequence("createOrder", tt.kind)
			p.Delay, p.RetryAfter = 10*time.Millisecond, 2500*time.Millisecond
			s := NewServer(t, WithFaults(p))
			a := newAPI(t, s).login()
			ext := "fault-" + string(tt.kind)
			body := orderBody(ext, ticket{product: ProductOpen, adults: 1})

			// A fresh connection: net/http would quietly resend a keyed
			// request that died on a reused one.
			tr := &http.Transport{DisableKeepAlives: true}
			defer tr.CloseIdleConnections()
			var o outcome
			o.resp, o.err = (&http.Client{Transport: tr}).Do(a.request(http.MethodPost, "/orders", body, "Idempotency-Key", ext))
			if o.err == nil {
				o.body, o.bodyErr = io.ReadAll(o.resp.Body)
				o.resp.Body.Close()
			}
			tt.check(t, o)

			want := 0
			if tt.processed {
				want = 1
			}
			assert.Equal(t, want, s.OrdersFor(ext), "processed before the fault")
			recs := s.Requests()
			last := recs[len(recs)-1]
			assert.Equal(t, "createOrder", last.Operation)
			if tt.kind == FaultNone {
				assert.Empty(t, last.Fault)
				assert.Zero(t, s.Stats().FaultsInjected)
			} else {
				assert.Equal(t, tt.kind, last.Fault)
				assert.Equal(t, 1, s.Stats().FaultsInjected)
			}

			retry := a.do(http.MethodPost, "/orders", body, "Idempotency-Key", ext)
			require.Equal(t, http.StatusCreated, retry.status, "%s", retry.body)
			assert.Equal(t, 1, s.OrdersFor(ext), "the retry never books twice")
			replayed := retry.header.Get("Idempotent-Replayed") == "true"
			assert.Equal(t, tt.processed, replayed, "a processed call is answered from the key")
		})
	}
}

func TestFaultDelayAndHang(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p := Sequence("getProducts", FaultDelay, FaultHang)
		p.Delay = 7 * time.Second
		s, err := NewUnstarted(WithFaults(p))
		require.NoError(t, err)
		defer s.Close()
		a := pipeAPI(t, s).login()

		start := time.Now()
		assert.Equal(t, http.StatusOK, a.do(http.MethodGet, "/products", nil).status)
		assert.Equal(t, 7*time.Second, time.Since(start))

		client := *a.hc
		client.Timeout = 90 * time.Second
		start = time.Now()
		_, err = client.Do(a.request(http.MethodGet, "/products", nil))
		require.Error(t, err, "a hang only ends when the client gives up")
		assert.Equal(t, 90*time.Second, time.Since(start))
		assert.Equal(t, http.StatusOK, a.do(http.MethodGet, "/products", nil).status, "the sequence is over")
	})
}

func TestHangEndsOnClose(t *testing.T) {
	t.Parallel()
	s := NewServer(t, WithFaults(Sequence("getProducts", FaultHang)))
	a := newAPI(t, s).login()
	var wg sync.WaitGroup
	var err error
	wg.Go(func() {
		var resp *http.Response
		resp, err = a.hc.Do(a.request(http.MethodGet, "/products", nil))
		if err == nil {
			resp.Body.Close()
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().FaultsInjected == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	require.Equal(t, 1, s.Stats().FaultsInjected, "the request reached the hang")
	s.Close()
	wg.Wait()
	assert.Error(t, err, "closing the server ends the hang without an answer")
}

func TestSequences(t *testing.T) {
	t.Parallel()
	p := Sequence("createOrder", Fault5xxBefore, FaultNone, Fault429NoRetryAfter).
		With(Sequence("getOrders", FaultHTML))
	s := NewServer(t, WithFaults(p), WithIdempotency(IdempotencyNone))
	a := newAPI(t, s).login()
	var got []int
	for range 5 {
		got = append(got, a.do(http.MethodPost, "/orders", orderBody("seq", ticket{product: ProductOpen, adults: 1})).status)
	}
	assert.Equal(t, []int{503, 201, 429, 201, 201}, got)
	assert.Equal(t, http.StatusBadGateway, a.do(http.MethodGet, "/orders", nil).status)
	assert.Equal(t, http.StatusOK, a.do(http.MethodGet, "/orders", nil).status)

	s.SetFaults(Sequence("*", FaultNone, Fault5xxBefore))
	assert.Equal(t, http.StatusOK, a.do(http.MethodGet, "/products", nil).status)
	assert.Equal(t, http.StatusServiceUnavailable, a.do(http.MethodGet, "/orders", nil).status, "\"*\" counts every operation")
	assert.Equal(t, http.StatusOK, a.do(http.MethodGet, "/orders", nil).status)
}

func TestProbabilities(t *testing.T) {
	t.Parallel()
	statuses := func(seed int64) []int {
		p := Profile{Seed: seed, Probabilities: map[string]map[FaultKind]float64{
			"*":           {Fault5xxBefore: 1},
			"getToken":    {Fault5xxBefore: 0},
			"getProducts": {Fault5xxBefore: 0.25},
		}}
		s := NewServer(t, WithFaults(p), WithClientErrorLimit(0))
		a := newAPI(t, s).login()
		assert.Equal(t, http.StatusServiceUnavailable, a.do(http.MethodGet, "/orders", nil).status, "\"*\" applies where nothing overrides it")
		var out []int
		for range 400 {
			out = append(out, a.do(http.MethodGet, "/products", nil).status)
		}
		return out
	}
	first := statuses(42)
	failed := 0
	for _, st := range first {
		if st == http.StatusServiceUnavailable {
			failed++
		} else {
			require.Equal(t, http.StatusOK, st)
		}
	}
	assert.InDelta(t, 100, failed, 40, "about a quarter of 400 calls")
	assert.Equal(t, first, statuses(42), "the same seed draws the same faults")
	assert.NotEqual(t, first, statuses(43), "another seed draws others")
}

func TestNamedProfiles(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		min, max float64
	}{{"none", 0, 0}, {"flaky", 0.05, 0.25}, {"hostile", 0.30, 0.90}} {
		p, err := ProfileByName(tc.name)
		require.NoError(t, err)
		require.NoError(t, p.validate())
		assert.Equal(t, tc.name, p.Name)
		sum := 0.0
		for _, v := range p.Probabilities["*"] {
			sum += v
		}
		assert.GreaterOrEqual(t, sum, tc.min, tc.name)
		assert.LessOrEqual(t, sum, tc.max, tc.name)
		if tc.name != "none" {
			for _, k := range faultKinds {
				assert.Positive(t, p.Probabilities["*"][k], "%s has some %s", tc.name, k)
			}
		}
	}
	_, err := ProfileByName("chaos")
	assert.Error(t, err)
}

func TestProfileJSON(t *testing.T) {
	t.Parallel()
	p := Profile{
		Name: "mine", Seed: 9, Delay: 1500 * time.Millisecond, RetryAfter: 2 * time.Second,
		Probabilities: map[string]map[FaultKind]float64{"*": {Fault5xxAfter: 0.1}},
		Sequences:     map[string][]FaultKind{"createOrder": {FaultDropAfter, FaultNone}},
	}
	b, err := json.Marshal(p)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"delay":"1.5s"`)
	var back Profile
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, p, back)

	byName, err := ParseProfile(`"flaky"`)
	require.NoError(t, err)
	assert.Equal(t, "flaky", byName.Name)

	for _, bad := range []string{
		`{"probabilities":{"*":{"meteor":0.1}}}`,
		`{"probabilities":{"*":{"5xx_after":1.5}}}`,
		`{"probabilities":{"*":{"5xx_after":0.6,"drop_after":0.6}}}`,
		`{"sequences":{"createOrder":["meteor"]}}`,
		`{"delay":"soon"}`,
		`"chaos"`,
	} {
		_, err := ParseProfile(bad)
		assert.Error(t, err, bad)
	}
	assert.Error(t, startWithBadProfile(t), "an invalid profile option fails the server")
}

// startWithBadProfile tries to start a server with an invalid profile.
func startWithBadProfile(t *testing.T) error {
	t.Helper()
	s, err := Start("", WithFaults(Profile{Probabilities: map[string]map[FaultKind]float64{"*": {FaultNone: 1}}}))
	if err == nil {
		s.Close()
	}
	return err
}

func TestNamedProfilesGateway(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name          string
		p             float64
		origin, total time.Duration
		sum           float64
	}{
		{"flaky", 0.005, 300 * time.Millisecond, 200 * time.Millisecond, 0.205},
		{"hostile", 0.02, 800 * time.Millisecond, time.Second, 0.70},
	} {
		p, err := ProfileByName(tc.name)
		require.NoError(t, err)
		for _, k := range gatewayKinds {
			assert.Equal(t, tc.p, p.Probabilities["*"][k], "%s %s", tc.name, k)
		}
		assert.Equal(t, 50*time.Millisecond, p.GatewayDelay, tc.name)
		assert.Equal(t, tc.origin, p.OriginDelay, tc.name)
		assert.Equal(t, tc.total, p.Delay, "%s keeps its slow-processing delay", tc.name)
		sum := 0.0
		for _, v := range p.Probabilities["*"] {
			sum += v
		}
		assert.InDelta(t, tc.sum, sum, 1e-9, tc.name)
		assert.LessOrEqual(t, sum, 1.0)
	}
}

// TestNewKindsKeepOldDraws: the gateway kinds come last, so a seed that
// drew an older fault still draws it with the gateway kinds added.
func TestNewKindsKeepOldDraws(t *testing.T) {
	t.Parallel()
	old := map[FaultKind]float64{Fault5xxBefore: 0.3, FaultHTML: 0.3}
	withGateway := map[FaultKind]float64{Fault5xxBefore: 0.3, FaultHTML: 0.3, FaultGateway502: 0.2, FaultGateway524: 0.2}
	a := newInjector(Profile{Seed: 5, Probabilities: map[string]map[FaultKind]float64{"*": old}}, 1)
	b := newInjector(Profile{Seed: 5, Probabilities: map[string]map[FaultKind]float64{"*": withGateway}}, 1)
	gateway := 0
	for range 1000 {
		ka, _ := a.pick("createOrder")
		kb, _ := b.pick("createOrder")
		if ka != FaultNone {
			assert.Equal(t, ka, kb)
		} else if kb != FaultNone {
			gateway++
		}
	}
	assert.InDelta(t, 400, gateway, 80, "the gateway kinds take what drew no fault")
}
