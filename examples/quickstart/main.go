// Command quickstart books one order and shows that it survives a dropped
// response without being booked twice.
//
// With no PRIO_* variables it starts the embedded sandbox (package
// priotest) with one injected fault: the first Create Order is processed and
// its response is dropped, as when a connection dies on the way back. The
// client notices the doubt, looks the order up by its external reference,
// and returns the one order the server holds.
//
// With PRIO_CLIENT_ID, PRIO_CLIENT_SECRET, PRIO_DISTRIBUTOR_ID and PRIO_ENV
// (or PRIO_BASE_URL) it runs the same flow against the real API; set
// PRIO_PRODUCT_ID and PRIO_PRODUCT_TYPE_ID to a bookable open product.
//
//	go run ./examples/quickstart
//
// With -otel the client also records OpenTelemetry traces and metrics, and
// prints them at the end with the stdout exporters: the call's span, its
// sends and its look-up, and every instrument docs/TELEMETRY.md lists.
//
//	go run ./examples/quickstart -otel
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"go.opentelemetry.io/otel/exporters/stdout/stdoutmetric"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	prio "github.com/priosdk/prio-go"
	"github.com/priosdk/prio-go/priotest"
)

func main() {
	withOTel := flag.Bool("otel", false, "record OpenTelemetry traces and metrics and print them (stdout exporters)")
	flag.Parse()
	if err := run(os.Stdout, *withOTel); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

// telemetry builds a tracer and a meter provider that print to out when
// shut down, and the options that give them to the client.
func telemetry(out io.Writer) (opts []prio.Option, shutdown func(context.Context) error, err error) {
	spans, err := stdouttrace.New(stdouttrace.WithWriter(out), stdouttrace.WithPrettyPrint())
	if err != nil {
		return nil, nil, err
	}
	metrics, err := stdoutmetric.New(stdoutmetric.WithWriter(out), stdoutmetric.WithPrettyPrint())
	if err != nil {
		return nil, nil, err
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(spans))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewPeriodicReader(metrics)))
	shutdown = func(ctx context.Context) error {
		fmt.Fprintln(out, "\nOpenTelemetry traces, then metrics:")
		return errors.Join(tp.Shutdown(ctx), mp.Shutdown(ctx))
	}
	return []prio.Option{prio.WithTracerProvider(tp), prio.WithMeterProvider(mp)}, shutdown, nil
}

func run(out io.Writer, withOTel bool) (err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	opts, real, err := prio.FromEnv()
	if err != nil {
		return err
	}
	productID, productTypeID := os.Getenv("PRIO_PRODUCT_ID"), os.Getenv("PRIO_PRODUCT_TYPE_ID")
	var sandbox *priotest.Server
	if !real {
		sandbox, err = priotest.Start("", priotest.WithFaults(priotest.Sequence("createOrder", priotest.FaultDropAfter)))
		if err != nil {
			return fmt.Errorf("starting the sandbox: %w", err)
		}
		defer sandbox.Close()
		fmt.Fprintln(out, "sandbox:", sandbox.URL())
		fmt.Fprintln(out, "fault:   the first Create Order is processed, then its connection is closed without a response")
		opts = []prio.Option{prio.WithServer(sandbox)}
		productID, productTypeID = priotest.ProductOpen, priotest.ProductTypeAdult
	} else if productID == "" || productTypeID == "" {
		return errors.New("set PRIO_PRODUCT_ID and PRIO_PRODUCT_TYPE_ID to a bookable product for the real API")
	}

	var shutdown func(context.Context) error
	if withOTel {
		var tel []prio.Option
		tel, shutdown, err = telemetry(out)
		if err != nil {
			return err
		}
		opts = append(opts, tel...)
	}

	client, err := prio.NewClient(opts...)
	if err != nil {
		return err
	}
	if shutdown != nil {
		// A client's gauges are observed for as long as the client is in
		// use: keep it until the providers' last export.
		defer func() {
			err = errors.Join(err, shutdown(context.WithoutCancel(ctx)))
			runtime.KeepAlive(client)
		}()
	}

	ref := fmt.Sprintf("quickstart-%d", time.Now().UnixNano())
	var info prio.CallInfo
	order, err := client.Orders.Create(ctx, &prio.OrderRequest{
		OrderExternalReference: ref,
		OrderBookings: prio.Bookings(prio.Item{
			ProductID: productID,
			Tickets:   []prio.ProductTypeDetail{prio.Tickets(productTypeID, 1)},
		}),
	}, prio.WithInfo(&info))
	if errors.Is(err, prio.ErrOutcomeUnknown) {
		fmt.Fprintln(out, "outcome unknown; reconciling", ref)
		order, err = client.Orders.Reconcile(ctx, ref)
	}
	if err != nil {
		return err
	}

	fmt.Fprintln(out, "external reference:", ref)
	fmt.Fprintln(out, "order reference:   ", order.GetOrderReference())
	fmt.Fprintln(out, "order status:      ", order.OrderStatus)
	fmt.Fprintln(out, "idempotency key:   ", info.IdempotencyKey)
	fmt.Fprintln(out, "sends:             ", info.Sends)
	fmt.Fprintln(out, "look-ups:          ", info.Lookups)
	if sandbox != nil {
		fmt.Fprintf(out, "orders for external reference %s: %d\n", ref, sandbox.OrdersFor(ref))
	}
	return nil
}
