package prio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// RetryPolicy decides how a call is retried. It is plain data: copy it,
// change a field, pass it to WithRetryPolicy (client-wide) or
// WithCallRetryPolicy (one call). DefaultRetryPolicy documents each default.
// Values are taken literally: a zero duration means no wait or no bound, as
// each field says.
type RetryPolicy struct {
	// MaxSends is the total number of sends for one call, first included.
	// A request net/http re-sends on its own after a kept-alive connection
	// died is counted in CallInfo.Sends but is not a send of the loop, so
	// Sends may exceed MaxSends by one in that rare case.
	MaxSends int
	// BookingAttemptTimeout bounds one send of a booking POST (Create
	// Order, Create Reservation). Prio advises 60 s. 0 means no bound
	// beyond the caller's context.
	BookingAttemptTimeout time.Duration
	// AttemptTimeout bounds one send of any other request. 0 means no
	// bound beyond the caller's context.
	AttemptTimeout time.Duration
	// BaseDelay and MaxDelay shape the exponential backoff with full
	// jitter: the n-th wait (n from 0) is uniform in
	// [0, min(MaxDelay, BaseDelay*2^n)).
	BaseDelay time.Duration
	MaxDelay  time.Duration
	// MaxRetryAfter caps how long a Retry-After is obeyed; a longer ask
	// stops retrying and the call fails with ErrRateLimited (for a 429) or
	// ErrServer (for a 5xx), the error carrying the asked delay.
	MaxRetryAfter time.Duration
	// RateLimitedDelay is the wait after a 429 without Retry-After (Prio
	// blocks a client for a minute). It is subject to MaxRetryAfter.
	RateLimitedDelay time.Duration
	// BudgetRatio, BudgetBurst and BudgetPerSecond size the client-wide
	// retry budget: each first send adds BudgetRatio tokens, each retry
	// spends one, and the bucket starts full and holds at most
	// BudgetBurst. When it is empty, BudgetPerSecond retries a second are
	// still allowed (saving up at most one), so that a client with little
	// traffic retries again soon after an outage; 0 turns that floor off.
	// During an outage sends stay below (1+BudgetRatio) x first sends +
	// BudgetBurst + BudgetPerSecond x seconds. BudgetRatio < 0 turns the
	// budget off. Client-wide only: a per-call policy does not change the
	// budget.
	BudgetRatio     float64
	BudgetBurst     float64
	BudgetPerSecond float64
	// ClientErrorLimit is how many 4XX answers the client accepts within a
	// sliding minute before it refuses to send (Prio bans a client for a
	// minute after 60). 0 turns the guard off. Client-wide only.
	ClientErrorLimit int
	// ProcessingHorizon is how long after a booking send Prio may still be
	// processing it when no answer came from Prio's application itself (a
	// timeout, a dropped connection, a gateway's page). Until it has passed,
	// an empty look-up proves nothing and Create reports the booking as
	// unknown instead of sending it again. The default is the booking send
	// timeout plus 30 s: Prio advises 60 s for bookings, and a send that got
	// no answer within its own timeout may still be finishing at Prio.
	// Client-wide only.
	ProcessingHorizon time.Duration
	// RequestsPerMinute is the client-side rate limit (Prio's fair-use cap
	// is 1,000 a minute); every send counts, retries included. 0 turns the
	// limiter off. Client-wide only.
	RequestsPerMinute int
}

// DefaultRetryPolicy returns the policy a Client uses unless told
// otherwise: 4 sends; 60 s per booking send and 30 s per other send; full
// jitter backoff from 250 ms capped at 20 s; Retry-After obeyed up to 60 s;
// 60 s after a 429 without Retry-After; a retry budget of 10 plus 0.1 per
// call, and 1 a second when it is empty; the 4XX guard at 50 a minute;
// 1,000 requests a minute.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{
		MaxSends:              4,
		BookingAttemptTimeout: 60 * time.Second,
		AttemptTimeout:        30 * time.Second,
		BaseDelay:             250 * time.Millisecond,
		MaxDelay:              20 * time.Second,
		MaxRetryAfter:         60 * time.Second,
		RateLimitedDelay:      60 * time.Second,
		BudgetRatio:           0.1,
		BudgetBurst:           10,
		BudgetPerSecond:       1,
		ClientErrorLimit:      50,
		RequestsPerMinute:     1000,
		ProcessingHorizon:     90 * time.Second,
	}
}

// validate reports a policy that cannot work as written.
func (p RetryPolicy) validate() error {
	switch {
	case p.MaxSends < 1:
		return fmt.Errorf("RetryPolicy.MaxSends is %d, at least 1 is needed", p.MaxSends)
	case p.BookingAttemptTimeout < 0, p.AttemptTimeout < 0, p.BaseDelay < 0, p.MaxDelay < 0,
		p.MaxRetryAfter < 0, p.RateLimitedDelay < 0, p.ProcessingHorizon < 0:
		return errors.New("RetryPolicy durations must not be negative")
	case math.IsNaN(p.BudgetRatio), math.IsNaN(p.BudgetBurst), p.BudgetBurst < 0,
		math.IsNaN(p.BudgetPerSecond), math.IsInf(p.BudgetPerSecond, 0), p.BudgetPerSecond < 0:
		return errors.New("RetryPolicy.BudgetBurst and BudgetPerSecond must be finite numbers >= 0 and BudgetRatio a number")
	case p.ClientErrorLimit < 0, p.RequestsPerMinute < 0:
		return errors.New("RetryPolicy.ClientErrorLimit and RequestsPerMinute must not be negative")
	}
	return nil
}

// The retry decision, as small functions. doc.go has the same table.

// retryableStatus lists the answers worth another send: the server timed
// out waiting for the request (408), asked the client to slow down (429),
// or failed in a way that may pass (500, 502, 503, 504, and the 520-527 of
// CDNs in front of an origin). 501 and every other 4XX will not change by
// asking again.
func retryableStatus(code int) bool {
	return code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || doubtfulStatus(code)
}

// doubtfulStatus lists the retryable answers after which the request may
// have been acted on. 408 and 429 say it was not.
func doubtfulStatus(code int) bool {
	switch code {
	case http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return code >= 520 && code <= 527
}

// retryableError says whether a send that got no HTTP answer is worth
// another: yes for refused or reset connections, unexpected EOF, network
// timeouts and the send's own timeout; no for the caller's cancellation,
// TLS and certificate failures, refused redirects, the client's own
// limits, and anything unrecognised.
func retryableError(err error) bool {
	var local *LocalLimitError
	switch {
	case errors.As(err, &local):
		return false
	case errors.Is(err, errAttemptTimeout):
		return true
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false
	case errors.Is(err, errRedirect), isTLSError(err):
		return false
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNABORTED), errors.Is(err, syscall.EPIPE):
		return true
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return dns.IsTimeout || dns.IsTemporary
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op)
}

// recoverableUnsent reports errors that are worth another send when the
// request never left: net/http's "server closed idle connection" and its
// kin, which it retries by itself only for requests it can rewind (booking
// requests are made non-rewindable). The caller's cancellation, TLS
// failures, refused redirects, unknown hosts and local limits stay final.
func recoverableUnsent(err error) bool {
	var (
		local *LocalLimitError
		dns   *net.DNSError
	)
	switch {
	case errors.As(err, &local), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, errRedirect), isTLSError(err):
		return false
	case errors.As(err, &dns):
		return dns.IsTimeout || dns.IsTemporary // an unknown host stays unknown
	}
	return true
}

// methodRetryable says whether a request may be sent more than once.
// Idempotent methods may; a POST (or PATCH, or anything else) only with an
// idempotency key, which tells the server that a repeat is the same request.
func methodRetryable(method string, hasKey bool) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete,
		http.MethodOptions, http.MethodTrace:
		return true
	}
	return hasKey
}

// backoff returns the wait before retry number n (0 for the first retry):
// full jitter, uniform in [0, min(MaxDelay, BaseDelay*2^n)).
func (p RetryPolicy) backoff(n int) time.Duration {
	ceil := p.BaseDelay
	for i := 0; i < n && ceil < p.MaxDelay && ceil <= math.MaxInt64/2; i++ {
		ceil *= 2
	}
	ceil = min(ceil, p.MaxDelay)
	if ceil <= 0 {
		return 0
	}
	return rand.N(ceil)
}

// retryWait returns the wait before retry number n after resp (nil when
// the send got no answer). A Retry-After (seconds or HTTP date) is obeyed,
// and a 429 without one counts as asking RateLimitedDelay; an ask above
// MaxRetryAfter gives ok == false: stop retrying.
func (p RetryPolicy) retryWait(n int, resp *http.Response, now time.Time) (wait, asked time.Duration, ok bool) {
	wait = p.backoff(n)
	if resp == nil {
		return wait, 0, true
	}
	asked, has := parseRetryAfter(resp.Header.Get("Retry-After"), now)
	if !has && resp.StatusCode == http.StatusTooManyRequests {
		asked, has = p.RateLimitedDelay, true
	}
	if !has {
		return wait, 0, true
	}
	if asked > p.MaxRetryAfter {
		return 0, asked, false
	}
	return max(wait, asked), asked, true
}

// ErrRetryBudgetExhausted is wrapped in the *TransportError of a call that
// stopped retrying because the client-wide retry budget was empty: many
// calls have been failing, and retrying them all would only add load.
var ErrRetryBudgetExhausted = errors.New("prio: retry budget exhausted")

// TransportError reports a call whose last send got no HTTP answer: the
// connection failed, the send timed out, the caller's context ended, or
// TLS failed. Err is the cause (errors.Is(err, context.Canceled) and the
// like work through it).
type TransportError struct {
	Info CallInfo
	// InDoubt is true when a send of the call may have been acted on by
	// the server: it was written and then timed out, was reset or cut
	// short, or was answered with 500, 502, 503 or 504. For a booking,
	// look it up before sending it again under another key.
	InDoubt bool
	Err     error

	method string // for the message
	url    string // redacted
	detail string // Err's text, scrubbed of secrets and personal data
}

// Error is one line: the method, the redacted URL, the cause scrubbed of
// secrets and guests' data, then sends, elapsed time and key in brackets.
func (e *TransportError) Error() string {
	var b strings.Builder
	b.WriteString("prio: ")
	if e.Info.Operation != "" {
		b.WriteString(e.Info.Operation)
		b.WriteString(": ")
	}
	if e.method != "" {
		b.WriteString(e.method)
		b.WriteString(" ")
		b.WriteString(e.url)
		b.WriteString(": ")
	}
	switch {
	case e.detail != "":
		b.WriteString(e.detail)
	case e.Err != nil:
		b.WriteString(redactText(e.Err.Error()))
	default:
		b.WriteString("no HTTP answer")
	}
	fmt.Fprintf(&b, " [sends %d] [elapsed %s]", e.Info.Sends, e.Info.Elapsed.Round(time.Millisecond))
	if e.Info.IdempotencyKey != "" {
		fmt.Fprintf(&b, " [key %s]", e.Info.IdempotencyKey)
	}
	if e.Info.LastStatus != 0 {
		fmt.Fprintf(&b, " [last status %d]", e.Info.LastStatus)
	}
	if e.Info.ErrorReference != "" {
		fmt.Fprintf(&b, " [error_reference %s]", e.Info.ErrorReference)
	}
	if e.InDoubt {
		b.WriteString(" [in doubt: a send may have been processed]")
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *TransportError) Unwrap() error { return e.Err }

// scrubbedError is a cause whose text has been cleaned of secrets and
// personal data; errors.Is and errors.As still see the original.
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

// ResponseCallInfo returns what happened on the wire for the call that
// produced resp (key, sends, elapsed time, last status, error_reference),
// for users of the generated client from Client.API.
func ResponseCallInfo(resp *http.Response) (CallInfo, bool) {
	if resp == nil || resp.Request == nil {
		return CallInfo{}, false
	}
	cs := callStateFrom(resp.Request.Context())
	if cs == nil {
		return CallInfo{}, false
	}
	return cs.snapshot(), true
}

// doer is the one retrying HTTP doer of a Client, shared by all its
// goroutines. It implements generated.HttpRequestDoer.
type doer struct {
	policy RetryPolicy
	hc     *http.Client
	rc     *retryablehttp.Client // the loop, built once; its hooks find the call in the request's context
	budget *retryBudget
	limits localLimits
	logger *slog.Logger
	red    redactor
	tel    *telemetry // nil or empty: no spans, no metrics
}

// newDoer builds the doer over rt, the chain that puts one request on the
// wire (authentication over countSends over the base transport). The
// budget, 4XX guard and rate limiter come from p and are shared by every
// call; logger may be nil (silent).
func newDoer(rt http.RoundTripper, p RetryPolicy, logger *slog.Logger, red redactor) *doer {
	d := &doer{
		policy: p,
		hc:     &http.Client{Transport: &attemptTransport{next: rt}, CheckRedirect: checkRedirect},
		budget: newRetryBudget(p.BudgetRatio, p.BudgetBurst, p.BudgetPerSecond),
		limits: localLimits{
			guard:   newClientErrorGuard(p.ClientErrorLimit, time.Minute),
			limiter: newRequestLimiter(p.RequestsPerMinute),
		},
		logger: logger,
		red:    red,
	}
	// One retryablehttp.Client for every call. Every default is replaced:
	// checkRetry enforces the call's own MaxSends (a per-call policy may
	// change it), so RetryMax only has to be out of its way; the wait
	// checkRetry chose is taken in prepareRetry, which sees the request
	// (Backoff does not), so the loop's own timer waits for nothing.
	d.rc = &retryablehttp.Client{
		HTTPClient:     d.hc,
		Logger:         nil,
		RetryMax:       math.MaxInt32,
		CheckRetry:     checkRetry,
		Backoff:        noBackoff,
		ErrorHandler:   keepLastResponse,
		RequestLogHook: beforeSend,
		PrepareRetry:   prepareRetry,
	}
	return d
}

// callRun is the loop's state for one Do, held in the call's callState.
// Sends of one call are sequential and run on the caller's goroutine
// (CheckRetry, PrepareRetry, the hooks and attemptTransport.RoundTrip), so
// it needs no lock.
type callRun struct {
	d       *doer // nil outside Do
	p       RetryPolicy
	cs      *callState
	method  string
	url     *url.URL
	key     string
	retryOK bool
	start   time.Time
	before  int // cs's Sends when this Do began

	attempt   int  // sends begun by the loop
	deposited bool // the budget got this call's deposit
	lastDoubt bool // the latest send may have been acted on
	anyDoubt  bool // some send may have been acted on
	wait      time.Duration
	place     guardPlace    // the current send's place in the 4XX guard
	tracker   *sendTracker  // what countSends learns of the current send
	prepared  *sendCount    // the current send's trace hooks, for its first RoundTrip
	sendReq   *http.Request // the request attemptTransport made for the current send
	body      []byte        // the request body, for a re-send after a token refresh
	stop      string        // why the loop stopped on a retryable outcome
	budgetOut bool
}

// runFrom returns the loop's state of the call in ctx, or nil outside Do.
func runFrom(ctx context.Context) *callRun {
	cs := callStateFrom(ctx)
	if cs == nil || cs.run.d == nil {
		return nil
	}
	return &cs.run
}

// Do sends req, retrying as the policy says. It returns either the last
// HTTP answer (with its body intact and a nil error) or an error: a
// *TransportError when the last send got no answer, a *LocalLimitError when
// a local limit refused to send.
func (d *doer) Do(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	cs := callStateFrom(ctx)
	if cs == nil {
		cs = &callState{}
		ctx = withCallState(ctx, cs)
	}
	p := d.policy
	if cs.policy != nil {
		p = *cs.policy
	}
	body := cs.body
	if body != nil {
		// The call handed over the bytes it encoded: no second copy.
		if req.Body != nil {
			req.Body.Close()
		}
	} else {
		var err error
		if body, err = readRequestBody(req); err != nil {
			return nil, fmt.Errorf("prio: reading the request body: %w", err)
		}
	}
	key := req.Header.Get(keyHeader)
	cs.run = callRun{
		d: d, p: p, cs: cs,
		method:  req.Method,
		url:     req.URL,
		key:     key,
		retryOK: methodRetryable(req.Method, key != ""),
		start:   time.Now(),
		body:    body,
	}
	run := &cs.run
	cs.update(func(i *CallInfo) {
		if i.Operation == "" {
			i.Operation = cs.operation
		}
		if key != "" {
			i.IdempotencyKey = key
		}
		run.before = i.Sends
	})

	// A shallow copy: the header map is copied before each send
	// (beforeSend), so the caller's request is never changed. A call of
	// the service layer hands over a request nobody else holds: the loop
	// uses it as it is, and its first send keeps its header map.
	out := req
	if !cs.ownsRequest || ctx != req.Context() {
		out = req.WithContext(ctx)
	}
	out.Body, out.GetBody, out.ContentLength = nil, nil, 0
	rreq := &retryablehttp.Request{Request: out}
	var raw any // a nil []byte would not be a nil body
	if len(body) > 0 {
		raw = body
	}
	if err := rreq.SetBody(raw); err != nil {
		return nil, fmt.Errorf("prio: preparing the request body: %w", err)
	}
	resp, err := d.rc.Do(rreq)
	return run.finish(ctx, resp, err)
}

func readRequestBody(req *http.Request) ([]byte, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, nil
	}
	defer req.Body.Close()
	if n := req.ContentLength; n > 0 && n <= maxBufferedBody {
		b := make([]byte, n)
		if _, err := io.ReadFull(req.Body, b); err != nil {
			return nil, err
		}
		return b, nil
	}
	return io.ReadAll(req.Body)
}

// beforeSend numbers each send of the loop in App-Attempt and adds
// App-Reference. The header map is copied first: the previous send's
// request (or the caller's) shares it and net/http may still be writing
// that one. The first send of a request the call owns (callState.ownsRequest)
// shares its map with nobody and keeps it.
func beforeSend(_ retryablehttp.Logger, req *http.Request, i int) {
	r := runFrom(req.Context())
	if r == nil || i > 0 || !r.cs.ownsRequest || req.Header == nil {
		req.Header = req.Header.Clone()
		if req.Header == nil {
			req.Header = http.Header{}
		}
	}
	if r == nil {
		return
	}
	r.attempt = i + 1
	if r.key != "" && req.Header.Get(referenceHeader) == "" {
		req.Header.Set(referenceHeader, r.key)
	}
	req.Header.Set(attemptHeader, strconv.Itoa(i+1))
}

// noBackoff is the loop's Backoff: the wait is taken in prepareRetry.
func noBackoff(_, _ time.Duration, _ int, _ *http.Response) time.Duration { return 0 }

// prepareRetry is the loop's PrepareRetry: it waits as checkRetry chose,
// and ends the call with ctx's error if ctx ends first.
func prepareRetry(req *http.Request) error {
	ctx := req.Context()
	if err := ctx.Err(); err != nil {
		return err
	}
	r := runFrom(ctx)
	if r == nil || r.wait <= 0 {
		return nil
	}
	t := time.NewTimer(r.wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// checkRetry is the loop's CheckRetry. ctx is the caller's context. It
// decides, in order: is the outcome worth another send, may this request
// be re-sent, does stop-on-doubt forbid it, are sends left, how long to
// wait and whether that wait fits before the deadline, and whether the
// budget has a token. It never returns an error: the outcome itself is
// what Do returns.
func checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	r := runFrom(ctx)
	if r == nil {
		return false, nil
	}
	r.stop = ""
	if ctx.Err() != nil {
		return false, nil
	}
	if err != nil {
		var auth *AuthError
		switch {
		case errors.As(err, &auth):
			// No access token: asking again helps only if the token
			// endpoint failed for a passing reason, never after it
			// refused the credentials (that 4XX counts against Prio's ban).
			if !auth.retryable() {
				return false, nil
			}
		case !retryableError(err) && !(r.unsent() && recoverableUnsent(err)):
			return false, nil
		}
		resp = nil
	} else if !retryableStatus(resp.StatusCode) {
		return false, nil
	}
	if !r.retryOK {
		r.stop = "a " + r.method + " without an Idempotency-Key is never re-sent"
		return false, nil
	}
	if r.cs.stopOnDoubt && r.lastDoubt {
		r.stop = "the send may have been processed; Create looks the order up before any re-send"
		return false, nil
	}
	if sends := r.cs.snapshot().Sends - r.before; r.attempt >= r.p.MaxSends || sends >= r.p.MaxSends {
		r.stop = fmt.Sprintf("%d of %d sends made", max(r.attempt, sends), r.p.MaxSends)
		return false, nil
	}
	now := time.Now()
	wait, asked, ok := r.p.retryWait(r.attempt-1, resp, now)
	if !ok {
		r.stop = fmt.Sprintf("the server asked to wait %s, more than the %s allowed", asked, r.p.MaxRetryAfter)
		return false, nil
	}
	if dl, ok := ctx.Deadline(); ok && !now.Add(wait).Before(dl) {
		r.stop = fmt.Sprintf("the next wait (%s) would outlast the context deadline", wait.Round(time.Millisecond))
		return false, nil
	}
	if !r.d.budget.withdraw() {
		r.stop = "the client-wide retry budget is empty"
		r.budgetOut = true
		return false, nil
	}
	r.wait = wait
	r.d.logRetry(ctx, r, wait)
	return true, nil
}

// unsent reports whether the latest send wrote nothing to the server.
func (r *callRun) unsent() bool { return !r.lastDoubt }

// keepLastResponse is the loop's ErrorHandler: it never returns both a
// response and an error, and never drops the last answer for an error.
func keepLastResponse(resp *http.Response, err error, _ int) (*http.Response, error) {
	if err == nil {
		if resp == nil {
			return nil, errors.New("prio: no response and no error")
		}
		return resp, nil
	}
	if resp != nil {
		discardBody(resp.Body)
	}
	return nil, err
}

// finish records the call's elapsed time and shapes what Do returns.
func (r *callRun) finish(ctx context.Context, resp *http.Response, err error) (*http.Response, error) {
	elapsed := time.Since(r.start)
	r.cs.update(func(i *CallInfo) { i.Elapsed += elapsed })
	info := r.cs.snapshot()
	if err == nil {
		if r.stop != "" {
			r.d.logGiveUp(ctx, r, info, "")
		}
		return resp, nil
	}
	var local *LocalLimitError
	if errors.As(err, &local) {
		local.Info = info
		r.d.logGiveUp(ctx, r, info, r.d.red.text(local.Reason))
		return nil, local
	}
	// http.Client's *url.Error repeats the full URL, query included.
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if r.budgetOut {
		err = fmt.Errorf("%w: %w", ErrRetryBudgetExhausted, err)
	}
	detail := r.d.red.scrub(err.Error(), r.url)
	te := &TransportError{
		Info:    info,
		InDoubt: r.anyDoubt,
		Err:     &scrubbedError{msg: detail, err: err},
		method:  r.method,
		url:     redactURL(r.url),
		detail:  detail,
	}
	r.d.logGiveUp(ctx, r, info, te.detail)
	return nil, te
}

// errorReference returns Prio's error_reference from an error body.
func errorReference(body []byte) string {
	if len(body) > errorRefBodyCap {
		body = body[:errorRefBodyCap]
	}
	var eb struct {
		Ref string `json:"error_reference"`
	}
	if json.Unmarshal(body, &eb) != nil {
		return ""
	}
	return eb.Ref
}
