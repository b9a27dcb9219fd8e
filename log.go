package prio

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Logging of the transport. Nothing is logged without a *slog.Logger.
// Lines carry the operation, method, redacted URL, attempt, status or
// error, duration, key and sends; never a header or a body. Error texts go
// through scrub, since a cause from below (a proxy, a resolver, a custom
// transport) may quote the URL or a credential.

// queryInText finds a URL query quoted in an error text.
var queryInText = regexp.MustCompile(`\?[^\s"'<>?]+=[^\s"'<>]*`)

// scrub removes secrets and personal data from an error text: any URL
// query in it (which may hold the API key or guest data, and may differ
// from u's when a layer below added parameters), any verbatim copy of u's
// query, then the redactor's values and patterns.
func (r redactor) scrub(text string, u *url.URL) string {
	if u != nil && u.RawQuery != "" {
		text = strings.ReplaceAll(text, u.RawQuery, redacted)
	}
	text = queryInText.ReplaceAllString(text, "?"+redacted)
	return r.text(text)
}

// logSend writes one Debug line per send.
func (d *doer) logSend(ctx context.Context, r *callRun, req *http.Request, status int, err error, took time.Duration) {
	if d.logger == nil || !d.logger.Enabled(ctx, slog.LevelDebug) {
		return
	}
	attrs := append(d.callAttrs(r, req.URL),
		slog.Int("attempt", r.attempt),
		slog.Duration("duration", took))
	if err != nil {
		attrs = append(attrs, slog.String("error", d.red.scrub(err.Error(), req.URL)))
	} else {
		attrs = append(attrs, slog.Int("status", status))
	}
	d.logger.LogAttrs(ctx, slog.LevelDebug, "prio: send", attrs...)
}

// logRetry writes a Debug line when the loop decides to send again.
func (d *doer) logRetry(ctx context.Context, r *callRun, wait time.Duration) {
	if d.logger == nil || !d.logger.Enabled(ctx, slog.LevelDebug) {
		return
	}
	attrs := append(d.callAttrs(r, r.url),
		slog.Int("next_attempt", r.attempt+1),
		slog.Duration("wait", wait))
	d.logger.LogAttrs(ctx, slog.LevelDebug, "prio: retrying", attrs...)
}

// logGiveUp writes a Warn line when a call ends without success because
// retrying stopped or was refused. cause is empty when the call ends on an
// HTTP answer, and already scrubbed otherwise. A booking send that stopped
// in doubt is not a give-up: Create goes on to look the order up, so that
// line is Info.
func (d *doer) logGiveUp(ctx context.Context, r *callRun, info CallInfo, cause string) {
	level, msg := slog.LevelWarn, "prio: giving up"
	if r.cs.stopOnDoubt && r.lastDoubt {
		level, msg = slog.LevelInfo, "prio: send in doubt"
	}
	if d.logger == nil || !d.logger.Enabled(ctx, level) {
		return
	}
	attrs := append(d.callAttrs(r, r.url),
		slog.Int("sends", info.Sends),
		slog.Duration("elapsed", info.Elapsed))
	if info.LastStatus != 0 {
		attrs = append(attrs, slog.Int("last_status", info.LastStatus))
	}
	if info.ErrorReference != "" {
		attrs = append(attrs, slog.String("error_reference", info.ErrorReference))
	}
	if r.stop != "" {
		attrs = append(attrs, slog.String("reason", r.stop))
	}
	if cause != "" {
		attrs = append(attrs, slog.String("error", cause))
	}
	d.logger.LogAttrs(ctx, level, msg, attrs...)
}

func (d *doer) callAttrs(r *callRun, u *url.URL) []slog.Attr {
	attrs := make([]slog.Attr, 0, 10)
	if r.cs.operation != "" {
		attrs = append(attrs, slog.String("operation", r.cs.operation))
	}
	attrs = append(attrs,
		slog.String("method", r.method),
		slog.String("url", redactURL(u)))
	if k := r.cs.snapshot().IdempotencyKey; k != "" {
		attrs = append(attrs, slog.String("key", k))
	}
	return attrs
}
