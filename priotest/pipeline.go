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
	client  string // whom the limits count against
	fault   FaultKind
	profile Profile
	route   *routers.Route
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
	c := &call{s: s, w: w, r: r, body: body, rec: &rec, fault: FaultNone}
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
	if len(c.body) > maxBody {
		c.answer(errorf(http.StatusRequestEntityTooLarge, codeInvalidRequest, "The request body is larger than %d bytes.", maxBody).captured())
		return
	}
	rest, ok := strings.CutPrefix(c.r.URL.Path, basePath)
	if !ok || !strings.HasPrefix(rest, "/") {
		c.answer(errorf(http.StatusNotFound, "NOT_FOUND", "The API is served under %s; %s is not part of it.", basePath, c.r.URL.Path).captured())
		return
	}
	route, params, err := s.spec.route(c.r, rest)
	if err != nil {
		c.answer(asAPIError(err).captured())
		return
	}
	op := route.Operation.OperationID
	c.rec.Operation = op
	c.route = route

	if e, banned := s.limiter.admit(c.client, s.now()); e != nil {
		if banned {
			c.send(e.captured())
		} else {
			c.answer(e.captured())
		}
		return
	}

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
		c.send(htmlBadGateway())
		return
	}

	clientID, e := s.authenticate(c.r, route)
	if e != nil {
		c.answer(e.captured())
		return
	}
	c.r.Body = io.NopCloser(bytes.NewReader(c.body))
	c.r.ContentLength = int64(len(c.body))
	if err := s.spec.validate(c.r.Context(), c.r, rest, route, params); err != nil {
		c.answer(asAPIError(err).captured())
		return
	}

	var key string
	if c.r.Method == http.MethodPost && op != "getToken" && s.cfg.idempotency.byHeader() {
		if raw, sent := c.r.Header[headerIdempotencyKey]; sent {
			if len(raw) != 1 || !validKey(raw[0]) {
				c.answer(errorf(http.StatusBadRequest, codeInvalidRequest, "Idempotency-Key must be one value of 1 to 255 visible ASCII characters.").captured())
				return
			}
			key = c.client + "\x00" + raw[0]
			replay, e := s.idem.begin(key, fingerprint(c.r.Method, c.r.URL.Path, c.body), s.now())
			switch {
			case e != nil:
				c.answer(e.captured())
				return
			case replay != nil:
				s.replays.Add(1)
				c.rec.Replayed = true
				a := *replay
				a.header = a.header.Clone()
				a.header.Set(headerReplayed, "true")
				c.answer(a)
				return
			}
		}
	}

	if c.fault == FaultDelay {
		t := time.NewTimer(c.profile.delay())
		select {
		case <-t.C:
		case <-s.bgCtx.Done():
			t.Stop()
			if key != "" {
				s.idem.finish(key, captured{status: http.StatusServiceUnavailable})
			}
			c.abort()
			return
		}
	}

	a := c.invoke(clientID)
	if key != "" {
		s.idem.finish(key, a)
	}
	if a.header.Get(headerReplayed) != "" {
		c.rec.Replayed = true
	}
	c.answer(c.conditional(a))
}

// invoke runs the generated router and handlers and captures the answer.
// The operation runs to its end even if the client goes away meanwhile, as
// it would on a real server.
func (c *call) invoke(clientID string) captured {
	cw := newCaptureWriter()
	ci := &callInfo{w: cw, clientID: clientID}
	ctx := context.WithValue(context.WithoutCancel(c.r.Context()), callInfoKey{}, ci)
	r := c.r.WithContext(ctx)
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
// for this call, and counts 4XX answers towards the client's ban.
func (c *call) answer(a captured) {
	switch c.fault {
	case Fault5xxAfter:
		c.send(errorf(http.StatusInternalServerError, "INTERNAL_SERVER_ERROR", "An internal error occurred.").captured())
		return
	case FaultDropAfter:
		c.abort()
		return
	case FaultResetMidBody:
		c.resetMidBody(a)
		return
	case FaultMalformedJSON:
		a.body = malformed(a.body)
		a.header = a.header.Clone()
		a.header.Set("Content-Type", "application/json")
		c.send(a)
		return
	case FaultTruncatedJSON:
		a.body = a.body[:len(a.body)/2]
		c.send(a)
		return
	}
	c.send(a)
	if a.status >= 400 && a.status < 500 {
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
	c.rec.Status = a.status
	c.commit()
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
	c.rec.Status = a.status
	c.commit()
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

func htmlBadGateway() captured {
	page := "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
	return captured{
		status: http.StatusBadGateway,
		header: http.Header{"Content-Type": []string{"text/html"}},
		body:   []byte(page),
	}
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
		if id, ok := s.lookupToken(strings.TrimSpace(tok)); ok {
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
