package prio

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"go.opentelemetry.io/otel"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// TestUntouchedGlobalsMeanOff: the global providers before anything is
// set, and the no-op providers, turn telemetry off; this breaks loudly if
// OpenTelemetry moves its global delegate.
func TestUntouchedGlobalsMeanOff(t *testing.T) {
	t.Parallel()
	assert.True(t, isGlobalDefault(otel.GetTracerProvider()))
	assert.True(t, isGlobalDefault(otel.GetMeterProvider()))
	assert.False(t, isGlobalDefault(tracenoop.NewTracerProvider()))
	assert.False(t, isGlobalDefault(nil))
	for _, cfg := range []telemetryConfig{{}, {tracerProvider: tracenoop.NewTracerProvider(), meterProvider: metricnoop.NewMeterProvider()}} {
		tel := newTelemetry(cfg, nil, nil)
		assert.False(t, tel.tracing())
		assert.False(t, tel.metrics())
	}
}
