package batch

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	prio "github.com/priosdk/prio-go"
	"github.com/priosdk/prio-go/generated"
)

// errCrashed is what every operation returns once the simulated process
// has died.
var errCrashed = errors.New("simulated crash")

// crasher numbers every externally visible step of a run (journal writes,
// the sending of a request, the reading of its answer, look-ups) and kills
// the simulated process at step `at`: that step and all later ones have no
// effect. at == 0 never crashes.
type crasher struct {
	at    int64
	steps atomic.Int64
}

// alive counts one step and reports whether the process is still alive
// for it.
func (c *crasher) alive() bool {
	if c == nil {
		return true
	}
	n := c.steps.Add(1)
	return c.at == 0 || n < c.at
}

// fakeHorizon is how long after a send the fake Prio may still process it
// (the fake Create's ProcessingHorizon); fakeSlowDelay is how long a "slow-"
// create takes to land, within it.
const (
	fakeHorizon   = 10 * time.Second
	fakeSlowDelay = 5 * time.Second
)

// fakeServer stands for Prio: it keeps orders by external reference and
// misbehaves for references with certain prefixes:
//
//	lost-     the first create is processed but its answer is lost
//	slow-     the first create's answer is lost and the order lands
//	          fakeSlowDelay later
//	busy-     the first create is refused with 503 before processing
//	refused-  every create is refused with 400
//	conflict- every create answers 409 and books nothing
//	findfail- the first look-up fails with 500
//	lostfind- every look-up fails with 500 and the first create's answer is lost
//	limited-  the first create is refused by the client's 4XX guard for
//	          20 s before it is sent
type fakeServer struct {
	mu       sync.Mutex
	orders   map[string][]string // external reference -> order references
	landing  map[string][]time.Time
	creates  map[string]int
	finds    map[string]int
	created  map[string]time.Time // when the first create of a reference arrived
	found    map[string]time.Time // when a reference was first looked up
	inFlight int
	peak     int
	seq      int
	// block, if set, is called inside Book before the order is made.
	block func(ctx context.Context, ref string) error
}

func newFakeServer() *fakeServer {
	return &fakeServer{orders: map[string][]string{}, landing: map[string][]time.Time{}, creates: map[string]int{},
		finds: map[string]int{}, created: map[string]time.Time{}, found: map[string]time.Time{}}
}

// land makes the orders whose processing has finished by now. The caller
// holds s.mu.
func (s *fakeServer) land() {
	now := time.Now()
	for ref, ts := range s.landing {
		kept := ts[:0]
		for _, at := range ts {
			if now.Before(at) {
				kept = append(kept, at)
				continue
			}
			s.seq++
			s.orders[ref] = append(s.orders[ref], fmt.Sprintf("ORD%06d", s.seq))
		}
		if len(kept) == 0 {
			delete(s.landing, ref)
		} else {
			s.landing[ref] = kept
		}
	}
}

// errLost is a send whose answer never arrived.
var errLost = errors.New("read: connection reset")

// create handles one create request. lost reports an answer that never
// reached the client (err is then errLost).
func (s *fakeServer) create(ref string) (orderRef string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.land()
	s.creates[ref]++
	n := s.creates[ref]
	if _, ok := s.created[ref]; !ok {
		s.created[ref] = time.Now()
	}
	switch {
	case strings.HasPrefix(ref, "refused-"):
		return "", &prio.APIError{StatusCode: http.StatusBadRequest, Code: "INVALID_REQUEST", Operation: "createOrder"}
	case strings.HasPrefix(ref, "conflict-"):
		return "", &prio.APIError{StatusCode: http.StatusConflict, Operation: "createOrder"}
	case strings.HasPrefix(ref, "busy-") && n == 1:
		return "", &prio.APIError{StatusCode: http.StatusServiceUnavailable, Operation: "createOrder"}
	case strings.HasPrefix(ref, "slow-") && n == 1:
		s.landing[ref] = append(s.landing[ref], time.Now().Add(fakeSlowDelay))
		return "", errLost
	}
	s.seq++
	orderRef = fmt.Sprintf("ORD%06d", s.seq)
	s.orders[ref] = append(s.orders[ref], orderRef)
	if (strings.HasPrefix(ref, "lost-") || strings.HasPrefix(ref, "lostfind-")) && n == 1 {
		return "", errLost
	}
	return orderRef, nil
}

// find looks an order up by external reference in the source of truth.
func (s *fakeServer) find(ref string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.land()
	s.finds[ref]++
	if _, ok := s.found[ref]; !ok {
		s.found[ref] = time.Now()
	}
	if strings.HasPrefix(ref, "lostfind-") || (strings.HasPrefix(ref, "findfail-") && s.finds[ref] == 1) {
		return "", &prio.APIError{StatusCode: http.StatusInternalServerError, Operation: "listOrders"}
	}
	if o := s.orders[ref]; len(o) > 0 {
		return o[0], nil
	}
	return "", &prio.APIError{StatusCode: http.StatusNotFound, Operation: "listOrders"}
}

// booked returns the orders per reference, counting those still landing:
// they exist whatever the client learns.
func (s *fakeServer) booked() map[string][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.land()
	out := map[string][]string{}
	for k, v := range s.orders {
		out[k] = append([]string(nil), v...)
	}
	for k, v := range s.landing {
		for range v {
			out[k] = append(out[k], "landing")
		}
	}
	return out
}

func (s *fakeServer) totalCreates() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.creates {
		n += c
	}
	return n
}

func (s *fakeServer) totalFinds() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.finds {
		n += c
	}
	return n
}

// fakeBooker is the client side, a small Orders.Create: it reaches
// fakeServer unless the simulated process has crashed, and keeps Create's
// contract. Given lastSend it looks the order up first and, finding
// nothing, sends only once lastSend + fakeHorizon has passed; after a send
// in doubt it looks up once, and an empty look-up within the horizon of an
// unanswered send proves nothing. Every unknown outcome carries LastSend
// and DecidableAt as Create's do.
type fakeBooker struct {
	srv   *fakeServer
	crash *crasher
	// limited counts the local refusals of "limited-" rows.
	limited sync.Map
}

func (b *fakeBooker) Book(ctx context.Context, req *prio.OrderRequest, lastSend time.Time) (Receipt, error) {
	ref := req.OrderExternalReference
	var rec Receipt
	unknown := func(last, until time.Time, sendErr, lookupErr error) error {
		at := until
		if now := time.Now(); at.Before(now) {
			at = now.Add(time.Second)
		}
		rec.LastSend = last
		return &prio.OutcomeUnknownError{Operation: "createOrder", ExternalReference: ref, Sends: rec.Sends,
			Lookups: rec.Lookups, LastSend: last, DecidableAt: at, SendErr: sendErr, LookupErr: lookupErr}
	}
	if !lastSend.IsZero() {
		if !b.crash.alive() {
			return rec, errCrashed
		}
		rec.Lookups++
		orderRef, err := b.srv.find(ref)
		switch {
		case err == nil:
			rec.OrderReference = orderRef
			return rec, nil
		case !errors.Is(err, prio.ErrNotFound):
			return rec, unknown(lastSend, lastSend.Add(fakeHorizon), nil, err)
		case time.Now().Before(lastSend.Add(fakeHorizon)):
			return rec, unknown(lastSend, lastSend.Add(fakeHorizon), nil, nil)
		}
	}
	if strings.HasPrefix(ref, "limited-") {
		if _, seen := b.limited.LoadOrStore(ref, true); !seen {
			return rec, &prio.LocalLimitError{Reason: "50 4XX answers within a minute", RetryAfter: 20 * time.Second}
		}
	}
	if !b.crash.alive() {
		return rec, errCrashed
	}
	rec.Sends++
	b.srv.mu.Lock()
	b.srv.inFlight++
	b.srv.peak = max(b.srv.peak, b.srv.inFlight)
	block := b.srv.block
	b.srv.mu.Unlock()
	defer func() {
		b.srv.mu.Lock()
		b.srv.inFlight--
		b.srv.mu.Unlock()
	}()
	if block != nil {
		if err := block(ctx, ref); err != nil {
			// Cut while on the wire: it may yet be processed.
			return rec, unknown(time.Now(), time.Now().Add(fakeHorizon), err, nil)
		}
	}
	orderRef, err := b.srv.create(ref)
	if !b.crash.alive() {
		return rec, errCrashed
	}
	ended := time.Now()
	var ae *prio.APIError
	switch {
	case err == nil:
		rec.OrderReference = orderRef
		return rec, nil
	case errors.As(err, &ae) && ae.StatusCode < 500 && ae.StatusCode != http.StatusConflict:
		return rec, err
	}
	// In doubt (a lost answer, a 5XX, a 409): look.
	answered := !errors.Is(err, errLost)
	if !b.crash.alive() {
		return rec, errCrashed
	}
	rec.Lookups++
	orderRef, lerr := b.srv.find(ref)
	until := later(lastSend.Add(fakeHorizon), ended)
	if !answered {
		until = later(until, ended.Add(fakeHorizon))
	}
	switch {
	case lerr == nil:
		rec.OrderReference = orderRef
		return rec, nil
	case !errors.Is(lerr, prio.ErrNotFound):
		return rec, unknown(later(lastSend, ended), until, err, lerr)
	case time.Now().Before(until):
		return rec, unknown(later(lastSend, ended), until, err, nil)
	}
	// Proven absent: the refusal stands (OutcomeOf reads a 5XX as "retry
	// later", a 409 as refused).
	return rec, err
}

// crashJournal loses every write from the crash on.
type crashJournal struct {
	Journal
	crash *crasher
}

func (j *crashJournal) Put(ctx context.Context, entries ...Entry) error {
	if !j.crash.alive() {
		return errCrashed
	}
	return j.Journal.Put(ctx, entries...)
}

// failingJournal fails every write after the first n.
type failingJournal struct {
	Journal
	n atomic.Int64
}

func (j *failingJournal) Put(ctx context.Context, entries ...Entry) error {
	if j.n.Add(-1) < 0 {
		return errors.New("disk full")
	}
	return j.Journal.Put(ctx, entries...)
}

func request(ref string) *prio.OrderRequest {
	pid, tid := "1001", "2001"
	return &generated.CreateOrderModel{
		OrderDistributorId:     "501",
		OrderExternalReference: ref,
		OrderLanguage:          "en",
		OrderBookings: []generated.BookingOption{{
			BookingOptionType:  "DIRECT_BOOKING",
			ProductId:          &pid,
			ProductTypeDetails: &[]generated.RegularBookingItem{{ProductTypeId: tid, ProductTypeCount: 1}},
		}},
	}
}

// rowsOf yields one row per reference.
func rowsOf(refs ...string) iter.Seq2[Row, error] {
	return func(yield func(Row, error) bool) {
		for i, ref := range refs {
			if !yield(Row{Line: i + 1, Request: request(ref)}, nil) {
				return
			}
		}
	}
}

func refsN(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%04d", prefix, i)
	}
	return out
}

// collect gathers results by external reference.
type collect struct {
	mu  sync.Mutex
	all []Result
}

func (c *collect) add(r Result) {
	c.mu.Lock()
	c.all = append(c.all, r)
	c.mu.Unlock()
}

func (c *collect) byRef() map[string]Result {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]Result{}
	for _, r := range c.all {
		out[r.ExternalReference] = r
	}
	return out
}
