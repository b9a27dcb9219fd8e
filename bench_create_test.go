package prio_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	prio "github.com/priosdk/prio-go"
	"github.com/priosdk/prio-go/generated"
	"github.com/priosdk/prio-go/priotest"
)

// benchServerCalls bounds the creates one sandbox serves in a benchmark, so
// that what the sandbox stores (orders, idempotency keys) and the heap the
// garbage collector scans for it stay about the same size throughout.
const benchServerCalls = 5000

// benchPolicy is the default policy with the client-side rate limiter off:
// 1,000 requests a minute would measure the limiter, not the SDK.
func benchPolicy() prio.RetryPolicy {
	p := prio.DefaultRetryPolicy()
	p.RequestsPerMinute = 0
	return p
}

// benchCreator is one way to book an order, rebuilt on a fresh sandbox
// every benchServerCalls calls (outside the timer).
type benchCreator func(ctx context.Context, ref string) error

// benchCreate runs newCreator's creator b.N times with distinct external
// references, on sandboxes with Prio's request limit off.
func benchCreate(b *testing.B, newCreator func(b *testing.B, s *priotest.Server) benchCreator) {
	b.Helper()
	var (
		s      *priotest.Server
		create benchCreator
	)
	fresh := func() {
		if s != nil {
			s.Close()
		}
		var err error
		s, err = priotest.Start("", priotest.WithRequestLimit(0))
		if err != nil {
			b.Fatal(err)
		}
		create = newCreator(b, s)
		// Token and connection before the timer runs.
		if err := create(b.Context(), fmt.Sprintf("bench-warm-%p", s)); err != nil {
			b.Fatal(err)
		}
	}
	fresh()
	defer func() { s.Close() }()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if i > 0 && i%benchServerCalls == 0 {
			b.StopTimer()
			fresh()
			b.StartTimer()
		}
		if err := create(b.Context(), fmt.Sprintf("bench-%09d", i)); err != nil {
			b.Fatal(err)
		}
	}
}

func benchOrder(ref string) *prio.OrderRequest {
	return &prio.OrderRequest{
		OrderExternalReference: ref,
		OrderBookings: []prio.BookingOption{{
			ProductId:          prio.Ptr(priotest.ProductOpen),
			ProductTypeDetails: &[]prio.ProductTypeDetail{{ProductTypeId: priotest.ProductTypeAdult, ProductTypeCount: 1}},
		}},
	}
}

// BenchmarkCreateOrder books one order per iteration over loopback against
// an in-process sandbox: "sdk" through Orders.Create (client-side rate
// limiter off), "baseline" with a hand-written net/http request carrying
// the same body and an Idempotency-Key, decoded into the same type;
// "sdk-otel" is "sdk" with an OpenTelemetry SDK tracer (every span
// sampled and batched) and meter. The
// server's own work is in both; the difference is the SDK's cost.
// cmd/prio-bench reports the same comparison side by side.
func BenchmarkCreateOrder(b *testing.B) {
	b.Run("sdk", func(b *testing.B) {
		benchCreate(b, func(b *testing.B, s *priotest.Server) benchCreator {
			c, err := prio.NewClient(prio.WithServer(s), prio.WithRetryPolicy(benchPolicy()))
			if err != nil {
				b.Fatal(err)
			}
			return func(ctx context.Context, ref string) error {
				_, err := c.Orders.Create(ctx, benchOrder(ref))
				return err
			}
		})
	})
	b.Run("sdk-otel", func(b *testing.B) {
		benchCreate(b, func(b *testing.B, s *priotest.Server) benchCreator {
			tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithBatcher(tracetest.NewNoopExporter()))
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
			b.Cleanup(func() {
				_ = tp.Shutdown(context.Background())
				_ = mp.Shutdown(context.Background())
			})
			c, err := prio.NewClient(prio.WithBaseURL(s.URL()),
				prio.WithCredentials(priotest.DefaultClientID, priotest.DefaultClientSecret),
				prio.WithDistributorID(priotest.DefaultDistributorID), prio.WithRetryPolicy(benchPolicy()),
				prio.WithTracerProvider(tp), prio.WithMeterProvider(mp))
			if err != nil {
				b.Fatal(err)
			}
			return func(ctx context.Context, ref string) error {
				_, err := c.Orders.Create(ctx, benchOrder(ref))
				return err
			}
		})
	})
	b.Run("baseline", func(b *testing.B) {
		benchCreate(b, func(b *testing.B, s *priotest.Server) benchCreator {
			hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second}}
			b.Cleanup(hc.CloseIdleConnections)
			return baselineCreate(hc, s.URL(), "Bearer "+benchToken(b, hc, s.URL()))
		})
	})
}

// baselineBody is the body the hand-written call sends for ref: the bytes
// the SDK sends for benchOrder(ref).
func baselineBody(ref string) ([]byte, error) {
	req := benchOrder(ref)
	req.OrderDistributorId, req.OrderLanguage = priotest.DefaultDistributorID, "en"
	req.OrderBookings[0].BookingOptionType = prio.DirectBooking
	kind := generated.Kind("order")
	return json.Marshal(generated.CreateOrderRequest{Data: generated.CreateOrderRequestData{Kind: &kind, Order: *req}})
}

// baselineCreate is the hand-written Create Order call: one request on hc
// to base with the given Authorization, the answer decoded into the type
// the SDK decodes into.
func baselineCreate(hc *http.Client, base, auth string) benchCreator {
	return func(ctx context.Context, ref string) error {
		body, err := baselineBody(ref)
		if err != nil {
			return err
		}
		hr, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/orders", bytes.NewReader(body))
		if err != nil {
			return err
		}
		hr.Header.Set("Authorization", auth)
		hr.Header.Set("Content-Type", "application/json")
		hr.Header.Set("Accept", "application/json")
		hr.Header.Set("Idempotency-Key", ref)
		resp, err := hc.Do(hr)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
			return fmt.Errorf("create answered %s", resp.Status)
		}
		var out generated.OrderDetailResponse
		return json.NewDecoder(resp.Body).Decode(&out)
	}
}

func benchToken(b *testing.B, hc *http.Client, base string) string {
	b.Helper()
	req, err := http.NewRequestWithContext(b.Context(), http.MethodPost, base+"/oauth2/token",
		bytes.NewReader([]byte(`{"grant_type":"client_credentials"}`)))
	if err != nil {
		b.Fatal(err)
	}
	req.SetBasicAuth(priotest.DefaultClientID, priotest.DefaultClientSecret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		b.Fatalf("token: %v (status %s)", err, resp.Status)
	}
	return tok.AccessToken
}

// cannedWire answers every request from memory: a token for the token
// endpoint and the same recorded Create Order answer for everything else.
// Without a server or a socket in the loop, the difference between two
// clients over it is their own CPU cost, steady enough to compare.
type cannedWire struct {
	token, order []byte
}

func (w cannedWire) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
		_ = req.Body.Close()
	}
	body, status := w.order, http.StatusCreated
	if strings.HasSuffix(req.URL.Path, "/oauth2/token") {
		body, status = w.token, http.StatusOK
	}
	return &http.Response{
		StatusCode: status, Status: http.StatusText(status), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"application/json"}},
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)), Request: req,
	}, nil
}

// recordWire books one order on a sandbox and keeps its answer.
func recordWire(b *testing.B) cannedWire {
	b.Helper()
	s, err := priotest.Start("", priotest.WithRequestLimit(0))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	hc := &http.Client{}
	defer hc.CloseIdleConnections()
	tok := benchToken(b, hc, s.URL())
	body, err := baselineBody("bench-recorded")
	if err != nil {
		b.Fatal(err)
	}
	hr, err := http.NewRequestWithContext(b.Context(), http.MethodPost, s.URL()+"/orders", bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	hr.Header.Set("Authorization", "Bearer "+tok)
	hr.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(hr)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	order, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusCreated {
		b.Fatalf("recording an order: %v (status %s)", err, resp.Status)
	}
	return cannedWire{token: []byte(`{"access_token":"` + tok + `","token_type":"Bearer","expires_in":3600}`), order: order}
}

// BenchmarkCreateOrderCPU is BenchmarkCreateOrder over cannedWire: the
// SDK's own cost per Create call, with telemetry off and on, against the
// hand-written call. The three clients take turns of 16 calls within one
// benchmark, so the machine's drift in speed falls on all three alike; it
// reports each one's time per call and the two ratios to the hand-written
// call.
func BenchmarkCreateOrderCPU(b *testing.B) {
	wire := recordWire(b)
	const base = "https://prio.test/v3.8/distributor"
	newSDK := func(opts ...prio.Option) benchCreator {
		c, err := prio.NewClient(append([]prio.Option{prio.WithBaseURL(base), prio.WithHTTPClient(&http.Client{Transport: wire}),
			prio.WithCredentials(priotest.DefaultClientID, priotest.DefaultClientSecret),
			prio.WithDistributorID(priotest.DefaultDistributorID), prio.WithRetryPolicy(benchPolicy())}, opts...)...)
		if err != nil {
			b.Fatal(err)
		}
		return func(ctx context.Context, ref string) error {
			_, err := c.Orders.Create(ctx, benchOrder(ref))
			return err
		}
	}
	// The providers are made under the sdk-otel client's label, so the
	// batch span processor's goroutine, which they start, carries it too.
	var (
		tp *sdktrace.TracerProvider
		mp *sdkmetric.MeterProvider
	)
	pprof.Do(b.Context(), pprof.Labels(benchLabel, "sdk-otel"), func(context.Context) {
		tp = sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithBatcher(tracetest.NewNoopExporter()))
		mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	})
	b.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	baseline := baselineCreate(&http.Client{Transport: wire}, base, "Bearer "+string(wire.token))
	takeTurns(b, 16, []benchClient{{name: "baseline", create: baseline}, {name: "sdk", create: newSDK()},
		{name: "sdk-otel", create: newSDK(prio.WithTracerProvider(tp), prio.WithMeterProvider(mp))}})
}

// benchClient is one client of a benchmark whose clients take turns.
type benchClient struct {
	name   string
	create benchCreator
	spent  time.Duration
}

// benchLabel is the CPU profile label that names the client a sample of
// a turn-taking benchmark worked for:
//
//	go test -run '^$' -bench BenchmarkCreateOrderCPU -cpuprofile cpu.out .
//	go tool pprof -tags cpu.out
//	go tool pprof -top -tagfocus 'client=^sdk-otel$' cpu.out
const benchLabel = "client"

// takeTurns runs b's loop: in each iteration every client makes turn
// sequential calls, the first place moving on by one each iteration, so
// that the machine's drift in speed falls on all alike. Each turn runs
// under the profile label client=<name>. It reports each client's time per
// call and each one's ratio to the first client's.
func takeTurns(b *testing.B, turn int, clients []benchClient) {
	b.Helper()
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		for j := range clients {
			c := &clients[(n+j)%len(clients)]
			start := time.Now()
			pprof.Do(b.Context(), pprof.Labels(benchLabel, c.name), func(ctx context.Context) {
				for i := range turn {
					if err := c.create(ctx, fmt.Sprintf("bench-%09d-%03d", n, i)); err != nil {
						b.Fatalf("%s: %v", c.name, err)
					}
				}
			})
			c.spent += time.Since(start)
		}
		n++
	}
	calls := float64(n * turn)
	for _, c := range clients {
		b.ReportMetric(float64(c.spent.Nanoseconds())/calls, c.name+"-ns/call")
	}
	for _, c := range clients[1:] {
		b.ReportMetric(float64(c.spent)/float64(clients[0].spent), c.name+"/"+clients[0].name)
	}
}

// BenchmarkCreateOrderSocket is the hand-written call and the SDK (telemetry
// off) over a real loopback socket to a server that answers every request
// with cannedWire's recorded bytes: net/http's transport and connection
// goroutines are in the loop, the sandbox's work is not. The server sends
// the 2 KB order without a Content-Length (chunked), so the SDK reads it as
// a body of unknown length. The two clients take turns of 200 calls; it
// reports each one's time per call and the ratio.
func BenchmarkCreateOrderSocket(b *testing.B) { benchSocket(b, 0) }

// BenchmarkCreateOrderSocketWait is BenchmarkCreateOrderSocket with a
// server that works for socketThink on each Create before it answers, of
// the order of the sandbox's own work (an estimate; BENCHMARKS.md, "What
// the wait costs", says how it was made and what the benchmark showed).
// The work is a busy loop that touches almost no memory, so it evicts
// little of the clients' data: the wait is what differs from the instant
// answer.
func BenchmarkCreateOrderSocketWait(b *testing.B) { benchSocket(b, socketThink) }

// socketThink is the server's work per Create in
// BenchmarkCreateOrderSocketWait.
const socketThink = 80 * time.Microsecond

// spin keeps the goroutine busy for d, touching almost no memory.
func spin(d time.Duration) {
	for start := time.Now(); time.Since(start) < d; {
	}
}

// benchSocket runs the socket pair against a canned server that spins
// for think before each Create answer (0: it answers at once).
func benchSocket(b *testing.B, think time.Duration) {
	wire := recordWire(b)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		body, status := wire.order, http.StatusCreated
		if strings.HasSuffix(r.URL.Path, "/oauth2/token") {
			body, status = wire.token, http.StatusOK
		} else {
			spin(think)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	defer srv.Close()
	base := srv.URL + "/v3.8/distributor"
	c, err := prio.NewClient(prio.WithBaseURL(base),
		prio.WithCredentials(priotest.DefaultClientID, priotest.DefaultClientSecret),
		prio.WithDistributorID(priotest.DefaultDistributorID), prio.WithRetryPolicy(benchPolicy()))
	if err != nil {
		b.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second}}
	defer hc.CloseIdleConnections()
	takeTurns(b, 200, []benchClient{
		{name: "baseline", create: baselineCreate(hc, base, "Bearer "+string(wire.token))},
		{name: "sdk", create: func(ctx context.Context, ref string) error {
			_, err := c.Orders.Create(ctx, benchOrder(ref))
			return err
		}},
	})
}

// phaseClock splits one client's sequential Create calls in three where
// it wraps net/http's transport: before the request reaches the transport
// (encoding and building it; for the SDK also the key guard, the retry
// loop and its own transports), the round trip (writing the request, the
// server's work, reading the answer's head) and after it (reading and
// decoding the body; for the SDK also its bookkeeping). It serves one
// goroutine; only Create Order's requests are clocked.
type phaseClock struct {
	next                http.RoundTripper
	sent, answered      time.Time
	trips               int // Create Order round trips of the current call
	before, trip, after time.Duration
	calls               int
}

func (p *phaseClock) RoundTrip(req *http.Request) (*http.Response, error) {
	if !strings.HasSuffix(req.URL.Path, "/orders") {
		return p.next.RoundTrip(req)
	}
	p.trips++
	p.sent = time.Now()
	resp, err := p.next.RoundTrip(req)
	p.answered = time.Now()
	return resp, err
}

// timed returns create with each call clocked. A call that did not make
// exactly one Create Order round trip fails: its phases would mean nothing.
func (p *phaseClock) timed(create benchCreator) benchCreator {
	return func(ctx context.Context, ref string) error {
		p.trips = 0
		start := time.Now()
		err := create(ctx, ref)
		end := time.Now()
		if err == nil && p.trips != 1 {
			err = fmt.Errorf("%d round trips in one call", p.trips)
		}
		if err != nil {
			return err
		}
		p.before += p.sent.Sub(start)
		p.trip += p.answered.Sub(p.sent)
		p.after += end.Sub(p.answered)
		p.calls++
		return nil
	}
}

// reset forgets what was clocked so far.
func (p *phaseClock) reset() { p.before, p.trip, p.after, p.calls = 0, 0, 0, 0 }

// report gives b the time per call of each phase, as name-before-ns/call,
// name-trip-ns/call and name-after-ns/call.
func (p *phaseClock) report(b *testing.B, name string) {
	n := float64(max(p.calls, 1))
	b.ReportMetric(float64(p.before.Nanoseconds())/n, name+"-before-ns/call")
	b.ReportMetric(float64(p.trip.Nanoseconds())/n, name+"-trip-ns/call")
	b.ReportMetric(float64(p.after.Nanoseconds())/n, name+"-after-ns/call")
}

// BenchmarkCreateOrderPhases is BenchmarkCreateOrder's hand-written call
// and SDK (telemetry off) taking turns of 16 calls, each on a sandbox of
// its own over loopback and each over its own http.Transport (the same
// settings for both) wrapped by a phaseClock. Besides each client's time
// per call and the ratio, it reports where each call's time went: before
// the request reached net/http's transport, in the round trip, and after.
// The SDK carries its requests over WithHTTPClient here rather than over
// its own transport. Each sandbox serves at most benchServerCalls calls:
// keep -benchtime to a few seconds.
func BenchmarkCreateOrderPhases(b *testing.B) {
	newTransport := func() *http.Transport {
		return &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second}
	}
	start := func() *priotest.Server {
		s, err := priotest.Start("", priotest.WithRequestLimit(0))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(s.Close)
		return s
	}

	bs, bt := start(), newTransport()
	b.Cleanup(bt.CloseIdleConnections)
	bclock := &phaseClock{next: bt}
	bhc := &http.Client{Transport: bclock}
	baseline := bclock.timed(baselineCreate(bhc, bs.URL(), "Bearer "+benchToken(b, bhc, bs.URL())))

	ss, st := start(), newTransport()
	b.Cleanup(st.CloseIdleConnections)
	sclock := &phaseClock{next: st}
	c, err := prio.NewClient(prio.WithServer(ss), prio.WithRetryPolicy(benchPolicy()), prio.WithHTTPClient(&http.Client{Transport: sclock}))
	if err != nil {
		b.Fatal(err)
	}
	sdk := sclock.timed(func(ctx context.Context, ref string) error {
		_, err := c.Orders.Create(ctx, benchOrder(ref))
		return err
	})

	// The token, a connection and warm caches before the clock counts.
	const warm = 50
	for i := range warm {
		for _, create := range []benchCreator{baseline, sdk} {
			if err := create(b.Context(), fmt.Sprintf("bench-warm-%03d", i)); err != nil {
				b.Fatal(err)
			}
		}
	}
	bclock.reset()
	sclock.reset()
	bounded := func(p *phaseClock, create benchCreator) benchCreator {
		return func(ctx context.Context, ref string) error {
			if warm+p.calls >= benchServerCalls {
				return fmt.Errorf("more than %d calls on one sandbox: use a shorter -benchtime", benchServerCalls)
			}
			return create(ctx, ref)
		}
	}
	takeTurns(b, 16, []benchClient{{name: "baseline", create: bounded(bclock, baseline)}, {name: "sdk", create: bounded(sclock, sdk)}})
	bclock.report(b, "baseline")
	sclock.report(b, "sdk")
}
