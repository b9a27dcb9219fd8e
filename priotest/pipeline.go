package priotest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/getkin/kin-openapi/routers"
)

// maxBody caps request bodies; Prio's are small.
const maxBody = 1 << 20

// call is one API request travelling through the pipeline: routing,
// limits, faults before processing, authentication, validation,
// idempotency, the handler, faults after processing, delivery.
type call struct {
	s       *Server
	w       http.ResponseWriter
	r       *http.Request
	body    []byte
	rec     *RecordedRequest
	arrived time.Time // on the real (or synctest) clock, for the fault delays
	client  string    // whom the limits count against
	fault   FaultKind
	profile Profile
	route   *routers.Route
	rest    string            // the path below basePath
	params  map[string]string // the path parameters
	// banned is set when the answer is the 429 of an active ban, the one
	// 4XX answer that does not count towards the ban.
	banned bool
	// recorded is set once rec is in the server's log. The record is
	// written before the first byte of the answer (or the close) leaves,
	// so a client that reads Requests() after its call sees its requests.
	recorded bool
}

// commit puts the request in the server's log, once.
func (c *call) commit() {
	if c.recorded {
		return
	}
	c.recorded = true
	c.s.record(*c.rec)
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	if !s.enter() {
		errorf(http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE", "The sandbox is shutting down.").write(w)
		return
	}
	defer s.work.done()
	s.requests.Add(1)
	arrived := time.Now()
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	sum := sha256.Sum256(body)
	rec := RecordedRequest{
		Time:           s.now(),
		Method:         r.Method,
		Path:           r.URL.Path,
		IdempotencyKey: r.Header.Get(headerIdempotencyKey),
		BodySHA256:     hex.EncodeToString(sum[:]),
	}
	rec.Attempt, _ = strconv.Atoi(r.Header.Get("App-Attempt"))
	c := &call{s: s, w: w, r: r, body: body, rec: &rec, arrived: arrived, fault: FaultNone}
	defer func() {
		c.commit()
		s.cfg.logger.Debug("priotest: request", "method", rec.Method, "path", rec.Path, "operation", rec.Operation,
			"status", rec.Status, "fault", rec.Fault, "idempotency_key", rec.IdempotencyKey, "attempt", rec.Attempt)
	}()
	if err != nil {
		c.abort()
		return
	}
	c.run()
}

func (c *call) run() {
	s := c.s
	c.client = s.clientKey(c.r)
	// The limits come first: a banned client is refused whatever it asks.
	if e, banned := s.limiter.admit(c.client, s.now()); e != nil {
		c.banned = banned
		c.send(e.captured())
		return
	}
	if len(c.body) > maxBody {
		c.send(errorf(http.StatusRequestEntityTooLarge, codeInvalidRequest, "The request body is larger than %d bytes.", maxBody).captured())
		return
	}
	rest, ok := strings.CutPrefix(c.r.URL.Path, basePath)
	if !ok || !strings.HasPrefix(rest, "/") {
		c.send(errorf(http.StatusNotFound, "NOT_FOUND", "The API is served under %s; %s is not part of it.", basePath, c.r.URL.Path).captured())
		return
	}
	route, params, err := s.spec.route(c.r, rest)
	if err != nil {
		c.send(asAPIError(err).captured())
		return
	}
	op := route.Operation.OperationID
	c.rec.Operation = op
	c.route, c.rest, c.params = route, rest, params

	c.fault, c.profile = s.injector.pick(op)
	if c.fault != FaultNone {
		s.faults.Add(1)
		c.rec.Fault = c.fault
		s.cfg.logger.Debug("priotest: injecting a fault", "operation", op, "fault", c.fault)
	}
	switch c.fault {
	case FaultHang:
		select {
		case <-c.r.Context().Done():
		case <-s.bgCtx.Done():
		}
		c.abort()
		return
	case Fault5xxBefore:
		c.send(errorf(http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE", "The service is temporarily unavailable.").captured())
		return
	case Fault429, Fault429NoRetryAfter:
		e := errorf(http.StatusTooManyRequests, "TOO_MANY_REQUESTS", "Too many requests.")
		if c.fault == Fault429 {
			e.header = retryAfter(c.profile.retryAfter())
		}
		c.send(e.captured())
		return
	case FaultHTML:
		c.send(nginxPage(http.StatusBadGateway))
		return
	case FaultGateway502, FaultGateway503, FaultGateway504, FaultGateway524:
		c.viaGateway()
		return
	}

	clientID, key, a, done := c.arrive(c.r)
	if done {
		c.answer(a)
		return
	}
	if c.fault == FaultDelay {
		t := time.NewTimer(c.profile.delay())
		select {
		case <-t.C:
		case <-s.bgCtx.Done():
			t.Stop()
			c.release(key)
			c.abort()
			return
		}
	}
	a = c.process(c.r, clientID, key)
	if a.header.Get(headerReplayed) != "" {
		c.rec.Replayed = true
	}
	c.answer(c.conditional(a))
}

// arrive is what the origin does as a request reaches it: authentication,
// validation against the spec, and the claim of its Idempotency-Key. It
// returns the answer when that settles the call (done), or the client and
// the claimed key ("" when none) for process.
func (c *call) arrive(r *http.Request) (clientID, key string, a captured, done bool) {
	s := c.s
	clientID, e := s.authenticate(r, c.route)
	if e != nil {
		return "", "", e.captured(), true
	}
	r.Body = io.NopCloser(bytes.NewReader(c.body))
	r.ContentLength = int64(len(c.body))
	if err := s.spec.validate(r.Context(), r, c.rest, c.route, c.params); err != nil {
		return "", "", asAPIError(err).captured(), true
	}
	if r.Method != http.MethodPost || c.rec.Operation == "getToken" || !s.cfg.idempotency.byHeader() {
		return clientID, "", captured{}, false
	}
	raw, sent := r.Header[headerIdempotencyKey]
	if !sent {
		return clientID, "", captured{}, false
	}
	if len(raw) != 1 || !validKey(raw[0]) {
		return "", "", errorf(http.StatusBadRequest, codeInvalidRequest, "Idempotency-Key must be one value of 1 to 255 visible ASCII characters.").captured(), true
	}
	key = c.client + "\x00" + raw[0]
	replay, e := s.idem.begin(key, fingerprint(r.Method, r.URL.Path, c.body), s.now())
	switch {
	case e != nil:
		return "", "", e.captured(), true
	case replay != nil:
		s.replays.Add(1)
		c.rec.Replayed = true
		a := *replay
		a.header = a.header.Clone()
		a.header.Set(headerReplayed, "true")
		return "", "", a, true
	}
	return clientID, key, captured{}, false
}

// process runs the operation and stores its answer under the claimed key.
// It touches neither the call's record nor its ResponseWriter, so it may
// run after the client was answered.
func (c *call) process(r *http.Request, clientID, key string) captured {
	a := c.invoke(r, clientID)
	if key != "" {
		c.s.idem.finish(key, a)
	}
	return a
}

// release frees a claimed key whose operation will not run.
func (c *call) release(key string) {
	if key != "" {
		c.s.idem.finish(key, captured{status: http.StatusServiceUnavailable})
	}
}

// viaGateway models a gateway in front of a slow origin: the origin takes
// the request as it arrives (claiming its key), processes it in the
// background Profile.OriginDelay after arrival and commits, while the
// client gets the gateway's HTML error page after Profile.GatewayDelay.
func (c *call) viaGateway() {
	s := c.s
	clientID, key, _, done := c.arrive(c.r)
	if !done {
		r := c.r.Clone(context.WithoutCancel(c.r.Context()))
		at := c.arrived.Add(c.profile.originDelay())
		started := s.background(func(ctx context.Context) {
			t := time.NewTimer(time.Until(at))
			defer t.Stop()
			select {
			case <-t.C:
				c.process(r, clientID, key)
			case <-ctx.Done():
				c.release(key)
			}
		})
		if !started {
			c.release(key)
		}
	}
	t := time.NewTimer(time.Until(c.arrived.Add(c.profile.gatewayDelay())))
	defer t.Stop()
	select {
	case <-t.C:
	case <-c.r.Context().Done():
		c.abort()
		return
	case <-s.bgCtx.Done():
		c.abort()
		return
	}
	c.send(gatewayPage(c.fault))
}

// invoke runs the generated router and handlers on r and captures the
// answer. The operation runs to its end even if the client goes away
// meanwhile, as it would on a real server.
func (c *call) invoke(r *http.Request, clientID string) captured {
	cw := newCaptureWriter()
	ci := &callInfo{w: cw, clientID: clientID}
	ctx := context.WithValue(context.WithoutCancel(r.Context()), callInfoKey{}, ci)
	r = r.WithContext(ctx)
	r.Body = io.NopCloser(bytes.NewReader(c.body))
	ci.r = r
	c.s.api.ServeHTTP(cw, r)
	return cw.result()
}

// conditional turns a 200 into 304 when the handler's Last-Modified is not
// after the request's If-Modified-Since (both at HTTP's one-second
// precision).
func (c *call) conditional(a captured) captured {
	if c.r.Method != http.MethodGet || a.status != http.StatusOK {
		return a
	}
	ims, lm := c.r.Header.Get("If-Modified-Since"), a.header.Get("Last-Modified")
	if ims == "" || lm == "" {
		return a
	}
	since, err1 := http.ParseTime(ims)
	last, err2 := http.ParseTime(lm)
	if err1 != nil || err2 != nil || last.After(since) {
		return a
	}
	return captured{status: http.StatusNotModified, header: http.Header{"Last-Modified": []string{lm}}}
}

// answer delivers an answer the API produced, applying the fault picked
// for this call.
func (c *call) answer(a captured) {
	switch c.fault {
	case Fault5xxAfter:
		c.send(errorf(http.StatusInternalServerError, "INTERNAL_SERVER_ERROR", "An internal error occurred.").captured())
	case FaultDropAfter:
		c.abort()
	case FaultResetMidBody:
		c.resetMidBody(a)
	case FaultMalformedJSON:
		a.body = malformed(a.body)
		a.header = a.header.Clone()
		a.header.Set("Content-Type", "application/json")
		c.send(a)
	case FaultTruncatedJSON:
		a.body = a.body[:len(a.body)/2]
		c.send(a)
	default:
		c.send(a)
	}
}

// sent records the status of the answer about to leave and counts a 4XX
// towards the client's ban, except the 429 of the ban itself. It runs
// before the first byte leaves, so the client's next request sees it.
func (c *call) sent(status int) {
	c.rec.Status = status
	c.commit()
	if status >= 400 && status < 500 && !c.banned {
		c.s.limiter.countError(c.client, c.s.now())
	}
}

// send writes a complete answer.
func (c *call) send(a captured) {
	h := c.w.Header()
	maps.Copy(h, a.header)
	if a.status != http.StatusNotModified {
		h.Set("Content-Length", strconv.Itoa(len(a.body)))
	}
	c.sent(a.status)
	c.w.WriteHeader(a.status)
	_, _ = c.w.Write(a.body)
}

// abort closes the connection without an answer.
func (c *call) abort() {
	c.rec.Status = 0
	c.commit()
	conn, _, err := http.NewResponseController(c.w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}

// resetMidBody sends the status line, the headers with the full length and
// half the body, then resets the connection.
func (c *call) resetMidBody(a captured) {
	conn, brw, err := http.NewResponseController(c.w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	c.sent(a.status)
	h := a.header.Clone()
	h.Set("Content-Length", strconv.Itoa(len(a.body)))
	fmt.Fprintf(brw, "HTTP/1.1 %d %s\r\n", a.status, http.StatusText(a.status))
	_ = h.Write(brw)
	_, _ = brw.WriteString("\r\n")
	_, _ = brw.Write(a.body[:len(a.body)/2])
	_ = brw.Flush()
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // close with RST, as a reset
	}
	_ = conn.Close()
}

// malformed breaks JSON so no decoder accepts it.
func malformed(b []byte) []byte {
	if i := bytes.IndexByte(b, ':'); i >= 0 {
		out := bytes.Clone(b)
		out[i] = ';'
		return out
	}
	return []byte(`{"api_version":"3.8.0","data":`)
}

// nginxPage is the error page nginx serves for status, with no Prio error
// body.
func nginxPage(status int) captured {
	title := fmt.Sprintf("%d %s", status, http.StatusText(status))
	switch status {
	case http.StatusServiceUnavailable:
		title = "503 Service Temporarily Unavailable"
	case http.StatusGatewayTimeout:
		title = "504 Gateway Time-out"
	}
	page := "<html>\r\n<head><title>" + title + "</title></head>\r\n<body>\r\n<center><h1>" + title +
		"</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
	return captured{
		status: status,
		header: http.Header{"Content-Type": []string{"text/html"}},
		body:   []byte(page),
	}
}

// statusOriginTimeout is Cloudflare's 524: the origin took the connection
// but did not answer in time.
const statusOriginTimeout = 524

// cloudflareTimeoutPage is the page Cloudflare serves with 524.
func cloudflareTimeoutPage() captured {
	page := `<!DOCTYPE html>
<html lang="en-US">
<head>
<title>api.prioticket.com | 524: A timeout occurred</title>
<meta charset="UTF-8" />
</head>
<body>
<div id="cf-wrapper">
<h1><span class="inline-block">A timeout occurred</span> <span class="code-label">Error code 524</span></h1>
<p>The origin web server timed out responding to this request.</p>
<p>Cloudflare Ray ID: <strong>8f0c0ffee0000000</strong> &bull; Performance &amp; security by Cloudflare</p>
</div>
</body>
</html>
`
	return captured{
		status: statusOriginTimeout,
		header: http.Header{"Content-Type": []string{"text/html; charset=UTF-8"}},
		body:   []byte(page),
	}
}

// gatewayPage is what the client gets for a gateway fault.
func gatewayPage(k FaultKind) captured {
	switch k {
	case FaultGateway503:
		return nginxPage(http.StatusServiceUnavailable)
	case FaultGateway504:
		return nginxPage(http.StatusGatewayTimeout)
	case FaultGateway524:
		return cloudflareTimeoutPage()
	}
	return nginxPage(http.StatusBadGateway)
}

func (e *apiError) captured() captured {
	h := e.header.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Set("Content-Type", "application/json")
	return captured{status: e.status, header: h, body: e.body()}
}

// clientKey names whom the limits count a request against: the client of
// its token or Basic credentials, else its IP address.
func (s *Server) clientKey(r *http.Request) string {
	auth := r.Header.Get("Authorization")
	if scheme, tok, ok := strings.Cut(auth, " "); ok && strings.EqualFold(scheme, "Bearer") {
		// An expired token still names its client: the 401s it earns count
		// against that client, not against its IP address.
		if id, ok := s.tokenClient(strings.TrimSpace(tok)); ok {
			return "client:" + id
		}
	}
	if id, _, ok := r.BasicAuth(); ok && id != "" {
		return "client:" + id
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "ip:" + host
}

// authenticate applies Prio's rules: the token endpoint takes Basic
// credentials; every other operation (except those the spec leaves open)
// takes a Bearer token. No Authorization header at all is 400; a wrong one
// is 401.
func (s *Server) authenticate(r *http.Request, route *routers.Route) (string, *apiError) {
	op := route.Operation
	auth := r.Header.Get("Authorization")
	if op.OperationID == "getToken" {
		if auth == "" {
			return "", errorf(http.StatusBadRequest, "invalid_request", "The token endpoint needs HTTP Basic credentials in the Authorization header.")
		}
		id, secret, ok := r.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(id), []byte(s.cfg.clientID)) != 1 ||
			subtle.ConstantTimeCompare([]byte(secret), []byte(s.cfg.clientSecret)) != 1 {
			e := errorf(http.StatusUnauthorized, "invalid_client", "Client authentication failed.")
			e.header = http.Header{"Www-Authenticate": []string{`Basic realm="Prio"`}}
			return "", e
		}
		return id, nil
	}
	if op.Security != nil && len(*op.Security) == 0 {
		return "", nil
	}
	if auth == "" {
		return "", errorf(http.StatusBadRequest, codeInvalidRequest, "The Authorization header is missing.")
	}
	scheme, tok, ok := strings.Cut(auth, " ")
	if ok && strings.EqualFold(scheme, "Bearer") {
		if id, ok := s.lookupToken(strings.TrimSpace(tok)); ok {
			return id, nil
		}
	}
	e := errorf(http.StatusUnauthorized, "INVALID_TOKEN", "The access token is invalid or has expired.")
	e.header = http.Header{"Www-Authenticate": []string{`Bearer error="invalid_token"`}}
	return "", e
}
