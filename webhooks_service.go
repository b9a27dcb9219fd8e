package prio

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/priosdk/prio-go/generated"
)

// Webhook is a subscription to Prio's notifications.
type Webhook = generated.Webhook

// NotificationEvent names an event a webhook subscribes to
// (Webhook.WebhookEvents): one of the Event constants, or a newer one Prio
// added.
type NotificationEvent = generated.NotificationEvent

// WebhooksService manages webhook subscriptions. Receive the notifications
// with a WebhookHandler.
type WebhooksService struct{ c *Client }

// List returns the client's webhook subscriptions.
func (s *WebhooksService) List(ctx context.Context, opts ...CallOption) ([]Webhook, error) {
	var out generated.WebhookListResponse
	perPage := 200
	err := s.c.simple(ctx, "getWebhooks", opts, &out, func(ctx context.Context, eds ...generated.RequestEditorFn) (*http.Response, error) {
		return s.c.raw.GetWebhooks(ctx, &generated.GetWebhooksParams{ItemsPerPage: &perPage}, eds...)
	})
	if err != nil {
		return nil, err
	}
	return out.Data.Items, nil
}

// Create subscribes a URL (or an email address) to events. WebhookAuth, if
// set, is what Prio sends back as "Authorization: Basic <WebhookAuth>" on
// every notification: give the same value to WithWebhookAuth. The key is
// derived from the URL and events, so a retried Create subscribes once.
func (s *WebhooksService) Create(ctx context.Context, w *Webhook, opts ...CallOption) (*Webhook, error) {
	if w == nil || len(w.WebhookEvents) == 0 {
		return nil, fmt.Errorf("%w: a webhook needs at least one event", ErrInvalidArgument)
	}
	k, err := s.c.newCall("addWebhook", opts)
	if err != nil {
		return nil, err
	}
	if k.key == "" {
		target := ""
		if w.WebhookUrl != nil {
			target = *w.WebhookUrl
		} else if w.WebhookEmail != nil {
			target = string(*w.WebhookEmail)
		}
		events := make([]string, len(w.WebhookEvents))
		for i, e := range w.WebhookEvents {
			events[i] = string(e)
		}
		k.key = DeriveKey(s.c.cfg.distributorID, "addWebhook", target+"\x00"+strings.Join(events, ","))
	}
	kind := generated.Kind("webhook")
	var out generated.CreateWebhookResponse
	err = s.c.simpleCall(ctx, k, &out, func(ctx context.Context, eds ...generated.RequestEditorFn) (*http.Response, error) {
		return s.c.raw.AddWebhook(ctx, generated.CreateWebhookRequest{Data: generated.CreateWebhookRequestData{Kind: &kind, Webhook: *w}}, eds...)
	})
	if err != nil {
		return nil, err
	}
	return &out.Data.Webhook, nil
}

// Delete removes a subscription.
func (s *WebhooksService) Delete(ctx context.Context, webhookID string, opts ...CallOption) error {
	if webhookID == "" {
		return fmt.Errorf("%w: empty webhook id", ErrInvalidArgument)
	}
	err := s.c.simple(ctx, "removeWebhook", opts, nil, func(ctx context.Context, eds ...generated.RequestEditorFn) (*http.Response, error) {
		return s.c.raw.RemoveWebhook(ctx, webhookID, eds...)
	})
	return err
}

// Test asks Prio to send a sample notification to the subscriptions.
func (s *WebhooksService) Test(ctx context.Context, n generated.WebhookNotification, opts ...CallOption) error {
	k, err := s.c.newCall("addNotification", opts)
	if err != nil {
		return err
	}
	if k.key == "" {
		k.key = NewRandomKey()
	}
	kind := generated.Kind("notification")
	err = s.c.simpleCall(ctx, k, nil, func(ctx context.Context, eds ...generated.RequestEditorFn) (*http.Response, error) {
		return s.c.raw.AddNotification(ctx, generated.CreateNotificationRequest{Data: generated.CreateNotificationRequestData{Kind: &kind, Notification: n}}, eds...)
	})
	return err
}
