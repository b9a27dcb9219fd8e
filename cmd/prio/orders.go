package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	prio "github.com/priosdk/prio-go"
	"github.com/priosdk/prio-go/generated"
)

// writeOrder prints an order: its header, then one row per booking.
func writeOrder(w io.Writer, o *prio.Order) error {
	total := text(o.OrderPricing.PriceTotal)
	if cur := text(o.OrderPricing.PriceCurrencyCode); cur != "" {
		total += " " + cur
	}
	if err := fields(w, "ORDER", text(o.OrderReference), "EXTERNAL", o.OrderExternalReference,
		"STATUS", string(o.OrderStatus), "CREATED", text(o.OrderCreated), "TOTAL", total); err != nil {
		return err
	}
	rows := [][]string{{"BOOKING", "PRODUCT", "STATUS", "TRAVEL DATE", "TICKETS"}}
	for _, b := range o.OrderBookings {
		tickets := 0
		for _, t := range b.ProductTypeDetails {
			tickets += t.ProductTypeCount
		}
		rows = append(rows, []string{text(b.BookingReference), b.ProductId, string(b.BookingStatus), text(b.BookingTravelDate), strconv.Itoa(tickets)})
	}
	_, _ = io.WriteString(w, "\n")
	return table(w, rows)
}

func (a *app) showOrder(o *prio.Order) error {
	return a.emit(o, func(w io.Writer) error { return writeOrder(w, o) })
}

func (a *app) ordersCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "orders", Short: "Find, list, cancel and reconcile orders"}
	get := &cobra.Command{
		Use:   "get ORDER_REFERENCE",
		Short: "Show an order by Prio's order reference",
		Args:  args("ORDER_REFERENCE"),
		RunE: a.do(func(cmd *cobra.Command, argv []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			o, err := c.Orders.Get(cmd.Context(), argv[0])
			if err != nil {
				return err
			}
			return a.showOrder(o)
		}),
	}
	find := &cobra.Command{
		Use:   "find EXTERNAL_REFERENCE",
		Short: "Show the order booked under your order_external_reference",
		Args:  args("EXTERNAL_REFERENCE"),
		RunE: a.do(func(cmd *cobra.Command, argv []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			o, err := c.Orders.FindByExternalReference(cmd.Context(), argv[0])
			if err != nil {
				return err
			}
			return a.showOrder(o)
		}),
	}
	cmd.AddCommand(get, find, a.ordersListCommand(), a.ordersCancelCommand(), a.ordersVoucherCommand(), a.ordersReconcileCommand())
	return cmd
}

func (a *app) ordersListCommand() *cobra.Command {
	var (
		statuses []string
		from, to string
		limit    int
	)
	cmd := &cobra.Command{
		Use:   "list [--status STATUS]... [--from DATE] [--to DATE] [--limit N]",
		Short: "List orders, newest first (Prio lists the last three months unless dates are given)",
		Args:  args(),
		RunE: a.do(func(cmd *cobra.Command, _ []string) error {
			if limit < 1 {
				return usagef("--limit must be at least 1")
			}
			p := &prio.ListOrdersParams{}
			if len(statuses) > 0 {
				s := make([]generated.OrderStatusTypes, 0, len(statuses))
				for _, x := range statuses {
					s = append(s, generated.OrderStatusTypes(x))
				}
				p.OrderStatus = &s
			}
			for _, d := range []struct {
				flag, value string
				dst         **prio.DateTime
				end         bool
			}{{"--from", from, &p.OrderCreatedFrom, false}, {"--to", to, &p.OrderCreatedTo, true}} {
				if d.value == "" {
					continue
				}
				t, err := time.ParseInLocation(time.DateOnly, d.value, time.Local)
				if err != nil {
					return usagef("%s %q: want YYYY-MM-DD", d.flag, d.value)
				}
				if d.end {
					t = t.AddDate(0, 0, 1).Add(-time.Second)
				}
				*d.dst = prio.Ptr(prio.DateTime{Time: t})
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			var orders []prio.Order
			for o, err := range c.Orders.List(cmd.Context(), p) {
				if err != nil {
					return err
				}
				orders = append(orders, *o)
				if len(orders) == limit {
					break
				}
			}
			return a.emit(orders, func(w io.Writer) error {
				rows := [][]string{{"ORDER", "EXTERNAL", "STATUS", "CREATED", "TOTAL"}}
				for _, o := range orders {
					rows = append(rows, []string{text(o.OrderReference), o.OrderExternalReference, string(o.OrderStatus),
						text(o.OrderCreated), text(o.OrderPricing.PriceTotal)})
				}
				return table(w, rows)
			})
		}),
	}
	cmd.Flags().StringArrayVar(&statuses, "status", nil, "only orders in this status (ORDER_CONFIRMED, ORDER_PENDING, ORDER_CANCELLED, ...); repeatable")
	cmd.Flags().StringVar(&from, "from", "", "only orders created on or after this day (YYYY-MM-DD, local time)")
	cmd.Flags().StringVar(&to, "to", "", "only orders created on or before this day (YYYY-MM-DD, local time)")
	cmd.Flags().IntVar(&limit, "limit", 50, "print at most this many orders")
	return cmd
}

func (a *app) ordersCancelCommand() *cobra.Command {
	var opts prio.CancelOptions
	cmd := &cobra.Command{
		Use:   "cancel ORDER_REFERENCE [--booking BOOKING_REFERENCE]... [--reason TEXT] [--no-refund]",
		Short: "Cancel an order, or some of its bookings, and show it afterwards",
		Args:  args("ORDER_REFERENCE"),
		RunE: a.do(func(cmd *cobra.Command, argv []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			o, err := c.Orders.Cancel(cmd.Context(), argv[0], &opts)
			if err != nil {
				return err
			}
			return a.showOrder(o)
		}),
	}
	cmd.Flags().StringArrayVar(&opts.BookingReferences, "booking", nil, "cancel only this booking; repeatable")
	cmd.Flags().StringVar(&opts.Reason, "reason", "", "cancellation reason kept by Prio")
	cmd.Flags().BoolVar(&opts.NoRefund, "no-refund", false, "keep payments (Prio refunds by default)")
	return cmd
}

func (a *app) ordersVoucherCommand() *cobra.Command {
	var (
		opts prio.VoucherOptions
		file string
	)
	cmd := &cobra.Command{
		Use:   "voucher ORDER_REFERENCE [--booking BOOKING_REFERENCE] [--force-release] [--pdf FILE]",
		Short: "Print an order's voucher URL, or save the PDF with --pdf",
		Args:  args("ORDER_REFERENCE"),
		RunE: a.do(func(cmd *cobra.Command, argv []string) error {
			opts.PDF = file != ""
			c, err := a.client()
			if err != nil {
				return err
			}
			v, err := c.Orders.Voucher(cmd.Context(), argv[0], &opts)
			if err != nil {
				return err
			}
			out := struct {
				URL   string `json:"url,omitempty"`
				File  string `json:"file,omitempty"`
				Bytes int    `json:"bytes,omitempty"`
			}{URL: v.URL}
			if opts.PDF {
				if err := os.WriteFile(file, v.PDF, 0o644); err != nil {
					return err
				}
				out.File, out.Bytes = file, len(v.PDF)
			}
			return a.emit(out, func(w io.Writer) error {
				if opts.PDF {
					return fields(w, "VOUCHER", file, "BYTES", strconv.Itoa(len(v.PDF)))
				}
				return fields(w, "VOUCHER", v.URL)
			})
		}),
	}
	cmd.Flags().StringVar(&opts.BookingReference, "booking", "", "one booking's voucher instead of the order's")
	cmd.Flags().BoolVar(&opts.ForceRelease, "force-release", false, "release the voucher while the booking is still pending")
	cmd.Flags().StringVar(&file, "pdf", "", "save the PDF to this file instead of printing the URL")
	return cmd
}

func (a *app) ordersReconcileCommand() *cobra.Command {
	sched := prio.DefaultReconcileSchedule()
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "reconcile EXTERNAL_REFERENCE [--poll-interval D] [--give-up-after D] [--timeout D]",
		Short: "Wait until the order booked under an external reference settles, and show it",
		Long: "Polls Prio (Orders.Reconcile) until the order of EXTERNAL_REFERENCE is listed in a final state,\n" +
			"printing a progress line to stderr while it waits. It exits 3 when no order appears within\n" +
			"--give-up-after (the booking did not happen and may be made again), and 5 when --timeout ends\n" +
			"the wait first (the outcome is still unknown).",
		Args: args("EXTERNAL_REFERENCE"),
		RunE: a.do(func(cmd *cobra.Command, argv []string) error {
			if sched.Interval <= 0 {
				return usagef("--poll-interval must be positive")
			}
			if sched.MaxInterval < sched.Interval {
				sched.MaxInterval = sched.Interval
			}
			c, err := a.client(prio.WithReconcileSchedule(sched))
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			stop := a.progress(argv[0], sched.Interval)
			o, err := c.Orders.Reconcile(ctx, argv[0])
			stop()
			if err != nil {
				return err
			}
			return a.showOrder(o)
		}),
	}
	cmd.Flags().DurationVar(&sched.Interval, "poll-interval", sched.Interval, "pause between look-ups for the first polls")
	cmd.Flags().IntVar(&sched.Count, "polls", sched.Count, "polls at --poll-interval before the pause doubles")
	cmd.Flags().DurationVar(&sched.MaxInterval, "max-interval", sched.MaxInterval, "longest pause between look-ups")
	cmd.Flags().DurationVar(&sched.GiveUpAfter, "give-up-after", sched.GiveUpAfter, "end with not found when no order appeared for this long (0: never)")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "stop waiting after this long, outcome unknown (0: no limit)")
	return cmd
}

// progress reports, on stderr, that reconcile is waiting for ref: on a
// terminal one line redrawn every second, elsewhere a line at the start
// and one per poll interval. The returned func ends it.
func (a *app) progress(ref string, every time.Duration) (stop func()) {
	start := time.Now()
	done := make(chan struct{})
	finished := make(chan struct{})
	tick := every
	if a.stderrIsTerm {
		tick = time.Second
		fmt.Fprintf(a.stderr, "\rreconciling %s: waiting for the order to settle…", ref)
	} else {
		fmt.Fprintf(a.stderr, "reconciling %s: waiting for the order to settle (polling every %s)\n", ref, every)
	}
	go func() {
		defer close(finished)
		t := time.NewTicker(tick)
		defer t.Stop()
		for {
			select {
			case <-done:
				if a.stderrIsTerm {
					fmt.Fprint(a.stderr, "\r\033[K")
				}
				return
			case <-t.C:
				elapsed := time.Since(start).Round(time.Second)
				if a.stderrIsTerm {
					fmt.Fprintf(a.stderr, "\rreconciling %s: waiting for the order to settle… %s", ref, elapsed)
				} else {
					fmt.Fprintf(a.stderr, "reconciling %s: still waiting after %s\n", ref, elapsed)
				}
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}
