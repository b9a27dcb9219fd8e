package prio_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	prio "github.com/priosdk/prio-go"
	"github.com/priosdk/prio-go/priotest"
)

// A *priotest.Server is a prio.Server: WithServer points a client at it.
var _ prio.Server = (*priotest.Server)(nil)

// startSandbox starts an in-process sandbox for the examples. Real code
// passes prio.WithEnvironment and the credentials Prio issued instead.
func startSandbox(opts ...priotest.Option) (*priotest.Server, []prio.Option) {
	s, err := priotest.Start("", opts...)
	if err != nil {
		log.Fatal(err)
	}
	return s, []prio.Option{prio.WithServer(s)}
}

func ExampleNewClient() {
	s, opts := startSandbox()
	defer s.Close()

	client, err := prio.NewClient(opts...)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("distributor:", client.DistributorID())
	// Output: distributor: 501
}

// A direct booking: no reservation, one adult ticket for an open product.
func ExampleOrdersService_Create() {
	s, opts := startSandbox()
	defer s.Close()
	client, _ := prio.NewClient(opts...)

	order, err := client.Orders.Create(context.Background(), &prio.OrderRequest{
		OrderExternalReference: "shop-1042",
		OrderBookings: prio.Bookings(prio.Item{
			ProductID: priotest.ProductOpen,
			Tickets:   []prio.ProductTypeDetail{prio.Tickets(priotest.ProductTypeAdult, 2)},
		}),
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(order.OrderExternalReference, order.OrderStatus, len(order.OrderBookings[0].ProductTypeDetails), "tickets")
	// Output: shop-1042 ORDER_CONFIRMED 2 tickets
}

// Hold capacity on a timed product, then confirm the hold as an order.
func ExampleReservationsService_Confirm() {
	s, opts := startSandbox()
	defer s.Close()
	client, _ := prio.NewClient(opts...)
	ctx := context.Background()

	day := time.Now().AddDate(0, 0, 7)
	slots, err := client.Products.Availability(ctx, priotest.ProductTimeSlot, &prio.AvailabilityParams{FromDate: prio.Date(day)})
	if err != nil || len(slots) == 0 {
		log.Fatal("no availability: ", err)
	}
	res, err := client.Reservations.Create(ctx, &prio.Reservation{
		ReservationExternalReference: "cart-77",
		ReservationDetails: prio.ReservationLines(prio.Item{
			ProductID:      priotest.ProductTimeSlot,
			AvailabilityID: slots[0].GetAvailabilityId(),
			Reference:      "cart-77-1",
			Tickets:        []prio.ProductTypeDetail{prio.Tickets(priotest.ProductTypeAdult, 1)},
		}),
	})
	if err != nil {
		log.Fatal(err)
	}
	order, err := client.Reservations.Confirm(ctx, res.GetReservationReference(), &prio.OrderRequest{OrderExternalReference: "cart-77"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(order.OrderStatus, order.OrderBookings[0].BookingStatus)
	// Output: ORDER_CONFIRMED BOOKING_CONFIRMED
}

// When the outcome of a booking cannot be established, Create says so with
// ErrOutcomeUnknown, and Reconcile settles it. Here the sandbox drops the
// first response and fails the look-ups that follow.
func ExampleOrdersService_Reconcile() {
	s, opts := startSandbox(priotest.WithFaults(
		priotest.Sequence("createOrder", priotest.FaultDropAfter).
			With(priotest.Sequence("getOrders", priotest.Fault5xxBefore, priotest.Fault5xxBefore, priotest.Fault5xxBefore, priotest.Fault5xxBefore))))
	defer s.Close()
	policy := prio.DefaultRetryPolicy()
	policy.BaseDelay, policy.MaxDelay = time.Millisecond, time.Millisecond
	client, _ := prio.NewClient(append(opts, prio.WithRetryPolicy(policy),
		prio.WithReconcileSchedule(prio.ReconcileSchedule{Interval: 10 * time.Millisecond, Count: 5, MaxInterval: 50 * time.Millisecond}))...)
	ctx := context.Background()

	req := &prio.OrderRequest{
		OrderExternalReference: "shop-2001",
		OrderBookings: prio.Bookings(prio.Item{
			ProductID: priotest.ProductOpen,
			Tickets:   []prio.ProductTypeDetail{prio.Tickets(priotest.ProductTypeAdult, 1)},
		}),
	}
	_, err := client.Orders.Create(ctx, req)
	var unknown *prio.OutcomeUnknownError
	if errors.As(err, &unknown) {
		fmt.Println("outcome unknown for", unknown.ExternalReference)
		order, err := client.Orders.Reconcile(ctx, unknown.ExternalReference)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("settled:", order.OrderStatus)
	}
	fmt.Println("orders on the server:", s.OrdersFor("shop-2001"))
	// Output:
	// outcome unknown for shop-2001
	// settled: ORDER_CONFIRMED
	// orders on the server: 1
}

// List iterates over every page of orders.
func ExampleOrdersService_List() {
	s, opts := startSandbox()
	defer s.Close()
	client, _ := prio.NewClient(opts...)
	ctx := context.Background()
	for i := range 3 {
		_, err := client.Orders.Create(ctx, &prio.OrderRequest{
			OrderExternalReference: fmt.Sprintf("list-%d", i),
			OrderBookings: prio.Bookings(prio.Item{
				ProductID: priotest.ProductOpen,
				Tickets:   []prio.ProductTypeDetail{prio.Tickets(priotest.ProductTypeAdult, 1)},
			}),
		})
		if err != nil {
			log.Fatal(err)
		}
	}
	perPage := 2
	n := 0
	for _, err := range client.Orders.List(ctx, &prio.ListOrdersParams{ItemsPerPage: &perPage}) {
		if err != nil {
			log.Fatal(err)
		}
		n++
	}
	fmt.Println("orders:", n)
	// Output: orders: 3
}
