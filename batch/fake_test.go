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

// fakeServer stands for Prio: it keeps orders by external reference and
// misbehaves for references with certain prefixes:
//
//	lost-     the first create is processed but its answer is lost
//	busy-     the first create is refused with 503 before processing
//	refused-  every create is refused with 400
//	conflict- every create answers 409 and books nothing
//	findfail- the first look-up fails with 500
//	lostfind- every look-up fails with 500 and the first create's answer is lost
//	limited-  the first create's answer is lost and the first look-up is
//	          refused by the client's 4XX guard for 20 s
type fakeServer struct {
	mu       sync.Mutex
	orders   map[string][]string // external reference -> order references
	creates  map[string]int
	finds    map[string]int
	created  map[string]time.Time // when the first order of a reference was made
	found    map[string]time.Time // when a reference was first looked up
	inFlight int
	peak     int
	seq      int
	// block, if set, is called inside Book before the order is made.
	block func(ctx context.Context, ref string) error
}

func newFakeServer() *fakeServer {
	return &fakeServer{orders: map[string][]string{}, creates: map[string]int{}, finds: map[string]int{},
		created: map[string]time.Time{}, found: map[string]time.Time{}}
}

func (s *fakeServer) create(ref string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.creates[ref]++
	n := s.creates[ref]
	switch {
	case strings.HasPrefix(ref, "refused-"):
		return "", &prio.APIError{StatusCode: http.StatusBadRequest, Code: "INVALID_REQUEST", Operation: "createOrder"}
	case strings.HasPrefix(ref, "conflict-"):
		return "", &prio.APIError{StatusCode: http.StatusConflict, Operation: "createOrder"}
	case strings.HasPrefix(ref, "busy-") && n == 1:
		return "", &prio.APIError{StatusCode: http.StatusServiceUnavailable, Operation: "createOrder"}
	}
	s.seq++
	orderRef := fmt.Sprintf("ORD%06d", s.seq)
	s.orders[ref] = append(s.orders[ref], orderRef)
	if _, ok := s.created[ref]; !ok {
		s.created[ref] = time.Now()
	}
	if (strings.HasPrefix(ref, "lost-") || strings.HasPrefix(ref, "lostfind-") || strings.HasPrefix(ref, "limited-")) && n == 1 {
		return "", &prio.OutcomeUnknownError{Operation: "createOrder", ExternalReference: ref, Sends: 1, Err: errors.New("read: connection reset")}
	}
	return orderRef, nil
}

func (s *fakeServer) find(ref string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.finds[ref]++
	if _, ok := s.found[ref]; !ok {
		s.found[ref] = time.Now()
	}
	if strings.HasPrefix(ref, "limited-") && s.finds[ref] == 1 {
		return "", &prio.LocalLimitError{Reason: "50 4XX answers within a minute", RetryAfter: 20 * time.Second}
	}
	if strings.HasPrefix(ref, "lostfind-") || (strings.HasPrefix(ref, "findfail-") && s.finds[ref] == 1) {
		return "", &prio.APIError{StatusCode: http.StatusInternalServerError, Operation: "listOrders"}
	}
	if o := s.orders[ref]; len(o) > 0 {
		return o[0], nil
	}
	return "", &prio.APIError{StatusCode: http.StatusNotFound, Operation: "listOrders"}
}

// booked returns the orders per reference.
func (s *fakeServer) booked() map[string][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]string{}
	for k, v := range s.orders {
		out[k] = append([]string(nil), v...)
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

// fakeBooker is the client side: it reaches fakeServer unless the
// simulated process has crashed.
type fakeBooker struct {
	srv   *fakeServer
	crash *crasher
}

func (b *fakeBooker) Book(ctx context.Context, req *prio.OrderRequest) (Receipt, error) {
	ref := req.OrderExternalReference
	if !b.crash.alive() {
		return Receipt{}, errCrashed
	}
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
			return Receipt{Sends: 1}, &prio.OutcomeUnknownError{Operation: "createOrder", ExternalReference: ref, Sends: 1, Err: err}
		}
	}
	orderRef, err := b.srv.create(ref)
	if !b.crash.alive() {
		return Receipt{Sends: 1}, errCrashed
	}
	return Receipt{OrderReference: orderRef, Sends: 1}, err
}

func (b *fakeBooker) Find(ctx context.Context, ref string) (string, error) {
	if !b.crash.alive() {
		return "", errCrashed
	}
	return b.srv.find(ref)
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
