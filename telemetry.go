package prio

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"runtime"
	"strconv"
	"sync"
	"time"
	"weak"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// OpenTelemetry: traces and metrics through the OpenTelemetry API only.
// The providers come from WithTracerProvider and WithMeterProvider, or are
// the global ones as they stand when NewClient runs. A client whose
// providers are the untouched global defaults or no-op providers records
// nothing and pays for nothing: every hook below is one nil check.
// docs/TELEMETRY.md lists the spans, attributes and instruments.

// instrumentationName names the tracer and the meter.
const instrumentationName = "github.com/priosdk/prio-go"

// Outcome classes of a call, on spans (prio.outcome) and metrics.
const (
	outcomeOK      = "ok"      // the call succeeded
	outcomeRefused = "refused" // an answer, or a local check, refused it
	outcomeUnknown = "unknown" // no answer settled it: a booking may exist
)

// Attribute keys. Values are never secrets, tokens, bodies or guest data:
// the key is derived from public references, URLs are redacted, and the
// distributor id is the account's number, which the logs keep too.
const (
	attrOperation      = attribute.Key("prio.operation")
	attrKey            = attribute.Key("prio.idempotency_key")
	attrSends          = attribute.Key("prio.sends")
	attrLookups        = attribute.Key("prio.lookups")
	attrOutcome        = attribute.Key("prio.outcome")
	attrErrorReference = attribute.Key("prio.error_reference")
	attrAttempt        = attribute.Key("prio.attempt")
	attrResult         = attribute.Key("prio.result")
	attrDistributor    = attribute.Key("prio.distributor_id")
)

// telemetryConfig is what the options set.
type telemetryConfig struct {
	tracerProvider trace.TracerProvider
	meterProvider  metric.MeterProvider
}

// telemetry is one client's tracer and instruments. A nil *telemetry, or
// nil fields, means off.
type telemetry struct {
	tracer trace.Tracer // nil: no spans
	prop   propagation.TextMapPropagator
	m      *instruments // nil: no metrics

	// ops holds each operation's opTelemetry, made on its first call.
	ops  sync.Map // operation -> *opTelemetry
	mu   sync.Mutex
	nops int // entries in ops, at most maxCachedSets
}

// opTelemetry is what one operation's calls and sends record with, made
// once per operation so that a call builds no name and no attribute set
// and takes no lock: the call span's name and the attribute sets of the
// call's and its sends' measurements.
type opTelemetry struct {
	operation string
	spanName  string
	op        measurement    // prio.operation
	outcomes  [3]measurement // prio.operation and prio.outcome, by outcomeIndex

	mu     sync.Mutex
	sends  sync.Map // sendSetKey -> measurement
	nsends int      // entries in sends, at most maxCachedSets
}

// sendSetKey is one combination of a send's measurement attributes besides
// the operation.
type sendSetKey struct {
	method, errorType string
	status            int
}

// outcomeIndex numbers the outcome classes for opTelemetry.outcomes.
func outcomeIndex(outcome string) int {
	switch outcome {
	case outcomeOK:
		return 0
	case outcomeRefused:
		return 1
	}
	return 2
}

// forOp returns the operation's opTelemetry; t must be on (tracing or
// metrics).
func (t *telemetry) forOp(op string) *opTelemetry {
	if v, ok := t.ops.Load(op); ok {
		return v.(*opTelemetry)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if v, ok := t.ops.Load(op); ok {
		return v.(*opTelemetry)
	}
	o := &opTelemetry{operation: op, spanName: "prio." + op}
	if t.m != nil {
		o.op = t.m.attrs(setKey{operation: op})
		for _, oc := range [...]string{outcomeOK, outcomeRefused, outcomeUnknown} {
			o.outcomes[outcomeIndex(oc)] = t.m.attrs(setKey{operation: op, outcome: oc})
		}
	}
	if t.nops < maxCachedSets {
		// Operations are the SDK's own names: the bound is not reached.
		t.ops.Store(op, o)
		t.nops++
	}
	return o
}

// send returns the attribute set of a send's measurement.
func (o *opTelemetry) send(in *instruments, k sendSetKey) measurement {
	if v, ok := o.sends.Load(k); ok {
		return v.(measurement)
	}
	m := in.attrs(setKey{operation: o.operation, method: k.method, status: k.status, errorType: k.errorType})
	o.mu.Lock()
	if o.nsends < maxCachedSets {
		if _, loaded := o.sends.LoadOrStore(k, m); !loaded {
			o.nsends++
		}
	}
	o.mu.Unlock()
	return m
}

type instruments struct {
	calls, sends, retries, lookups, unknown, tokenFetches metric.Int64Counter
	callDuration, sendDuration                            metric.Float64Histogram

	// client is what every point carries to tell this client's from
	// another's (clientAttributes).
	client []attribute.KeyValue

	// Attribute sets are built once per combination and reused: a
	// measurement then costs the SDK a look-up, not a new set.
	mu   sync.Mutex
	sets map[setKey]measurement
}

// measurement holds one attribute set as the option slices Add and Record
// take, so that passing them allocates nothing.
type measurement struct {
	add []metric.AddOption
	rec []metric.RecordOption
}

// setKey is one combination of measurement attributes; empty fields are
// left out of the set.
type setKey struct {
	operation, outcome, method, errorType, result string
	status                                        int
}

// maxCachedSets bounds the cache; combinations past it are built on each
// use (operations, outcomes and statuses are few, so it is not reached).
const maxCachedSets = 4096

func (in *instruments) attrs(k setKey) measurement {
	in.mu.Lock()
	defer in.mu.Unlock()
	if m, ok := in.sets[k]; ok {
		return m
	}
	kvs := make([]attribute.KeyValue, 0, len(in.client)+4)
	kvs = append(kvs, in.client...)
	if k.operation != "" {
		kvs = append(kvs, attrOperation.String(k.operation))
	}
	if k.outcome != "" {
		kvs = append(kvs, attrOutcome.String(k.outcome))
	}
	if k.method != "" {
		kvs = append(kvs, attribute.String("http.request.method", k.method))
	}
	if k.status != 0 {
		kvs = append(kvs, attribute.Int("http.response.status_code", k.status))
	}
	if k.errorType != "" {
		kvs = append(kvs, attribute.String("error.type", k.errorType))
	}
	if k.result != "" {
		kvs = append(kvs, attrResult.String(k.result))
	}
	o := metric.WithAttributeSet(attribute.NewSet(kvs...))
	m := measurement{add: []metric.AddOption{o}, rec: []metric.RecordOption{o}}
	if in.sets == nil {
		in.sets = map[setKey]measurement{}
	}
	if len(in.sets) < maxCachedSets {
		in.sets[k] = m
	}
	return m
}

// isGlobalDefault reports a provider that is the OpenTelemetry global
// before anything was set: its delegate is unset, so it would hand out
// no-op tracers, yet each call on it costs a lookup and an allocation.
func isGlobalDefault(p any) bool {
	t := reflect.TypeOf(p)
	return t != nil && t.Kind() == reflect.Pointer && t.Elem().PkgPath() == "go.opentelemetry.io/otel/internal/global"
}

// newTelemetry resolves the providers and builds the instruments. The
// observable gauges read d's retry budget and 4XX guard; client is what
// every metric point carries to tell this client's from another's
// (clientAttributes).
func newTelemetry(cfg telemetryConfig, d *doer, client []attribute.KeyValue) *telemetry {
	t := &telemetry{prop: propagation.TraceContext{}}
	tp := cfg.tracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
		if isGlobalDefault(tp) {
			tp = nil
		}
	}
	if _, noop := tp.(tracenoop.TracerProvider); tp != nil && !noop {
		t.tracer = tp.Tracer(instrumentationName)
	}
	mp := cfg.meterProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
		if isGlobalDefault(mp) {
			mp = nil
		}
	}
	if _, noop := mp.(metricnoop.MeterProvider); mp != nil && !noop {
		t.m = newInstruments(mp.Meter(instrumentationName), d, client)
	}
	return t
}

// clientAttributes identifies a client's metric points: its server and its
// distributor. Two clients of one program, each with its own retry budget
// and 4XX guard, report two gauge series then, not one that either may
// overwrite, and a program with several Prio accounts counts each one's
// calls and outcomes apart.
func clientAttributes(base *url.URL, distributorID string) []attribute.KeyValue {
	kvs := []attribute.KeyValue{attribute.String("server.address", base.Hostname())}
	if p := serverPort(base); p > 0 {
		kvs = append(kvs, attribute.Int("server.port", p))
	}
	return append(kvs, attrDistributor.String(distributorID))
}

func newInstruments(m metric.Meter, d *doer, client []attribute.KeyValue) *instruments {
	in := instruments{client: client}
	// Instrument errors are reported by the SDK's error handler and leave
	// a working no-op instrument: telemetry never fails a client.
	in.calls, _ = m.Int64Counter("prio.client.calls", metric.WithUnit("{call}"),
		metric.WithDescription("Logical calls ended, by operation and outcome (ok, refused, unknown)."))
	in.sends, _ = m.Int64Counter("prio.client.sends", metric.WithUnit("{request}"),
		metric.WithDescription("Requests that really left the process, re-sends included."))
	in.retries, _ = m.Int64Counter("prio.client.retries", metric.WithUnit("{request}"),
		metric.WithDescription("Sends of a call after its first."))
	in.lookups, _ = m.Int64Counter("prio.client.lookups", metric.WithUnit("{lookup}"),
		metric.WithDescription("Order look-ups Create Order made to settle sends in doubt."))
	in.unknown, _ = m.Int64Counter("prio.client.outcome_unknown", metric.WithUnit("{call}"),
		metric.WithDescription("Calls that ended without knowing whether they were processed (bookings in doubt)."))
	in.tokenFetches, _ = m.Int64Counter("prio.client.token_fetches", metric.WithUnit("{request}"),
		metric.WithDescription("Access-token requests, by result (ok, error)."))
	in.callDuration, _ = m.Float64Histogram("prio.client.call.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of logical calls, every send, wait and look-up included."))
	in.sendDuration, _ = m.Float64Histogram("prio.client.send.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of one send, until its body was read."))
	budget, _ := m.Float64ObservableGauge("prio.client.retry_budget.tokens", metric.WithUnit("{token}"),
		metric.WithDescription("Tokens left in the client-wide retry budget (each retry takes one)."))
	guard, _ := m.Int64ObservableGauge("prio.client.4xx_guard.used", metric.WithUnit("{response}"),
		metric.WithDescription("4XX answers counted in the guard's sliding minute plus sends holding a place."))
	if d != nil {
		registerGauges(m, d, client, budget, guard)
	}
	return &in
}

// registerGauges observes d's retry budget and 4XX guard for as long as d
// is in use. The callback holds d weakly, so the meter provider, which
// usually lives as long as the program, does not keep a dropped client
// alive; once d is collected, the callback is unregistered and the
// client's series end.
func registerGauges(m metric.Meter, d *doer, client []attribute.KeyValue, budget metric.Float64ObservableGauge, guard metric.Int64ObservableGauge) {
	at := []metric.ObserveOption{metric.WithAttributeSet(attribute.NewSet(client...))}
	held := weak.Make(d)
	reg, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		d := held.Value()
		if d == nil {
			return nil
		}
		if d.budget != nil {
			o.ObserveFloat64(budget, d.budget.level(), at...)
		}
		if d.limits.guard != nil {
			o.ObserveInt64(guard, int64(d.limits.guard.level(time.Now())), at...)
		}
		return nil
	}, budget, guard)
	if err != nil || reg == nil {
		return
	}
	runtime.AddCleanup(d, func(r metric.Registration) { _ = r.Unregister() }, reg)
}

func (t *telemetry) tracing() bool { return t != nil && t.tracer != nil }
func (t *telemetry) metrics() bool { return t != nil && t.m != nil }

// outcomeClass reads a call's error the way OutcomeOf reads a booking's:
// ok when it succeeded; refused when it did not take effect (Prio or a
// local check refused it, or it was never sent: OutcomeOf's refused and
// retry later); unknown when it may have taken effect without an answer
// saying so (a send in doubt, a booking whose outcome is unknown).
func outcomeClass(err error) string {
	switch o, _ := OutcomeOf(err); o {
	case OutcomeBooked:
		return outcomeOK
	case OutcomeRefused, OutcomeRetryLater:
		return outcomeRefused
	}
	return outcomeUnknown
}

// Span start options, made once.
var (
	callSpanStart = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindInternal)}
	sendSpanKind  = trace.WithSpanKind(trace.SpanKindClient)
)

// opTel returns the call's opTelemetry (nil with telemetry off), looked
// up once per call.
func (k *call) opTel() *opTelemetry {
	if k.tel == nil {
		if t := k.c.doer.tel; t.tracing() || t.metrics() {
			k.tel = t.forOp(k.operation)
		}
	}
	return k.tel
}

// startCall starts the call's span, once, and returns ctx carrying it.
// Its attributes are set when it ends, in one go.
func (k *call) startCall(ctx context.Context) context.Context {
	t := k.c.doer.tel
	if !t.tracing() || k.span != nil {
		return ctx
	}
	ctx, k.span = t.tracer.Start(ctx, k.opTel().spanName, callSpanStart...)
	return ctx
}

// endCall records the call's end on its span and in the metrics, once.
func (k *call) endCall(inf CallInfo, outcome string) {
	if k.ended {
		return
	}
	k.ended = true
	t := k.c.doer.tel
	if t.metrics() {
		ctx := context.Background()
		o := k.opTel()
		op, withOutcome := o.op, o.outcomes[outcomeIndex(outcome)]
		t.m.calls.Add(ctx, 1, withOutcome.add...)
		if inf.Sends > 0 {
			t.m.sends.Add(ctx, int64(inf.Sends), op.add...)
		}
		if inf.Sends > 1 {
			t.m.retries.Add(ctx, int64(inf.Sends-1), op.add...)
		}
		if inf.Lookups > 0 {
			t.m.lookups.Add(ctx, int64(inf.Lookups), op.add...)
		}
		if outcome == outcomeUnknown {
			t.m.unknown.Add(ctx, 1, op.add...)
		}
		t.m.callDuration.Record(ctx, inf.Elapsed.Seconds(), withOutcome.rec...)
	}
	if k.span == nil {
		return
	}
	attrs := make([]attribute.KeyValue, 0, 7)
	attrs = append(attrs, attrOperation.String(k.operation), attrSends.Int(inf.Sends), attrOutcome.String(outcome))
	if inf.IdempotencyKey != "" {
		attrs = append(attrs, attrKey.String(inf.IdempotencyKey))
	}
	if inf.Lookups > 0 {
		attrs = append(attrs, attrLookups.Int(inf.Lookups))
	}
	if inf.LastStatus != 0 {
		attrs = append(attrs, attribute.Int("http.response.status_code", inf.LastStatus))
	}
	if inf.ErrorReference != "" {
		attrs = append(attrs, attrErrorReference.String(inf.ErrorReference))
	}
	k.span.SetAttributes(attrs...)
	if outcome != outcomeOK {
		// The error's text is not put on the span: the outcome, status
		// and error_reference say what happened without any of its data.
		k.span.SetStatus(codes.Error, outcome)
	}
	k.span.End()
}

// sendSpan is one send's client span; the zero value records nothing.
type sendSpan struct {
	span  trace.Span
	start time.Time
}

// startSend starts the span of one send under the call's span and writes
// the W3C trace context into the send's headers (req's header map belongs
// to this send: beforeSend copied it, or the call owns it). It returns the
// context the send runs in. The request's attributes of the HTTP client
// conventions are given at the span's start, where the conventions want
// them (a sampler decides on them); the answer's are set when it ends.
func (t *telemetry) startSend(ctx context.Context, req *http.Request, attempt int) (context.Context, sendSpan) {
	if !t.tracing() && !t.metrics() {
		return ctx, sendSpan{}
	}
	s := sendSpan{start: time.Now()}
	if !t.tracing() {
		return ctx, s
	}
	attrs := make([]attribute.KeyValue, 0, 6)
	attrs = append(attrs,
		attribute.String("http.request.method", req.Method),
		attribute.String("server.address", req.URL.Hostname()),
		attribute.String("url.full", redactURL(req.URL)),
		attrAttempt.Int(attempt),
	)
	if p := serverPort(req.URL); p > 0 {
		attrs = append(attrs, attribute.Int("server.port", p))
	}
	if attempt > 1 {
		attrs = append(attrs, attribute.Int("http.request.resend_count", attempt-1))
	}
	ctx, s.span = t.tracer.Start(ctx, req.Method, sendSpanKind, trace.WithAttributes(attrs...))
	t.prop.Inject(ctx, propagation.HeaderCarrier(req.Header))
	return ctx, s
}

// endSend records the send's answer (status 0 with err for none) and
// Prio's error_reference when the answer carried one. o is the call's
// opTelemetry (nil: looked up by operation).
func (t *telemetry) endSend(s sendSpan, o *opTelemetry, operation, method string, status int, ref string, err error) {
	if s.start.IsZero() {
		return
	}
	if t.metrics() {
		if o == nil {
			o = t.forOp(operation)
		}
		k := sendSetKey{method: method, status: status}
		if status == 0 {
			k.errorType = errorType(err)
		}
		t.m.sendDuration.Record(context.Background(), time.Since(s.start).Seconds(), o.send(t.m, k).rec...)
	}
	if s.span == nil {
		return
	}
	switch {
	case err != nil:
		s.span.SetAttributes(attribute.String("error.type", errorType(err)))
		s.span.SetStatus(codes.Error, errorType(err))
	case status >= 400:
		attrs := []attribute.KeyValue{attribute.Int("http.response.status_code", status), attribute.String("error.type", strconv.Itoa(status))}
		if ref != "" {
			attrs = append(attrs, attrErrorReference.String(ref))
		}
		s.span.SetAttributes(attrs...)
		s.span.SetStatus(codes.Error, "")
	default:
		s.span.SetAttributes(attribute.Int("http.response.status_code", status))
	}
	s.span.End()
}

// tokenFetched counts one access-token request.
func (t *telemetry) tokenFetched(ok bool) {
	if !t.metrics() {
		return
	}
	r := "ok"
	if !ok {
		r = "error"
	}
	t.m.tokenFetches.Add(context.Background(), 1, t.m.attrs(setKey{result: r}).add...)
}

// errorType names a send's failure by class, never by its text (which
// may quote a URL): timeout, canceled, tls, connection or other.
func errorType(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, errAttemptTimeout), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case isTLSError(err):
		return "tls"
	}
	var local *LocalLimitError
	if errors.As(err, &local) {
		return "local_limit"
	}
	if retryableError(err) {
		return "connection"
	}
	return "other"
}

func serverPort(u *url.URL) int {
	if p := u.Port(); p != "" {
		n, _ := strconv.Atoi(p)
		return n
	}
	switch u.Scheme {
	case "https":
		return 443
	case "http":
		return 80
	}
	return 0
}
