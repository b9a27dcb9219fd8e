package priotest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/priosdk/prio-go/generated"
	"github.com/priosdk/prio-go/wire"
)

// webhook is a registered callback.
type webhook struct {
	id      uuid.UUID
	url     string
	auth    string
	email   *string
	events  []generated.NotificationEvent
	payload bool
	created time.Time
}

func (wh *webhook) model() generated.Webhook {
	m := generated.Webhook{
		WebhookId:           ptr(wh.id.String()),
		WebhookStatus:       ptr(generated.WebhookWebhookStatusENABLED),
		WebhookVersion:      ptr(apiVersion),
		WebhookEvents:       slices.Clone(wh.events),
		WebhookEmail:        wh.email,
		WebhookPayload:      ptr(wire.NewBool(wh.payload)),
		WebhookCreated:      dtp(wh.created),
		WebhookCreatedName:  ptr("Sandbox API"),
		WebhookCreatedEmail: ptr("api@sandbox.example"),
	}
	if wh.url != "" {
		m.WebhookUrl = ptr(wh.url)
	}
	// webhook_auth is a secret: Prio never shows it back.
	return m
}

// Delivery of callbacks: a few attempts with a short, doubling backoff.
const (
	webhookAttempts       = 4
	webhookFirstBackoff   = 100 * time.Millisecond
	webhookAttemptTimeout = 5 * time.Second
)

// notificationBody is what Prio POSTs to a webhook.
type notificationBody struct {
	APIVersion string           `json:"api_version"`
	Data       notificationData `json:"data"`
}

type notificationData struct {
	Kind         generated.Kind                 `json:"kind"`
	Notification generated.WebhookNotification  `json:"notification"`
	Order        *generated.ConfirmedOrderModel `json:"order,omitempty"`
}

// dispatch delivers order events to the webhooks subscribed to them. It
// must be called without s.mu held.
func (s *Server) dispatch(events []event) {
	for _, ev := range events {
		s.dispatchTo(ev, func(wh *webhook) bool { return slices.Contains(wh.events, ev.kind) })
	}
}

func (s *Server) dispatchTo(ev event, want func(*webhook) bool) {
	s.mu.Lock()
	var targets []*webhook
	var ids []uuid.UUID
	var recs []*notificationRecord
	for _, wh := range s.st.webhooks {
		if wh.url != "" && want(wh) {
			id := s.st.uuid()
			targets = append(targets, wh)
			ids = append(ids, id)
			recs = append(recs, s.st.logNotification(notificationModel(id.String(), s.cfg.distributorID, ev)))
		}
	}
	s.mu.Unlock()
	for i, wh := range targets {
		body := notificationBody{
			APIVersion: apiVersion,
			Data: notificationData{
				Kind:         generated.KindNotification,
				Notification: notificationModel(ids[i].String(), s.cfg.distributorID, ev),
			},
		}
		if wh.payload && ev.order.OrderReference != nil {
			o := ev.order
			body.Data.Order = &o
		}
		b, err := json.Marshal(body)
		if err != nil {
			s.cfg.logger.Debug("priotest: encoding a notification", "err", err)
			continue
		}
		url, auth, rec := wh.url, wh.auth, recs[i]
		s.background(func(ctx context.Context) { s.noteDelivery(rec, s.deliver(ctx, url, auth, b)) })
	}
}

func notificationModel(id, account string, ev event) generated.WebhookNotification {
	return generated.WebhookNotification{
		NotificationId:        &id,
		NotificationStatus:    generated.DELIVERYPENDING,
		NotificationEvent:     ev.kind,
		NotificationAccountId: ptr(account),
		NotificationItemId:    ev.ref,
		NotificationCreated:   dtp(ev.at),
	}
}

// deliver POSTs one notification, retrying failures; every attempt carries
// the same body, so the same notification_id. It reports whether a 2xx came.
func (s *Server) deliver(ctx context.Context, url, auth string, body []byte) bool {
	backoff := webhookFirstBackoff
	for attempt := 1; attempt <= webhookAttempts; attempt++ {
		if s.deliverOnce(ctx, url, auth, body) {
			s.webhooksDelivered.Add(1)
			return true
		}
		if attempt == webhookAttempts {
			break
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
		backoff *= 2
	}
	s.webhooksFailed.Add(1)
	s.cfg.logger.Debug("priotest: webhook delivery failed", "url", url)
	return false
}

func (s *Server) deliverOnce(ctx context.Context, url, auth string, body []byte) bool {
	ctx, cancel := context.WithTimeout(ctx, webhookAttemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return false
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "priotest-webhooks")
	if auth != "" {
		req.Header.Set("Authorization", "Basic "+auth)
	}
	resp, err := s.webhookClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode >= 200 && resp.StatusCode < 300
}
