package priotest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/priosdk/prio-go/internal/apiserver"
)

// Server is a running sandbox. All its methods are safe for concurrent use.
type Server struct {
	cfg      config
	spec     *spec
	api      http.Handler // the generated router over handlers
	handler  http.Handler // admin endpoints and the API pipeline
	injector *injector
	limiter  *limiter
	idem     *idemStore

	mu     sync.Mutex // guards st, tokens and timers
	st     *state
	tokens map[string]token
	timers []*time.Timer

	recMu   sync.Mutex
	records []RecordedRequest

	requests          atomic.Int64
	faults            atomic.Int64
	replays           atomic.Int64
	cachedReads       atomic.Int64
	uncachedReads     atomic.Int64
	webhooksDelivered atomic.Int64
	webhooksFailed    atomic.Int64

	life     sync.Mutex // guards closed and the pipe server
	closed   bool
	work     tracker         // requests, deliveries, timers and serve loops in progress
	bgCtx    context.Context // cancelled by Close
	bgCancel context.CancelFunc

	webhookClient *http.Client
	webhookTr     *http.Transport

	httpSrv *http.Server
	baseURL string // scheme and host, no path
	pipe    *pipeListener
	pipeSrv *http.Server
	pipeTr  *http.Transport
}

// tracker counts work in progress so Close can wait for it. It is not a
// sync.WaitGroup because a WaitGroup may not be used both inside and
// outside a testing/synctest bubble, and a sandbox may be.
type tracker struct {
	mu     sync.Mutex
	n      int
	closed bool
	idle   chan struct{}
}

func (t *tracker) add() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.n++
	return true
}

func (t *tracker) done() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n--
	if t.n == 0 && t.idle != nil {
		close(t.idle)
		t.idle = nil
	}
}

// close refuses new work; wait then waits for the work in progress.
func (t *tracker) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
}

func (t *tracker) wait() {
	t.mu.Lock()
	if t.n == 0 {
		t.mu.Unlock()
		return
	}
	if t.idle == nil {
		t.idle = make(chan struct{})
	}
	idle := t.idle
	t.mu.Unlock()
	<-idle
}

type token struct {
	clientID string
	expires  time.Time
}

// Stats counts what happened on the server since it started or was reset.
type Stats struct {
	// OrdersTotal is the number of orders created.
	OrdersTotal int `json:"orders_total"`
	// ExternalReferences is the number of distinct order_external_reference
	// values among them.
	ExternalReferences int `json:"external_references"`
	// DuplicateExternalReferences is the number of external references with
	// more than one order: bookings made twice.
	DuplicateExternalReferences int `json:"duplicate_external_references"`
	// ReservationsTotal is the number of reservations created.
	ReservationsTotal int `json:"reservations_total"`
	// RequestsTotal is the number of API requests received (admin
	// endpoints excluded).
	RequestsTotal int `json:"requests_total"`
	// FaultsInjected is the number of requests that got a fault.
	FaultsInjected int `json:"faults_injected"`
	// IdempotentReplays is the number of requests answered from an earlier
	// one (same Idempotency-Key, or same external reference).
	IdempotentReplays int `json:"idempotent_replays"`
	// WebhooksDelivered and WebhooksFailed count notifications that got a
	// 2xx, and those that gave up after every attempt.
	WebhooksDelivered int `json:"webhooks_delivered"`
	WebhooksFailed    int `json:"webhooks_failed"`
	// CachedReads and UncachedReads count the order reads (List Orders,
	// Get Order) served from Prio's cache, and those that asked for the live
	// state with cache=false (or order_version).
	CachedReads   int `json:"cached_reads"`
	UncachedReads int `json:"uncached_reads"`
	// ClientErrors is the number of 4XX answers counted towards the
	// clients' bans: every 4XX sent, except the 429s of an active ban.
	ClientErrors int `json:"client_errors"`
	// Bans is the number of times a client was banned for more than
	// WithClientErrorLimit 4XX answers within a minute.
	Bans int `json:"bans"`
	// MaxClientErrorsPerMinute is the largest number of counted 4XX answers
	// one client got within any rolling minute.
	MaxClientErrorsPerMinute int `json:"max_client_errors_per_minute"`
}

// RecordedRequest is what the server saw of one API request and how it
// answered.
type RecordedRequest struct {
	Time           time.Time `json:"time"`
	Method         string    `json:"method"`
	Path           string    `json:"path"`
	Operation      string    `json:"operation,omitempty"` // operationId, empty when no route matched
	IdempotencyKey string    `json:"idempotency_key,omitempty"`
	Attempt        int       `json:"attempt,omitempty"` // the App-Attempt header, 0 when absent
	BodySHA256     string    `json:"body_sha256"`       // hex SHA-256 of the request body
	Status         int       `json:"status"`            // status sent; 0 when no answer was sent
	Fault          FaultKind `json:"fault,omitempty"`   // the fault injected, empty for none
	Replayed       bool      `json:"replayed,omitempty"`
}

// maxRecords bounds the request log; older requests are forgotten first.
const maxRecords = 50000

// NewServer starts a sandbox on 127.0.0.1 with a random port for a test and
// closes it when the test ends.
func NewServer(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	s, err := Start("", opts...)
	if err != nil {
		tb.Fatalf("priotest: %v", err)
	}
	tb.Cleanup(s.Close)
	return s
}

// Start starts a sandbox listening on addr ("" means 127.0.0.1:0). Close
// stops it.
func Start(addr string, opts ...Option) (*Server, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	s, err := newServer(opts...)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("priotest: %w", err)
	}
	s.baseURL = "http://" + ln.Addr().String()
	s.httpSrv = s.newHTTPServer()
	s.work.add()
	go func() {
		defer s.work.done()
		_ = s.httpSrv.Serve(ln)
	}()
	return s, nil
}

// NewUnstarted returns a sandbox that does not listen: serve Handler()
// yourself, or reach it through PipeClient. It is what tests inside a
// testing/synctest bubble need, where real sockets cannot be used. Close
// stops it.
func NewUnstarted(opts ...Option) (*Server, error) {
	s, err := newServer(opts...)
	if err != nil {
		return nil, err
	}
	s.baseURL = "http://priotest.invalid"
	return s, nil
}

func newServer(opts ...Option) (*Server, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	sp, err := loadSpec()
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:      cfg,
		spec:     sp,
		injector: newInjector(cfg.faults, cfg.seed),
		limiter:  newLimiter(cfg.clientErrorLimit, cfg.requestLimit),
		idem:     newIdemStore(),
		tokens:   map[string]token{},
	}
	s.st = newState(s.now(), cfg.seed, cfg.orderCacheLag)
	s.bgCtx, s.bgCancel = context.WithCancel(context.Background())
	s.webhookTr = &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4, IdleConnTimeout: 30 * time.Second}
	s.webhookClient = &http.Client{Transport: s.webhookTr}
	strict := apiserver.NewStrictHandlerWithOptions(handlers{s}, nil, apiserver.StrictHTTPServerOptions{
		RequestErrorHandlerFunc: func(w http.ResponseWriter, _ *http.Request, err error) {
			errorf(http.StatusBadRequest, codeInvalidRequest, "%v", err).write(w)
		},
		ResponseErrorHandlerFunc: func(w http.ResponseWriter, _ *http.Request, err error) {
			asAPIError(err).write(w)
		},
	})
	s.api = apiserver.HandlerWithOptions(strict, apiserver.StdHTTPServerOptions{
		BaseURL: basePath,
		ErrorHandlerFunc: func(w http.ResponseWriter, _ *http.Request, err error) {
			errorf(http.StatusBadRequest, codeInvalidRequest, "%v", err).write(w)
		},
	})
	mux := http.NewServeMux()
	mux.Handle("/_sandbox/", s.adminHandler())
	mux.HandleFunc("/", s.serveAPI)
	s.handler = mux
	return s, nil
}

func (s *Server) newHTTPServer() *http.Server {
	return &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.cfg.logger.Handler(), slog.LevelDebug),
	}
}

// Close stops the server: it closes the listener and every connection, ends
// hanging and delayed calls, stops webhook deliveries and waits for all of
// it. It is safe to call more than once.
func (s *Server) Close() {
	s.life.Lock()
	if s.closed {
		s.life.Unlock()
		return
	}
	s.closed = true
	s.bgCancel()
	s.work.close()
	s.life.Unlock()

	if s.httpSrv != nil {
		_ = s.httpSrv.Close()
	}
	s.life.Lock()
	pipeSrv, pipeTr := s.pipeSrv, s.pipeTr
	s.life.Unlock()
	if pipeSrv != nil {
		_ = pipeSrv.Close()
	}
	s.mu.Lock()
	for _, t := range s.timers {
		t.Stop()
	}
	s.timers = nil
	s.mu.Unlock()
	s.work.wait()
	s.webhookTr.CloseIdleConnections()
	if pipeTr != nil {
		pipeTr.CloseIdleConnections()
	}
}

// enter registers a unit of work (a request, a delivery); it fails once the
// server is closing.
func (s *Server) enter() bool { return s.work.add() }

// background runs f on its own goroutine unless the server is closing
// (then it reports false); f's context ends on Close, which waits for f.
func (s *Server) background(f func(ctx context.Context)) bool {
	if !s.enter() {
		return false
	}
	go func() {
		defer s.work.done()
		f(s.bgCtx)
	}()
	return true
}

// scheduleSettle makes the state catch up with the clock after d, so that
// holds expire and slow orders confirm (and webhooks go out) even when no
// request arrives. Callers hold s.mu.
func (s *Server) scheduleSettle(d time.Duration) {
	var t *time.Timer
	t = time.AfterFunc(d+time.Millisecond, func() {
		if !s.enter() {
			return
		}
		defer s.work.done()
		s.mu.Lock()
		events := s.st.settle(s.now(), distributorName)
		s.timers = slices.DeleteFunc(s.timers, func(x *time.Timer) bool { return x == t })
		s.mu.Unlock()
		s.dispatch(events)
	})
	s.timers = append(s.timers, t)
}

// URL is the API's base URL, ending in /v3.8/distributor.
func (s *Server) URL() string { return s.baseURL + basePath }

// Credentials returns the client id and secret the token endpoint accepts
// (WithCredentials).
func (s *Server) Credentials() (clientID, clientSecret string) {
	return s.cfg.clientID, s.cfg.clientSecret
}

// DistributorID returns the distributor the credentials belong to
// (WithDistributorID).
func (s *Server) DistributorID() string { return s.cfg.distributorID }

// AdminURL is the server's root URL (scheme and host), under which the
// /_sandbox/ endpoints live.
func (s *Server) AdminURL() string { return s.baseURL }

// Handler is the whole server (API and admin endpoints) as an http.Handler.
// Faults that cut connections need a ResponseWriter that can be hijacked, as
// net/http's server gives; elsewhere they abort the handler with
// http.ErrAbortHandler.
func (s *Server) Handler() http.Handler { return s.handler }

// Now is the sandbox clock (see WithClock).
func (s *Server) Now() time.Time { return s.now() }

func (s *Server) now() time.Time { return s.cfg.now() }

func (s *Server) epoch() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.epoch
}

// Stats counts orders, references, requests and faults.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	out := Stats{
		OrdersTotal:        len(s.st.orders),
		ExternalReferences: len(s.st.ordersByExt),
		ReservationsTotal:  len(s.st.reservations),
	}
	for _, os := range s.st.ordersByExt {
		if len(os) > 1 {
			out.DuplicateExternalReferences++
		}
	}
	s.mu.Unlock()
	out.RequestsTotal = int(s.requests.Load())
	out.FaultsInjected = int(s.faults.Load())
	out.IdempotentReplays = int(s.replays.Load())
	out.WebhooksDelivered = int(s.webhooksDelivered.Load())
	out.WebhooksFailed = int(s.webhooksFailed.Load())
	out.CachedReads = int(s.cachedReads.Load())
	out.UncachedReads = int(s.uncachedReads.Load())
	out.ClientErrors, out.Bans, out.MaxClientErrorsPerMinute = s.limiter.counts()
	return out
}

// OrdersFor is the number of orders the server holds with this
// order_external_reference (cancelled ones included).
func (s *Server) OrdersFor(externalReference string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.st.ordersByExt[externalReference])
}

// Requests returns the recorded API requests, oldest first (at most the
// last 50,000).
func (s *Server) Requests() []RecordedRequest {
	s.recMu.Lock()
	defer s.recMu.Unlock()
	return slices.Clone(s.records)
}

func (s *Server) record(r RecordedRequest) {
	s.recMu.Lock()
	defer s.recMu.Unlock()
	if len(s.records) >= maxRecords {
		s.records = slices.Delete(s.records, 0, maxRecords/10)
	}
	s.records = append(s.records, r)
}

// SetFaults replaces the fault profile; sequences start again from their
// first entry.
func (s *Server) SetFaults(p Profile) { s.injector.set(p, s.cfg.seed) }

// Faults returns the current fault profile.
func (s *Server) Faults() Profile { return s.injector.current() }

// Reset forgets every order, reservation, webhook, stored idempotency key,
// limit window and recorded request, zeroes the counters and restarts the
// fault sequences. Access tokens stay valid and the catalogue is re-seeded.
func (s *Server) Reset() {
	s.mu.Lock()
	for _, t := range s.timers {
		t.Stop()
	}
	s.timers = nil
	s.st = newState(s.now(), s.cfg.seed, s.cfg.orderCacheLag)
	s.mu.Unlock()
	s.idem.reset()
	s.limiter.reset()
	s.SetFaults(s.injector.current())
	s.recMu.Lock()
	s.records = nil
	s.recMu.Unlock()
	s.requests.Store(0)
	s.faults.Store(0)
	s.replays.Store(0)
	s.webhooksDelivered.Store(0)
	s.webhooksFailed.Store(0)
	s.cachedReads.Store(0)
	s.uncachedReads.Store(0)
}

// issueToken creates an access token for clientID.
func (s *Server) issueToken(clientID string) (string, time.Duration) {
	var b [24]byte
	_, _ = rand.Read(b[:])
	tok := "sbx_" + hex.EncodeToString(b[:])
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.tokens) > 1000 {
		for k, t := range s.tokens {
			if !now.Before(t.expires) {
				delete(s.tokens, k)
			}
		}
	}
	s.tokens[tok] = token{clientID: clientID, expires: now.Add(s.cfg.tokenTTL)}
	return tok, s.cfg.tokenTTL
}

// lookupToken returns the client of a live token.
func (s *Server) lookupToken(tok string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[tok]
	if !ok || !s.now().Before(t.expires) {
		return "", false
	}
	return t.clientID, true
}

// tokenClient returns the client a token was issued to, expired or not.
func (s *Server) tokenClient(tok string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[tok]
	return t.clientID, ok
}

var errClosed = errors.New("priotest: server closed")
