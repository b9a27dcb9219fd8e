package main

import (
	"context"
	"errors"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	prio "github.com/priosdk/prio-go"
	"github.com/priosdk/prio-go/priotest"
)

// nameSDKOTel is the SDK with a real OpenTelemetry tracer and meter.
const nameSDKOTel = "prio-go + otel"

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

func newOTelCreator(s *priotest.Server, concurrency int) (*otelCreator, error) {
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
