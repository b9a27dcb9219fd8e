// Command webhooks receives Prio's order notifications.
//
// It starts the embedded sandbox and a receiver (prio.WebhookHandler) on a
// loopback port, subscribes the receiver to order events with a Basic
// credential, books one order, and logs the notification the sandbox
// delivers for it. A delivery with the wrong credential is refused, and a
// second delivery of the same notification is dropped.
//
//	go run ./examples/webhooks
//
// Against the real API, mount prio.NewWebhookHandler on a public HTTPS URL
// and subscribe it with client.Webhooks.Create; Prio then calls it.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	prio "github.com/priosdk/prio-go"
	"github.com/priosdk/prio-go/priotest"
)

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "webhooks:", err)
		os.Exit(1)
	}
}

func run(out io.Writer) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	logger := slog.New(slog.NewTextHandler(out, nil))

	sandbox, err := priotest.Start("")
	if err != nil {
		return err
	}
	defer sandbox.Close()
	client, err := prio.NewClient(prio.WithServer(sandbox))
	if err != nil {
		return err
	}

	// The value Prio will send back as "Authorization: Basic <value>".
	raw := make([]byte, 16)
	_, _ = rand.Read(raw)
	auth := hex.EncodeToString(raw)

	received := make(chan prio.WebhookEvent, 8)
	handler := prio.NewWebhookHandler(func(_ context.Context, ev prio.WebhookEvent) error {
		logger.Info("notification", "id", ev.ID, "event", ev.Type, "order_reference", ev.OrderReference(),
			"external_reference", ev.ExternalReference(), "created", ev.Created.Format(time.RFC3339))
		received <- ev
		return nil
	}, prio.WithWebhookAuth(auth), prio.WithWebhookNotify(client.NotifyOrderEvent), prio.WithWebhookLogger(logger))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	url := "http://" + ln.Addr().String() + "/prio/notifications"
	logger.Info("receiver listening", "url", url)

	hook, err := client.Webhooks.Create(ctx, &prio.Webhook{
		WebhookUrl:    &url,
		WebhookAuth:   &auth,
		WebhookEvents: []prio.NotificationEvent{prio.EventOrderCreate, prio.EventOrderUpdate, prio.EventOrderCancel},
	})
	if err != nil {
		return fmt.Errorf("subscribing: %w", err)
	}
	logger.Info("subscribed", "webhook_id", hook.GetWebhookId())

	ref := fmt.Sprintf("webhook-demo-%d", time.Now().UnixNano())
	order, err := client.Orders.Create(ctx, &prio.OrderRequest{
		OrderExternalReference: ref,
		OrderBookings: prio.Bookings(prio.Item{
			ProductID: priotest.ProductOpen,
			Tickets:   []prio.ProductTypeDetail{prio.Tickets(priotest.ProductTypeAdult, 1)},
		}),
	})
	if err != nil {
		return err
	}
	logger.Info("booked", "order_reference", order.GetOrderReference(), "external_reference", ref)

	var first prio.WebhookEvent
	select {
	case first = <-received:
		if first.OrderReference() != order.GetOrderReference() {
			return fmt.Errorf("notification for %q, booked %q", first.OrderReference(), order.GetOrderReference())
		}
	case <-ctx.Done():
		return errors.New("no notification arrived")
	}

	// The same notification delivered again is acknowledged but not handed
	// to the receiver function a second time.
	if status, err := deliver(ctx, url, "Basic "+auth, first.Raw); err != nil {
		return err
	} else {
		logger.Info("same notification delivered again", "status", status, "handled_again", len(received) > 0)
	}

	// A delivery with a wrong credential is refused before it is read.
	status, err := deliver(ctx, url, "Basic wrong", first.Raw)
	if err != nil {
		return err
	}
	logger.Info("delivery with a wrong credential", "status", status)
	return nil
}

func deliver(ctx context.Context, url, authorization string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", authorization)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
