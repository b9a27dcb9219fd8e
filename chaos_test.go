//go:build chaos

package prio_test

// The chaos suite: the evidence behind "retry Create Order safely". It is
// behind the chaos build tag because a full run makes 80,000 Create Order
// calls and takes minutes:
//
//	go test -tags chaos -run Chaos -count=1 -v ./        (or scripts/chaos)
//
// Knobs (environment):
//
//	PRIO_CHAOS_CALLS       Create Order calls per idempotency mode (default 10000)
//	PRIO_CHAOS_WORKERS     goroutines making them (default 64)
//	PRIO_CHAOS_TCP_CALLS   calls per mode through toxiproxy (default PRIO_CHAOS_CALLS)
//	PRIO_TOXIPROXY_SERVER  path of a toxiproxy v2 server binary; the TCP part
//	                       is skipped without it (scripts/chaos builds one)
//
// The tests do not run in parallel: each run loads both cores, and its
// timing (300 ms per send) is part of what it measures.

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	prio "github.com/priosdk/prio-go"
	"github.com/priosdk/prio-go/generated"
	"github.com/priosdk/prio-go/priotest"
)

// chaosCreateMix is the hostile mix for Create Order: processed then
// dropped 10 %, 5xx after processing 5 %, 5xx before processing 5 %, resets
// mid-body 5 %, hangs past the attempt timeout 2 %, 429 2 %, and a gateway
// in front of a slow origin answering 502, 503, 504 or 524 with its own
// page 2 % each (the origin books 600 ms after the request came in).
// Every server of the suite also serves order lists from a cache that lags
// 3 s behind writes (chaosCacheLag).
//
// Look-ups (List Orders) get faults too, at a rate that makes some of them
// fail every send (MaxSends of them), so that Create does return
// ErrOutcomeUnknown and Reconcile has something to settle: 5xx 15 %, resets
// mid-body 5 %, hangs 2 %. Every other operation (the token) is left alone.
const chaosCreateMix = `{
  "name": "chaos",
  "seed": 20260512,
  "probabilities": {
    "createOrder": {"drop_after": 0.10, "5xx_after": 0.05, "5xx_before": 0.05,
                    "reset_mid_body": 0.05, "hang": 0.02, "429": 0.02,
                    "gateway_502": 0.02, "gateway_503": 0.02, "gateway_504": 0.02, "gateway_524": 0.02},
    "getOrders":   {"5xx_before": 0.15, "reset_mid_body": 0.05, "hang": 0.02}
  },
  "retry_after": "1s",
  "gateway_delay": "20ms",
  "origin_delay": "600ms"
}`

// chaosTCPFaults adds to the toxiproxy run's network faults what a network
// cannot make: a gateway answering for a slow origin.
const chaosTCPFaults = `{"name": "gateways", "seed": 20260513,
  "probabilities": {"createOrder": {"gateway_502": 0.02, "gateway_503": 0.02, "gateway_504": 0.02, "gateway_524": 0.02}},
  "gateway_delay": "20ms", "origin_delay": "600ms"}`

// chaosCacheLag is how far the sandbox's cached order reads lag behind
// writes: Prio serves lists from a caching server unless asked not to.
const chaosCacheLag = 3 * time.Second

// chaosAttemptTimeout bounds each send: hangs cost this much.
const chaosAttemptTimeout = 300 * time.Millisecond

// chaosPolicy is the default policy with short waits. The client-side rate
// limiter (1,000 a minute) and 4XX guard are off: they protect Prio's
// fair-use limits, which the sandbox does not enforce here, and with them
// on 10,000 calls would take ten minutes of waiting. The retry budget stays
// at its default.
func chaosPolicy() prio.RetryPolicy {
	p := prio.DefaultRetryPolicy()
	p.BookingAttemptTimeout = chaosAttemptTimeout
	p.AttemptTimeout = chaosAttemptTimeout
	p.BaseDelay = 2 * time.Millisecond
	p.MaxDelay = 50 * time.Millisecond
	p.MaxRetryAfter = 2 * time.Second // the sandbox's 429 asks for 1 s
	p.RateLimitedDelay = 50 * time.Millisecond
	p.ClientErrorLimit = 0
	p.RequestsPerMinute = 0
	// The sandbox's slowest processing after a send got no answer is the
	// gateway's origin (600 ms after the request arrived); 2 s is well
	// past it.
	p.ProcessingHorizon = 2 * time.Second
	return p
}

// chaosReconcile settles unknown outcomes quickly. GiveUpAfter is far
// longer than any send can stay in flight (the attempt timeout), so an
// order not listed by then was never booked.
func chaosReconcile() prio.ReconcileSchedule {
	return prio.ReconcileSchedule{Interval: 20 * time.Millisecond, Count: 5, MaxInterval: 200 * time.Millisecond, GiveUpAfter: 3 * time.Second}
}

func chaosEnvInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	require.NoError(t, err, "%s=%q", name, v)
	require.Positive(t, n, "%s", name)
	return n
}

// chaosGuest is a guest whose personal data travels in order_contacts and
// must never surface in a log line, an error string or a recorded request.
type chaosGuest struct{ first, last, email, mobile string }

var chaosGuests = []chaosGuest{
	{"Ottoline", "Vanderhaegen", "ottoline.vanderhaegen@example.org", "+31612345678"},
	{"Bartholomew", "Quistgaard", "b.quistgaard@example.net", "+4520123456"},
	{"Soraya", "Achterberg", "soraya.achterberg@example.com", "+33612345679"},
	{"Evander", "Lindqvist-Ortega", "evander.lo@example.org", "+34612345670"},
	{"Marisol", "Thorvaldsen", "marisol@thorvaldsen.example", "+4791234567"},
	{"Quentin", "Abernethy", "q.abernethy+tickets@example.co.uk", "+447700900123"},
	{"Henrietta", "Okonkwo-Balogun", "hokonkwo@example.io", "+2348012345678"},
	{"Leopold", "Wierzbicki", "leopold.wierzbicki@example.pl", "+48512345678"},
}

func chaosOrder(ref string, g chaosGuest) *prio.OrderRequest {
	return &prio.OrderRequest{
		OrderExternalReference: ref,
		OrderBookings: []prio.BookingOption{{
			ProductId:          prio.Ptr(priotest.ProductOpen),
			ProductTypeDetails: &[]prio.ProductTypeDetail{{ProductTypeId: priotest.ProductTypeAdult, ProductTypeCount: 1}},
		}},
		OrderContacts: &[]prio.Contact{{
			ContactNameFirst: prio.Ptr(g.first),
			ContactNameLast:  prio.Ptr(g.last),
			ContactEmail:     prio.Ptr(g.email),
			ContactMobile:    prio.Ptr(g.mobile),
		}},
	}
}

// chaosRandom returns a hex string unique to this run, so that a secret
// can only be found where the run put it.
func chaosRandom(prefix string) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// chaosBuffer is a log sink and text collector safe for many goroutines.
type chaosBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	// onLine, when set, sees each complete line written (under the lock).
	onLine  func(line string)
	partial []byte
}

func (b *chaosBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.onLine != nil {
		b.partial = append(b.partial, p...)
		for {
			i := bytes.IndexByte(b.partial, '\n')
			if i < 0 {
				break
			}
			b.onLine(string(b.partial[:i]))
			b.partial = b.partial[i+1:]
		}
	}
	return b.buf.Write(p)
}

func (b *chaosBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *chaosBuffer) lines() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Count(b.buf.Bytes(), []byte("\n"))
}

// chaosTap sits under the client (as its http.Client's transport) and sees
// every request as it leaves: it learns the access tokens the server issued
// (from the Authorization headers) and keeps each request URL.
type chaosTap struct {
	next   http.RoundTripper
	mu     sync.Mutex
	tokens map[string]bool
	urls   []string
}

func newChaosTap(next http.RoundTripper) *chaosTap {
	return &chaosTap{next: next, tokens: map[string]bool{}}
}

func (tp *chaosTap) RoundTrip(r *http.Request) (*http.Response, error) {
	tp.mu.Lock()
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		tp.tokens[tok] = true
	}
	tp.urls = append(tp.urls, r.URL.String())
	tp.mu.Unlock()
	return tp.next.RoundTrip(r)
}

func (tp *chaosTap) snapshot() (tokens []string, urls []string) {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return slices.Sorted(maps.Keys(tp.tokens)), slices.Clone(tp.urls)
}

func chaosTransport(workers int) *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // loopback only, whatever the environment says
	tr.MaxIdleConnsPerHost = workers
	tr.MaxIdleConns = 2 * workers
	return tr
}

// chaosRig is one client under test with everything the secret scan
// needs to read afterwards.
type chaosRig struct {
	client   *prio.Client
	logs     *chaosBuffer // the client's debug log, JSON lines
	tap      *chaosTap
	clientID string
	secret   string
	apiKey   string
}

// newChaosRig builds the client under test over a real TCP transport.
// wrap, when given, goes between the tap and that transport.
func newChaosRig(t *testing.T, baseURL, clientID, secret string, workers int, wrap ...func(http.RoundTripper) http.RoundTripper) *chaosRig {
	t.Helper()
	tr := chaosTransport(workers)
	t.Cleanup(tr.CloseIdleConnections)
	return newChaosRigOver(t, baseURL, clientID, secret, workers, tr, wrap...)
}

// newChaosRigOver builds the client under test over base.
func newChaosRigOver(t *testing.T, baseURL, clientID, secret string, workers int, base http.RoundTripper, wrap ...func(http.RoundTripper) http.RoundTripper) *chaosRig {
	t.Helper()
	r := &chaosRig{logs: &chaosBuffer{}, clientID: clientID, secret: secret, apiKey: chaosRandom("chaos-api-key-")}
	below := base
	for _, w := range wrap {
		below = w(below)
	}
	r.tap = newChaosTap(below)
	logger := slog.New(slog.NewJSONHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := prio.NewClient(
		prio.WithBaseURL(baseURL),
		prio.WithCredentials(clientID, secret),
		prio.WithDistributorID(priotest.DefaultDistributorID),
		prio.WithAPIKey(r.apiKey),
		prio.WithRetryPolicy(chaosPolicy()),
		prio.WithReconcileSchedule(chaosReconcile()),
		prio.WithLogger(logger),
		prio.WithMaxConcurrency(workers),
		prio.WithHTTPClient(&http.Client{Transport: r.tap}),
	)
	require.NoError(t, err)
	r.client = c
	return r
}

// chaosOutcome classifies what one Create call returned.
type chaosOutcome int

const (
	gotOrder      chaosOutcome = iota // an order
	gotUnknown                        // *OutcomeUnknownError
	gotDefinitive                     // any other error: the order must not exist
)

// chaosCall is what one Create call (and, for an unknown outcome, its
// Reconcile) returned.
type chaosCall struct {
	ref      string
	outcome  chaosOutcome
	orderRef string // from Create, or from Reconcile after an unknown outcome
	errClass string
	errText  string
	info     prio.CallInfo

	// After an unknown outcome: Reconcile found the order (settledFound),
	// or proved it absent (settledAbsent), or failed (neither).
	settledFound, settledAbsent bool

	// Every tenth reference that got an order is booked again, as a
	// caller retrying would: it must return the same order.
	repeated       bool
	repeatOrderRef string
}

// chaosErrors collects the text of every error the run returned, as a
// caller could print it.
type chaosErrors struct {
	mu    sync.Mutex
	n     int
	texts strings.Builder
}

func (e *chaosErrors) add(err error) {
	if err == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.n++
	fmt.Fprintf(&e.texts, "%v\n%+v\n%#v\n", err, err, err)
	// Every cause in the chain, as errors.As would hand it to a caller.
	var walk func(error)
	walk = func(err error) {
		for err != nil {
			fmt.Fprintf(&e.texts, "%v\n", err)
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				for _, c := range j.Unwrap() {
					walk(c)
				}
				return
			}
			err = errors.Unwrap(err)
		}
	}
	walk(err)
}

func (e *chaosErrors) String() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.texts.String()
}

// chaosErrClass names an error briefly, for the figures.
func chaosErrClass(err error) string {
	var ae *prio.APIError
	var te *prio.TransportError
	var le *prio.LocalLimitError
	var au *prio.AuthError
	switch {
	case errors.As(err, &ae):
		return fmt.Sprintf("HTTP %d %s", ae.StatusCode, ae.Code)
	case errors.As(err, &le):
		return "local limit"
	case errors.As(err, &au):
		return "auth"
	case errors.As(err, &te):
		if errors.Is(err, prio.ErrRetryBudgetExhausted) {
			return "transport (budget exhausted)"
		}
		return "transport"
	}
	return fmt.Sprintf("%T", err)
}

// chaosWorkload makes n calls from workers goroutines: one(ctx, i) makes
// call i. before, when not nil, runs before call i starts (while other
// calls are in flight).
func chaosWorkload(ctx context.Context, n, workers int, before func(i int), one func(ctx context.Context, i int) chaosCall) []chaosCall {
	calls := make([]chaosCall, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if before != nil {
					before(i)
				}
				calls[i] = one(ctx, i)
			}
		})
	}
	wg.Wait()
	return calls
}

// chaosCreates is the workload of the suite: call i books reference
// prefix-i through Orders.Create, settles an unknown outcome with
// Reconcile, and books every tenth successful reference a second time.
func chaosCreates(c *prio.Client, prefix string, errs *chaosErrors) func(ctx context.Context, i int) chaosCall {
	return func(ctx context.Context, i int) chaosCall {
		return chaosOne(ctx, c, fmt.Sprintf("%s-%05d", prefix, i), chaosGuests[i%len(chaosGuests)], i%10 == 0, errs)
	}
}

func chaosOne(ctx context.Context, c *prio.Client, ref string, g chaosGuest, repeat bool, errs *chaosErrors) chaosCall {
	call := chaosCall{ref: ref}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	order, err := c.Orders.Create(cctx, chaosOrder(ref, g), prio.WithInfo(&call.info))
	errs.add(err)
	switch {
	case err == nil:
		call.outcome = gotOrder
		call.orderRef = chaosStr(order.OrderReference)
	case errors.Is(err, prio.ErrOutcomeUnknown):
		call.outcome = gotUnknown
		rctx, rcancel := context.WithTimeout(ctx, time.Minute)
		o, rerr := c.Orders.Reconcile(rctx, ref)
		rcancel()
		errs.add(rerr)
		switch {
		case rerr == nil:
			call.settledFound, call.orderRef = true, chaosStr(o.OrderReference)
		case errors.Is(rerr, prio.ErrNotFound) && !errors.Is(rerr, prio.ErrOutcomeUnknown):
			call.settledAbsent = true
		default:
			call.errClass, call.errText = "reconcile: "+chaosErrClass(rerr), rerr.Error()
		}
	default:
		call.outcome = gotDefinitive
		call.errClass, call.errText = chaosErrClass(err), err.Error()
	}
	if repeat && call.orderRef != "" {
		call.repeated = true
		rctx, rcancel := context.WithTimeout(ctx, time.Minute)
		again, rerr := c.Orders.Create(rctx, chaosOrder(ref, g))
		rcancel()
		errs.add(rerr)
		if rerr == nil {
			call.repeatOrderRef = chaosStr(again.OrderReference)
		}
	}
	return call
}

// chaosFigures is what the suite prints for one run.
type chaosFigures struct {
	Name                 string
	Calls                int
	OK                   int
	Definitive           int
	Unknown              int
	SettledFound         int
	SettledAbsent        int
	Unsettled            int
	Duplicates           int // references with more than one order on the server
	Lost                 int
	Sends                int
	Lookups              int
	ServerOrders         int
	BookedRefs           int // distinct references with an order on the server
	Repeats              int
	RepeatMismatches     int // a second Create returned another order
	DefinitiveByClass    map[string]int
	DefinitiveExamples   map[string]string // one error text per class
	LostExamples         []string
	LostRefs             []string
	Elapsed              time.Duration
	DuplicatesFromServer int // the server's own count
}

func (f chaosFigures) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-22s calls=%d ok=%d definitive=%d unknown=%d unknown-then-settled=%d (found %d, absent %d) unsettled=%d "+
		"duplicates=%d lost=%d sends=%d lookups=%d server-orders=%d booked-refs=%d repeats=%d repeat-mismatches=%d elapsed=%s",
		f.Name, f.Calls, f.OK, f.Definitive, f.Unknown, f.SettledFound+f.SettledAbsent, f.SettledFound, f.SettledAbsent, f.Unsettled,
		f.Duplicates, f.Lost, f.Sends, f.Lookups, f.ServerOrders, f.BookedRefs, f.Repeats, f.RepeatMismatches, f.Elapsed.Round(100*time.Millisecond))
	if len(f.DefinitiveByClass) > 0 {
		keys := slices.Sorted(maps.Keys(f.DefinitiveByClass))
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%s: %d", k, f.DefinitiveByClass[k])
		}
		fmt.Fprintf(&b, " definitive-errors={%s}", strings.Join(parts, ", "))
	}
	return b.String()
}

// chaosTally compares what every call returned with what the server holds
// (server: external reference -> order references). A call is lost when
// it returned an order the server does not hold under its reference, a
// definitive error for a reference the server booked, or an unknown
// outcome Reconcile did not settle (or settled wrongly).
func chaosTally(name string, calls []chaosCall, server map[string][]string, serverOrders int) chaosFigures {
	f := chaosFigures{Name: name, Calls: len(calls), ServerOrders: serverOrders, DefinitiveByClass: map[string]int{}, DefinitiveExamples: map[string]string{}}
	lost := func(format string, args ...any) {
		f.Lost++
		f.LostRefs = append(f.LostRefs, fmt.Sprint(args[0]))
		if len(f.LostExamples) < 10 {
			f.LostExamples = append(f.LostExamples, fmt.Sprintf(format, args...))
		}
	}
	for _, held := range server {
		if len(held) > 0 {
			f.BookedRefs++
		}
		if len(held) > 1 {
			f.Duplicates++
		}
	}
	for _, c := range calls {
		f.Sends += c.info.Sends
		f.Lookups += c.info.Lookups
		held := server[c.ref]
		switch c.outcome {
		case gotOrder:
			f.OK++
			if len(held) != 1 || held[0] != c.orderRef {
				lost("%s: Create returned order %q, the server holds %v", c.ref, c.orderRef, held)
			}
		case gotDefinitive:
			f.Definitive++
			f.DefinitiveByClass[c.errClass]++
			if _, ok := f.DefinitiveExamples[c.errClass]; !ok {
				f.DefinitiveExamples[c.errClass] = c.errText
			}
			if len(held) != 0 {
				lost("%s: Create failed definitively (%s), the server holds %v", c.ref, c.errClass, held)
			}
		case gotUnknown:
			f.Unknown++
			switch {
			case c.settledFound:
				f.SettledFound++
				if len(held) != 1 || held[0] != c.orderRef {
					lost("%s: Reconcile returned order %q, the server holds %v", c.ref, c.orderRef, held)
				}
			case c.settledAbsent:
				f.SettledAbsent++
				if len(held) != 0 {
					lost("%s: Reconcile said absent, the server holds %v", c.ref, held)
				}
			default:
				f.Unsettled++
				lost("%s: unknown outcome not settled (%s)", c.ref, c.errClass)
			}
		}
		if c.repeated {
			f.Repeats++
			if c.repeatOrderRef != "" && c.repeatOrderRef != c.orderRef {
				f.RepeatMismatches++
			}
		}
	}
	return f
}

// chaosServerOrders lists every order the server holds, through a client
// that sees no faults, as external reference -> order references.
func chaosServerOrders(ctx context.Context, t *testing.T, c *prio.Client) (map[string][]string, int) {
	t.Helper()
	perPage, noCache := 200, "false" // the server's own state, not its lagging cache
	held := map[string][]string{}
	n := 0
	for o, err := range c.Orders.List(ctx, &prio.ListOrdersParams{ItemsPerPage: &perPage, Cache: &noCache}) {
		require.NoError(t, err)
		held[o.OrderExternalReference] = append(held[o.OrderExternalReference], chaosStr(o.OrderReference))
		n++
	}
	return held, n
}

// chaosRequirePromise fails the test unless the run kept the promise.
func chaosRequirePromise(t *testing.T, f chaosFigures) {
	t.Helper()
	assert.Zero(t, f.Duplicates, "duplicate orders")
	assert.Zero(t, f.DuplicatesFromServer, "duplicate external references counted by the server")
	assert.Zero(t, f.Lost, "lost outcomes, e.g. %v", f.LostExamples)
	assert.Zero(t, f.Unsettled, "unknown outcomes Reconcile did not settle")
	assert.Zero(t, f.RepeatMismatches, "a repeated Create returned another order")
	assert.Equal(t, f.Calls, f.OK+f.Definitive+f.Unknown, "every call accounted for")
	assert.Equal(t, f.BookedRefs, f.ServerOrders, "server orders = distinct external references booked")
	assert.Equal(t, f.OK+f.SettledFound, f.BookedRefs, "every booked reference was reported as booked")
}

// TestChaosExactlyOnce makes PRIO_CHAOS_CALLS Create Order calls from
// PRIO_CHAOS_WORKERS goroutines against priotest with the hostile mix, once
// per server idempotency mode, and checks: no duplicate order, no lost
// outcome, every unknown outcome settled by Reconcile, server orders equal
// to the references booked. It then scans everything the run wrote for
// secrets and guest data.
func TestChaosExactlyOnce(t *testing.T) {
	n := chaosEnvInt(t, "PRIO_CHAOS_CALLS", 10_000)
	workers := chaosEnvInt(t, "PRIO_CHAOS_WORKERS", 64)
	profile, err := priotest.ParseProfile(chaosCreateMix)
	require.NoError(t, err)

	var all []chaosFigures
	for _, mode := range []priotest.IdempotencyMode{priotest.IdempotencyBoth, priotest.IdempotencyHeader, priotest.IdempotencyReference, priotest.IdempotencyNone} {
		t.Run(string(mode), func(t *testing.T) {
			secret := chaosRandom("chaos-secret-")
			clientID := "chaos-client"
			serverLogs := &chaosBuffer{}
			s := priotest.NewServer(t,
				priotest.WithIdempotency(mode),
				priotest.WithFaults(profile),
				priotest.WithOrderCacheLag(chaosCacheLag),
				priotest.WithCredentials(clientID, secret),
				priotest.WithRequestLimit(0),
				priotest.WithClientErrorLimit(0),
				// Tokens live 62 s and the client replaces them 6.2 s early,
				// so a long run goes through several tokens, and the scan
				// looks for each of them.
				priotest.WithTokenTTL(62*time.Second),
				priotest.WithLogger(slog.New(slog.NewJSONHandler(serverLogs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
			)
			rig := newChaosRig(t, s.URL(), clientID, secret, workers)
			errs := &chaosErrors{}
			ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
			defer cancel()

			start := time.Now()
			calls := chaosWorkload(ctx, n, workers, nil, chaosCreates(rig.client, "chaos-"+string(mode), errs))
			elapsed := time.Since(start)
			require.NoError(t, ctx.Err(), "the run did not finish in time")

			// Every kind of fault was injected; the counts are printed.
			faults := map[priotest.FaultKind]int{}
			creates := 0
			for _, r := range s.Requests() {
				if r.Operation == "createOrder" {
					creates++
					if r.Fault != "" {
						faults[r.Fault]++
					}
				}
			}
			for _, k := range []priotest.FaultKind{priotest.FaultDropAfter, priotest.Fault5xxAfter, priotest.Fault5xxBefore,
				priotest.FaultResetMidBody, priotest.FaultHang, priotest.Fault429,
				priotest.FaultGateway502, priotest.FaultGateway503, priotest.FaultGateway504, priotest.FaultGateway524} {
				if n >= 1000 {
					assert.Positive(t, faults[k], "fault %s never injected", k)
				}
			}

			s.SetFaults(priotest.Profile{})
			held, listed := chaosServerOrders(t.Context(), t, rig.client)
			st := s.Stats()
			require.Equal(t, st.OrdersTotal, listed, "List Orders shows every order")
			f := chaosTally("priotest/"+string(mode), calls, held, st.OrdersTotal)
			f.DuplicatesFromServer = st.DuplicateExternalReferences
			f.Elapsed = elapsed
			for _, c := range calls {
				// The list and the server's own count agree.
				if got := s.OrdersFor(c.ref); got != len(held[c.ref]) {
					t.Errorf("%s: the server counts %d orders, List Orders shows %d", c.ref, got, len(held[c.ref]))
				}
			}

			chaosReport(t, f.String())
			for class, text := range f.DefinitiveExamples {
				t.Logf("definitive error (%s), e.g.: %s", class, text)
			}
			chaosReport(t, fmt.Sprintf("%-22s createOrder sends seen by the server=%d faults=%v", f.Name, creates, faults))
			t.Logf("%s: the client gave up on: %s", f.Name, chaosGiveUps(t, rig.logs.String()))
			chaosRequirePromise(t, f)
			chaosExplainLost(t, f, rig.logs, serverLogs)
			all = append(all, f)

			// Secrets and personal data.
			tokens, urls := rig.tap.snapshot()
			require.NotEmpty(t, tokens, "the tap saw the tokens")
			recorded, err := json.Marshal(s.Requests())
			require.NoError(t, err)
			sc := newChaosScan(rig, tokens)
			corpus := []chaosText{
				{"client log", rig.logs.String()},
				{"sandbox log", serverLogs.String()},
				{"error strings", errs.String()},
				{"recorded requests", string(recorded)},
				{"request URLs without the key parameter", chaosURLsWithoutKey(t, urls)},
			}
			require.Positive(t, rig.logs.lines(), "the client logged at debug level")
			require.Positive(t, errs.n, "the run produced errors to scan")
			hits := sc.scan(t, corpus)
			chaosReport(t, fmt.Sprintf("%-22s secret scan: %d values (client secret, Basic credentials, API key, %d access tokens, %d guests' first and last names, e-mails and mobiles) over %d client log lines, %d sandbox log lines, %d errors, %d recorded requests, %d request URLs: hits=%d",
				f.Name, len(sc.needles), len(tokens), len(chaosGuests), rig.logs.lines(), serverLogs.lines(), errs.n, len(s.Requests()), len(urls), hits))
			assert.Zero(t, hits, "secret or personal data found")
		})
	}
	if len(all) > 0 {
		var b strings.Builder
		b.WriteString("chaos summary (exactly once, priotest):\n")
		for _, f := range all {
			b.WriteString("  " + f.String() + "\n")
		}
		chaosReport(t, b.String())
	}
}

// chaosGiveUps counts the client's "giving up" log lines by operation
// and reason: why calls ended without retrying further.
func chaosGiveUps(t *testing.T, logs string) string {
	t.Helper()
	counts := map[string]int{}
	for line := range strings.Lines(logs) {
		var l struct {
			Msg       string `json:"msg"`
			Operation string `json:"operation"`
			Reason    string `json:"reason"`
		}
		require.NoError(t, json.Unmarshal([]byte(line), &l), "a client log line is not JSON: %s", line)
		if l.Msg == "prio: giving up" {
			counts[l.Operation+": "+cmp.Or(l.Reason, "error after the last send")]++
		}
	}
	keys := slices.Sorted(maps.Keys(counts))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s (%d)", k, counts[k])
	}
	return strings.Join(parts, "; ")
}

// chaosExplainLost logs, for the first few lost references, every client
// and server log line about their idempotency key: what was sent, what
// came back and when.
func chaosExplainLost(t *testing.T, f chaosFigures, logs ...*chaosBuffer) {
	t.Helper()
	for _, ref := range f.LostRefs[:min(3, len(f.LostRefs))] {
		key := prio.DeriveKey(priotest.DefaultDistributorID, "createOrder", ref)
		var b strings.Builder
		for _, l := range logs {
			for line := range strings.Lines(l.String()) {
				if strings.Contains(line, key) || strings.Contains(line, ref) {
					b.WriteString(line)
				}
			}
		}
		t.Logf("lost %s (key %s):\n%s", ref, key, b.String())
	}
}

// report prints a figure both to the test log and to stdout, so that
// go test -v shows it in order and a script can grep it.
func chaosReport(t *testing.T, line string) {
	t.Helper()
	t.Log(line)
	for l := range strings.Lines(strings.TrimRight(line, "\n")) {
		fmt.Println("CHAOS", strings.TrimRight(l, "\n"))
	}
}

// chaosText is one part of what the scan reads.
type chaosText struct {
	source string
	text   string
}

// chaosScan looks for exact values that must never appear.
type chaosScan struct {
	needles map[string]string // value -> what it is
}

func newChaosScan(r *chaosRig, tokens []string) *chaosScan {
	sc := &chaosScan{needles: map[string]string{
		r.secret: "client secret",
		base64.StdEncoding.EncodeToString([]byte(r.clientID + ":" + r.secret)): "basic credentials",
		r.apiKey: "API key",
	}}
	for _, tok := range tokens {
		sc.needles[tok] = "access token"
	}
	for _, g := range chaosGuests {
		sc.needles[g.first] = "guest first name"
		sc.needles[g.last] = "guest last name"
		sc.needles[g.email] = "guest email"
		sc.needles[g.mobile] = "guest mobile"
	}
	return sc
}

// scan counts every occurrence of every needle in the corpus and logs
// where the first few are. It first proves it can find each needle.
func (sc *chaosScan) scan(t *testing.T, corpus []chaosText) int {
	t.Helper()
	for v, what := range sc.needles {
		require.Equal(t, 1, strings.Count("prefix "+v+" suffix", v), "the scan cannot find the %s", what)
	}
	hits, shown := 0, 0
	for _, part := range corpus {
		for v, what := range sc.needles {
			c := strings.Count(part.text, v)
			if c == 0 {
				continue
			}
			hits += c
			if shown < 10 {
				shown++
				i := strings.Index(part.text, v)
				lo, hi := max(0, i-120), min(len(part.text), i+len(v)+120)
				t.Errorf("%d x %s in %s, e.g. …%s…", c, what, part.source, part.text[lo:hi])
			}
		}
	}
	return hits
}

// chaosURLsWithoutKey joins the request URLs after removing the key query
// parameter, which carries the API key by design.
func chaosURLsWithoutKey(t *testing.T, urls []string) string {
	t.Helper()
	var b strings.Builder
	for _, s := range urls {
		u, err := url.Parse(s)
		require.NoError(t, err)
		q := u.Query()
		if !strings.HasSuffix(u.Path, "/oauth2/token") {
			require.NotEmpty(t, q.Get("key"), "the API key is sent on %s", u.Path)
		}
		q.Del("key")
		u.RawQuery = q.Encode()
		b.WriteString(u.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// chaosPipeServer starts a sandbox inside a synctest bubble, reached
// through in-memory pipes, and closes it when the bubble's test ends.
func chaosPipeServer(t *testing.T, opts ...priotest.Option) (*priotest.Server, http.RoundTripper) {
	t.Helper()
	s, err := priotest.NewUnstarted(opts...)
	require.NoError(t, err)
	hc := s.PipeClient()
	t.Cleanup(func() {
		s.Close()
		if tr, ok := hc.Transport.(*http.Transport); ok {
			tr.CloseIdleConnections()
		}
	})
	return s, hc.Transport
}

// TestChaosSlowProcessingPastAttemptTimeout: a Create Order send that
// the server is still processing when the send's timeout ends (held for
// three attempt timeouts, then processed, as priotest's FaultDelay does)
// must be booked once and not reported as failed, in every idempotency
// mode. The look-up Create makes after the timeout runs while the first
// send is still in flight, so it cannot prove the order absent. Inside a
// synctest bubble: the waits cost no real time.
func TestChaosSlowProcessingPastAttemptTimeout(t *testing.T) {
	for _, mode := range []priotest.IdempotencyMode{priotest.IdempotencyBoth, priotest.IdempotencyHeader, priotest.IdempotencyReference, priotest.IdempotencyNone} {
		t.Run(string(mode), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				profile := priotest.Sequence("createOrder", priotest.FaultDelay)
				profile.Delay = 3 * chaosAttemptTimeout
				secret := chaosRandom("chaos-secret-")
				s, base := chaosPipeServer(t, priotest.WithIdempotency(mode), priotest.WithFaults(profile),
					priotest.WithCredentials("chaos-client", secret), priotest.WithRequestLimit(0), priotest.WithClientErrorLimit(0),
					priotest.WithOrderCacheLag(chaosCacheLag))
				rig := newChaosRigOver(t, s.URL(), "chaos-client", secret, 4, base)
				ref := "slow-" + string(mode)
				errs := &chaosErrors{}
				call := chaosOne(t.Context(), rig.client, ref, chaosGuests[0], false, errs)

				// Let the held send finish on the server before counting.
				time.Sleep(2 * profile.Delay)
				synctest.Wait()
				s.SetFaults(priotest.Profile{})
				held, listed := chaosServerOrders(t.Context(), t, rig.client)
				f := chaosTally("slow/"+string(mode), []chaosCall{call}, held, listed)
				f.DuplicatesFromServer = s.Stats().DuplicateExternalReferences
				chaosReport(t, f.String())
				t.Logf("errors: %s", errs.String())
				chaosRequirePromise(t, f)
				chaosExplainLost(t, f, rig.logs)
			})
		})
	}
}

// chaosLateTransport plays a proxy in front of the API that resets the
// client's connection while it still passes the request on: the first
// Create Order send reaches the server only after delay, in the
// background, and the client gets a connection reset at once. The
// toxiproxy run meets the same thing by chance (a reset_peer toxic cuts
// the client's side while the request is still on its way).
type chaosLateTransport struct {
	next  http.RoundTripper
	delay time.Duration
	used  atomic.Bool
	wg    sync.WaitGroup
}

func (l *chaosLateTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/orders") || !l.used.CompareAndSwap(false, true) {
		return l.next.RoundTrip(r)
	}
	body, err := io.ReadAll(r.Body)
	_ = r.Body.Close()
	if err != nil {
		return nil, err
	}
	// Without a delay, the reset comes once the request is on the server's
	// socket (and a little later), so that it is there before the
	// client's look-up and re-send.
	written := make(chan struct{})
	var once sync.Once
	wrote := func() { once.Do(func() { close(written) }) }
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		WroteRequest: func(httptrace.WroteRequestInfo) { wrote() },
	})
	late := r.Clone(ctx)
	late.Body, late.GetBody, late.ContentLength = io.NopCloser(bytes.NewReader(body)), nil, int64(len(body))
	l.wg.Go(func() {
		defer wrote()
		time.Sleep(l.delay)
		if resp, err := l.next.RoundTrip(late); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}
	})
	if l.delay == 0 {
		<-written
		time.Sleep(20 * time.Millisecond)
	}
	return nil, &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
}

// TestChaosResetWhileInFlight: a connection reset does not stop the
// request it cut. The first Create Order send is reset on the client's
// side at once, while the request goes on to the server, which processes
// it after Create has looked the order up and found nothing: either the
// request arrives late (a proxy still forwarding it), or it arrives at
// once and the server is slow to process it. The order must still be
// booked once, and Create must not report a failure for it, in every
// idempotency mode.
func TestChaosResetWhileInFlight(t *testing.T) {
	hold := 500 * time.Millisecond
	cases := []struct {
		name   string
		late   time.Duration    // how late the cut request reaches the server
		faults priotest.Profile // how the server treats it
	}{
		{name: "arrives-late", late: hold},
		{name: "processed-slowly", faults: priotest.Profile{Sequences: map[string][]priotest.FaultKind{"createOrder": {priotest.FaultDelay}}, Delay: hold}},
	}
	for _, c := range cases {
		for _, mode := range []priotest.IdempotencyMode{priotest.IdempotencyBoth, priotest.IdempotencyHeader, priotest.IdempotencyReference, priotest.IdempotencyNone} {
			t.Run(c.name+"/"+string(mode), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					secret := chaosRandom("chaos-secret-")
					s, base := chaosPipeServer(t, priotest.WithIdempotency(mode), priotest.WithFaults(c.faults),
						priotest.WithCredentials("chaos-client", secret), priotest.WithRequestLimit(0), priotest.WithClientErrorLimit(0),
						priotest.WithOrderCacheLag(chaosCacheLag))
					late := &chaosLateTransport{delay: c.late}
					rig := newChaosRigOver(t, s.URL(), "chaos-client", secret, 4, base, func(next http.RoundTripper) http.RoundTripper {
						late.next = next
						return late
					})
					ref := "reset-" + c.name + "-" + string(mode)
					call := chaosOne(t.Context(), rig.client, ref, chaosGuests[0], false, &chaosErrors{})
					late.wg.Wait()
					time.Sleep(2 * hold) // the held request, if any, finishes
					synctest.Wait()

					held, listed := chaosServerOrders(t.Context(), t, rig.client)
					f := chaosTally("reset/"+c.name+"/"+string(mode), []chaosCall{call}, held, listed)
					f.DuplicatesFromServer = s.Stats().DuplicateExternalReferences
					chaosReport(t, f.String())
					if call.errText != "" {
						t.Logf("Create returned: %s", call.errText)
					}
					require.True(t, late.used.Load(), "the first send was cut")
					chaosRequirePromise(t, f)
					chaosExplainLost(t, f, rig.logs)
				})
			})
		}
	}
}

// TestChaosNaiveRetryIsCaught is the suite's control: the same hostile
// mix against a server without idempotency, booked through Client.API()
// (the generated client, whose POSTs the transport re-sends with their
// key after a 5xx or a dropped connection, without looking the order up
// first). The tally must see duplicates and lost outcomes; if it did not,
// the zeros of TestChaosExactlyOnce would prove nothing.
func TestChaosNaiveRetryIsCaught(t *testing.T) {
	const n = 300
	profile, err := priotest.ParseProfile(chaosCreateMix)
	require.NoError(t, err)
	secret := chaosRandom("chaos-secret-")
	s := priotest.NewServer(t, priotest.WithIdempotency(priotest.IdempotencyNone), priotest.WithFaults(profile),
		priotest.WithCredentials("chaos-client", secret), priotest.WithRequestLimit(0), priotest.WithClientErrorLimit(0),
		priotest.WithOrderCacheLag(chaosCacheLag))
	rig := newChaosRig(t, s.URL(), "chaos-client", secret, 16)
	kind := generated.Kind("order")
	calls := chaosWorkload(t.Context(), n, 16, nil, func(ctx context.Context, i int) chaosCall {
		ref := fmt.Sprintf("naive-%05d", i)
		order := chaosOrder(ref, chaosGuests[i%len(chaosGuests)])
		order.OrderDistributorId, order.OrderLanguage = priotest.DefaultDistributorID, "en"
		order.OrderBookings[0].BookingOptionType = prio.DirectBooking
		call := chaosCall{ref: ref, outcome: gotDefinitive, errClass: "no order"}
		resp, err := rig.client.API().CreateOrderWithResponse(ctx, generated.CreateOrderRequest{Data: generated.CreateOrderRequestData{Kind: &kind, Order: *order}})
		if err == nil && resp.JSON201 != nil {
			call.outcome, call.orderRef, call.errClass = gotOrder, chaosStr(resp.JSON201.Data.Order.OrderReference), ""
		}
		return call
	})
	s.SetFaults(priotest.Profile{})
	held, listed := chaosServerOrders(t.Context(), t, rig.client)
	f := chaosTally("naive/none", calls, held, listed)
	f.DuplicatesFromServer = s.Stats().DuplicateExternalReferences
	chaosReport(t, f.String())
	assert.Positive(t, f.Duplicates, "a blind re-send against a server without idempotency books twice")
	assert.Equal(t, f.Duplicates, f.DuplicatesFromServer)
	assert.Positive(t, f.Lost, "and the tally counts it")
}

// TestChaosToxiproxy runs the same promise over real TCP: the client talks
// to a prio-sandbox process through toxiproxy, which switches reset_peer,
// timeout, latency and limit_data toxics on and off during the run. It is
// skipped unless PRIO_TOXIPROXY_SERVER names a toxiproxy v2 server binary
// (scripts/chaos builds one with go install).
func TestChaosToxiproxy(t *testing.T) {
	bin := os.Getenv("PRIO_TOXIPROXY_SERVER")
	if bin == "" {
		t.Skip("PRIO_TOXIPROXY_SERVER is not set: the real-TCP part needs a toxiproxy v2 server binary; scripts/chaos builds one and runs this test")
	}
	calls := chaosEnvInt(t, "PRIO_CHAOS_CALLS", 10_000)
	n := chaosEnvInt(t, "PRIO_CHAOS_TCP_CALLS", calls)
	workers := chaosEnvInt(t, "PRIO_CHAOS_WORKERS", 64)

	sandboxBin := filepath.Join(t.TempDir(), "prio-sandbox")
	build := exec.CommandContext(t.Context(), "go", "build", "-o", sandboxBin, "./cmd/prio-sandbox")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "building prio-sandbox: %s", out)

	toxi := chaosStartToxiproxy(t, bin)
	var all []chaosFigures
	for _, mode := range []priotest.IdempotencyMode{priotest.IdempotencyBoth, priotest.IdempotencyHeader, priotest.IdempotencyReference, priotest.IdempotencyNone} {
		t.Run(string(mode), func(t *testing.T) {
			secret := chaosRandom("chaos-secret-")
			clientID := "chaos-client"
			sb := chaosStartSandbox(t, sandboxBin, "-idempotency", string(mode), "-client-id", clientID, "-client-secret", secret,
				"-request-limit", "0", "-client-error-limit", "0", "-token-ttl", "62s", "-v",
				"-cache-lag", chaosCacheLag.String(), "-faults", chaosTCPFaults)

			proxy := toxi.createProxy(t, "prio-"+string(mode), sb.hostPort)
			rig := newChaosRig(t, "http://"+proxy+"/v3.8/distributor", clientID, secret, workers)
			errs := &chaosErrors{}
			ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
			defer cancel()

			monkey := toxi.newMonkey(t, "prio-"+string(mode), n)
			start := time.Now()
			results := chaosWorkload(ctx, n, workers, monkey.before, chaosCreates(rig.client, "tcp-"+string(mode), errs))
			elapsed := time.Since(start)
			require.NoError(t, ctx.Err(), "the run did not finish in time")
			toxi.reset(t)
			switches := monkey.counts()

			// Count on the server directly, not through the proxy.
			clean := newChaosRig(t, sb.baseURL, clientID, secret, 4)
			held, listed := chaosServerOrders(t.Context(), t, clean.client)
			st := sb.stats(t)
			require.Equal(t, st.OrdersTotal, listed, "List Orders shows every order")
			f := chaosTally("toxiproxy/"+string(mode), results, held, st.OrdersTotal)
			f.DuplicatesFromServer = st.DuplicateExternalReferences
			f.Elapsed = elapsed
			chaosReport(t, f.String())
			for class, text := range f.DefinitiveExamples {
				t.Logf("definitive error (%s), e.g.: %s", class, text)
			}
			chaosReport(t, fmt.Sprintf("%-22s toxics switched on: %v", f.Name, switches))
			t.Logf("%s: the client gave up on: %s", f.Name, chaosGiveUps(t, rig.logs.String()))
			for _, kind := range []string{"reset_peer", "timeout", "latency", "limit_data"} {
				assert.Positive(t, switches[kind], "toxic %s never switched on", kind)
			}
			chaosRequirePromise(t, f)
			chaosExplainLost(t, f, rig.logs, sb.logs)
			all = append(all, f)

			tokens, urls := rig.tap.snapshot()
			require.NotEmpty(t, tokens)
			sc := newChaosScan(rig, tokens)
			recorded, nrec := sb.requests(t)
			require.Positive(t, nrec)
			hits := sc.scan(t, []chaosText{
				{"client log", rig.logs.String()},
				{"sandbox process log", sb.logs.String()},
				{"toxiproxy log", toxi.logs.String()},
				{"error strings", errs.String()},
				{"recorded requests", recorded},
				{"request URLs without the key parameter", chaosURLsWithoutKey(t, urls)},
			})
			chaosReport(t, fmt.Sprintf("%-22s secret scan: %d values (client secret, Basic credentials, API key, %d access tokens, %d guests' first and last names, e-mails and mobiles) over %d client log lines, %d sandbox log lines, %d toxiproxy log lines, %d errors, %d recorded requests, %d request URLs: hits=%d",
				f.Name, len(sc.needles), len(tokens), len(chaosGuests), rig.logs.lines(), sb.logs.lines(), toxi.logs.lines(), errs.n, nrec, len(urls), hits))
			assert.Zero(t, hits, "secret or personal data found")
		})
	}
	if len(all) > 0 {
		var b strings.Builder
		b.WriteString("chaos summary (exactly once, real TCP through toxiproxy):\n")
		for _, f := range all {
			b.WriteString("  " + f.String() + "\n")
		}
		chaosReport(t, b.String())
	}
}

// chaosSandbox is a running prio-sandbox.
type chaosSandbox struct {
	baseURL  string // API root, …/v3.8/distributor
	adminURL string
	hostPort string
	logs     *chaosBuffer
	hc       *http.Client
}

// chaosStartProcess starts bin with args, its output going to logs, and stops
// it (SIGTERM, then SIGKILL after 5 s) when the test ends.
func chaosStartProcess(t *testing.T, logs *chaosBuffer, env []string, bin string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("output of %s:\n%s", filepath.Base(bin), chaosTail(logs.String()))
		}
	})
}

func chaosStartSandbox(t *testing.T, bin string, args ...string) *chaosSandbox {
	t.Helper()
	ready := make(chan string, 1)
	logs := &chaosBuffer{}
	logs.onLine = func(line string) {
		if !strings.Contains(line, "prio-sandbox ready") {
			return
		}
		for _, f := range strings.Fields(line) {
			if u, ok := strings.CutPrefix(f, "url="); ok {
				select {
				case ready <- u:
				default:
				}
			}
		}
	}
	chaosStartProcess(t, logs, nil, bin, append([]string{"-addr", "127.0.0.1:0"}, args...)...)
	var base string
	select {
	case base = <-ready:
	case <-time.After(30 * time.Second):
		t.Fatalf("prio-sandbox did not report ready; its output:\n%s", logs.String())
	}
	u, err := url.Parse(base)
	require.NoError(t, err)
	tr := chaosTransport(2)
	t.Cleanup(tr.CloseIdleConnections)
	return &chaosSandbox{baseURL: base, adminURL: u.Scheme + "://" + u.Host, hostPort: u.Host, logs: logs, hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

func (sb *chaosSandbox) get(t *testing.T, path string) []byte {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, sb.adminURL+path, nil)
	require.NoError(t, err)
	resp, err := sb.hc.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", path, b)
	return b
}

func (sb *chaosSandbox) stats(t *testing.T) priotest.Stats {
	t.Helper()
	var st priotest.Stats
	require.NoError(t, json.Unmarshal(sb.get(t, "/_sandbox/stats"), &st))
	return st
}

// requests returns the sandbox's recorded requests as it serves them, and
// how many there are.
func (sb *chaosSandbox) requests(t *testing.T) (string, int) {
	t.Helper()
	raw := sb.get(t, "/_sandbox/requests")
	var recs []priotest.RecordedRequest
	require.NoError(t, json.Unmarshal(raw, &recs))
	return string(raw), len(recs)
}

// toxiproxy drives a toxiproxy server through its HTTP API.
type chaosToxiproxy struct {
	api  string
	hc   *http.Client
	logs *chaosBuffer
}

func chaosStartToxiproxy(t *testing.T, bin string) *chaosToxiproxy {
	t.Helper()
	// toxiproxy takes its API port as a flag: find a free one.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	require.NoError(t, l.Close())

	x := &chaosToxiproxy{api: "http://127.0.0.1:" + port, logs: &chaosBuffer{}}
	tr := chaosTransport(4)
	t.Cleanup(tr.CloseIdleConnections)
	x.hc = &http.Client{Transport: tr, Timeout: 10 * time.Second}
	chaosStartProcess(t, x.logs, []string{"LOG_LEVEL=info"}, bin, "-host", "127.0.0.1", "-port", port)
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; ; i++ {
		if err := x.call(t.Context(), http.MethodGet, "/version", nil, nil); err == nil {
			break
		}
		if time.Now().After(deadline) || i > 600 {
			t.Fatalf("toxiproxy did not answer on %s; its output:\n%s", x.api, x.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return x
}

func (x *chaosToxiproxy) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, x.api+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := x.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("toxiproxy %s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if out != nil && len(b) > 0 {
		return json.Unmarshal(b, out)
	}
	return nil
}

// createProxy makes a proxy to upstream on an ephemeral loopback port and
// returns the address it listens on.
func (x *chaosToxiproxy) createProxy(t *testing.T, name, upstream string) string {
	t.Helper()
	var p struct {
		Listen string `json:"listen"`
	}
	require.NoError(t, x.call(t.Context(), http.MethodPost, "/proxies",
		map[string]any{"name": name, "listen": "127.0.0.1:0", "upstream": upstream, "enabled": true}, &p))
	require.NotEmpty(t, p.Listen)
	t.Cleanup(func() { _ = x.call(context.Background(), http.MethodDelete, "/proxies/"+name, nil, nil) })
	return p.Listen
}

// reset removes every toxic.
func (x *chaosToxiproxy) reset(t *testing.T) {
	t.Helper()
	require.NoError(t, x.call(t.Context(), http.MethodPost, "/reset", nil, nil))
}

// chaosToxic is one toxic the monkey switches on.
type chaosToxic struct {
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	Stream     string         `json:"stream"`
	Toxicity   float64        `json:"toxicity"`
	Attributes map[string]any `json:"attributes"`
}

// The toxics of the TCP run. Toxicity is the share of connections a toxic
// applies to.
var (
	// Responses cut by a TCP reset: the request was processed.
	toxicResetDown = chaosToxic{Name: "reset_down", Type: "reset_peer", Stream: "downstream", Toxicity: 0.3, Attributes: map[string]any{"timeout": 0}}
	// Requests cut by a reset before the server read them all.
	toxicResetUp = chaosToxic{Name: "reset_up", Type: "reset_peer", Stream: "upstream", Toxicity: 0.2, Attributes: map[string]any{"timeout": 0}}
	// Responses that never come: the send times out; the connection
	// closes later.
	toxicTimeout = chaosToxic{Name: "timeout_down", Type: "timeout", Stream: "downstream", Toxicity: 0.3, Attributes: map[string]any{"timeout": 500}}
	// Slow answers, some slower than the attempt timeout.
	toxicLatency = chaosToxic{Name: "latency_down", Type: "latency", Stream: "downstream", Toxicity: 1, Attributes: map[string]any{"latency": 150, "jitter": 150}}
	// Responses truncated after a few hundred bytes.
	toxicLimit = chaosToxic{Name: "limit_down", Type: "limit_data", Stream: "downstream", Toxicity: 0.3, Attributes: map[string]any{"bytes": 300}}
)

// chaosPhases is the order in which the monkey switches toxics on: each
// phase replaces the previous phase's toxics, and the empty phases leave
// the line clean.
var chaosPhases = [][]chaosToxic{
	{toxicResetDown},
	{},
	{toxicTimeout},
	{toxicLatency},
	{},
	{toxicLimit},
	{toxicResetUp},
	{toxicLatency, toxicResetDown},
	{},
	{toxicLimit, toxicTimeout},
	{toxicResetDown, toxicResetUp},
	{},
}

// chaosMonkey switches toxics while the workload runs: the call that
// starts a phase (one phase per n/(2*len(chaosPhases)) calls, so the
// sequence runs twice) swaps the toxics before it is sent, while the calls
// started before it are still in flight.
type chaosMonkey struct {
	t        *testing.T
	x        *chaosToxiproxy
	proxy    string
	per      int
	mu       sync.Mutex
	on       []chaosToxic
	switched map[string]int
}

func (x *chaosToxiproxy) newMonkey(t *testing.T, proxy string, n int) *chaosMonkey {
	return &chaosMonkey{t: t, x: x, proxy: proxy, per: max(1, n/(2*len(chaosPhases))), switched: map[string]int{}}
}

func (m *chaosMonkey) before(i int) {
	if i%m.per != 0 {
		return
	}
	next := chaosPhases[(i/m.per)%len(chaosPhases)]
	m.mu.Lock()
	defer m.mu.Unlock()
	ctx := m.t.Context()
	for _, tx := range m.on {
		if err := m.x.call(ctx, http.MethodDelete, "/proxies/"+m.proxy+"/toxics/"+tx.Name, nil, nil); err != nil {
			m.t.Errorf("removing toxic %s: %v", tx.Name, err)
		}
	}
	m.on = nil
	for _, tx := range next {
		if err := m.x.call(ctx, http.MethodPost, "/proxies/"+m.proxy+"/toxics", tx, nil); err != nil {
			m.t.Errorf("adding toxic %s: %v", tx.Name, err)
			continue
		}
		m.on = append(m.on, tx)
		m.switched[tx.Type]++
	}
}

// counts returns how often each toxic type was switched on.
func (m *chaosMonkey) counts() map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.switched)
}

func chaosStr(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// chaosTail returns the end of a process's output, for a failure message.
func chaosTail(s string) string {
	const keep = 4 << 10
	if len(s) > keep {
		return "…" + s[len(s)-keep:]
	}
	return s
}
