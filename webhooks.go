package prio

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/priosdk/prio-go/generated"
	"github.com/priosdk/prio-go/wire"
)

// Notification event types Prio documents for webhook subscriptions. The
// list is open: a notification with any other type is still decoded and
// handed to the receiver with its Type as sent.
const (
	EventProductCreate      = "PRODUCT_CREATE"
	EventProductUpdate      = "PRODUCT_UPDATE"
	EventProductDelete      = "PRODUCT_DELETE"
	EventProductAssign      = "PRODUCT_ASSIGN"
	EventProductUnassign    = "PRODUCT_UNASSIGN"
	EventOrderCreate        = "ORDER_CREATE"
	EventOrderUpdate        = "ORDER_UPDATE"
	EventOrderCancel        = "ORDER_CANCEL"
	EventPaymentCreate      = "PAYMENT_CREATE"
	EventPaymentRefund      = "PAYMENT_REFUND"
	EventVoucherRelease     = "VOUCHER_RELEASE"
	EventVoucherRevoke      = "VOUCHER_REVOKE"
	EventRedemption         = "REDEMPTION"
	EventCreditReached      = "CREDIT_REACHED"
	EventCreditReset        = "CREDIT_RESET"
	EventCategoryChange     = "CATEGORY_CHANGE"
	EventLocationChange     = "LOCATION_CHANGE"
	EventAvailabilityChange = "AVAILABILITY_CHANGE"
)

const (
	defaultWebhookMaxBody     = 1 << 20 // bytes
	defaultWebhookDedupeSize  = 10_000  // notification ids remembered
	defaultWebhookDedupeTTL   = 24 * time.Hour
	defaultWebhookReadTimeout = 30 * time.Second

	webhookAuthScheme       = "Basic"
	webhookOrderEventPrefix = "ORDER_"
	// A notification without an id is deduplicated by the hash of its
	// body, so only byte-identical redeliveries are dropped.
	webhookBodyHashPrefix = "sha256:"
	// Content-Length is the sender's claim; the buffer grows past this
	// only as bytes really arrive.
	webhookPrefill = 64 << 10
)

// WebhookEvent is one notification from Prio. Type is kept as sent, so event
// types Prio adds later reach the receiver instead of being rejected.
//
// Prio does not sign its notifications; the only proof of origin is the
// Basic value registered with the webhook (see WithWebhookAuth). Treat Order
// as a hint: to act on money or tickets, fetch the order again by its
// reference.
type WebhookEvent struct {
	ID        string // notification_id: the same on every redelivery
	Type      string // notification_event, e.g. EventOrderCreate
	Status    string // notification_status, e.g. DELIVERY_PENDING
	AccountID string // notification_account_id
	ItemID    string // notification_item_id: the order, product, payment... the event is about
	Note      string // notification_note
	Created   time.Time

	// Order is the order as it was when the event happened, present when
	// the subscription was made with webhook_payload true and the payload
	// carried an order that could be decoded.
	Order *generated.ConfirmedOrderModel

	// Raw is the whole body as received, for fields this type does not
	// model.
	Raw json.RawMessage
}

// OrderReference returns the Prio order reference the event is about: the
// item id of an ORDER_* event, otherwise the reference of the order carried
// in the payload. It is empty for events that concern no order.
func (e WebhookEvent) OrderReference() string {
	if strings.HasPrefix(e.Type, webhookOrderEventPrefix) && e.ItemID != "" {
		return e.ItemID
	}
	if e.Order != nil && e.Order.OrderReference != nil {
		return *e.Order.OrderReference
	}
	return ""
}

// ExternalReference returns the order_external_reference of the order in the
// payload, which is the caller's own key for the booking. It is empty when
// the payload carried no order.
func (e WebhookEvent) ExternalReference() string {
	if e.Order == nil {
		return ""
	}
	return e.Order.OrderExternalReference
}

// WebhookOption configures a WebhookHandler.
type WebhookOption func(*WebhookHandler)

// WithWebhookAuth makes the handler accept only requests whose Authorization
// header is "Basic " followed by basicValue, the webhook_auth value as it was
// registered with Prio. The comparison takes the same time whatever the
// header holds.
//
// An empty basicValue does not turn the check off: every request is refused,
// so that a missing configuration value cannot silently open the endpoint.
//
// Without this option the handler accepts any caller who can reach its URL,
// and anyone who guesses the URL can feed it fake events. Prio offers no
// other way to authenticate a notification, so use it, and serve the URL
// over HTTPS only.
func WithWebhookAuth(basicValue string) WebhookOption {
	return func(h *WebhookHandler) {
		h.authOn = true
		h.authEmpty = basicValue == ""
		sum := sha256.Sum256([]byte(basicValue))
		h.authSum = sum[:]
	}
}

// WithWebhookMaxBody caps the size of a notification body (default 1 MiB).
// Larger bodies are refused with 413; at most one byte past the cap is read
// (none when Content-Length already says it is too large).
// n <= 0 keeps the default.
func WithWebhookMaxBody(n int64) WebhookOption {
	return func(h *WebhookHandler) {
		if n > 0 {
			h.maxBody = n
		}
	}
}

// WithWebhookDedupe sets how many handled notification ids are remembered
// (default 10,000) and for how long (default 24 h). A notification whose id
// is remembered is answered 200 without calling the receiver again. The
// oldest ids are forgotten first, so memory stays bounded whatever Prio
// sends. maxEntries <= 0 turns deduplication off; ttl <= 0 keeps ids until
// they are pushed out by newer ones.
//
// The memory is per handler and per process: a receiver that runs on
// several machines, or restarts, can still see a notification twice, and
// should make its own processing idempotent as well.
func WithWebhookDedupe(maxEntries int, ttl time.Duration) WebhookOption {
	return func(h *WebhookHandler) {
		h.dedupe = newWebhookDedupe(maxEntries, ttl)
	}
}

// WithWebhookLogger makes the handler log what it refuses and what fails.
// It never logs the Authorization header or the body. Without it the
// handler logs nothing.
func WithWebhookLogger(l *slog.Logger) WebhookOption {
	return func(h *WebhookHandler) { h.logger = l }
}

// WithWebhookNotify registers a function called with the order reference
// and the external reference of every new event that concerns an order
// (either may be empty, not both), before the receiver function runs. It is
// meant to wake code waiting on the outcome of a booking; it must not block.
func WithWebhookNotify(notify func(orderReference, externalReference string)) WebhookOption {
	return func(h *WebhookHandler) { h.notify = notify }
}

// WithWebhookReadTimeout bounds the time spent reading one notification body
// (default 30 s), so a client that stalls cannot hold the handler. It sets
// the connection's read deadline, replacing any the server set for this
// request; d <= 0 leaves the server's deadlines alone.
func WithWebhookReadTimeout(d time.Duration) WebhookOption {
	return func(h *WebhookHandler) { h.readTimeout = d }
}

// WebhookHandler is an http.Handler that receives Prio's notifications. Make
// one with NewWebhookHandler and mount it on the URL registered with Prio.
//
// Each request is answered as follows:
//   - 405 for any method but POST;
//   - 401 with WWW-Authenticate when the Basic value is missing or wrong
//     (the body is not read);
//   - 413 when the body is larger than the cap, 408 when it does not arrive
//     in time, 400 when it is not a notification;
//   - 200 when the notification was handled, now or before (duplicates);
//   - 500 when the receiver function returned an error, so that Prio
//     delivers the notification again (if it panicked, net/http drops the
//     connection, which Prio sees as a failure too);
//   - 503 when the request ended while waiting for a copy of the same
//     notification to be handled.
//
// The receiver function runs while Prio waits for the answer, so it should
// be quick: record the event and do slow work elsewhere. Only one call for a
// given notification id runs at a time: a copy that arrives while the first
// is being handled waits for it, then is answered 200 if it succeeded or
// handled itself if it failed.
type WebhookHandler struct {
	fn     func(ctx context.Context, ev WebhookEvent) error
	notify func(orderReference, externalReference string)
	logger *slog.Logger

	authOn    bool
	authEmpty bool
	authSum   []byte

	maxBody     int64
	readTimeout time.Duration
	dedupe      *webhookDedupe
}

// NewWebhookHandler returns a handler that passes every new notification to
// fn. fn receives a context that ends when the request does; an error from
// it makes the handler answer 500 so Prio redelivers. fn may be nil when
// only WithWebhookNotify is wanted.
func NewWebhookHandler(fn func(ctx context.Context, ev WebhookEvent) error, opts ...WebhookOption) *WebhookHandler {
	h := &WebhookHandler{
		fn:          fn,
		maxBody:     defaultWebhookMaxBody,
		readTimeout: defaultWebhookReadTimeout,
		dedupe:      newWebhookDedupe(defaultWebhookDedupeSize, defaultWebhookDedupeTTL),
	}
	for _, o := range opts {
		if o != nil {
			o(h)
		}
	}
	return h
}

// ServeHTTP implements http.Handler.
func (h *WebhookHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if !h.authorized(r) {
		h.log(ctx, slog.LevelWarn, "prio webhook: refused credentials", slog.String("remote_addr", r.RemoteAddr))
		w.Header().Set("WWW-Authenticate", `Basic realm="prio-webhook"`)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}

	body, status, err := h.readBody(w, r)
	if err != nil {
		h.log(ctx, slog.LevelWarn, "prio webhook: body not read", slog.Int("status", status),
			slog.Int64("max_body", h.maxBody), slog.String("error", redactText(err.Error())))
		// What is left of the body is not worth draining.
		w.Header().Set("Connection", "close")
		http.Error(w, http.StatusText(status), status)
		return
	}

	ev, orderErr, err := decodeWebhookEvent(body)
	if err != nil {
		h.log(ctx, slog.LevelWarn, "prio webhook: not a notification", slog.Int("bytes", len(body)),
			slog.String("error", redactText(err.Error())))
		http.Error(w, "not a notification", http.StatusBadRequest)
		return
	}
	if orderErr != nil {
		h.log(ctx, slog.LevelWarn, "prio webhook: order in payload not decoded", slog.String("event_id", ev.ID),
			slog.String("error", redactText(orderErr.Error())))
	}

	key := ev.ID
	if key == "" {
		sum := sha256.Sum256(body)
		key = webhookBodyHashPrefix + hex.EncodeToString(sum[:])
	}
	dup, release, err := h.dedupe.acquire(ctx, key)
	if err != nil {
		// The request ended while an identical delivery was being handled.
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	if dup {
		h.log(ctx, slog.LevelDebug, "prio webhook: duplicate", slog.String("event_id", ev.ID), slog.String("event_type", ev.Type))
		w.WriteHeader(http.StatusOK)
		return
	}

	ok := false
	// Deferred so that a panic in fn or notify still frees the id for the
	// redelivery; net/http recovers the panic and drops the connection,
	// which Prio sees as a failed delivery.
	defer func() { release(ok) }()

	if h.notify != nil {
		if or, er := ev.OrderReference(), ev.ExternalReference(); or != "" || er != "" {
			h.notify(or, er)
		}
	}
	if h.fn != nil {
		if err := h.fn(ctx, ev); err != nil {
			h.log(ctx, slog.LevelError, "prio webhook: receiver failed", slog.String("event_id", ev.ID),
				slog.String("event_type", ev.Type), slog.String("error", redactText(err.Error())))
			http.Error(w, "receiver failed", http.StatusInternalServerError)
			return
		}
	}
	ok = true
	h.log(ctx, slog.LevelDebug, "prio webhook: handled", slog.String("event_id", ev.ID), slog.String("event_type", ev.Type))
	w.WriteHeader(http.StatusOK)
}

func (h *WebhookHandler) authorized(r *http.Request) bool {
	if !h.authOn {
		return true
	}
	got := r.Header.Get("Authorization")
	n := len(webhookAuthScheme)
	if h.authEmpty || len(got) <= n || !strings.EqualFold(got[:n+1], webhookAuthScheme+" ") {
		return false
	}
	// Hashing first makes both sides the same length, so the comparison
	// does not reveal the length of the expected value either.
	sum := sha256.Sum256([]byte(strings.TrimLeft(got[n+1:], " ")))
	return subtle.ConstantTimeCompare(sum[:], h.authSum) == 1
}

// readBody reads at most maxBody+1 bytes. It returns the HTTP status to
// answer with when the body cannot be used.
func (h *WebhookHandler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, int, error) {
	if r.ContentLength > h.maxBody {
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("declared length %d over the cap", r.ContentLength)
	}
	if r.Body == nil {
		return nil, http.StatusBadRequest, errors.New("no body")
	}
	rc := http.NewResponseController(w)
	deadline := false
	if h.readTimeout > 0 {
		deadline = rc.SetReadDeadline(time.Now().Add(h.readTimeout)) == nil
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(min(r.ContentLength, webhookPrefill)))
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, h.maxBody))
	if deadline {
		// The deadline is for the body only; it must not cut the
		// connection while fn runs. net/http's HTTP/1 server also clears
		// it once the body is consumed, but wrappers and other servers
		// may not.
		_ = rc.SetReadDeadline(time.Time{})
	}
	if err != nil {
		var tooLarge *http.MaxBytesError
		var ne net.Error
		switch {
		case errors.As(err, &tooLarge):
			return nil, http.StatusRequestEntityTooLarge, err
		case errors.As(err, &ne) && ne.Timeout():
			return nil, http.StatusRequestTimeout, err
		default:
			return nil, http.StatusBadRequest, err
		}
	}
	return buf.Bytes(), 0, nil
}

func (h *WebhookHandler) log(ctx context.Context, level slog.Level, msg string, attrs ...slog.Attr) {
	if h.logger == nil {
		return
	}
	h.logger.LogAttrs(ctx, level, msg, attrs...)
}

// webhookEnvelope accepts the body with or without the API's "data"
// envelope: {"data":{"notification":...,"order":...}} or
// {"notification":...,"order":...}.
type webhookEnvelope struct {
	Data *webhookData `json:"data"`
	webhookData
}

type webhookData struct {
	Notification *webhookNotification `json:"notification"`
	Order        json.RawMessage      `json:"order"`
}

type webhookNotification struct {
	ID        webhookString `json:"notification_id"`
	Status    webhookString `json:"notification_status"`
	Event     webhookString `json:"notification_event"`
	AccountID webhookString `json:"notification_account_id"`
	ItemID    webhookString `json:"notification_item_id"`
	Note      webhookString `json:"notification_note"`
	Created   webhookString `json:"notification_created"`
}

// webhookString takes a JSON string, number or null, since Prio's ids are
// strings in its models but numbers in some of its payloads.
type webhookString string

func (s *webhookString) UnmarshalJSON(b []byte) error {
	switch {
	case bytes.Equal(b, []byte("null")):
		*s = ""
	case len(b) > 0 && b[0] == '"':
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = webhookString(v)
	case len(b) > 0 && (b[0] == '-' || b[0] >= '0' && b[0] <= '9'):
		*s = webhookString(b)
	default:
		return errors.New("prio: webhook field is neither a string nor a number")
	}
	return nil
}

// decodeWebhookEvent turns a body into an event. err means the body is not a
// notification at all; orderErr means the order in it could not be decoded,
// which leaves Order nil but keeps the event.
func decodeWebhookEvent(body []byte) (ev WebhookEvent, orderErr, err error) {
	var env webhookEnvelope
	if err := json.Unmarshal(body, &env); err != nil {
		return WebhookEvent{}, nil, err
	}
	d := env.webhookData
	if env.Data != nil && env.Data.Notification != nil {
		d = *env.Data
	}
	if d.Notification == nil {
		return WebhookEvent{}, nil, errors.New("prio: no notification in the body")
	}
	n := d.Notification
	ev = WebhookEvent{
		ID:        strings.TrimSpace(string(n.ID)),
		Type:      strings.TrimSpace(string(n.Event)),
		Status:    string(n.Status),
		AccountID: string(n.AccountID),
		ItemID:    strings.TrimSpace(string(n.ItemID)),
		Note:      string(n.Note),
		Raw:       json.RawMessage(body),
	}
	if n.Created != "" {
		// An unreadable time is no reason to refuse the event and have
		// Prio send it again forever; Created stays zero.
		if t, err := wire.ParseDateTime(string(n.Created)); err == nil {
			ev.Created = t.Time
		}
	}
	if len(d.Order) > 0 && !bytes.Equal(d.Order, []byte("null")) {
		var o generated.ConfirmedOrderModel
		if err := json.Unmarshal(d.Order, &o); err != nil {
			orderErr = err
		} else {
			ev.Order = &o
		}
	}
	return ev, orderErr, nil
}

// webhookDedupe remembers handled notification ids, and which ids are being
// handled right now, so that a redelivery is not handled twice.
type webhookDedupe struct {
	max int
	ttl time.Duration

	mu       sync.Mutex
	done     map[string]time.Time     // id -> when it was handled
	queue    []webhookDone            // done ids, oldest first; may hold stale entries
	head     int                      // queue[head:] is live
	inflight map[string]chan struct{} // closed when the id's handling ends
}

type webhookDone struct {
	id string
	at time.Time
}

func newWebhookDedupe(maxEntries int, ttl time.Duration) *webhookDedupe {
	return &webhookDedupe{
		max:      maxEntries,
		ttl:      ttl,
		done:     make(map[string]time.Time),
		inflight: make(map[string]chan struct{}),
	}
}

// acquire reports whether id was already handled. When it was not, the
// caller owns id until it calls release, with true when handling succeeded;
// a concurrent acquire of the same id waits until then. err is the context's
// error when ctx ends during that wait.
func (d *webhookDedupe) acquire(ctx context.Context, id string) (dup bool, release func(ok bool), err error) {
	if d.max <= 0 {
		return false, func(bool) {}, nil
	}
	for {
		d.mu.Lock()
		now := time.Now()
		d.expireLocked(now)
		if _, ok := d.done[id]; ok {
			d.mu.Unlock()
			return true, nil, nil
		}
		wait, busy := d.inflight[id]
		if !busy {
			ch := make(chan struct{})
			d.inflight[id] = ch
			d.mu.Unlock()
			var once sync.Once
			return false, func(ok bool) { once.Do(func() { d.release(id, ch, ok) }) }, nil
		}
		d.mu.Unlock()
		select {
		case <-wait:
			// Either handled (the next turn answers duplicate) or failed
			// (the next turn takes it over).
		case <-ctx.Done():
			return false, nil, ctx.Err()
		}
	}
}

func (d *webhookDedupe) release(id string, ch chan struct{}, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.inflight, id)
	close(ch)
	if !ok {
		return
	}
	now := time.Now()
	d.done[id] = now
	d.queue = append(d.queue, webhookDone{id: id, at: now})
	d.expireLocked(now)
}

// expireLocked forgets ids past their TTL and the oldest ids over the cap.
func (d *webhookDedupe) expireLocked(now time.Time) {
	for d.head < len(d.queue) {
		e := d.queue[d.head]
		at, live := d.done[e.id]
		switch {
		case !live || !at.Equal(e.at):
			// Stale: the id was dropped or re-added since.
		case len(d.done) > d.max, d.ttl > 0 && now.Sub(e.at) >= d.ttl:
			delete(d.done, e.id)
		default:
			d.compactLocked()
			return
		}
		d.queue[d.head] = webhookDone{}
		d.head++
	}
	d.compactLocked()
}

// compactLocked moves the live part of the queue to the front once at least
// half of it is spent, keeping its memory proportional to max.
func (d *webhookDedupe) compactLocked() {
	if d.head == 0 || d.head < len(d.queue)/2 {
		return
	}
	n := copy(d.queue, d.queue[d.head:])
	clear(d.queue[n:])
	d.queue = d.queue[:n]
	d.head = 0
}

// size returns how many ids are remembered as handled.
func (d *webhookDedupe) size() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.done)
}
