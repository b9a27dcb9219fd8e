package main

import (
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	prio "github.com/priosdk/prio-go"
)

func (a *app) productsCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "products", Short: "Read the product catalogue"}
	list := &cobra.Command{
		Use:   "list",
		Short: "List every product sold to the distributor",
		Args:  args(),
		RunE: a.do(func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			var all []prio.Product
			for p, err := range c.Products.List(cmd.Context(), nil) {
				if err != nil {
					return err
				}
				all = append(all, *p)
			}
			return a.emit(all, func(w io.Writer) error {
				rows := [][]string{{"PRODUCT", "ADMISSION", "FROM PRICE", "TITLE"}}
				for _, p := range all {
					rows = append(rows, []string{text(p.ProductId), string(p.ProductAdmissionType), text(p.ProductFromPrice), p.ProductContent.ProductTitle})
				}
				return table(w, rows)
			})
		}),
	}
	get := &cobra.Command{
		Use:   "get PRODUCT_ID",
		Short: "Show one product and its product types",
		Args:  args("PRODUCT_ID"),
		RunE: a.do(func(cmd *cobra.Command, argv []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			p, err := c.Products.Get(cmd.Context(), argv[0])
			if err != nil {
				return err
			}
			return a.emit(p, func(w io.Writer) error {
				if err := fields(w, "PRODUCT", text(p.ProductId), "TITLE", p.ProductContent.ProductTitle,
					"ADMISSION", string(p.ProductAdmissionType), "STATUS", text(p.ProductStatus),
					"AVAILABILITY", strconv.FormatBool(p.ProductAvailability.Bool()), "FROM PRICE", text(p.ProductFromPrice)); err != nil {
					return err
				}
				rows := [][]string{{"", "TYPE ID", "TYPE", "LABEL", "PRICE"}}
				for _, season := range p.ProductTypeSeasons {
					for _, t := range season.ProductTypeSeasonDetails {
						rows = append(rows, []string{"", text(t.ProductTypeId), string(t.ProductType), text(t.ProductTypeLabel),
							text(&t.ProductTypePricing.ProductTypeSalesPrice)})
					}
				}
				_, _ = io.WriteString(w, "\n")
				return table(w, rows)
			})
		}),
	}
	cmd.AddCommand(list, get)
	return cmd
}

func (a *app) availabilityCommand() *cobra.Command {
	var from, to string
	var minOpen int
	cmd := &cobra.Command{
		Use:   "availability PRODUCT_ID --from YYYY-MM-DD [--to YYYY-MM-DD]",
		Short: "List a product's availability (slots and open spots) over at most 90 days",
		Args:  args("PRODUCT_ID"),
		RunE: a.do(func(cmd *cobra.Command, argv []string) error {
			if from == "" {
				return usagef("--from is required")
			}
			params := &prio.AvailabilityParams{}
			d, err := time.Parse(time.DateOnly, from)
			if err != nil {
				return usagef("--from %q: want YYYY-MM-DD", from)
			}
			params.FromDate = prio.Date(d)
			if to != "" {
				d, err := time.Parse(time.DateOnly, to)
				if err != nil {
					return usagef("--to %q: want YYYY-MM-DD", to)
				}
				params.ToDate = prio.Ptr(prio.Date(d))
			}
			if cmd.Flags().Changed("min-open") {
				params.SpotsOpenMin = &minOpen
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			slots, err := c.Products.Availability(cmd.Context(), argv[0], params)
			if err != nil {
				return err
			}
			return a.emit(slots, func(w io.Writer) error {
				rows := [][]string{{"AVAILABILITY", "FROM", "TO", "OPEN", "TOTAL"}}
				for _, s := range slots {
					open, total := "", ""
					if sp := s.AvailabilitySpots; sp != nil {
						open, total = strconv.Itoa(sp.AvailabilitySpotsOpen), text(sp.AvailabilitySpotsTotal)
					}
					rows = append(rows, []string{text(s.AvailabilityId), s.AvailabilityFromDateTime.String(), text(s.AvailabilityToDateTime), open, total})
				}
				return table(w, rows)
			})
		}),
	}
	cmd.Flags().StringVar(&from, "from", "", "first day (YYYY-MM-DD, required)")
	cmd.Flags().StringVar(&to, "to", "", "last day (YYYY-MM-DD; default: the first day)")
	cmd.Flags().IntVar(&minOpen, "min-open", 0, "only slots with at least this many open spots")
	return cmd
}
