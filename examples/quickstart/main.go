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
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	prio "github.com/priosdk/prio-go"
	"github.com/priosdk/prio-go/priotest"
)

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run(out io.Writer) error {
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

	client, err := prio.NewClient(opts...)
	if err != nil {
		return err
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
