package prio_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	prio "github.com/priosdk/prio-go"
	"github.com/priosdk/prio-go/generated"
	"github.com/priosdk/prio-go/priotest"
)

// benchServerCalls bounds the creates one sandbox serves in a benchmark:
// past 10,000 stored idempotency keys the sandbox's key store sweeps all
// of them on every new key, and the figures would measure that sweep.
const benchServerCalls = 5000

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
			p := prio.DefaultRetryPolicy()
			p.RequestsPerMinute = 0
			c, err := prio.NewClient(prio.WithServer(s), prio.WithRetryPolicy(p))
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
			p := prio.DefaultRetryPolicy()
			p.RequestsPerMinute = 0
			tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithBatcher(tracetest.NewNoopExporter()))
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
			b.Cleanup(func() {
				_ = tp.Shutdown(context.Background())
				_ = mp.Shutdown(context.Background())
			})
			c, err := prio.NewClient(prio.WithBaseURL(s.URL()),
				prio.WithCredentials(priotest.DefaultClientID, priotest.DefaultClientSecret),
				prio.WithDistributorID(priotest.DefaultDistributorID), prio.WithRetryPolicy(p),
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
			auth := "Bearer " + benchToken(b, hc, s.URL())
			return func(ctx context.Context, ref string) error {
				req := benchOrder(ref)
				req.OrderDistributorId, req.OrderLanguage = priotest.DefaultDistributorID, "en"
				req.OrderBookings[0].BookingOptionType = prio.DirectBooking
				kind := generated.Kind("order")
				body, err := json.Marshal(generated.CreateOrderRequest{Data: generated.CreateOrderRequestData{Kind: &kind, Order: *req}})
				if err != nil {
					return err
				}
				hr, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL()+"/orders", bytes.NewReader(body))
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
		})
	})
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
