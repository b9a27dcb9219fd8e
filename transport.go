package prio

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The chain under the retry loop, top to bottom:
//
//	retryablehttp.Client      the loop: CheckRetry, Backoff, ErrorHandler
//	http.Client               same-host redirects only
//	attemptTransport          local limits, per-send timeout, body buffering, bookkeeping
//	(auth RoundTripper)       token and API key, added by the caller of newDoer
//	countSends                counts requests that really leave (httptrace)
//	*http.Transport           newBaseTransport, or the user's

// newBaseTransport returns the transport used when the user brings none:
// keep-alives on, maxIdlePerHost idle connections per host (set it to the
// expected concurrency, so a burst of calls does not open and close
// connections), TLS 1.2 or later, HTTP/2 when the server offers it, and
// bounded dial and handshake times. It sets no overall or response-header
// timeout: every send has its own deadline from the RetryPolicy.
func newBaseTransport(maxIdlePerHost int) *http.Transport {
	maxIdlePerHost = max(maxIdlePerHost, 2)
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   10 * time.Second,
		MaxIdleConns:          max(100, maxIdlePerHost),
		MaxIdleConnsPerHost:   maxIdlePerHost,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// sendTracker collects what countSends learns about one send of the loop
// (one RoundTrip of attemptTransport); the loop's state (callRun) points
// to the current one. Its fields are written from net/http's connection
// goroutines, hence atomics, and a late event of an earlier send lands in
// that send's tracker, not the current one.
type sendTracker struct {
	written atomic.Bool // a request was fully written to a connection
}

// countSends wraps rt, the transport that puts requests on the wire, to
// count every request that really leaves into the call's CallInfo.Sends.
//
// net/http may re-send a request on its own: a request that is idempotent
// or carries an Idempotency-Key header (every SDK POST does), and whose
// body it can rewind, is written again on a new connection when a
// kept-alive connection turns out to have been closed by the server after
// the request was written. Counting RoundTrip calls would miss that second
// send. countSends instead counts httptrace WroteRequest events, one per
// request fully written, so the silent re-send is counted too. (For
// stop-on-doubt calls attemptTransport removes GetBody, so there the
// re-send cannot happen.) A request the transport gave up on before
// writing it (dial error, refused connection, TLS failure) is not a send.
//
// Each RoundTrip has hooks of its own. attemptTransport prepares them for
// the first RoundTrip of its send and puts them in the send's context,
// which it makes anyway (the per-send timeout), so that RoundTrip needs no
// copy of the request; another RoundTrip of the same send (the re-send
// after a 401) gets fresh hooks and retires the prepared ones, so no event
// is counted twice.
//
// Under a RoundTripper that is not net/http's (no trace event fires), each
// RoundTrip counts as one send unless its error proves nothing left.
func countSends(rt http.RoundTripper) http.RoundTripper { return &sendCounter{next: rt} }

type sendCounter struct{ next http.RoundTripper }

func (c *sendCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	cs := callStateFrom(ctx)
	if cs == nil {
		return c.next.RoundTrip(req)
	}
	var st *sendCount
	if p := cs.run.prepared; p != nil && httptrace.ContextClientTrace(ctx) == &p.trace {
		if !p.claimed {
			// The send's first RoundTrip: its hooks are already in ctx.
			p.claimed = true
			st = p
		} else {
			// A later RoundTrip of the same send: the prepared hooks
			// still fire (a trace added below calls those above it), so
			// they stop counting. Their RoundTrip has returned with an
			// answer and was counted.
			p.retire()
		}
	}
	if st == nil {
		st = &sendCount{cs: cs, tr: cs.run.tracker}
		st.hook()
		req = req.WithContext(httptrace.WithClientTrace(ctx, &st.trace))
	}
	resp, err := c.next.RoundTrip(req)

	st.mu.Lock()
	defer st.mu.Unlock()
	switch {
	case !st.traced && st.counted == 0 && (err == nil || !provenUnsent(err)):
		st.recordLocked()
	case err == nil && st.counted == 0:
		// The server answered before the request was fully written; it
		// still left. A later WroteRequest must not count it again.
		st.recordLocked()
	}
	return resp, err
}

// sendCount is one RoundTrip of sendCounter: its trace hooks and what they
// saw, in one allocation. The hooks run on net/http's goroutines.
type sendCount struct {
	cs    *callState
	tr    *sendTracker
	trace httptrace.ClientTrace
	// claimed: a RoundTrip took these prepared hooks (read and written on
	// the caller's goroutine only).
	claimed bool
	// own is the send's tracker when attemptTransport prepared the hooks.
	own sendTracker

	mu      sync.Mutex
	retired bool // a later RoundTrip of the send has hooks of its own
	traced  bool // net/http's transport took the request
	writes  int  // WroteRequest events without error
	counted int  // sends recorded
}

// hook points the trace's hooks at st.
func (st *sendCount) hook() {
	st.trace.GetConn = st.gotConn
	st.trace.WroteRequest = st.wroteRequest
}

// retire makes st's hooks ignore every later event.
func (st *sendCount) retire() {
	st.mu.Lock()
	st.retired = true
	st.mu.Unlock()
}

func (st *sendCount) gotConn(string) {
	st.mu.Lock()
	st.traced = true
	st.mu.Unlock()
}

func (st *sendCount) wroteRequest(info httptrace.WroteRequestInfo) {
	if info.Err != nil {
		// An incomplete request cannot be acted on.
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.retired {
		return
	}
	st.writes++
	if st.writes > st.counted {
		st.recordLocked()
	}
}

func (st *sendCount) recordLocked() {
	st.counted++
	if st.cs != nil {
		st.cs.update(func(i *CallInfo) { i.Sends++ })
	}
	if st.tr != nil {
		st.tr.written.Store(true)
	}
}

// provenUnsent reports errors that show the request never reached the
// server as an HTTP request: the connection could not be made, or TLS
// failed before any request byte was sent.
func provenUnsent(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns) || errors.Is(err, syscall.ECONNREFUSED) || isTLSError(err)
}

// isTLSError reports a failed TLS handshake or certificate check; retrying
// cannot fix those.
func isTLSError(err error) bool {
	var (
		verr  *tls.CertificateVerificationError
		rherr tls.RecordHeaderError
		alert tls.AlertError
		uaerr x509.UnknownAuthorityError
		cierr x509.CertificateInvalidError
		hnerr x509.HostnameError
		sherr x509.SystemRootsError
	)
	return errors.As(err, &verr) || errors.As(err, &rherr) || errors.As(err, &alert) ||
		errors.As(err, &uaerr) || errors.As(err, &cierr) || errors.As(err, &hnerr) || errors.As(err, &sherr)
}

// errRedirect is matched by the error of a refused redirect.
var errRedirect = errors.New("prio: redirect refused")

// maxRedirects matches net/http's own limit.
const maxRedirects = 10

// checkRedirect follows redirects only on the same scheme and host, so that
// credentials added below the http.Client (token, API key) never go to
// another host or over plain HTTP.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return fmt.Errorf("%w: stopped after %d redirects", errRedirect, maxRedirects)
	}
	first := via[0].URL
	if req.URL.Host != first.Host || req.URL.Scheme != first.Scheme {
		return fmt.Errorf("%w: %s to another host or scheme", errRedirect, redactURL(req.URL))
	}
	return nil
}

// errAttemptTimeout is matched by the error of a send that hit its own
// timeout (RetryPolicy.AttemptTimeout or BookingAttemptTimeout) while the
// caller's context was still alive.
var errAttemptTimeout = errors.New("prio: send timed out")

// maxBufferedBody bounds how much of a response is read before the
// response is handed back. Reading the whole body inside the send makes a
// truncated answer a failed send (retried, or in doubt) instead of a
// decoding error later, and lets the per-send timeout end with the send.
const maxBufferedBody = 8 << 20

// errorRefBodyCap bounds how much of an error body is parsed for
// error_reference.
const errorRefBodyCap = 64 << 10

// attemptTransport runs one send of the loop: the local limits, the
// per-send timeout, reading the body, and recording what happened. It sits
// under the http.Client, so a redirect hop is a send of its own.
type attemptTransport struct {
	next http.RoundTripper
}

func (a *attemptTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	run := runFrom(ctx)
	if run == nil {
		return a.next.RoundTrip(req)
	}
	place, err := run.d.limits.admit(ctx)
	if err != nil {
		return nil, err
	}
	run.place = place
	defer func() { run.place.settle(false) }() // a send that got no 4XX
	if !run.deposited {
		run.deposited = true
		if !run.cs.followUp {
			run.d.budget.deposit()
		}
	}

	timeout := run.p.AttemptTimeout
	if run.cs.booking {
		timeout = run.p.BookingAttemptTimeout
	}
	actx, cancel := ctx, context.CancelFunc(func() {})
	if timeout > 0 {
		// A caller's deadline that comes first ends the send before its
		// own timeout could: no timer of the send's own is needed then.
		if dl, ok := ctx.Deadline(); !ok || dl.After(time.Now().Add(timeout)) {
			actx, cancel = context.WithTimeout(ctx, timeout)
		}
	}
	streaming := false // a large body keeps the send's context until closed
	defer func() {
		if !streaming {
			cancel()
		}
	}()
	// The send's tracker and the hooks of its first RoundTrip in one
	// object, the first send's inside the call's state. Its trace joins
	// the send's context, so countSends need not copy the request.
	st := run.cs.nextSend()
	tr := st.tr
	run.tracker, run.prepared = tr, st
	actx = httptrace.WithClientTrace(actx, &st.trace)
	start := time.Now()
	actx, span := run.d.tel.startSend(actx, req, run.attempt)

	out := req.WithContext(actx)
	run.sendReq = out
	if run.cs.stopOnDoubt {
		// net/http re-sends on its own only a request it can rewind. A
		// stop-on-doubt call (Create Order) must never be re-sent behind
		// its back: without GetBody, its sends are exactly the loop's.
		out.GetBody = nil
	}
	resp, err := a.next.RoundTrip(out)
	if err == nil && resp == nil {
		err = errors.New("prio: transport returned neither a response nor an error")
	}
	if err != nil && resp != nil {
		discardBody(resp.Body)
		resp = nil
	}
	var body []byte
	if err == nil {
		body, streaming, err = bufferBody(resp, cancel)
	}
	if err != nil {
		cancel()
		if timeout > 0 && errors.Is(actx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
			// Not wrapped: context.DeadlineExceeded in the result is kept
			// for the caller's own deadline.
			err = fmt.Errorf("%w after %s", errAttemptTimeout, timeout)
		}
		run.lastDoubt = tr.written.Load() && !provenUnsent(err)
		run.anyDoubt = run.anyDoubt || run.lastDoubt
		run.d.logSend(ctx, run, req, 0, err, time.Since(start))
		run.d.tel.endSend(span, run.cs.tel, run.cs.operation, req.Method, 0, "", err)
		return nil, err
	}

	status := resp.StatusCode
	ref := ""
	if status >= 400 {
		ref = errorReference(body)
	}
	run.cs.update(func(i *CallInfo) {
		i.LastStatus = status
		i.ErrorReference = ref
	})
	run.place.settle(status >= 400 && status < 500)
	run.lastDoubt = doubtfulStatus(status)
	run.anyDoubt = run.anyDoubt || run.lastDoubt
	if resp.Request == nil {
		resp.Request = req
	}
	run.d.logSend(ctx, run, req, status, nil, time.Since(start))
	run.d.tel.endSend(span, run.cs.tel, run.cs.operation, req.Method, status, ref, nil)
	return resp, nil
}

// bufferBody reads resp's body into memory (up to maxBufferedBody) and
// replaces it with a reader over the bytes. A longer body is handed on as a
// stream whose Close calls cancel (streaming is then true); otherwise the
// caller ends the send's context. On a read error the body is closed and
// the error returned.
func bufferBody(resp *http.Response, cancel context.CancelFunc) (b []byte, streaming bool, err error) {
	if resp.Body == nil || resp.Body == http.NoBody {
		resp.Body = http.NoBody
		return nil, false, nil
	}
	orig := resp.Body
	if n := resp.ContentLength; n >= 0 && n <= maxBufferedBody {
		// The announced length: one buffer of that size, then a check
		// that nothing follows.
		b = make([]byte, n)
		if _, err = io.ReadFull(orig, b); err == nil {
			var one [1]byte
			if m, _ := orig.Read(one[:]); m > 0 {
				err = errors.New("body longer than its Content-Length")
			}
		} else if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			orig.Close()
			return nil, false, fmt.Errorf("reading the response body: %w", err)
		}
		orig.Close()
		resp.Body = newBufferedBody(b)
		return b, false, nil
	}
	// No length announced (a chunked or compressed answer): read into a
	// pooled buffer, then copy the body out at its exact size.
	rb := readBuffers.Get().(*readBuffer)
	rb.buf.Reset()
	rb.limit = io.LimitedReader{R: orig, N: maxBufferedBody + 1}
	_, err = rb.buf.ReadFrom(&rb.limit)
	rb.limit.R = nil
	if err != nil {
		rb.put()
		orig.Close()
		return nil, false, fmt.Errorf("reading the response body: %w", err)
	}
	if rb.buf.Len() > maxBufferedBody {
		// The buffer's bytes go on with the stream; it is not reused.
		b = rb.buf.Bytes()
		resp.Body = &streamBody{Reader: io.MultiReader(bytes.NewReader(b), orig), closer: orig, cancel: cancel}
		return b, true, nil
	}
	b = bytes.Clone(rb.buf.Bytes())
	rb.put()
	orig.Close()
	resp.Body = newBufferedBody(b)
	return b, false, nil
}

// readBuffer is what a body of unknown length is read through: a buffer
// already grown by earlier bodies, and the reader that caps the read.
// Reading through one and copying the body out once costs one allocation
// a body, where io.ReadAll allocates and copies again each time it grows
// (a 2 KB order cost 8 allocations that way, 2 now, its bufferedBody
// included).
type readBuffer struct {
	buf   bytes.Buffer
	limit io.LimitedReader
}

var readBuffers = sync.Pool{New: func() any { return new(readBuffer) }}

// maxPooledBuffer bounds the buffers kept for reuse: one large answer must
// not keep its memory for the life of the process.
const maxPooledBuffer = 256 << 10

func (rb *readBuffer) put() {
	if rb.buf.Cap() <= maxPooledBuffer {
		readBuffers.Put(rb)
	}
}

// bufferedBody is a response body already in memory. Bytes lets the
// decoder use it without copying it again.
type bufferedBody struct {
	bytes.Reader
	b []byte
}

// newBufferedBody returns a body reading b, reader and all in one
// allocation.
func newBufferedBody(b []byte) *bufferedBody {
	bb := &bufferedBody{b: b}
	bb.Reset(b)
	return bb
}

func (*bufferedBody) Close() error { return nil }

// Bytes returns the whole body.
func (b *bufferedBody) Bytes() []byte { return b.b }

// streamBody is a large response body; closing it ends the send's context.
type streamBody struct {
	io.Reader
	closer io.Closer
	cancel context.CancelFunc
}

func (s *streamBody) Close() error {
	err := s.closer.Close()
	s.cancel()
	return err
}

// discardBody reads a little of a discarded body, so the connection can be
// reused, and closes it.
func discardBody(body io.ReadCloser) {
	if body == nil {
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(body, 4<<10))
	body.Close()
}
