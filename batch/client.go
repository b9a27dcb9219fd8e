package batch

import (
	"context"

	prio "github.com/priosdk/prio-go"
)

// ClientBooker returns a Booker that books with c. Every worker of a
// Runner shares c, hence its rate limiter, retry budget and 4XX guard; each
// create request carries the idempotency key c derives from its distributor
// id and the order_external_reference, the same in every run.
func ClientBooker(c *prio.Client) Booker { return clientBooker{c} }

type clientBooker struct{ c *prio.Client }

func (b clientBooker) Book(ctx context.Context, req *prio.OrderRequest) (Receipt, error) {
	var info prio.CallInfo
	order, err := b.c.Orders.Create(ctx, req, prio.WithInfo(&info))
	rec := Receipt{Sends: info.Sends}
	if err != nil {
		return rec, err
	}
	if order.OrderReference != nil {
		rec.OrderReference = *order.OrderReference
	}
	return rec, nil
}

func (b clientBooker) Find(ctx context.Context, ref string) (string, error) {
	order, err := b.c.Orders.FindByExternalReference(ctx, ref)
	if err != nil {
		return "", err
	}
	if order.OrderReference == nil {
		return "", nil
	}
	return *order.OrderReference, nil
}
