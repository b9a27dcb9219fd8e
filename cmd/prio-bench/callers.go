package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-retryablehttp"

	prio "github.com/priosdk/prio-go"
	"github.com/priosdk/prio-go/generated"
	"github.com/priosdk/prio-go/priotest"
)

// creator makes one logical Create Order call: the order with external
// reference ref, booked and decoded into the generated response type.
type creator interface {
	create(ctx context.Context, ref string) error
}

// The clients compared, as named in the report.
const (
	nameSDK      = "prio-go"
	nameBaseline = "baseline net/http"
	// nameBaselineTwin is a second baseline client, -aa's second client.
	nameBaselineTwin = "baseline net/http (2nd)"
	nameRetryable    = "go-retryablehttp"
	nameNaive        = "naive 3-retry loop"
)

// refSeq numbers external references: every Create of the process books a
// new order, so no call is answered from the server's idempotency store.
var refSeq atomic.Int64

func nextRef(prefix string) string {
	return fmt.Sprintf("%s-%09d", prefix, refSeq.Add(1))
}

// newOrder is the order every client books: one adult on the open ticket.
func newOrder(ref string) *prio.OrderRequest {
	return &prio.OrderRequest{
		OrderExternalReference: ref,
		OrderBookings: []prio.BookingOption{{
			ProductId:          prio.Ptr(priotest.ProductOpen),
			ProductTypeDetails: &[]prio.ProductTypeDetail{{ProductTypeId: priotest.ProductTypeAdult, ProductTypeCount: 1}},
		}},
	}
}

// orderBody encodes the same bytes the SDK sends for ref: the request with
// the defaults Orders.Create fills in (distributor id, language, booking
// option type), in the generated envelope. A test checks the equality.
func orderBody(ref string) ([]byte, error) {
	req := newOrder(ref)
	req.OrderDistributorId = priotest.DefaultDistributorID
	req.OrderLanguage = "en"
	for i := range req.OrderBookings {
		req.OrderBookings[i].BookingOptionType = prio.DirectBooking
	}
	kind := generated.KindOrder
	return json.Marshal(generated.CreateOrderRequest{Data: generated.CreateOrderRequestData{Kind: &kind, Order: *req}})
}

// newServer starts an in-process sandbox with Prio's request limit off, so
// that the server never answers 429 to a benchmark.
func newServer(extra ...priotest.Option) (*priotest.Server, error) {
	opts := append([]priotest.Option{priotest.WithRequestLimit(0)}, extra...)
	return priotest.Start("", opts...)
}

// sdkPolicy is the default policy with the client-side rate limiter off:
// 1,000 requests a minute would measure the limiter, not the SDK.
func sdkPolicy() prio.RetryPolicy {
	p := prio.DefaultRetryPolicy()
	p.RequestsPerMinute = 0
	return p
}

// sdkCreator books through the full SDK.
type sdkCreator struct{ c *prio.Client }

func newSDKCreator(s sandbox, concurrency int, extra ...prio.Option) (*sdkCreator, error) {
	c, err := prio.NewClient(append([]prio.Option{
		prio.WithBaseURL(s.URL()),
		prio.WithCredentials(priotest.DefaultClientID, priotest.DefaultClientSecret),
		prio.WithDistributorID(priotest.DefaultDistributorID),
		prio.WithRetryPolicy(sdkPolicy()),
		prio.WithMaxConcurrency(concurrency),
	}, extra...)...)
	if err != nil {
		return nil, err
	}
	return &sdkCreator{c: c}, nil
}

func (s *sdkCreator) create(ctx context.Context, ref string) error {
	order, err := s.c.Orders.Create(ctx, newOrder(ref))
	if err != nil {
		return err
	}
	if order.OrderExternalReference != ref {
		return fmt.Errorf("booked %q, got back %q", ref, order.OrderExternalReference)
	}
	return nil
}

// baselineTransport is what a careful hand-written client uses: keep-alive
// with as many idle connections per host as the SDK keeps (its
// WithMaxConcurrency default is 64), so connection reuse is equal.
func baselineTransport(idlePerHost int) *http.Transport {
	return &http.Transport{
		MaxIdleConns:        max(100, idlePerHost),
		MaxIdleConnsPerHost: idlePerHost,
		IdleConnTimeout:     90 * time.Second,
	}
}

// fetchToken gets an access token the way Prio documents it: HTTP Basic
// credentials and a JSON body.
func fetchToken(ctx context.Context, hc *http.Client, baseURL string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, baseURL+"/oauth2/token",
		bytes.NewReader([]byte(`{"grant_type":"client_credentials"}`)))
	if err != nil {
		return "", err
	}
	req.SetBasicAuth(priotest.DefaultClientID, priotest.DefaultClientSecret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("token endpoint answered %s", resp.Status)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil {
		return "", err
	}
	if tok.AccessToken == "" {
		return "", errors.New("token endpoint gave no access_token")
	}
	return tok.AccessToken, nil
}

// rawTarget is what the hand-written clients share: the orders URL and a
// token obtained once.
type rawTarget struct {
	ordersURL string
	auth      string // "Bearer <token>"
}

func newRawTarget(ctx context.Context, hc *http.Client, s sandbox) (rawTarget, error) {
	tok, err := fetchToken(ctx, hc, s.URL())
	if err != nil {
		return rawTarget{}, err
	}
	return rawTarget{ordersURL: s.URL() + "/orders", auth: "Bearer " + tok}, nil
}

// setHeaders gives a hand-written request the headers the server needs.
// The Idempotency-Key (the external reference) makes the server do the
// same work for these requests as for the SDK's, which always carry one.
func (t rawTarget) setHeaders(h http.Header, ref string) {
	h.Set("Authorization", t.auth)
	h.Set("Content-Type", "application/json")
	h.Set("Accept", "application/json")
	h.Set("Idempotency-Key", ref)
}

// statusError is a non-2xx answer to a hand-written request.
type statusError struct{ code int }

func (e *statusError) Error() string { return fmt.Sprintf("HTTP %d", e.code) }

// decodeOrder reads a Create Order answer into the generated type and
// checks that it is the order asked for. It closes the body.
func decodeOrder(resp *http.Response, ref string) error {
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return &statusError{code: resp.StatusCode}
	}
	var out generated.OrderDetailResponse
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return err
	}
	if out.Data.Order.OrderExternalReference != ref {
		return fmt.Errorf("booked %q, got back %q", ref, out.Data.Order.OrderExternalReference)
	}
	return nil
}

// baselineCreator is the floor: one hand-written net/http request, the
// body encoded with encoding/json, the answer decoded into the same type
// the SDK decodes into. No retries.
type baselineCreator struct {
	hc *http.Client
	t  rawTarget
	// inject, when set, writes the send's trace context into its headers
	// (the OpenTelemetry control, otelBaselineCreator).
	inject func(ctx context.Context, h http.Header)
}

func newBaselineCreator(ctx context.Context, s sandbox, idlePerHost int) (*baselineCreator, error) {
	hc := &http.Client{Transport: baselineTransport(idlePerHost)}
	t, err := newRawTarget(ctx, hc, s)
	if err != nil {
		return nil, err
	}
	return &baselineCreator{hc: hc, t: t}, nil
}

func (b *baselineCreator) create(ctx context.Context, ref string) error {
	body, err := orderBody(ref)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.t.ordersURL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	b.t.setHeaders(req.Header, ref)
	if b.inject != nil {
		b.inject(ctx, req.Header)
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		return err
	}
	return decodeOrder(resp, ref)
}

func (b *baselineCreator) close() { b.hc.CloseIdleConnections() }

// naiveCreator is the loop people write by hand: up to naiveRetries
// re-sends after a 5xx or a network error, a fixed pause between sends,
// no budget and no jitter.
type naiveCreator struct {
	hc      *http.Client
	t       rawTarget
	retries int
	sleep   time.Duration
}

func newNaiveCreator(ctx context.Context, s sandbox, retries int, sleep time.Duration) (*naiveCreator, error) {
	hc := &http.Client{Transport: baselineTransport(64)}
	t, err := newRawTarget(ctx, hc, s)
	if err != nil {
		return nil, err
	}
	return &naiveCreator{hc: hc, t: t, retries: retries, sleep: sleep}, nil
}

func (n *naiveCreator) create(ctx context.Context, ref string) error {
	body, err := orderBody(ref)
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.t.ordersURL, bytes.NewReader(body))
		if err != nil {
			return err
		}
		n.t.setHeaders(req.Header, ref)
		resp, err := n.hc.Do(req)
		if err == nil {
			err = decodeOrder(resp, ref)
			var se *statusError
			if err == nil || !errors.As(err, &se) || se.code < 500 {
				return err
			}
		}
		if attempt >= n.retries || ctx.Err() != nil {
			return err
		}
		t := time.NewTimer(n.sleep)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

func (n *naiveCreator) close() { n.hc.CloseIdleConnections() }

// retryableCreator posts through go-retryablehttp's NewClient with every
// retry setting at its default (4 retries, 1 s to 30 s exponential
// backoff, its own pooled transport). Only its logger is silenced: it
// writes a line per request to stderr and decides nothing.
type retryableCreator struct {
	rc *retryablehttp.Client
	t  rawTarget
}

func newRetryableCreator(ctx context.Context, s sandbox) (*retryableCreator, error) {
	rc := retryablehttp.NewClient()
	rc.Logger = nil
	t, err := newRawTarget(ctx, rc.HTTPClient, s)
	if err != nil {
		return nil, err
	}
	return &retryableCreator{rc: rc, t: t}, nil
}

func (r *retryableCreator) create(ctx context.Context, ref string) error {
	body, err := orderBody(ref)
	if err != nil {
		return err
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodPost, r.t.ordersURL, body)
	if err != nil {
		return err
	}
	r.t.setHeaders(req.Header, ref)
	resp, err := r.rc.Do(req)
	if err != nil {
		return err
	}
	return decodeOrder(resp, ref)
}

func (r *retryableCreator) close() { r.rc.HTTPClient.CloseIdleConnections() }
