// Command bookingflow is a small reseller program written only against
// package prio: it lists the catalogue, checks a slot's availability, holds
// it, confirms the hold, reads the order and its voucher, lists orders with
// a filter, cancels, and handles a booking whose outcome is unknown and a
// booking the supplier declines.
//
// It runs on the embedded sandbox (package priotest), which drops the
// answer to the confirmation and fails the look-ups after it, so the
// outcome is unknown and the program settles it with Reconcile; the
// sandbox then holds exactly one order.
//
//	go run ./examples/bookingflow
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
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bookingflow:", err)
		os.Exit(1)
	}
}

// run starts the sandbox, points a client at it and books.
func run(ctx context.Context, out io.Writer) error {
	sandbox, err := priotest.Start("", priotest.WithFaults(
		priotest.Sequence("createOrder", priotest.FaultDropAfter).With(
			priotest.Sequence("getOrders", priotest.Fault5xxBefore, priotest.Fault5xxBefore, priotest.Fault5xxBefore, priotest.Fault5xxBefore))))
	if err != nil {
		return err
	}
	defer sandbox.Close()
	policy := prio.DefaultRetryPolicy()
	policy.BaseDelay, policy.MaxDelay = time.Millisecond, 5*time.Millisecond
	client, err := prio.NewClient(prio.WithServer(sandbox), prio.WithRetryPolicy(policy),
		prio.WithReconcileSchedule(prio.ReconcileSchedule{Interval: 20 * time.Millisecond, Count: 5, MaxInterval: 100 * time.Millisecond}))
	if err != nil {
		return err
	}
	if err := book(ctx, client, out); err != nil {
		return err
	}
	fmt.Fprintln(out, "orders the sandbox holds for shop-7001:", sandbox.OrdersFor("shop-7001"))
	return nil
}

// book is the reseller's flow.
func book(ctx context.Context, client *prio.Client, out io.Writer) error {
	var timed string
	for p, err := range client.Products.List(ctx, nil) {
		if err != nil {
			return fmt.Errorf("listing products: %w", err)
		}
		fmt.Fprintf(out, "product %s: %s (%s)\n", p.GetProductId(), p.ProductContent.ProductTitle, p.ProductAdmissionType)
		if p.ProductAdmissionType == prio.AdmissionTimeSlot && timed == "" {
			timed = p.GetProductId()
		}
	}

	slots, err := client.Products.Availability(ctx, timed, &prio.AvailabilityParams{FromDate: prio.Date(time.Now().AddDate(0, 0, 3))})
	if err != nil {
		return fmt.Errorf("availability: %w", err)
	}
	var slot string
	for _, s := range slots {
		if s.GetAvailabilitySpots().AvailabilitySpotsOpen >= 2 {
			slot = s.GetAvailabilityId()
			break
		}
	}
	if slot == "" {
		return errors.New("no slot with two open spots")
	}

	hold, err := client.Reservations.Create(ctx, &prio.Reservation{
		ReservationExternalReference: "cart-7001",
		ReservationDetails: prio.ReservationLines(prio.Item{
			ProductID:      timed,
			AvailabilityID: slot,
			Tickets: []prio.ProductTypeDetail{
				prio.Tickets(priotest.ProductTypeAdult, 1),
				prio.Tickets(priotest.ProductTypeChild, 1),
			},
		}),
	})
	if err != nil {
		return fmt.Errorf("holding: %w", err)
	}
	fmt.Fprintln(out, "held until set:", !hold.GetReservationValidUntil().IsZero())

	order, err := client.Reservations.Confirm(ctx, hold.GetReservationReference(), &prio.OrderRequest{
		OrderExternalReference: "shop-7001",
		OrderContacts:          prio.Contacts(prio.Person{FirstName: "Grace", LastName: "Hopper", Email: "grace@example.com"}),
	}, prio.WithHoldUntil(hold.GetReservationValidUntil().Time))
	var unknown *prio.OutcomeUnknownError
	switch {
	case errors.As(err, &unknown):
		// The order may exist: settle it by its reference, never book again.
		fmt.Fprintln(out, "outcome unknown; reconciling", unknown.ExternalReference)
		order, err = client.Orders.Reconcile(ctx, unknown.ExternalReference)
		if err != nil {
			return fmt.Errorf("reconciling: %w", err)
		}
	case errors.Is(err, prio.ErrHoldExpired):
		return fmt.Errorf("the hold lapsed; start again: %w", err)
	case err != nil:
		return fmt.Errorf("confirming: %w", err)
	}
	fmt.Fprintln(out, "order:", order.OrderStatus)

	order, err = client.Orders.Get(ctx, order.GetOrderReference())
	if err != nil {
		return fmt.Errorf("reading the order: %w", err)
	}
	for _, b := range order.OrderBookings {
		switch b.BookingStatus {
		case prio.BookingConfirmed:
			fmt.Fprintln(out, "booking confirmed:", len(b.ProductTypeDetails), "tickets")
		default:
			fmt.Fprintln(out, "booking:", b.BookingStatus)
		}
	}
	voucher, err := client.Orders.Voucher(ctx, order.GetOrderReference(), nil)
	if err != nil {
		return fmt.Errorf("voucher: %w", err)
	}
	fmt.Fprintln(out, "voucher URL set:", voucher.URL != "")

	n := 0
	for o, err := range client.Orders.List(ctx, &prio.ListOrdersParams{OrderStatus: &[]prio.OrderStatus{prio.OrderConfirmed}}) {
		if err != nil {
			return fmt.Errorf("listing orders: %w", err)
		}
		if o.OrderExternalReference == "shop-7001" {
			n++
		}
	}
	fmt.Fprintln(out, "confirmed orders for shop-7001:", n)

	order, err = client.Orders.Cancel(ctx, order.GetOrderReference(), &prio.CancelOptions{Reason: "plans changed"})
	if err != nil {
		return fmt.Errorf("cancelling: %w", err)
	}
	fmt.Fprintln(out, "after cancel:", order.OrderStatus)

	_, err = client.Orders.Create(ctx, &prio.OrderRequest{
		OrderExternalReference: "shop-7002",
		OrderBookings: prio.Bookings(prio.Item{
			ProductID: priotest.ProductDeclined,
			Tickets:   []prio.ProductTypeDetail{prio.Tickets(priotest.ProductTypeAdult, 1)},
		}),
	})
	var refused *prio.APIError
	if !errors.As(err, &refused) {
		return fmt.Errorf("the declining supplier: want a refusal, got %v", err)
	}
	switch refused.Code {
	case prio.CodeBookingDeclined:
		fmt.Fprintln(out, "shop-7002 declined by the supplier; error_reference set:", refused.Reference != "")
	case prio.CodeNoAvailability:
		fmt.Fprintln(out, "shop-7002 sold out")
	default:
		return fmt.Errorf("shop-7002: %w", err)
	}
	return nil
}
