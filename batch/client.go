package batch

import (
	"context"
	"errors"
	"time"

	prio "github.com/priosdk/prio-go"
)

// ClientBooker returns a Booker that books with c's Orders.Create. Every
// worker of a Runner shares c, hence its rate limiter, retry budget and 4XX
// guard; each create request carries the idempotency key c derives from its
// distributor id and the order_external_reference, the same in every run.
// A row that an earlier attempt may have sent is booked with
// prio.WithPreviousAttempt, so that Create looks it up first and sends only
// once it is proven absent; c's RetryPolicy.ProcessingHorizon says how long
// after a send that takes.
func ClientBooker(c *prio.Client) Booker { return clientBooker{c} }

type clientBooker struct{ c *prio.Client }

func (b clientBooker) Book(ctx context.Context, req *prio.OrderRequest, lastSend time.Time) (Receipt, error) {
	var info prio.CallInfo
	opts := []prio.CallOption{prio.WithInfo(&info)}
	if !lastSend.IsZero() {
		opts = append(opts, prio.WithPreviousAttempt(lastSend))
	}
	order, err := b.c.Orders.Create(ctx, req, opts...)
	rec := Receipt{Sends: info.Sends, Lookups: info.Lookups}
	var unknown *prio.OutcomeUnknownError
	if errors.As(err, &unknown) {
		rec.LastSend = unknown.LastSend
	}
	if err != nil {
		return rec, err
	}
	if order.OrderReference != nil {
		rec.OrderReference = *order.OrderReference
	}
	return rec, nil
}
