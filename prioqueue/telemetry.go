package prioqueue

import (
	"github.com/riverqueue/rivercontrib/otelriver"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Telemetry returns River's OpenTelemetry middleware set up for booking
// jobs: the trace context of the code that enqueues a booking is kept in
// the job's metadata, and the span that works the job (river.work/
// prio_create_order) links to it, so one trace shows the enqueue, every
// attempt, and under each attempt the client's prio.createOrder span and
// its sends to Prio. Give the same providers to the prio.Client
// (prio.WithTracerProvider, prio.WithMeterProvider); nil means the global
// ones. Put the middleware in river.Config.Middleware of every River
// client that inserts or works booking jobs:
//
//	river.NewClient(riverpgxv5.New(pool), &river.Config{
//		Middleware: []rivertype.Middleware{prioqueue.Telemetry(tp, mp)},
//		...
//	})
//
// River's own metrics (river.insert_count, river.work_count,
// river.work_duration_histogram, ...) come with it.
func Telemetry(tp trace.TracerProvider, mp metric.MeterProvider) *otelriver.Middleware {
	return otelriver.NewMiddleware(&otelriver.MiddlewareConfig{
		EnableTracePropagation:      true,
		EnableWorkSpanJobKindSuffix: true,
		TracerProvider:              tp,
		MeterProvider:               mp,
	})
}
