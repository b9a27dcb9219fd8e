package prio

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// Values that must never show in a log line or an error string.
const (
	leakSecret = "cs-VERY-SECRET-4711"
	leakToken  = "tok-AbC123.dEf456.gHi789"
	leakAPIKey = "APIKEY-98765-zz"
	leakEmail  = "jane.doe@example.com"
	leakName   = "Jane Doe"
	leakPhone  = "+31 6 1234 5678"
)

// leakForms lists each value as it could appear: plain, URL-encoded,
// inside JSON.
func leakForms() []string {
	var out []string
	for _, v := range []string{leakSecret, leakToken, leakAPIKey, leakEmail, leakName, leakPhone} {
		out = append(out, v, url.QueryEscape(v), url.PathEscape(v))
	}
	return append(out, "1234 5678", "Jane+Doe", "jane.doe%40")
}

// authLike adds credentials below the retry loop, as the client's auth
// transport does: a bearer token and the API key in the query.
type authLike struct{ next http.RoundTripper }

func (a authLike) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+leakToken)
	q := r.URL.Query()
	q.Set("key", leakAPIKey)
	r.URL.RawQuery = q.Encode()
	return a.next.RoundTrip(r)
}

// TestRedactionFaultyRun makes every kind of failure at debug level with
// secrets and guest data in the request, in the answers and in the causes
// of errors, then searches every log line and error string for them.
func TestRedactionFaultyRun(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var logs bytes.Buffer
		logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		red := redactor{values: &secretSet{}}
		red.values.addFixed(leakSecret)
		red.values.addFixed(leakAPIKey)
		red.values.addToken(leakToken)

		guestJSON := fmt.Sprintf(`{"guest":{"name":%q,"email":%q,"phone":%q},"secret":%q}`, leakName, leakEmail, leakPhone, leakSecret)
		// A cause from below that quotes all it can: the URL with its
		// query (guest name included), the credentials, the guest's email
		// and phone. A name quoted as free text is beyond any pattern; no
		// layer of net/http does that, and this layer never logs bodies or
		// headers.
		quoting := func(req *http.Request) error {
			return &net.OpError{Op: "read", Net: "tcp", Err: fmt.Errorf(
				"proxy refused %s %s (Authorization: Bearer %s; client_secret=%s; guest <%s> %s)",
				req.Method, req.URL.String(), leakToken, leakSecret, leakEmail, leakPhone)}
		}
		wire := &fakeWire{answer: func(n int, req *http.Request) (*http.Response, error) {
			switch n % 4 {
			case 1:
				return wireReply(req, 503, `{"error":"DOWN","error_reference":"ref-1","error_description":"guest `+leakEmail+`"}`), nil
			case 2:
				return nil, quoting(req)
			case 3:
				return wireReply(req, 429, guestJSON, "Retry-After", "1"), nil
			}
			return nil, quoting(req)
		}}
		p := testPolicy()
		p.ClientErrorLimit = 2
		d := newDoer(authLike{countSends(wire)}, p, logger, red)
		spans := tracetest.NewSpanRecorder()
		reader := sdkmetric.NewManualReader()
		d.tel = newTelemetry(telemetryConfig{
			tracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)),
			meterProvider:  sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)),
		}, d, nil)

		query := url.Values{
			"order_external_reference": {"ext-1"},
			"guest_email":              {leakEmail},
			"guest_name":               {leakName},
			"guest_phone":              {leakPhone},
		}.Encode()
		call := func(ctx context.Context, method, key string) error {
			req := newCall(ctx, t, method, key, guestJSON, &callState{operation: "createOrder", booking: true})
			req.URL.RawQuery = query
			req.Header.Set("X-Guest", leakName+" "+leakEmail)
			resp, err := d.Do(req)
			if resp != nil {
				discardBody(resp.Body)
			}
			return err
		}

		var errs []error
		errs = append(errs, call(t.Context(), http.MethodPost, "key-1")) // 503, cause, 429, cause
		errs = append(errs, call(t.Context(), http.MethodPost, ""))      // 503, not re-sent without a key
		errs = append(errs, call(t.Context(), http.MethodGet, ""))       // 503, cause, 429, then the 4XX guard
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		errs = append(errs, call(ctx, http.MethodPost, "key-2"))

		var texts []string
		var transport, local int
		for _, err := range errs {
			if err == nil {
				continue
			}
			texts = append(texts, err.Error(), fmt.Sprintf("%v", err), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err))
			var te *TransportError
			if errors.As(err, &te) {
				transport++
				texts = append(texts, te.Err.Error(), fmt.Sprintf("%#v", te.Err))
			}
			var le *LocalLimitError
			if errors.As(err, &le) {
				local++
			}
		}
		require.Equal(t, 1, transport, "%v", errs)
		require.Equal(t, 2, local, "%v", errs)
		out := logs.String()
		require.GreaterOrEqual(t, strings.Count(out, "prio: send"), 6, "debug lines were written:\n%s", out)
		require.Contains(t, out, "prio: giving up")
		require.Contains(t, out, "REDACTED")

		// Span names, statuses, attributes and events, and metric points.
		var tel []string
		for _, sp := range spans.Ended() {
			tel = append(tel, sp.Name(), sp.Status().Description)
			for _, kv := range sp.Attributes() {
				tel = append(tel, string(kv.Key)+"="+kv.Value.String())
			}
			for _, ev := range sp.Events() {
				tel = append(tel, ev.Name)
				for _, kv := range ev.Attributes {
					tel = append(tel, string(kv.Key)+"="+kv.Value.String())
				}
			}
		}
		require.GreaterOrEqual(t, len(spans.Ended()), 6, "a span per send")
		var rm metricdata.ResourceMetrics
		require.NoError(t, reader.Collect(t.Context(), &rm))
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				tel = append(tel, fmt.Sprintf("%s %+v", m.Name, m.Data))
			}
		}
		telText := strings.Join(tel, "\n")
		require.Contains(t, telText, "url.full=")
		require.Contains(t, telText, "REDACTED", "the guest's query is in url.full, redacted")

		for _, leak := range leakForms() {
			assert.NotContains(t, telText, leak, "telemetry leaks %q", leak)
			assert.NotContains(t, out, leak, "a log line leaks %q", leak)
			for _, s := range texts {
				assert.NotContains(t, s, leak, "an error string leaks %q", leak)
			}
		}
		if t.Failed() {
			t.Logf("logs:\n%s\nerrors:\n%s", out, strings.Join(texts, "\n"))
		}
	})
}

func TestLoggingLevels(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		wire := &fakeWire{answer: always(503)}
		var logs bytes.Buffer
		logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
		d := newDoer(countSends(wire), testPolicy(), logger, redactor{})
		resp, err := d.Do(newCall(t.Context(), t, http.MethodGet, "", "", nil))
		require.NoError(t, err)
		discardBody(resp.Body)
		out := logs.String()
		assert.NotContains(t, out, "prio: send", "sends are Debug")
		assert.Equal(t, 1, strings.Count(out, "level=WARN"), "one Warn when giving up:\n%s", out)
		assert.Contains(t, out, "last_status=503")
		assert.Contains(t, out, "sends=4")

		// No logger: silent, and nothing breaks.
		d = newDoer(countSends(wire), testPolicy(), nil, redactor{})
		resp, err = d.Do(newCall(t.Context(), t, http.MethodGet, "", "", nil))
		require.NoError(t, err)
		discardBody(resp.Body)
	})
}

func TestScrub(t *testing.T) {
	t.Parallel()
	red := redactor{values: &secretSet{}}
	red.values.addFixed(leakSecret)
	u, err := url.Parse("https://prio.test/orders?guest_name=Jane+Doe&items_per_page=10")
	require.NoError(t, err)
	cases := map[string]string{
		`Get "https://prio.test/orders?guest_name=Jane+Doe&items_per_page=10": EOF`: `Get "https://prio.test/orders?[REDACTED]": EOF`,
		"dial tcp 127.0.0.1:443: connect: connection refused":                       "dial tcp 127.0.0.1:443: connect: connection refused",
		"upstream said guest_name=Jane+Doe&items_per_page=10 was bad":               "upstream said [REDACTED] was bad",
		"secret " + leakSecret + " leaked":                                          "secret [REDACTED] leaked",
		"https://other.test/x?key=abc&z=1 failed":                                   "https://other.test/x?[REDACTED] failed",
	}
	for in, want := range cases {
		assert.Equal(t, want, red.scrub(in, u), in)
	}
}
