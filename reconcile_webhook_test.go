package prio_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	prio "github.com/priosdk/prio-go"
	"github.com/priosdk/prio-go/generated"
	"github.com/priosdk/prio-go/priotest"
)

// TestReconcileSettledByWebhook: an order still processing at Prio is
// settled by the notification, long before the polling schedule (one poll
// an hour here) would have looked again.
func TestReconcileSettledByWebhook(t *testing.T) {
	t.Parallel()
	s := priotest.NewServer(t, priotest.WithSlowSupplierDelay(300*time.Millisecond))
	c := newClient(t, s, prio.WithReconcileSchedule(prio.ReconcileSchedule{Interval: time.Hour, Count: 5, MaxInterval: time.Hour}))
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()

	events := make(chan string, 16)
	h := prio.NewWebhookHandler(func(_ context.Context, ev prio.WebhookEvent) error {
		events <- ev.Type
		return nil
	}, prio.WithWebhookAuth("hook-secret"), prio.WithWebhookNotify(c.NotifyOrderEvent))
	receiver := httptest.NewServer(h)
	defer receiver.Close()
	url, auth := receiver.URL, "hook-secret"
	_, err := c.Webhooks.Create(ctx, &prio.Webhook{WebhookUrl: &url, WebhookAuth: &auth,
		WebhookEvents: []generated.NotificationEvent{prio.EventOrderCreate, prio.EventOrderUpdate}})
	require.NoError(t, err)

	o, err := c.Orders.Create(ctx, orderFor("slow-webhook", priotest.ProductSlow))
	require.NoError(t, err)
	require.Equal(t, "ORDER_PENDING", string(o.OrderStatus))

	start := time.Now()
	settled, err := c.Orders.Reconcile(ctx, "slow-webhook")
	require.NoError(t, err)
	assert.Equal(t, "ORDER_CONFIRMED", string(settled.OrderStatus))
	assert.Less(t, time.Since(start), 10*time.Second, "woken by the webhook, not by the hourly poll")

	polls := 0
	for _, r := range s.Requests() {
		if r.Operation == "getOrders" {
			polls++
		}
	}
	assert.LessOrEqual(t, polls, 3, "a poll at the start, and one per notification")
	assert.Contains(t, drain(events), prio.EventOrderUpdate)
}

func drain(ch chan string) []string {
	var out []string
	for {
		select {
		case v := <-ch:
			out = append(out, v)
		default:
			return out
		}
	}
}
