package prioqueue_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	prio "github.com/priosdk/prio-go"
	"github.com/priosdk/prio-go/prioqueue"
)

// TestTelemetryFromEnqueueToPrio: a booking enqueued inside a span is
// inserted under it and worked under a span linked to the insert, and the client's call and its send
// to Prio are children of the work span.
func TestTelemetryFromEnqueueToPrio(t *testing.T) {
	t.Parallel()
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	t.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	e := newEnv(t, envOptions{
		client:     []prio.Option{prio.WithTracerProvider(tp), prio.WithMeterProvider(mp)},
		middleware: []rivertype.Middleware{prioqueue.Telemetry(tp, mp)},
	})

	ctx, checkout := tp.Tracer("shop").Start(t.Context(), "checkout")
	_, err := e.queue.Insert(ctx, args(t, request("OTEL-1")), nil)
	require.NoError(t, err)
	checkout.End()
	st := e.waitSettled(t, "OTEL-1", 20*time.Second)
	require.True(t, st.Settled())

	byName := map[string]sdktrace.ReadOnlySpan{}
	require.Eventually(t, func() bool {
		for _, s := range spans.Ended() {
			byName[s.Name()] = s
		}
		_, ok := byName["river.work/"+prioqueue.Kind]
		return ok && byName["prio.createOrder"] != nil
	}, 10*time.Second, 10*time.Millisecond)

	enqueue := byName["checkout"]
	require.NotNil(t, enqueue)
	work := byName["river.work/"+prioqueue.Kind]
	call := byName["prio.createOrder"]
	send := byName[http.MethodPost]
	require.NotNil(t, send)

	insert := byName["river.insert_many"]
	require.NotNil(t, insert)
	assert.Equal(t, enqueue.SpanContext().SpanID(), insert.Parent().SpanID(), "the insert runs under the caller's span")
	require.Len(t, work.Links(), 1, "the work span links to the insert")
	assert.Equal(t, enqueue.SpanContext().TraceID(), work.Links()[0].SpanContext.TraceID())
	assert.Equal(t, insert.SpanContext().SpanID(), work.Links()[0].SpanContext.SpanID())
	assert.Equal(t, work.SpanContext().SpanID(), call.Parent().SpanID(), "the booking call runs under the work span")
	assert.Equal(t, work.SpanContext().TraceID(), call.SpanContext().TraceID())
	assert.Equal(t, call.SpanContext().SpanID(), send.Parent().SpanID(), "the send to Prio runs under the call")
	for _, kv := range call.Attributes() {
		if kv.Key == "prio.outcome" {
			assert.Equal(t, "ok", kv.Value.AsString())
		}
	}
}
