package main

import (
	"io"
	"strconv"

	"github.com/spf13/cobra"

	prio "github.com/priosdk/prio-go"
)

func writeReservation(w io.Writer, r *prio.Reservation) error {
	total := ""
	if p := r.ReservationPricing; p != nil {
		total = text(p.PriceTotal)
		if cur := text(p.PriceCurrencyCode); cur != "" {
			total += " " + cur
		}
	}
	if err := fields(w, "RESERVATION", text(r.ReservationReference), "EXTERNAL", r.ReservationExternalReference,
		"VALID UNTIL", text(r.ReservationValidUntil), "TOTAL", total); err != nil {
		return err
	}
	rows := [][]string{{"LINE", "PRODUCT", "STATUS", "AVAILABILITY", "TICKETS"}}
	for _, d := range r.ReservationDetails {
		tickets := 0
		for _, t := range d.ProductTypeDetails {
			tickets += t.ProductTypeCount
		}
		rows = append(rows, []string{text(d.BookingReservationReference), d.ProductId, text(d.BookingStatus),
			text(d.ProductAvailabilityId), strconv.Itoa(tickets)})
	}
	_, _ = io.WriteString(w, "\n")
	return table(w, rows)
}

func (a *app) reservationsCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "reservations", Short: "Read and cancel reservations (holds on capacity)"}
	get := &cobra.Command{
		Use:   "get RESERVATION_REFERENCE",
		Short: "Show a reservation, expired ones included",
		Args:  args("RESERVATION_REFERENCE"),
		RunE: a.do(func(cmd *cobra.Command, argv []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			r, err := c.Reservations.Get(cmd.Context(), argv[0])
			if err != nil {
				return err
			}
			return a.emit(r, func(w io.Writer) error { return writeReservation(w, r) })
		}),
	}
	var (
		lines  []string
		reason string
	)
	cancel := &cobra.Command{
		Use:   "cancel RESERVATION_REFERENCE [--line LINE_REFERENCE]... [--reason TEXT]",
		Short: "Release a reservation, or some of its lines, and show it afterwards",
		Args:  args("RESERVATION_REFERENCE"),
		RunE: a.do(func(cmd *cobra.Command, argv []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			r, err := c.Reservations.Cancel(cmd.Context(), argv[0], &prio.CancelOptions{BookingReferences: lines, Reason: reason})
			if err != nil {
				return err
			}
			return a.emit(r, func(w io.Writer) error { return writeReservation(w, r) })
		}),
	}
	cancel.Flags().StringArrayVar(&lines, "line", nil, "release only this line (booking_reservation_reference); repeatable")
	cancel.Flags().StringVar(&reason, "reason", "", "cancellation reason kept by Prio")
	cmd.AddCommand(get, cancel)
	return cmd
}
