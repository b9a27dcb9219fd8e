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

// The whole booking flow of a reseller: products, availability, a hold,
// its confirmation, the order and its voucher, a filtered list, a
// cancellation, and the errors a booking can end in. Nothing here names
// the generated package or takes the address of a required value.
func Example_bookingFlow() {
	sandbox, err := priotest.Start("")
	if err != nil {
		log.Fatal(err)
	}
	defer sandbox.Close()
	client, err := prio.NewClient(prio.WithServer(sandbox))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()

	// The catalogue.
	for p, err := range client.Products.List(ctx, nil) {
		if err != nil {
			log.Fatal(err)
		}
		if p.ProductAdmissionType == prio.AdmissionTimeSlot {
			fmt.Println("timed product:", p.GetProductId(), p.ProductContent.ProductTitle)
		}
	}

	// A slot a week from now with room for two.
	day := time.Now().AddDate(0, 0, 7)
	slots, err := client.Products.Availability(ctx, priotest.ProductTimeSlot, &prio.AvailabilityParams{FromDate: prio.Date(day)})
	if err != nil {
		log.Fatal(err)
	}
	var slot prio.Availability
	for _, s := range slots {
		if s.GetAvailabilitySpots().AvailabilitySpotsOpen >= 2 {
			slot = s
			break
		}
	}
	fmt.Println("slot found:", slot.GetAvailabilityId() != "")

	// Hold two adult tickets, then confirm the hold by its reference.
	hold, err := client.Reservations.Create(ctx, &prio.Reservation{
		ReservationExternalReference: "cart-5001",
		ReservationDetails: prio.ReservationLines(prio.Item{
			ProductID:      priotest.ProductTimeSlot,
			AvailabilityID: slot.GetAvailabilityId(),
			Tickets:        []prio.ProductTypeDetail{prio.Tickets(priotest.ProductTypeAdult, 2)},
		}),
	})
	if err != nil {
		log.Fatal(err)
	}
	order, err := client.Reservations.Confirm(ctx, hold.GetReservationReference(), &prio.OrderRequest{
		OrderExternalReference: "shop-5001",
		OrderContacts:          prio.Contacts(prio.Person{FirstName: "Ada", LastName: "Lovelace", Email: "ada@example.com"}),
	}, prio.WithHoldUntil(hold.GetReservationValidUntil().Time))
	if errors.Is(err, prio.ErrOutcomeUnknown) {
		order, err = client.Orders.Reconcile(ctx, "shop-5001") // it may exist: settle it, never rebook
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("order:", order.OrderStatus, order.OrderBookings[0].BookingStatus)

	// Read it back, with its voucher.
	order, err = client.Orders.Get(ctx, order.GetOrderReference())
	if err != nil {
		log.Fatal(err)
	}
	voucher, err := client.Orders.Voucher(ctx, order.GetOrderReference(), nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("tickets:", len(order.OrderBookings[0].ProductTypeDetails), "voucher:", voucher.URL != "")

	// List the confirmed orders.
	confirmed := 0
	for o, err := range client.Orders.List(ctx, &prio.ListOrdersParams{OrderStatus: &[]prio.OrderStatus{prio.OrderConfirmed}}) {
		if err != nil {
			log.Fatal(err)
		}
		if o.OrderStatus == prio.OrderConfirmed {
			confirmed++
		}
	}
	fmt.Println("confirmed orders:", confirmed)

	// Cancel it.
	order, err = client.Orders.Cancel(ctx, order.GetOrderReference(), &prio.CancelOptions{Reason: "guest cancelled"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("after cancel:", order.OrderStatus)

	// A supplier that declines: the code says why.
	_, err = client.Orders.Create(ctx, &prio.OrderRequest{
		OrderExternalReference: "shop-5002",
		OrderBookings: prio.Bookings(prio.Item{
			ProductID: priotest.ProductDeclined,
			Tickets:   []prio.ProductTypeDetail{prio.Tickets(priotest.ProductTypeAdult, 1)},
		}),
	})
	var apiErr *prio.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.Code {
		case prio.CodeBookingDeclined:
			fmt.Println("declined by the supplier")
		case prio.CodeNoAvailability:
			fmt.Println("sold out")
		default:
			fmt.Println("refused:", apiErr.Code)
		}
	}
	fmt.Println("orders held by the sandbox for shop-5001:", sandbox.OrdersFor("shop-5001"))
	// Output:
	// timed product: 30002 Sandbox Tower timed entry
	// slot found: true
	// order: ORDER_CONFIRMED BOOKING_CONFIRMED
	// tickets: 2 voucher: true
	// confirmed orders: 1
	// after cancel: ORDER_CANCELLED
	// declined by the supplier
	// orders held by the sandbox for shop-5001: 1
}
