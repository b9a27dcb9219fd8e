package prio

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeWire is an in-memory transport standing in for the network: it
// records every request it receives (method, headers, body bytes, time)
// and answers with answer(n, req), n counting from 1.
type fakeWire struct {
	answer func(n int, req *http.Request) (*http.Response, error)

	mu   sync.Mutex
	seen []wireRequest
}

type wireRequest struct {
	method string
	url    string
	header http.Header
	body   []byte
	at     time.Time
}

func (f *fakeWire) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body.Close()
	}
	f.mu.Lock()
	f.seen = append(f.seen, wireRequest{req.Method, req.URL.String(), req.Header.Clone(), body, time.Now()})
	n := len(f.seen)
	f.mu.Unlock()
	return f.answer(n, req)
}

func (f *fakeWire) requests() []wireRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]wireRequest(nil), f.seen...)
}

func (f *fakeWire) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.seen)
}

// wireReply builds a response to req; hdr holds header name/value pairs.
func wireReply(req *http.Request, status int, body string, hdr ...string) *http.Response {
	h := http.Header{"Content-Type": {"application/json"}}
	for i := 0; i+1 < len(hdr); i += 2 {
		h.Set(hdr[i], hdr[i+1])
	}
	return &http.Response{
		StatusCode:    status,
		Status:        fmt.Sprintf("%d %s", status, http.StatusText(status)),
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       req,
	}
}

// always answers every send the same way.
func always(status int, hdr ...string) func(int, *http.Request) (*http.Response, error) {
	return func(_ int, req *http.Request) (*http.Response, error) {
		return wireReply(req, status, `{"error":"X","error_reference":"ref-`+strconv.Itoa(status)+`"}`, hdr...), nil
	}
}

// testPolicy is the default policy without the client-wide limits, which
// have tests of their own.
func testPolicy() RetryPolicy {
	p := DefaultRetryPolicy()
	p.RequestsPerMinute = 0
	p.ClientErrorLimit = 0
	return p
}

func doerOver(rt http.RoundTripper, p RetryPolicy) *doer {
	return newDoer(countSends(rt), p, nil, redactor{})
}

const testOrdersURL = "https://prio.test/v3.8/distributor/orders"

// newCall builds a request as the service layer would: a call state in the
// context, the key (if any) in Idempotency-Key.
func newCall(ctx context.Context, t testing.TB, method, key, body string, cs *callState) *http.Request {
	t.Helper()
	if cs == nil {
		cs = &callState{operation: "testOp"}
	}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(withCallState(ctx, cs), method, testOrdersURL, rd)
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set(keyHeader, key)
	}
	return req
}

func bodyString(t testing.TB, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	return string(b)
}

func TestDefaultRetryPolicy(t *testing.T) {
	t.Parallel()
	p := DefaultRetryPolicy()
	assert.Equal(t, RetryPolicy{
		MaxSends:              4,
		BookingAttemptTimeout: 60 * time.Second,
		AttemptTimeout:        30 * time.Second,
		BaseDelay:             250 * time.Millisecond,
		MaxDelay:              20 * time.Second,
		MaxRetryAfter:         60 * time.Second,
		RateLimitedDelay:      60 * time.Second,
		BudgetRatio:           0.1,
		BudgetBurst:           10,
		BudgetPerSecond:       1,
		ClientErrorLimit:      50,
		RequestsPerMinute:     1000,
		ProcessingHorizon:     90 * time.Second,
	}, p)
	require.NoError(t, p.validate())

	bad := map[string]func(*RetryPolicy){
		"no sends":         func(p *RetryPolicy) { p.MaxSends = 0 },
		"negative timeout": func(p *RetryPolicy) { p.AttemptTimeout = -time.Second },
		"negative delay":   func(p *RetryPolicy) { p.BaseDelay = -1 },
		"negative horizon": func(p *RetryPolicy) { p.ProcessingHorizon = -time.Second },
		"NaN ratio":        func(p *RetryPolicy) { p.BudgetRatio = math.NaN() },
		"negative burst":   func(p *RetryPolicy) { p.BudgetBurst = -1 },
		"negative floor":   func(p *RetryPolicy) { p.BudgetPerSecond = -1 },
		"NaN floor":        func(p *RetryPolicy) { p.BudgetPerSecond = math.NaN() },
		"infinite floor":   func(p *RetryPolicy) { p.BudgetPerSecond = math.Inf(1) },
		"negative limit":   func(p *RetryPolicy) { p.ClientErrorLimit = -1 },
		"negative rate":    func(p *RetryPolicy) { p.RequestsPerMinute = -5 },
	}
	for name, mod := range bad {
		q := DefaultRetryPolicy()
		mod(&q)
		assert.Error(t, q.validate(), name)
	}
}

// outcome is what the fake network does with every send of one row.
type outcome struct {
	name      string
	answer    func(n int, req *http.Request, cancel context.CancelFunc) (*http.Response, error)
	retryable bool // worth another send
	doubt     bool // the request may have been acted on
	unsent    bool // proven never sent: not counted in Sends
	isErr     bool // the call ends in an error, not a response
}

func statusOutcome(status int, retryable, doubt bool, hdr ...string) outcome {
	return outcome{
		name: strconv.Itoa(status),
		answer: func(_ int, req *http.Request, _ context.CancelFunc) (*http.Response, error) {
			return wireReply(req, status, `{"error":"E","error_reference":"r"}`, hdr...), nil
		},
		retryable: retryable, doubt: doubt,
	}
}

func errOutcome(name string, err error, retryable, doubt, unsent bool) outcome {
	return outcome{
		name:      name,
		answer:    func(int, *http.Request, context.CancelFunc) (*http.Response, error) { return nil, err },
		retryable: retryable, doubt: doubt, unsent: unsent, isErr: true,
	}
}

// truncatedBody yields some bytes, then an unexpected EOF.
type truncatedBody struct{ done bool }

func (b *truncatedBody) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.ErrUnexpectedEOF
	}
	b.done = true
	return copy(p, `{"order":`), nil
}
func (b *truncatedBody) Close() error { return nil }

func classificationOutcomes() []outcome {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	reset := &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	outs := []outcome{
		statusOutcome(200, false, false),
		statusOutcome(201, false, false),
		statusOutcome(400, false, false),
		statusOutcome(401, false, false),
		statusOutcome(403, false, false),
		statusOutcome(404, false, false),
		statusOutcome(409, false, false),
		statusOutcome(422, false, false),
		statusOutcome(501, false, false),
		statusOutcome(505, false, false),
		statusOutcome(408, true, false),
		statusOutcome(429, true, false, "Retry-After", "1"),
		statusOutcome(500, true, true),
		statusOutcome(502, true, true),
		statusOutcome(503, true, true),
		statusOutcome(504, true, true),
		errOutcome("connection refused", refused, true, false, true),
		errOutcome("temporary DNS failure", &net.OpError{Op: "dial", Err: &net.DNSError{Err: "server misbehaving", IsTemporary: true}}, true, false, true),
		errOutcome("no such host", &net.OpError{Op: "dial", Err: &net.DNSError{Err: "no such host", IsNotFound: true}}, false, false, true),
		errOutcome("connection reset", reset, true, true, false),
		errOutcome("unexpected EOF", io.ErrUnexpectedEOF, true, true, false),
		errOutcome("EOF", fmt.Errorf("net/http: Transport failed to read from server: %w", io.EOF), true, true, false),
		errOutcome("certificate", &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}, false, false, true),
		errOutcome("TLS record", tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, false, false, true),
		errOutcome("unrecognised", errors.New("something odd"), false, true, false),
		{
			name: "send timeout",
			answer: func(_ int, req *http.Request, _ context.CancelFunc) (*http.Response, error) {
				<-req.Context().Done()
				return nil, req.Context().Err()
			},
			retryable: true, doubt: true, isErr: true,
		},
		{
			name: "truncated body",
			answer: func(_ int, req *http.Request, _ context.CancelFunc) (*http.Response, error) {
				r := wireReply(req, 201, "")
				r.Body, r.ContentLength = &truncatedBody{}, 100
				return r, nil
			},
			retryable: true, doubt: true, isErr: true,
		},
		{
			name: "redirect to another host",
			answer: func(_ int, req *http.Request, _ context.CancelFunc) (*http.Response, error) {
				return wireReply(req, http.StatusTemporaryRedirect, "", "Location", "https://elsewhere.test/steal"), nil
			},
			isErr: true,
		},
		{
			name: "caller cancels",
			answer: func(_ int, req *http.Request, cancel context.CancelFunc) (*http.Response, error) {
				cancel()
				return nil, req.Context().Err()
			},
			doubt: true, isErr: true,
		},
	}
	return outs
}

// TestRetryClassification runs every outcome against every kind of
// request and checks how many sends the loop makes and what it returns.
func TestRetryClassification(t *testing.T) {
	t.Parallel()
	type mode struct {
		name        string
		method, key string
		stopOnDoubt bool
	}
	modes := []mode{
		{"GET", http.MethodGet, "", false},
		{"PUT", http.MethodPut, "", false},
		{"POST without key", http.MethodPost, "", false},
		{"POST with key", http.MethodPost, "k-1", false},
		{"POST with key, stop on doubt", http.MethodPost, "k-1", true},
	}
	for _, o := range classificationOutcomes() {
		for _, m := range modes {
			t.Run(o.name+"/"+m.name, func(t *testing.T) {
				t.Parallel()
				synctest.Test(t, func(t *testing.T) {
					ctx, cancel := context.WithCancel(t.Context())
					defer cancel()
					wire := &fakeWire{answer: func(n int, req *http.Request) (*http.Response, error) {
						return o.answer(n, req, cancel)
					}}
					d := doerOver(wire, testPolicy())
					cs := &callState{operation: "op", booking: m.stopOnDoubt, stopOnDoubt: m.stopOnDoubt}
					body := ""
					if m.method != http.MethodGet {
						body = `{"a":1}`
					}
					resp, err := d.Do(newCall(ctx, t, m.method, m.key, body, cs))

					want := 1
					retried := o.retryable && methodRetryable(m.method, m.key != "") && !(m.stopOnDoubt && o.doubt)
					if retried {
						want = 4
					}
					assert.Equal(t, want, wire.count(), "sends reaching the network")
					info := cs.snapshot()
					if o.unsent {
						assert.Zero(t, info.Sends, "proven-unsent requests are not sends")
					} else {
						assert.Equal(t, want, info.Sends, "CallInfo.Sends")
					}
					assert.Equal(t, m.key, info.IdempotencyKey)
					if !o.isErr {
						require.NoError(t, err)
						require.NotNil(t, resp)
						assert.Equal(t, info.LastStatus, resp.StatusCode)
						assert.NotEmpty(t, bodyString(t, resp), "the last answer keeps its body")
						return
					}
					assert.Nil(t, resp, "never both a response and an error")
					var te *TransportError
					require.ErrorAs(t, err, &te)
					assert.Equal(t, o.doubt && !o.unsent, te.InDoubt, "InDoubt")
					assert.Equal(t, info, te.Info)
				})
			})
		}
	}
}

// TestBodyAndKeyIdenticalOnEverySend checks what reaches the network on
// each send: the same body bytes and key, and App-Attempt counting up.
func TestBodyAndKeyIdenticalOnEverySend(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		wire := &fakeWire{answer: func(n int, req *http.Request) (*http.Response, error) {
			switch n {
			case 1:
				return wireReply(req, 503, `{}`), nil
			case 2:
				return nil, &net.OpError{Op: "read", Err: syscall.ECONNRESET}
			case 3:
				return wireReply(req, 502, `{}`), nil
			}
			return wireReply(req, 201, `{"ok":true}`), nil
		}}
		d := doerOver(wire, testPolicy())
		const body = `{"data":{"order_external_reference":"ext-1","amount":"12.50"}}`
		key := DeriveKey("501", "createOrder", "ext-1")
		req := newCall(t.Context(), t, http.MethodPost, key, body, nil)
		resp, err := d.Do(req)
		require.NoError(t, err)
		assert.Equal(t, `{"ok":true}`, bodyString(t, resp))

		seen := wire.requests()
		require.Len(t, seen, 4)
		for i, s := range seen {
			assert.Equal(t, []byte(body), s.body, "send %d body", i+1)
			assert.Equal(t, key, s.header.Get(keyHeader), "send %d key", i+1)
			assert.Equal(t, key, s.header.Get(referenceHeader), "send %d App-Reference", i+1)
			assert.Equal(t, strconv.Itoa(i+1), s.header.Get(attemptHeader), "send %d App-Attempt", i+1)
			assert.Equal(t, "application/json", s.header.Get("Content-Type"))
		}
		assert.Empty(t, req.Header.Get(attemptHeader), "the caller's request is not modified")
		info, ok := ResponseCallInfo(resp)
		require.True(t, ok)
		assert.Equal(t, 4, info.Sends)
		assert.Equal(t, 201, info.LastStatus)
		assert.Empty(t, info.ErrorReference, "a success clears the error reference")
	})
}

func TestBackoffFullJitter(t *testing.T) {
	t.Parallel()
	p := DefaultRetryPolicy()
	for n := range 12 {
		ceil := min(p.MaxDelay, p.BaseDelay<<n)
		lo, hi := time.Duration(math.MaxInt64), time.Duration(0)
		for range 2000 {
			w := p.backoff(n)
			require.GreaterOrEqual(t, w, time.Duration(0))
			require.Less(t, w, ceil, "retry %d", n)
			lo, hi = min(lo, w), max(hi, w)
		}
		// Full jitter spreads waits over the whole range.
		assert.Less(t, lo, ceil/10, "retry %d: smallest wait", n)
		assert.Greater(t, hi, ceil*9/10, "retry %d: largest wait", n)
	}
	assert.Zero(t, RetryPolicy{}.backoff(3), "zero delays mean no wait")
	huge := RetryPolicy{BaseDelay: time.Hour, MaxDelay: math.MaxInt64}
	assert.GreaterOrEqual(t, huge.backoff(200), time.Duration(0), "no overflow")
}

// TestBackoffBetweenSends measures the waits the loop really makes.
func TestBackoffBetweenSends(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p := testPolicy()
		p.MaxSends = 6
		wire := &fakeWire{answer: always(503)}
		d := doerOver(wire, p)
		resp, err := d.Do(newCall(t.Context(), t, http.MethodGet, "", "", nil))
		require.NoError(t, err)
		bodyString(t, resp)
		seen := wire.requests()
		require.Len(t, seen, 6)
		for i := 1; i < len(seen); i++ {
			gap := seen[i].at.Sub(seen[i-1].at)
			assert.Less(t, gap, p.BaseDelay<<(i-1), "wait before send %d", i+1)
		}
	})
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	date := func(d time.Duration) string { return time.Now().Add(d).UTC().Format(http.TimeFormat) }
	cases := []struct {
		name     string
		status   int
		header   func() string // "" means no Retry-After
		wantGap  time.Duration // wait before the second send
		retried  bool
		asked    time.Duration // for a refused ask
		wantSent int
	}{
		{name: "seconds under the cap", status: 429, header: func() string { return "7" }, wantGap: 7 * time.Second, retried: true},
		{name: "date under the cap", status: 429, header: func() string { return date(30 * time.Second) }, wantGap: 30 * time.Second, retried: true},
		{name: "seconds at the cap", status: 503, header: func() string { return "60" }, wantGap: 60 * time.Second, retried: true},
		{name: "date in the past", status: 503, header: func() string { return date(-time.Hour) }, retried: true},
		{name: "seconds over the cap", status: 429, header: func() string { return "120" }, asked: 120 * time.Second},
		{name: "date over the cap", status: 503, header: func() string { return date(10 * time.Minute) }, asked: 10 * time.Minute},
		{name: "429 without Retry-After waits a minute", status: 429, header: func() string { return "" }, wantGap: time.Minute, retried: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				wire := &fakeWire{answer: func(n int, req *http.Request) (*http.Response, error) {
					if n > 1 {
						return wireReply(req, 200, `{}`), nil
					}
					var hdr []string
					if v := c.header(); v != "" {
						hdr = []string{"Retry-After", v}
					}
					return wireReply(req, c.status, `{"error":"LIMIT","error_reference":"abc"}`, hdr...), nil
				}}
				d := doerOver(wire, testPolicy())
				start := time.Now()
				resp, err := d.Do(newCall(t.Context(), t, http.MethodPost, "key-1", `{}`, nil))
				require.NoError(t, err)
				bodyString(t, resp)
				seen := wire.requests()
				if !c.retried {
					assert.Len(t, seen, 1, "an ask over the cap stops retrying")
					assert.Equal(t, c.status, resp.StatusCode, "the last answer is returned")
					assert.Zero(t, time.Since(start), "and at once")
					apiErr := newAPIError(resp, "createOrder")
					assert.Equal(t, c.asked, apiErr.RetryAfter, "the typed error carries the asked delay")
					if c.status == 429 {
						assert.ErrorIs(t, apiErr, ErrRateLimited)
					} else {
						assert.ErrorIs(t, apiErr, ErrServer)
					}
					return
				}
				require.Len(t, seen, 2)
				gap := seen[1].at.Sub(seen[0].at)
				if c.wantGap > 0 {
					assert.Equal(t, c.wantGap, gap)
				} else {
					assert.Less(t, gap, testPolicy().BaseDelay, "a past date waits only the backoff")
				}
			})
		})
	}
}

func TestRetryAfterCapConfigurable(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p := testPolicy()
		p.MaxRetryAfter = 5 * time.Minute
		wire := &fakeWire{answer: func(n int, req *http.Request) (*http.Response, error) {
			if n == 1 {
				return wireReply(req, 429, `{}`, "Retry-After", "120"), nil
			}
			return wireReply(req, 200, `{}`), nil
		}}
		resp, err := doerOver(wire, p).Do(newCall(t.Context(), t, http.MethodGet, "", "", nil))
		require.NoError(t, err)
		bodyString(t, resp)
		seen := wire.requests()
		require.Len(t, seen, 2)
		assert.Equal(t, 120*time.Second, seen[1].at.Sub(seen[0].at))
	})
}

// TestDeadlineSkip checks that a retry whose wait cannot end before the
// caller's deadline is not started: the last answer comes back at once.
func TestDeadlineSkip(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		deadline time.Duration
		hdr      []string
		status   int
		sends    int
	}{
		{"Retry-After past the deadline", 10 * time.Second, []string{"Retry-After", "30"}, 503, 1},
		{"429 minute past the deadline", 30 * time.Second, nil, 429, 1},
		{"Retry-After within the deadline", 2 * time.Minute, []string{"Retry-After", "30"}, 503, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(t.Context(), c.deadline)
				defer cancel()
				wire := &fakeWire{answer: func(n int, req *http.Request) (*http.Response, error) {
					if n > 1 {
						return wireReply(req, 200, `{}`), nil
					}
					return wireReply(req, c.status, `{}`, c.hdr...), nil
				}}
				start := time.Now()
				resp, err := doerOver(wire, testPolicy()).Do(newCall(ctx, t, http.MethodGet, "", "", nil))
				require.NoError(t, err)
				bodyString(t, resp)
				assert.Equal(t, c.sends, wire.count())
				if c.sends == 1 {
					assert.Equal(t, c.status, resp.StatusCode)
					assert.Zero(t, time.Since(start), "returned without waiting")
				}
			})
		})
	}
}

// TestWaitEndsWithContext checks that a backoff wait ends the moment the
// caller's context does.
func TestWaitEndsWithContext(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(5*time.Second, cancel)
		wire := &fakeWire{answer: always(429)} // no Retry-After: a minute's wait
		cs := &callState{operation: "op"}
		start := time.Now()
		resp, err := doerOver(wire, testPolicy()).Do(newCall(ctx, t, http.MethodPost, "k", `{}`, cs))
		assert.Nil(t, resp)
		var te *TransportError
		require.ErrorAs(t, err, &te)
		assert.ErrorIs(t, err, context.Canceled)
		assert.Equal(t, 5*time.Second, time.Since(start))
		assert.Equal(t, 1, te.Info.Sends)
		assert.Equal(t, 429, te.Info.LastStatus)
		assert.Equal(t, "ref-429", te.Info.ErrorReference)
		assert.Equal(t, "k", te.Info.IdempotencyKey)
		assert.Equal(t, 5*time.Second, te.Info.Elapsed)
		assert.False(t, te.InDoubt, "a 429 was not acted on")
		assert.Contains(t, err.Error(), "[key k]")
	})
}

// hang never answers; the send ends when its context does.
func hang(_ int, req *http.Request) (*http.Response, error) {
	<-req.Context().Done()
	return nil, req.Context().Err()
}

func TestAttemptTimeout(t *testing.T) {
	t.Parallel()
	t.Run("reads", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			wire := &fakeWire{answer: hang}
			p := testPolicy()
			p.BaseDelay, p.MaxDelay = 0, 0
			start := time.Now()
			resp, err := doerOver(wire, p).Do(newCall(t.Context(), t, http.MethodGet, "", "", nil))
			assert.Nil(t, resp)
			var te *TransportError
			require.ErrorAs(t, err, &te)
			assert.ErrorIs(t, err, errAttemptTimeout)
			assert.NotErrorIs(t, err, context.DeadlineExceeded, "reserved for the caller's deadline")
			assert.Equal(t, 4, wire.count())
			assert.Equal(t, 4*p.AttemptTimeout, time.Since(start), "each send had 30 s")
			assert.True(t, te.InDoubt)
		})
	})
	t.Run("booking, stop on doubt", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			wire := &fakeWire{answer: hang}
			cs := &callState{operation: "createOrder", booking: true, stopOnDoubt: true}
			start := time.Now()
			_, err := doerOver(wire, testPolicy()).Do(newCall(t.Context(), t, http.MethodPost, "k", `{}`, cs))
			var te *TransportError
			require.ErrorAs(t, err, &te)
			assert.Equal(t, 1, wire.count(), "a written booking that timed out is not re-sent blindly")
			assert.Equal(t, 60*time.Second, time.Since(start), "bookings get Prio's 60 s")
			assert.True(t, te.InDoubt)
		})
	})
	t.Run("caller deadline first", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 45*time.Second)
			defer cancel()
			wire := &fakeWire{answer: hang}
			cs := &callState{operation: "createOrder", booking: true}
			start := time.Now()
			_, err := doerOver(wire, testPolicy()).Do(newCall(ctx, t, http.MethodPost, "k", `{}`, cs))
			assert.ErrorIs(t, err, context.DeadlineExceeded)
			assert.NotErrorIs(t, err, errAttemptTimeout)
			assert.Equal(t, 1, wire.count())
			assert.Equal(t, 45*time.Second, time.Since(start))
		})
	})
	t.Run("caller deadline after the send's timeout", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 100*time.Second)
			defer cancel()
			wire := &fakeWire{answer: hang}
			cs := &callState{operation: "createOrder", booking: true, stopOnDoubt: true}
			start := time.Now()
			_, err := doerOver(wire, testPolicy()).Do(newCall(ctx, t, http.MethodPost, "k", `{}`, cs))
			assert.ErrorIs(t, err, errAttemptTimeout, "the send's own 60 s ended it")
			assert.NotErrorIs(t, err, context.DeadlineExceeded)
			assert.Equal(t, 1, wire.count())
			assert.Equal(t, 60*time.Second, time.Since(start))
		})
	})
	t.Run("per-call policy", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			wire := &fakeWire{answer: hang}
			p := testPolicy()
			p.MaxSends, p.AttemptTimeout = 2, 3*time.Second
			p.BaseDelay, p.MaxDelay = 0, 0
			cs := &callState{operation: "getOrder", policy: &p}
			start := time.Now()
			_, err := doerOver(wire, testPolicy()).Do(newCall(t.Context(), t, http.MethodGet, "", "", cs))
			require.Error(t, err)
			assert.Equal(t, 2, wire.count())
			assert.Equal(t, 6*time.Second, time.Since(start))
		})
	})
}

// TestRetryBudgetOutage runs 1,000 calls against a server that only
// answers 503 and checks the client-wide budget keeps total sends within
// 1.1 x first sends + 10 + 1 a second (outageBound).
func TestRetryBudgetOutage(t *testing.T) {
	t.Parallel()
	const calls, workers = 1000, 16
	// outageBound is the budget's promise for a run that began at start
	// (in its bubble): the floor's one saved-up token, then one a second.
	outageBound := func(start time.Time) float64 {
		return 1.1*calls + 10 + 1 + time.Since(start).Seconds()
	}
	run := func(t *testing.T, p RetryPolicy, answer func(int, *http.Request) (*http.Response, error)) (sends int, errs []error) {
		wire := &fakeWire{answer: answer}
		d := doerOver(wire, p)
		var (
			mu   sync.Mutex
			wg   sync.WaitGroup
			jobs = make(chan int)
		)
		for range workers {
			wg.Go(func() {
				for range jobs {
					resp, err := d.Do(newCall(t.Context(), t, http.MethodPost, NewRandomKey(), `{}`, nil))
					if resp != nil {
						discardBody(resp.Body)
					}
					if err != nil {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
					}
				}
			})
		}
		for i := range calls {
			jobs <- i
		}
		close(jobs)
		wg.Wait()
		return wire.count(), errs
	}
	t.Run("503 only", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			start := time.Now()
			sends, errs := run(t, testPolicy(), always(503))
			assert.Empty(t, errs)
			bound := outageBound(start)
			t.Logf("outage: %d calls, %d first sends, %d sends in total (bound %.0f, %.3f sends per call)",
				calls, calls, sends, bound, float64(sends)/calls)
			assert.LessOrEqual(t, float64(sends), bound)
			assert.Greater(t, sends, calls+10, "the budget still lets some retries through")
		})
	})
	t.Run("resets only", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			start := time.Now()
			sends, errs := run(t, testPolicy(), func(int, *http.Request) (*http.Response, error) {
				return nil, &net.OpError{Op: "read", Err: syscall.ECONNRESET}
			})
			assert.LessOrEqual(t, float64(sends), outageBound(start))
			require.Len(t, errs, calls)
			budget := 0
			for _, err := range errs {
				if errors.Is(err, ErrRetryBudgetExhausted) {
					budget++
				}
				assert.ErrorIs(t, err, syscall.ECONNRESET)
			}
			t.Logf("resets: %d sends, %d calls stopped by the budget", sends, budget)
			assert.Greater(t, budget, calls/2, "most calls were stopped by the budget")
		})
	})
	t.Run("budget off", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			p := testPolicy()
			p.BudgetRatio = -1
			sends, _ := run(t, p, always(503))
			assert.Equal(t, 4*calls, sends, "without the budget every call makes all its sends")
		})
	})
}

func TestRetryBudgetRefills(t *testing.T) {
	t.Parallel()
	b := newRetryBudget(0.5, 2, 0)
	assert.True(t, b.withdraw())
	assert.True(t, b.withdraw())
	assert.False(t, b.withdraw(), "empty after the burst")
	b.deposit()
	assert.False(t, b.withdraw(), "half a token is not enough")
	b.deposit()
	assert.True(t, b.withdraw(), "two first sends buy one retry")
	for range 100 {
		b.deposit()
	}
	assert.True(t, b.withdraw())
	assert.True(t, b.withdraw())
	assert.False(t, b.withdraw(), "never more than the burst")
	assert.Nil(t, newRetryBudget(-1, 10, 1), "a negative ratio turns the budget off")
	var off *retryBudget
	assert.True(t, off.withdraw())
}

// TestRetryBudgetFloor: an empty budget still allows perSecond retries a
// second, whatever the traffic, and saves up no more than one of them.
func TestRetryBudgetFloor(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		b := newRetryBudget(0.1, 1, 0.5)
		assert.True(t, b.withdraw(), "the burst")
		assert.True(t, b.withdraw(), "the floor's first token")
		assert.False(t, b.withdraw(), "both spent")
		time.Sleep(time.Second)
		assert.False(t, b.withdraw(), "half a second's worth at 0.5 a second")
		time.Sleep(time.Second)
		assert.True(t, b.withdraw(), "one retry every two seconds")
		assert.False(t, b.withdraw())
		time.Sleep(time.Minute)
		assert.True(t, b.withdraw(), "a quiet minute buys one retry")
		assert.False(t, b.withdraw(), "not thirty")
		assert.InDelta(t, 0, b.level(), 0.001, "the level is the bucket's: empty")
	})
}

// TestRetryBudgetRecoversWithoutTraffic: a client whose budget an outage
// emptied retries again after a while, though it has made few calls since.
// With a budget fed by first sends alone, a client making a call now and
// then would go without retries for ten calls per lost token.
func TestRetryBudgetRecoversWithoutTraffic(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var outage atomic.Bool
		outage.Store(true)
		var n atomic.Int64
		d := doerOver(&fakeWire{answer: func(_ int, req *http.Request) (*http.Response, error) {
			// After the outage every call's first send fails, its retry
			// succeeds.
			if outage.Load() || n.Add(1)%2 == 1 {
				return nil, &net.OpError{Op: "read", Err: syscall.ECONNRESET}
			}
			return wireReply(req, 200, `{}`), nil
		}}, testPolicy())
		for range 40 {
			_, err := d.Do(newCall(t.Context(), t, http.MethodGet, "", "", nil))
			require.ErrorIs(t, err, syscall.ECONNRESET)
		}
		_, err := d.Do(newCall(t.Context(), t, http.MethodGet, "", "", nil))
		require.ErrorIs(t, err, ErrRetryBudgetExhausted, "the outage emptied the budget")
		outage.Store(false)
		time.Sleep(10 * time.Second)
		for i := range 3 {
			resp, err := d.Do(newCall(t.Context(), t, http.MethodGet, "", "", nil))
			require.NoError(t, err, "call %d after the outage: its one retry is allowed", i)
			resp.Body.Close()
			time.Sleep(time.Second)
		}
	})
}

// TestClientErrorGuard checks the 4XX guard: at 50 4XX answers within a
// sliding minute the client refuses to send, until the window allows.
func TestClientErrorGuard(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p := testPolicy()
		p.ClientErrorLimit = 50
		wire := &fakeWire{answer: always(404)}
		d := doerOver(wire, p)
		get := func() (*http.Response, error) {
			resp, err := d.Do(newCall(t.Context(), t, http.MethodGet, "", "", nil))
			if resp != nil {
				discardBody(resp.Body)
			}
			return resp, err
		}
		for range 25 {
			_, err := get()
			require.NoError(t, err)
		}
		time.Sleep(30 * time.Second)
		for range 25 {
			_, err := get()
			require.NoError(t, err)
		}
		require.Equal(t, 50, wire.count())

		resp, err := get()
		assert.Nil(t, resp)
		var local *LocalLimitError
		require.ErrorAs(t, err, &local)
		assert.ErrorIs(t, err, ErrRateLimited)
		assert.Equal(t, 30*time.Second, local.RetryAfter, "until the oldest 4XX leaves the window")
		assert.Zero(t, local.Info.Sends)
		assert.Equal(t, 50, wire.count(), "nothing sent while the guard is closed")

		time.Sleep(local.RetryAfter)
		for range 25 {
			_, err := get()
			require.NoError(t, err, "the first 25 left the window")
		}
		_, err = get()
		require.ErrorAs(t, err, &local)
		assert.Equal(t, 75, wire.count())
	})
}

func TestClientErrorGuardCountsRetried4XX(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p := testPolicy()
		p.ClientErrorLimit = 3
		wire := &fakeWire{answer: always(429, "Retry-After", "1")}
		cs := &callState{operation: "op"}
		_, err := doerOver(wire, p).Do(newCall(t.Context(), t, http.MethodGet, "", "", cs))
		var local *LocalLimitError
		require.ErrorAs(t, err, &local, "the guard stops a 429 retry loop too")
		assert.Equal(t, 3, wire.count())
		assert.Equal(t, 3, local.Info.Sends)
		assert.Equal(t, 429, local.Info.LastStatus)
	})
}

// TestRequestLimiter checks that no rolling minute sees more sends than
// RequestsPerMinute, and that a wait past the deadline is refused.
func TestRequestLimiter(t *testing.T) {
	t.Parallel()
	t.Run("rolling minute", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			p := testPolicy()
			p.RequestsPerMinute = 60
			wire := &fakeWire{answer: always(200)}
			d := doerOver(wire, p)
			start := time.Now()
			for range 150 {
				resp, err := d.Do(newCall(t.Context(), t, http.MethodGet, "", "", nil))
				require.NoError(t, err)
				discardBody(resp.Body)
			}
			seen := wire.requests()
			most := 0
			for i := range seen {
				n := 0
				for j := i; j < len(seen) && seen[j].at.Sub(seen[i].at) < time.Minute; j++ {
					n++
				}
				most = max(most, n)
			}
			t.Logf("150 sends at 60/min took %s; busiest minute %d sends", time.Since(start), most)
			assert.LessOrEqual(t, most, 60)
			assert.Greater(t, time.Since(start), 2*time.Minute, "the limiter made the calls wait")
		})
	})
	t.Run("refused past the deadline", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			p := testPolicy()
			p.RequestsPerMinute = 60
			wire := &fakeWire{answer: always(200)}
			d := doerOver(wire, p)
			for range 6 { // the burst
				resp, err := d.Do(newCall(t.Context(), t, http.MethodGet, "", "", nil))
				require.NoError(t, err)
				discardBody(resp.Body)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
			defer cancel()
			resp, err := d.Do(newCall(ctx, t, http.MethodGet, "", "", nil))
			assert.Nil(t, resp)
			var local *LocalLimitError
			require.ErrorAs(t, err, &local)
			assert.ErrorIs(t, err, ErrRateLimited)
			assert.Greater(t, local.RetryAfter, 100*time.Millisecond)
			assert.Equal(t, 6, wire.count())
		})
	})
	t.Run("off", func(t *testing.T) {
		t.Parallel()
		assert.Nil(t, newRequestLimiter(0))
	})
}

func TestTransportErrorMessage(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		wire := &fakeWire{answer: func(n int, req *http.Request) (*http.Response, error) {
			if n == 1 {
				return wireReply(req, 503, `{"error":"UNAVAILABLE","error_reference":"ERR-77"}`), nil
			}
			return nil, &net.OpError{Op: "read", Err: syscall.ECONNRESET}
		}}
		cs := &callState{operation: "createOrder"}
		_, err := doerOver(wire, testPolicy()).Do(newCall(t.Context(), t, http.MethodPost, "key-9", `{}`, cs))
		var te *TransportError
		require.ErrorAs(t, err, &te)
		msg := err.Error()
		for _, want := range []string{"createOrder", "POST " + testOrdersURL, "connection reset", "[sends 4]", "[key key-9]", "[last status 503]", "[error_reference ERR-77]", "[in doubt"} {
			assert.Contains(t, msg, want)
		}
		assert.Equal(t, "ERR-77", te.Info.ErrorReference, "the last error answer's reference is kept")
	})
}

func TestRawCallGetsCallState(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		wire := &fakeWire{answer: always(404)}
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, testOrdersURL, bytes.NewReader([]byte(`{}`)))
		require.NoError(t, err)
		req.Header.Set(keyHeader, "raw-key")
		resp, err := doerOver(wire, testPolicy()).Do(req)
		require.NoError(t, err)
		info, ok := ResponseCallInfo(resp)
		require.True(t, ok)
		assert.Equal(t, CallInfo{IdempotencyKey: "raw-key", Sends: 1, LastStatus: 404, ErrorReference: "ref-404"}, info)
		assert.Equal(t, "raw-key", wire.requests()[0].header.Get(referenceHeader), "App-Reference defaults to the key")
		assert.Contains(t, bodyString(t, resp), "ref-404", "the error body is still readable")
		_, ok = ResponseCallInfo(&http.Response{})
		assert.False(t, ok)
	})
}

// BenchmarkDoerSuccess is one successful POST through the doer over an
// in-memory transport; BenchmarkRawSuccess is the same request sent by a
// bare http.Client, for comparison.
func BenchmarkDoerSuccess(b *testing.B) {
	wire := benchWire{}
	d := doerOver(wire, testPolicy()) // the limiter would pace the loop
	body := []byte(`{"data":{"order_external_reference":"ext-1"}}`)
	b.ReportAllocs()
	for b.Loop() {
		req, _ := http.NewRequestWithContext(withCallState(b.Context(), &callState{operation: "createOrder", booking: true}),
			http.MethodPost, testOrdersURL, bytes.NewReader(body))
		req.Header.Set(keyHeader, "bench-key")
		resp, err := d.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

func BenchmarkRawSuccess(b *testing.B) {
	hc := &http.Client{Transport: benchWire{}}
	body := []byte(`{"data":{"order_external_reference":"ext-1"}}`)
	b.ReportAllocs()
	for b.Loop() {
		req, _ := http.NewRequestWithContext(b.Context(), http.MethodPost, testOrdersURL, bytes.NewReader(body))
		req.Header.Set(keyHeader, "bench-key")
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

type benchWire struct{}

func (benchWire) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
		req.Body.Close()
	}
	return wireReply(req, 201, `{"data":{"order":{"order_reference":"ORD1"}}}`), nil
}

func TestErrorReference(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		`{"error":"INVALID_REQUEST","error_reference":"REF-1"}`: "REF-1",
		`  {"error_reference":"REF-2","errors":["a"]}`:          "REF-2",
		`{"error":"X"}`: "",
		`<html><body>502 Bad Gateway</body></html>`: "",
		`{"error_reference":"REF-3"`:                "",
		``:                                          "",
		`{"error_reference":42}`:                    "",
	}
	for in, want := range cases {
		assert.Equal(t, want, errorReference([]byte(in)), in)
	}
	long := `{"error_reference":"REF-4","pad":"` + strings.Repeat("x", errorRefBodyCap) + `"}`
	assert.Empty(t, errorReference([]byte(long)), "bodies past the cap are not parsed")
}

func FuzzErrorReference(f *testing.F) {
	f.Add([]byte(`{"error_reference":"R"}`))
	f.Add([]byte(`<html>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = errorReference(b)
	})
}

// TestOwnedRequestHeaders: a request the service layer hands over keeps
// its header map for the first send, and every re-send still writes its
// own copy, so a send's headers never change under net/http.
func TestOwnedRequestHeaders(t *testing.T) {
	t.Parallel()
	var maps []http.Header
	var mu sync.Mutex
	wire := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		mu.Lock()
		maps = append(maps, req.Header)
		n := len(maps)
		mu.Unlock()
		if n == 1 {
			return wireReply(req, 503, `{}`), nil
		}
		return wireReply(req, 201, `{}`), nil
	})
	p := testPolicy()
	p.BaseDelay, p.MaxDelay = 0, 0
	d := doerOver(wire, p)
	cs := &callState{operation: "createOrder", ownsRequest: true}
	req := newCall(t.Context(), t, http.MethodPost, "k-owned", `{}`, cs)
	resp, err := d.Do(req)
	require.NoError(t, err)
	bodyString(t, resp)
	require.Len(t, maps, 2)
	assert.Equal(t, "1", maps[0].Get(attemptHeader), "the first send's headers, unchanged by the re-send")
	assert.Equal(t, "2", maps[1].Get(attemptHeader))
	assert.Equal(t, "1", req.Header.Get(attemptHeader), "the first send wrote into the handed-over map")
}
