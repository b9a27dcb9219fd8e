package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	prio "github.com/priosdk/prio-go"
)

// nameSDKOTel is the SDK with a real OpenTelemetry tracer and meter;
// nameBaselineOTel is the hand-written call doing the same OpenTelemetry
// work by hand, without the SDK.
const (
	nameSDKOTel      = "prio-go + otel"
	nameBaselineOTel = "baseline + otel"
)

// discardSpans is an exporter that drops what it is given: the cost
// measured is the SDK's spans and the OpenTelemetry SDK's batching, not an
// exporter's I/O.
type discardSpans struct{}

func (discardSpans) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardSpans) Shutdown(context.Context) error                             { return nil }

// otelCreator is an sdkCreator whose client records every span (sampled
// always, batched) and every metric (aggregated by a reader that is not
// collected during the round).
type otelCreator struct {
	*sdkCreator
	tp *sdktrace.TracerProvider
	mp *sdkmetric.MeterProvider
}

func newOTelCreator(s sandbox, concurrency int) (*otelCreator, error) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithBatcher(discardSpans{}))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	sc, err := newSDKCreator(s, concurrency, prio.WithTracerProvider(tp), prio.WithMeterProvider(mp))
	if err != nil {
		return nil, errors.Join(err, tp.Shutdown(context.Background()), mp.Shutdown(context.Background()))
	}
	return &otelCreator{sdkCreator: sc, tp: tp, mp: mp}, nil
}

func (o *otelCreator) close() error {
	return errors.Join(o.tp.Shutdown(context.Background()), o.mp.Shutdown(context.Background()))
}

// otelBaselineCreator is the control for the telemetry row: the
// hand-written call, with by hand the OpenTelemetry work the SDK does for
// a clean Create Order (a call span and a client span with the same
// attributes, the W3C trace context in the headers, two counters and two
// histograms with the same attribute sets), on providers made as
// newOTelCreator makes them. What it costs above the baseline is
// OpenTelemetry's own price on this machine, which no SDK can go below
// while recording the same spans and measurements.
type otelBaselineCreator struct {
	*baselineCreator
	tp                         *sdktrace.TracerProvider
	mp                         *sdkmetric.MeterProvider
	tracer                     trace.Tracer
	calls, sends               metric.Int64Counter
	callDuration, sendDuration metric.Float64Histogram
	callSet, sendSet, opSet    metric.MeasurementOption
	sendStart                  []attribute.KeyValue
}

func newOTelBaselineCreator(ctx context.Context, s sandbox, concurrency int) (*otelBaselineCreator, error) {
	bc, err := newBaselineCreator(ctx, s, concurrency)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(bc.t.ordersURL)
	if err != nil {
		return nil, err
	}
	port, _ := strconv.Atoi(u.Port())
	o := &otelBaselineCreator{
		baselineCreator: bc,
		tp:              sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithBatcher(discardSpans{})),
		mp:              sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader())),
		sendStart: []attribute.KeyValue{
			attribute.String("http.request.method", http.MethodPost),
			attribute.String("server.address", u.Hostname()),
			attribute.String("url.full", u.String()),
			attribute.Int("prio.attempt", 1),
			attribute.Int("server.port", port),
		},
	}
	o.tracer = o.tp.Tracer(instrumentation)
	m := o.mp.Meter(instrumentation)
	var errs [4]error
	o.calls, errs[0] = m.Int64Counter("prio.client.calls")
	o.sends, errs[1] = m.Int64Counter("prio.client.sends")
	o.callDuration, errs[2] = m.Float64Histogram("prio.client.call.duration")
	o.sendDuration, errs[3] = m.Float64Histogram("prio.client.send.duration")
	if err := errors.Join(errs[:]...); err != nil {
		_ = o.close()
		return nil, fmt.Errorf("the control's instruments: %w", err)
	}
	// Every metric point of the SDK carries the client's server and
	// distributor, then its own attributes.
	set := func(kvs ...attribute.KeyValue) metric.MeasurementOption {
		return metric.WithAttributeSet(attribute.NewSet(append([]attribute.KeyValue{
			attribute.String("server.address", u.Hostname()), attribute.Int("server.port", port),
			attribute.String("prio.distributor_id", s.DistributorID())}, kvs...)...))
	}
	op := attribute.String("prio.operation", "createOrder")
	o.opSet = set(op)
	o.callSet = set(op, attribute.String("prio.outcome", "ok"))
	o.sendSet = set(op, attribute.String("http.request.method", http.MethodPost),
		attribute.Int("http.response.status_code", http.StatusCreated))
	prop := propagation.TraceContext{}
	bc.inject = func(ctx context.Context, h http.Header) { prop.Inject(ctx, propagation.HeaderCarrier(h)) }
	return o, nil
}

// instrumentation names the control's tracer and meter.
const instrumentation = "prio-bench/control"

func (o *otelBaselineCreator) create(ctx context.Context, ref string) error {
	start := time.Now()
	ctx, call := o.tracer.Start(ctx, "prio.createOrder", trace.WithSpanKind(trace.SpanKindInternal))
	sctx, send := o.tracer.Start(ctx, http.MethodPost, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(o.sendStart...))
	err := o.baselineCreator.create(sctx, ref)
	send.SetAttributes(attribute.Int("http.response.status_code", http.StatusCreated))
	send.End()
	o.sendDuration.Record(context.Background(), time.Since(start).Seconds(), o.sendSet)
	call.SetAttributes(attribute.String("prio.operation", "createOrder"), attribute.Int("prio.sends", 1),
		attribute.String("prio.outcome", "ok"), attribute.String("prio.idempotency_key", ref),
		attribute.Int("http.response.status_code", http.StatusCreated))
	call.End()
	o.calls.Add(context.Background(), 1, o.callSet)
	o.sends.Add(context.Background(), 1, o.opSet)
	o.callDuration.Record(context.Background(), time.Since(start).Seconds(), o.callSet)
	return err
}

func (o *otelBaselineCreator) close() error {
	o.baselineCreator.close()
	return errors.Join(o.tp.Shutdown(context.Background()), o.mp.Shutdown(context.Background()))
}
