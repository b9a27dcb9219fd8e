package prio

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/priosdk/prio-go/generated"
)

// maxResponseBody caps a success body. Prio's largest answers (a product
// list page of 200 products) are a few MiB; anything past this is refused
// with ErrResponseTooLarge instead of filling memory. It equals what the
// transport keeps in memory, so a body over it is refused without reading
// more of it.
const maxResponseBody = maxBufferedBody

// ErrResponseTooLarge is matched when a response body exceeds the cap.
var ErrResponseTooLarge = errors.New("prio: response body too large")

// ErrMalformedResponse is matched when a 2xx body cannot be decoded: HTML
// from a proxy, truncated or otherwise broken JSON.
var ErrMalformedResponse = errors.New("prio: malformed response")

// CallOption changes one call. Options apply to that call only and never
// change the Client.
type CallOption func(*callOptions)

type callOptions struct {
	key         string
	headers     http.Header
	policy      *RetryPolicy
	info        *CallInfo
	since       time.Time
	holdUntil   time.Time // Reservations.Confirm: when the hold ends
	accept      string
	keyError    error
	lookupFirst bool
	prevSend    time.Time
	followUp    bool
}

// asFollowUp marks a call made to settle another one (see callState.followUp).
func asFollowUp(o *callOptions) { o.followUp = true }

// WithLookupFirst makes Create Order look the order up by its external
// reference before the first send, and return it if it exists. Use it when
// resuming work after a crash or restart, when an earlier process may have
// booked the order and its last send is known to be older than the
// processing horizon (RetryPolicy.ProcessingHorizon); when its time is
// known, or may be recent, pass it with WithPreviousAttempt instead. (Within
// one process Create does this by itself for a reference it has already
// sent, with the times it knows.)
func WithLookupFirst() CallOption {
	return func(o *callOptions) { o.lookupFirst = true }
}

// WithPreviousAttempt tells Create Order that an earlier attempt of this
// booking, in another process or before a restart, may have sent it as late
// as lastSend: the end of that attempt's call, or its deadline if it died.
// Create then looks the order up before sending, and while lastSend plus
// the processing horizon (RetryPolicy.ProcessingHorizon) lies ahead, an
// empty look-up proves nothing: Create returns *OutcomeUnknownError with
// DecidableAt set instead of sending. A zero lastSend is WithLookupFirst.
func WithPreviousAttempt(lastSend time.Time) CallOption {
	return func(o *callOptions) {
		o.lookupFirst = true
		if lastSend.After(o.prevSend) {
			o.prevSend = lastSend
		}
	}
}

// WithIdempotencyKey sets the call's idempotency key instead of the derived
// or random one: 1 to 255 visible ASCII characters. A key reused with a
// different body is refused before anything is sent.
func WithIdempotencyKey(key string) CallOption {
	return func(o *callOptions) {
		if err := ValidateKey(key); err != nil {
			o.keyError = err
			return
		}
		o.key = key
	}
}

// WithHeader adds a header to the call's requests.
func WithHeader(name, value string) CallOption {
	return func(o *callOptions) {
		if o.headers == nil {
			o.headers = http.Header{}
		}
		o.headers.Add(name, value)
	}
}

// WithCallRetryPolicy overrides the client's retry policy for this call.
func WithCallRetryPolicy(p RetryPolicy) CallOption {
	return func(o *callOptions) { o.policy = &p }
}

// WithInfo copies the call's CallInfo (key, sends, elapsed, last status,
// error reference) into dst when the call returns, whatever its outcome.
func WithInfo(dst *CallInfo) CallOption {
	return func(o *callOptions) { o.info = dst }
}

func buildCallOptions(opts []CallOption) *callOptions {
	o := &callOptions{}
	for _, f := range opts {
		if f != nil {
			f(o)
		}
	}
	return o
}

// call is one logical request: the single path every service method takes.
type call struct {
	c         *Client
	operation string
	opts      *callOptions
	key       string
	booking   bool
	doubt     bool   // stopOnDoubt for the transport
	followUp  bool   // a look-up settling another call
	body      []byte // the encoded request body, when the call has it
	start     time.Time
	sends     int
	lookups   int
	lastState *callState
	span      trace.Span                   // nil unless tracing
	tel       *opTelemetry                 // nil until opTel
	editors   [1]generated.RequestEditorFn // editRequest, once set
	ended     bool                         // endCall ran
}

func (c *Client) newCall(operation string, opts []CallOption) (*call, error) {
	o := buildCallOptions(opts)
	if o.keyError != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidArgument, o.keyError)
	}
	if o.policy != nil {
		if err := o.policy.validate(); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidArgument, err)
		}
	}
	return &call{c: c, operation: operation, opts: o, key: o.key, start: c.cfg.now(), followUp: o.followUp}, nil
}

// send runs one round through the transport (which may send several times)
// and returns the response or the transport's error. fn is the generated
// client method.
func (k *call) send(ctx context.Context, fn func(ctx context.Context, editors ...generated.RequestEditorFn) (*http.Response, error)) (*http.Response, error) {
	cs := &callState{operation: k.operation, booking: k.booking, policy: k.opts.policy, stopOnDoubt: k.doubt, followUp: k.followUp, body: k.body, ownsRequest: true, tel: k.opTel()}
	k.lastState = cs
	ctx = withCallState(k.startCall(ctx), cs)
	if k.editors[0] == nil {
		k.editors[0] = k.editRequest // made once per call, whatever its rounds
	}
	resp, err := fn(ctx, k.editors[:]...)
	k.sends += cs.snapshot().Sends
	return resp, err
}

// editRequest is the request editor of the call's requests: its key and
// the headers its options ask for.
func (k *call) editRequest(_ context.Context, req *http.Request) error {
	if k.key != "" {
		req.Header.Set(keyHeader, k.key) // the transport adds App-Reference
	}
	for name, vs := range k.opts.headers {
		for _, v := range vs {
			req.Header.Add(name, v)
		}
	}
	if !k.opts.since.IsZero() {
		req.Header.Set("If-Modified-Since", k.opts.since.UTC().Format(http.TimeFormat))
	}
	if k.opts.accept != "" {
		req.Header.Set("Accept", k.opts.accept)
	}
	return nil
}

// info is what the call reports: totals over every round.
func (k *call) info() CallInfo {
	var last CallInfo
	if k.lastState != nil {
		last = k.lastState.snapshot()
	}
	last.Operation = k.operation
	last.IdempotencyKey = k.key
	last.Sends = k.sends
	last.Lookups = k.lookups
	last.Elapsed = k.c.cfg.now().Sub(k.start)
	return last
}

// finish reports the call's info to WithInfo and decorates err.
func (k *call) finish(err error) error {
	inf := k.info()
	if k.opts.info != nil {
		*k.opts.info = inf
	}
	if t := k.c.doer.tel; t.tracing() || t.metrics() {
		k.endCall(inf, outcomeClass(err))
	}
	if err == nil {
		return nil
	}
	var ae *APIError
	if errors.As(err, &ae) {
		ae.IdempotencyKey = inf.IdempotencyKey
		ae.Sends = inf.Sends
		if ae.Operation == "" {
			ae.Operation = k.operation
		}
	}
	var te *TransportError
	if errors.As(err, &te) {
		te.Info = inf
	}
	return err
}

// errNotModified is returned by decode for a 304.
var errNotModified = errors.New("not modified")

// decode checks the status and decodes a JSON body into out (nil: the
// body is discarded). Any status but a 2xx becomes an *APIError.
func (k *call) decode(resp *http.Response, out any) error {
	if resp.StatusCode == http.StatusNotModified {
		discardBody(resp.Body)
		return errNotModified
	}
	if resp.StatusCode/100 != 2 {
		return newAPIError(resp, k.operation)
	}
	defer resp.Body.Close()
	if out == nil {
		discardBody(resp.Body)
		return nil
	}
	if ct := resp.Header.Get("Content-Type"); ct != "" && !isJSON(ct) {
		return fmt.Errorf("%w: %s body where JSON was expected", ErrMalformedResponse, mediaType(ct))
	}
	if resp.ContentLength > maxResponseBody {
		return fmt.Errorf("%w (%d bytes announced)", ErrResponseTooLarge, resp.ContentLength)
	}
	return decodeBody(resp.Body, out)
}

// decodeBody decodes a JSON body with a size cap. A body the transport
// holds in memory is decoded in place; one it streams is over the cap.
func decodeBody(r io.Reader, out any) error {
	var b []byte
	switch body := r.(type) {
	case interface{ Bytes() []byte }:
		b = body.Bytes()
	case *streamBody:
		return fmt.Errorf("%w (over %d bytes)", ErrResponseTooLarge, maxResponseBody)
	default:
		var truncated bool
		var err error
		b, truncated, err = readCapped(r, maxResponseBody)
		if truncated {
			return fmt.Errorf("%w (over %d bytes)", ErrResponseTooLarge, maxResponseBody)
		}
		if err != nil {
			return fmt.Errorf("%w: reading the body: %v", ErrMalformedResponse, err)
		}
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformedResponse, err)
	}
	return nil
}

// simple runs a call with one round: the path for every non-booking request.
func (c *Client) simple(ctx context.Context, operation string, opts []CallOption, out any,
	fn func(ctx context.Context, editors ...generated.RequestEditorFn) (*http.Response, error)) error {
	k, err := c.newCall(operation, opts)
	if err != nil {
		return err
	}
	return c.simpleCall(ctx, k, out, fn)
}

func (c *Client) simpleCall(ctx context.Context, k *call, out any,
	fn func(ctx context.Context, editors ...generated.RequestEditorFn) (*http.Response, error)) error {
	resp, err := k.send(ctx, fn)
	if err == nil {
		err = k.decode(resp, out)
	}
	return k.finish(err)
}

// maxListPages bounds an iteration, whatever a server claims.
const maxListPages = 10_000

// paginate turns a page fetcher (1-based page number → items and total
// pages) into an iterator over every item. It stops after the last page, an
// empty page, or the first error, which it yields.
func paginate[T any](fetch func(page int) ([]T, int, error)) iter.Seq2[*T, error] {
	return func(yield func(*T, error) bool) {
		for n := 1; n <= maxListPages; n++ {
			items, totalPages, err := fetch(n)
			if err != nil {
				yield(nil, err)
				return
			}
			for i := range items {
				if !yield(&items[i], nil) {
					return
				}
			}
			if len(items) == 0 || n >= totalPages {
				return
			}
		}
	}
}

// isJSON reports whether a Content-Type is JSON (application/json or any
// +json type).
func isJSON(ct string) bool {
	if ct == "application/json" {
		return true // Prio's own, without parsing it
	}
	mt := mediaType(ct)
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

func mediaType(ct string) string {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return "invalid"
	}
	return mt
}

// conditional runs a GET with If-Modified-Since (when since is set) and
// returns Last-Modified; a 304 gives errNotModified.
func (c *Client) conditional(ctx context.Context, operation string, opts []CallOption, since time.Time, out any,
	fn func(ctx context.Context, editors ...generated.RequestEditorFn) (*http.Response, error)) (time.Time, error) {
	k, err := c.newCall(operation, opts)
	if err != nil {
		return time.Time{}, err
	}
	k.opts.since = since
	resp, err := k.send(ctx, fn)
	if err != nil {
		return time.Time{}, k.finish(err)
	}
	var lm time.Time
	if v := resp.Header.Get("Last-Modified"); v != "" {
		lm, _ = http.ParseTime(v)
	}
	err = k.decode(resp, out)
	if errors.Is(err, errNotModified) {
		_ = k.finish(nil)
		return lm, err
	}
	return lm, k.finish(err)
}

// resolveOperation resolves an operation's path against the generated
// client's server URL as its request builders do. The result is parsed once,
// when the client is made, for requests built by newJSONPost.
func resolveOperation(server, path string) (*url.URL, error) {
	base, err := url.Parse(server)
	if err != nil {
		return nil, err
	}
	return base.Parse("." + path)
}

// newJSONPost builds the request the generated builder makes for a POST of
// a JSON body to u (a test compares the two), without parsing the URL
// again for each request.
func newJSONPost(ctx context.Context, u *url.URL, body []byte) *http.Request {
	uc := *u
	req := &http.Request{
		Method: http.MethodPost, URL: &uc, Host: uc.Host,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"application/json"}},
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		GetBody: func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(body)), nil
		},
	}
	return req.WithContext(ctx)
}

// sendJSON posts body to u as the generated client's methods send a
// request, without its request builder: the editors it was made with, then
// the call's, then its doer. Create Order takes it, since it runs on every
// booking.
func (c *Client) sendJSON(ctx context.Context, u *url.URL, body []byte, eds []generated.RequestEditorFn) (*http.Response, error) {
	req := newJSONPost(ctx, u, body)
	for _, list := range [...][]generated.RequestEditorFn{c.raw.RequestEditors, eds} {
		for _, e := range list {
			if err := e(ctx, req); err != nil {
				return nil, err
			}
		}
	}
	return c.raw.Client.Do(req)
}
