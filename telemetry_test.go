package prio_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	prio "github.com/priosdk/prio-go"
	"github.com/priosdk/prio-go/priotest"
)

// TestRootPackageImportsNoOTelSDK: package prio speaks the OpenTelemetry
// API only; the SDK and the exporters are the user's choice.
func TestRootPackageImportsNoOTelSDK(t *testing.T) {
	t.Parallel()
	out, err := exec.CommandContext(t.Context(), "go", "list", "-deps", ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	deps := strings.Fields(string(out))
	assert.Contains(t, deps, "go.opentelemetry.io/otel/trace", "the API is used")
	for _, dep := range deps {
		for _, banned := range []string{"go.opentelemetry.io/otel/sdk", "go.opentelemetry.io/otel/exporters/"} {
			assert.False(t, strings.HasPrefix(dep, banned), "package prio imports %s", dep)
		}
	}
}

// otelRig is a client wired to an in-memory tracer and meter, and a
// transport that keeps the traceparent header of every request.
type otelRig struct {
	c      *prio.Client
	spans  *tracetest.SpanRecorder
	reader *sdkmetric.ManualReader

	mu      sync.Mutex
	parents map[string][]string // method and path -> traceparent headers, in order
	tokens  []string            // bearer tokens seen on the wire
}

type headerTap struct {
	rig  *otelRig
	next http.RoundTripper
}

func (h headerTap) RoundTrip(req *http.Request) (*http.Response, error) {
	h.rig.mu.Lock()
	h.rig.parents[req.Method+" "+req.URL.Path] = append(h.rig.parents[req.Method+" "+req.URL.Path], req.Header.Get("Traceparent"))
	if tok, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer "); ok {
		h.rig.tokens = append(h.rig.tokens, tok)
	}
	h.rig.mu.Unlock()
	return h.next.RoundTrip(req)
}

func newOTelRig(t *testing.T, s *priotest.Server) *otelRig {
	t.Helper()
	r := &otelRig{spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader(), parents: map[string][]string{}}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(r.spans))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r.reader))
	t.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	r.c = newClient(t, s, prio.WithTracerProvider(tp), prio.WithMeterProvider(mp),
		prio.WithHTTPClient(&http.Client{Transport: headerTap{rig: r, next: tr}}))
	return r
}

// guestOrder is an order carrying a guest's e-mail, which must never
// reach a span or a metric.
func guestOrder(ref string) *prio.OrderRequest {
	o := orderFor(ref, priotest.ProductOpen)
	o.OrderContacts = &[]prio.Contact{{ContactEmail: prio.Ptr(leakGuestEmail)}}
	return o
}

const leakGuestEmail = "guest.person@example.org"

// byName returns the ended spans named name, in the order they ended.
func (r *otelRig) byName(name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range r.spans.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value
	}
	return m
}

// collect returns the metrics of the rig's reader named name.
func (r *otelRig) collect(t *testing.T, name string) []metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, r.reader.Collect(t.Context(), &rm))
	var out []metricdata.Metrics
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				out = append(out, m)
			}
		}
	}
	return out
}

// counter sums an Int64 counter's points whose attributes include want.
func (r *otelRig) counter(t *testing.T, name string, want ...attribute.KeyValue) int64 {
	t.Helper()
	var sum int64
	for _, m := range r.collect(t, name) {
		data, ok := m.Data.(metricdata.Sum[int64])
		require.True(t, ok, "%s is an int64 sum", name)
		for _, p := range data.DataPoints {
			if hasAll(p.Attributes, want) {
				sum += p.Value
			}
		}
	}
	return sum
}

// histogramCount counts the recordings of a histogram whose attributes
// include want.
func (r *otelRig) histogramCount(t *testing.T, name string, want ...attribute.KeyValue) uint64 {
	t.Helper()
	var n uint64
	for _, m := range r.collect(t, name) {
		data, ok := m.Data.(metricdata.Histogram[float64])
		require.True(t, ok, "%s is a float64 histogram", name)
		for _, p := range data.DataPoints {
			if hasAll(p.Attributes, want) {
				n += p.Count
			}
		}
	}
	return n
}

// gauge returns the last value of an observable gauge, as a float.
func (r *otelRig) gauge(t *testing.T, name string) (float64, bool) {
	t.Helper()
	for _, m := range r.collect(t, name) {
		switch d := m.Data.(type) {
		case metricdata.Gauge[float64]:
			if len(d.DataPoints) > 0 {
				return d.DataPoints[0].Value, true
			}
		case metricdata.Gauge[int64]:
			if len(d.DataPoints) > 0 {
				return float64(d.DataPoints[0].Value), true
			}
		}
	}
	return 0, false
}

func hasAll(set attribute.Set, want []attribute.KeyValue) bool {
	for _, kv := range want {
		v, ok := set.Value(kv.Key)
		if !ok || v != kv.Value {
			return false
		}
	}
	return true
}

var (
	opCreate = attribute.String("prio.operation", "createOrder")
	opList   = attribute.String("prio.operation", "getOrders")
)

func outcomeAttr(o string) attribute.KeyValue { return attribute.String("prio.outcome", o) }

// assertChildOf checks that child's parent is parent, in the same trace.
func assertChildOf(t *testing.T, parent, child sdktrace.ReadOnlySpan) {
	t.Helper()
	assert.Equal(t, parent.SpanContext().TraceID(), child.SpanContext().TraceID(), "%s in %s's trace", child.Name(), parent.Name())
	assert.Equal(t, parent.SpanContext().SpanID(), child.Parent().SpanID(), "%s is a child of %s", child.Name(), parent.Name())
}

// assertPropagated checks that the n-th request to path carried span's
// context as its W3C traceparent.
func (r *otelRig) assertPropagated(t *testing.T, path string, n int, span sdktrace.ReadOnlySpan) {
	t.Helper()
	r.mu.Lock()
	got := r.parents[path]
	r.mu.Unlock()
	require.Greater(t, len(got), n, "requests to %s", path)
	carrier := propagation.HeaderCarrier(http.Header{"Traceparent": {got[n]}})
	sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), carrier))
	assert.Equal(t, span.SpanContext().TraceID(), sc.TraceID(), "traceparent of %s #%d", path, n)
	assert.Equal(t, span.SpanContext().SpanID(), sc.SpanID(), "traceparent of %s #%d names its send span", path, n)
}

// assertNoLeaks searches every attribute, event and status of every span,
// and every metric attribute, for the credentials, the token and the
// guest's e-mail.
func (r *otelRig) assertNoLeaks(t *testing.T) {
	t.Helper()
	leaks := []string{priotest.DefaultClientSecret, leakGuestEmail, url.QueryEscape(leakGuestEmail), "Bearer"}
	r.mu.Lock()
	require.NotEmpty(t, r.tokens, "the tokens sent are known")
	leaks = append(leaks, r.tokens...)
	r.mu.Unlock()
	var texts []string
	for _, sp := range r.spans.Ended() {
		texts = append(texts, sp.Name(), sp.Status().Description)
		for _, kv := range sp.Attributes() {
			texts = append(texts, string(kv.Key)+"="+kv.Value.String())
		}
		for _, ev := range sp.Events() {
			texts = append(texts, ev.Name)
			for _, kv := range ev.Attributes {
				texts = append(texts, string(kv.Key)+"="+kv.Value.String())
			}
		}
	}
	var rm metricdata.ResourceMetrics
	require.NoError(t, r.reader.Collect(t.Context(), &rm))
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			texts = append(texts, fmt.Sprintf("%s %+v", m.Name, m.Data))
		}
	}
	require.NotEmpty(t, texts)
	all := strings.Join(texts, "\n")
	for _, leak := range leaks {
		assert.NotContains(t, all, leak, "telemetry leaks %q", leak)
	}
}

// TestTelemetryCleanCreate: one call span with one client span under it,
// the trace context on the wire, and the counters of a one-send call.
func TestTelemetryCleanCreate(t *testing.T) {
	t.Parallel()
	s := priotest.NewServer(t)
	r := newOTelRig(t, s)
	var info prio.CallInfo
	_, err := r.c.Orders.Create(t.Context(), guestOrder("otel-clean"), prio.WithInfo(&info))
	require.NoError(t, err)

	calls := r.byName("prio.createOrder")
	require.Len(t, calls, 1)
	call := calls[0]
	a := attrs(call)
	assert.Equal(t, "createOrder", a["prio.operation"].AsString())
	assert.Equal(t, info.IdempotencyKey, a["prio.idempotency_key"].AsString())
	assert.Equal(t, int64(1), a["prio.sends"].AsInt64())
	assert.Equal(t, "ok", a["prio.outcome"].AsString())
	assert.Equal(t, codes.Unset, call.Status().Code)
	assert.False(t, call.Parent().IsValid(), "the call span is a root here")

	sends := r.byName(http.MethodPost)
	require.Len(t, sends, 1)
	send := sends[0]
	assertChildOf(t, call, send)
	assert.Equal(t, trace.SpanKindClient, send.SpanKind())
	sa := attrs(send)
	assert.Equal(t, "POST", sa["http.request.method"].AsString())
	assert.Equal(t, int64(201), sa["http.response.status_code"].AsInt64())
	assert.Equal(t, int64(1), sa["prio.attempt"].AsInt64())
	assert.Equal(t, "127.0.0.1", sa["server.address"].AsString())
	assert.NotZero(t, sa["server.port"].AsInt64())
	assert.Contains(t, sa["url.full"].AsString(), "/orders")
	r.assertPropagated(t, "POST /v3.8/distributor/orders", 0, send)
	assert.Len(t, r.spans.Ended(), 2, "no other span")

	assert.Equal(t, int64(1), r.counter(t, "prio.client.calls", opCreate, outcomeAttr("ok")))
	assert.Equal(t, int64(1), r.counter(t, "prio.client.sends", opCreate))
	assert.Zero(t, r.counter(t, "prio.client.retries"))
	assert.Zero(t, r.counter(t, "prio.client.lookups"))
	assert.Zero(t, r.counter(t, "prio.client.outcome_unknown"))
	assert.Equal(t, int64(1), r.counter(t, "prio.client.token_fetches", attribute.String("prio.result", "ok")))
	assert.Equal(t, uint64(1), r.histogramCount(t, "prio.client.call.duration", opCreate))
	assert.Equal(t, uint64(1), r.histogramCount(t, "prio.client.send.duration", opCreate))
	budget, ok := r.gauge(t, "prio.client.retry_budget.tokens")
	assert.True(t, ok)
	assert.InDelta(t, fastPolicy().BudgetBurst, budget, 1e-9, "a full bucket stays full")
	used, ok := r.gauge(t, "prio.client.4xx_guard.used")
	assert.True(t, ok)
	assert.Zero(t, used)
	r.assertNoLeaks(t)
}

// TestTelemetryCreateRetriedAfter503: Prio's own 503 ends the first send,
// the look-up proves the order absent, and the second send books it. The
// look-up is a call of its own under Create's span.
func TestTelemetryCreateRetriedAfter503(t *testing.T) {
	t.Parallel()
	s := priotest.NewServer(t, priotest.WithFaults(priotest.Sequence("createOrder", priotest.Fault5xxBefore)))
	r := newOTelRig(t, s)
	var info prio.CallInfo
	_, err := r.c.Orders.Create(t.Context(), guestOrder("otel-503"), prio.WithInfo(&info))
	require.NoError(t, err)
	require.Equal(t, 2, info.Sends)
	require.Equal(t, 1, info.Lookups)

	calls := r.byName("prio.createOrder")
	require.Len(t, calls, 1)
	call := calls[0]
	a := attrs(call)
	assert.Equal(t, int64(2), a["prio.sends"].AsInt64())
	assert.Equal(t, int64(1), a["prio.lookups"].AsInt64())
	assert.Equal(t, "ok", a["prio.outcome"].AsString())

	posts := r.byName(http.MethodPost)
	require.Len(t, posts, 2)
	for i, p := range posts {
		assertChildOf(t, call, p)
		r.assertPropagated(t, "POST /v3.8/distributor/orders", i, p)
	}
	first := attrs(posts[0])
	assert.Equal(t, int64(503), first["http.response.status_code"].AsInt64())
	assert.Equal(t, "503", first["error.type"].AsString())
	assert.NotEmpty(t, first["prio.error_reference"].AsString(), "Prio's error_reference is on the send that got it")
	assert.Equal(t, codes.Error, posts[0].Status().Code)
	assert.Equal(t, int64(201), attrs(posts[1])["http.response.status_code"].AsInt64())

	lookups := r.byName("prio.getOrders")
	require.Len(t, lookups, 1)
	assertChildOf(t, call, lookups[0])
	gets := r.byName(http.MethodGet)
	require.Len(t, gets, 1)
	assertChildOf(t, lookups[0], gets[0])
	assert.True(t, posts[0].EndTime().Before(gets[0].StartTime()) && gets[0].EndTime().Before(posts[1].StartTime()),
		"send, look-up, send")

	assert.Equal(t, int64(1), r.counter(t, "prio.client.calls", opCreate, outcomeAttr("ok")))
	assert.Equal(t, int64(1), r.counter(t, "prio.client.calls", opList, outcomeAttr("ok")))
	assert.Equal(t, int64(2), r.counter(t, "prio.client.sends", opCreate))
	assert.Equal(t, int64(1), r.counter(t, "prio.client.retries", opCreate))
	assert.Equal(t, int64(1), r.counter(t, "prio.client.lookups", opCreate))
	assert.Zero(t, r.counter(t, "prio.client.outcome_unknown"))
	assert.Equal(t, uint64(1), r.histogramCount(t, "prio.client.send.duration", opCreate, attribute.Int("http.response.status_code", 503)))
	budget, _ := r.gauge(t, "prio.client.retry_budget.tokens")
	assert.Less(t, budget, fastPolicy().BudgetBurst, "the look-up took a token")
	r.assertNoLeaks(t)
}

// TestTelemetryCreateUnknown: a gateway's 502 while the origin goes on,
// and an empty look-up within the processing horizon: the call ends
// unknown, and says so on its span and in the metrics.
func TestTelemetryCreateUnknown(t *testing.T) {
	t.Parallel()
	profile := priotest.Sequence("createOrder", priotest.FaultGateway502)
	profile.GatewayDelay, profile.OriginDelay = 5*time.Millisecond, time.Second
	s := priotest.NewServer(t, priotest.WithIdempotency(priotest.IdempotencyNone), priotest.WithFaults(profile))
	r := newOTelRig(t, s)
	_, err := r.c.Orders.Create(t.Context(), guestOrder("otel-unknown"))
	require.ErrorIs(t, err, prio.ErrOutcomeUnknown)

	calls := r.byName("prio.createOrder")
	require.Len(t, calls, 1)
	call := calls[0]
	a := attrs(call)
	assert.Equal(t, "unknown", a["prio.outcome"].AsString())
	assert.Equal(t, int64(1), a["prio.sends"].AsInt64())
	assert.Equal(t, int64(1), a["prio.lookups"].AsInt64())
	assert.Equal(t, int64(502), a["http.response.status_code"].AsInt64())
	assert.Equal(t, codes.Error, call.Status().Code)
	assert.Equal(t, "unknown", call.Status().Description)

	posts := r.byName(http.MethodPost)
	require.Len(t, posts, 1)
	assertChildOf(t, call, posts[0])
	lookups := r.byName("prio.getOrders")
	require.Len(t, lookups, 1)
	assertChildOf(t, call, lookups[0])

	assert.Equal(t, int64(1), r.counter(t, "prio.client.calls", opCreate, outcomeAttr("unknown")))
	assert.Equal(t, int64(1), r.counter(t, "prio.client.outcome_unknown", opCreate))
	assert.Equal(t, int64(1), r.counter(t, "prio.client.sends", opCreate))
	assert.Equal(t, int64(1), r.counter(t, "prio.client.lookups", opCreate))
	assert.Zero(t, r.counter(t, "prio.client.retries"))
	assert.Equal(t, uint64(1), r.histogramCount(t, "prio.client.call.duration", opCreate, outcomeAttr("unknown")))
	r.assertNoLeaks(t)
}

// TestTelemetryOffByDefault: with no provider given and none set
// globally, a call leaves no trace context on the wire.
func TestTelemetryOffByDefault(t *testing.T) {
	t.Parallel()
	s := priotest.NewServer(t)
	r := &otelRig{parents: map[string][]string{}}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	c := newClient(t, s, prio.WithHTTPClient(&http.Client{Transport: headerTap{rig: r, next: tr}}))
	_, err := c.Orders.Create(t.Context(), orderFor("otel-off", priotest.ProductOpen))
	require.NoError(t, err)
	r.mu.Lock()
	defer r.mu.Unlock()
	assert.Equal(t, []string{""}, r.parents["POST /v3.8/distributor/orders"])
}

// TestTelemetryCreateRefused: Prio's 422 refuses the booking outright:
// one send, no look-up, outcome refused with Prio's error_reference.
func TestTelemetryCreateRefused(t *testing.T) {
	t.Parallel()
	s := priotest.NewServer(t)
	r := newOTelRig(t, s)
	o := guestOrder("otel-refused")
	o.OrderBookings[0].ProductId = prio.Ptr(priotest.ProductDeclined)
	_, err := r.c.Orders.Create(t.Context(), o)
	require.Error(t, err)

	calls := r.byName("prio.createOrder")
	require.Len(t, calls, 1)
	a := attrs(calls[0])
	assert.Equal(t, "refused", a["prio.outcome"].AsString())
	assert.Equal(t, int64(422), a["http.response.status_code"].AsInt64())
	assert.NotEmpty(t, a["prio.error_reference"].AsString())
	assert.Equal(t, codes.Error, calls[0].Status().Code)
	assert.Empty(t, r.byName("prio.getOrders"), "a refusal needs no look-up")
	assert.Equal(t, int64(1), r.counter(t, "prio.client.calls", opCreate, outcomeAttr("refused")))
	assert.Zero(t, r.counter(t, "prio.client.outcome_unknown"))
	r.assertNoLeaks(t)
}

// TestSendSpanRequestAttributesAtStart: the HTTP client conventions want a
// send's request attributes when its span starts, so that a sampler can
// decide on them.
func TestSendSpanRequestAttributesAtStart(t *testing.T) {
	t.Parallel()
	sampler := &recordingSampler{}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sampler))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	c := newClient(t, priotest.NewServer(t), prio.WithTracerProvider(tp))
	_, err := c.Orders.Create(t.Context(), orderFor("otel-sampled", priotest.ProductOpen))
	require.NoError(t, err)

	sends := sampler.byKind(trace.SpanKindClient)
	require.NotEmpty(t, sends, "no client span was offered to the sampler")
	var post map[attribute.Key]attribute.Value
	for _, a := range sends {
		if a["http.request.method"].AsString() == http.MethodPost {
			post = a
		}
	}
	require.NotNil(t, post, "the create request's span had no method at its start: %v", sends)
	assert.Equal(t, "127.0.0.1", post["server.address"].AsString())
	assert.NotZero(t, post["server.port"].AsInt64())
	assert.Contains(t, post["url.full"].AsString(), "/orders")
	assert.Equal(t, int64(1), post["prio.attempt"].AsInt64())
}

// recordingSampler samples every span and keeps the attributes each was
// started with, by span kind.
type recordingSampler struct {
	mu    sync.Mutex
	kinds []trace.SpanKind
	attrs []map[attribute.Key]attribute.Value
}

func (s *recordingSampler) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range p.Attributes {
		m[kv.Key] = kv.Value
	}
	s.mu.Lock()
	s.kinds = append(s.kinds, p.Kind)
	s.attrs = append(s.attrs, m)
	s.mu.Unlock()
	return sdktrace.AlwaysSample().ShouldSample(p)
}

func (s *recordingSampler) Description() string { return "recording" }

func (s *recordingSampler) byKind(k trace.SpanKind) []map[attribute.Key]attribute.Value {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[attribute.Key]attribute.Value
	for i, kind := range s.kinds {
		if kind == k {
			out = append(out, s.attrs[i])
		}
	}
	return out
}

// gaugePoints returns an observable gauge's points, by the server port
// each carries.
func (r *otelRig) gaugePoints(t *testing.T, name string) map[int64]metricdata.DataPoint[float64] {
	t.Helper()
	out := map[int64]metricdata.DataPoint[float64]{}
	for _, m := range r.collect(t, name) {
		d, ok := m.Data.(metricdata.Gauge[float64])
		require.True(t, ok, "%s is a float64 gauge", name)
		for _, p := range d.DataPoints {
			port, _ := p.Attributes.Value("server.port")
			out[port.AsInt64()] = p
		}
	}
	return out
}

func sandboxPort(t *testing.T, s *priotest.Server) int64 {
	t.Helper()
	u, err := url.Parse(s.URL())
	require.NoError(t, err)
	port, err := strconv.ParseInt(u.Port(), 10, 64)
	require.NoError(t, err)
	return port
}

// TestMetricsPerClient: two clients on one meter provider each report
// their own retry budget, told apart by the server and the distributor,
// instead of one hiding the other's; their counters and histograms are
// told apart the same way.
func TestMetricsPerClient(t *testing.T) {
	t.Parallel()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	rig := &otelRig{reader: reader}
	bursts := map[int64]float64{}
	calls := map[int64]int{}
	// The clients must stay reachable until the gauges are read: a
	// collected client's series ends (TestGaugesEndWithTheClient), and
	// other tests run the collector in parallel.
	var clients []*prio.Client
	for i, burst := range []float64{3, 5} {
		s := priotest.NewServer(t)
		p := fastPolicy()
		p.BudgetBurst = burst
		c := newClient(t, s, prio.WithRetryPolicy(p), prio.WithMeterProvider(mp))
		clients = append(clients, c)
		port := sandboxPort(t, s)
		bursts[port] = burst
		calls[port] = i + 1
		for n := range i + 1 {
			_, err := c.Orders.Create(t.Context(), orderFor(fmt.Sprintf("per-client-%d-%d", i, n), priotest.ProductOpen))
			require.NoError(t, err)
		}
	}

	for port, n := range calls {
		client := []attribute.KeyValue{attribute.String("server.address", "127.0.0.1"), attribute.Int64("server.port", port),
			attribute.String("prio.distributor_id", priotest.DefaultDistributorID)}
		assert.Equal(t, int64(n), rig.counter(t, "prio.client.calls", append(client, opCreate, outcomeAttr("ok"))...), "calls of port %d", port)
		assert.Equal(t, int64(n), rig.counter(t, "prio.client.sends", append(client, opCreate)...), "sends of port %d", port)
		assert.Equal(t, int64(1), rig.counter(t, "prio.client.token_fetches", client...), "token fetches of port %d", port)
		assert.Equal(t, uint64(n), rig.histogramCount(t, "prio.client.call.duration", append(client, opCreate)...), "call durations of port %d", port)
		assert.Equal(t, uint64(n), rig.histogramCount(t, "prio.client.send.duration", append(client, opCreate)...), "send durations of port %d", port)
	}

	points := rig.gaugePoints(t, "prio.client.retry_budget.tokens")
	require.Len(t, points, 2, "one series per client")
	for port, burst := range bursts {
		p, ok := points[port]
		require.True(t, ok, "a series for the client of port %d", port)
		assert.InDelta(t, burst, p.Value, 1e-9, "port %d reports its own budget", port)
		addr, _ := p.Attributes.Value("server.address")
		assert.Equal(t, "127.0.0.1", addr.AsString())
		dist, _ := p.Attributes.Value("prio.distributor_id")
		assert.Equal(t, priotest.DefaultDistributorID, dist.AsString())
	}
	runtime.KeepAlive(clients)
}

// TestGaugesEndWithTheClient: the meter provider does not keep a client
// alive. Once the program drops a client, its gauges stop being reported
// and the other client's remain.
func TestGaugesEndWithTheClient(t *testing.T) {
	t.Parallel()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	rig := &otelRig{reader: reader}
	kept, dropped := priotest.NewServer(t), priotest.NewServer(t)
	keep := newClient(t, kept, prio.WithMeterProvider(mp))
	func() {
		c := newClient(t, dropped, prio.WithMeterProvider(mp))
		_, err := c.Orders.Create(t.Context(), orderFor("gauge-dropped", priotest.ProductOpen))
		require.NoError(t, err)
		// Read both series while c is still reachable: other tests run
		// the collector in parallel.
		require.Len(t, rig.gaugePoints(t, "prio.client.retry_budget.tokens"), 2)
		runtime.KeepAlive(c)
	}()

	// Collection and the cleanup after it take their time on a loaded
	// machine: give them up to 10 s.
	gone := false
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		runtime.GC()
		if _, ok := rig.gaugePoints(t, "prio.client.retry_budget.tokens")[sandboxPort(t, dropped)]; !ok {
			gone = true
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	assert.True(t, gone, "the dropped client's series ends once it is collected")
	points := rig.gaugePoints(t, "prio.client.retry_budget.tokens")
	assert.Contains(t, points, sandboxPort(t, kept), "the client still in use keeps its series")
	runtime.KeepAlive(keep)
}
