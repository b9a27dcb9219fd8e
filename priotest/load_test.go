package priotest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	loadClients  = 64
	loadRequests = 20 // per client
)

// TestLoad runs 64 clients of 20 requests each against a flaky server:
// they book with keys, retry every failure with the same key, and look
// their orders up. No reference may end with two orders, every booking a
// client saw confirmed must exist, and the books must balance.
func TestLoad(t *testing.T) {
	t.Parallel()
	flaky, err := ProfileByName("flaky")
	require.NoError(t, err)
	// Hangs would only measure the client's timeout; everything else stays.
	flaky = flaky.With(Profile{Delay: 2 * time.Millisecond, Probabilities: map[string]map[FaultKind]float64{"*": {FaultHang: 0}}})
	s := NewServer(t, WithFaults(flaky), WithRequestLimit(0), WithClientErrorLimit(0))
	tr := &http.Transport{MaxIdleConnsPerHost: loadClients}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}

	var (
		sends     atomic.Int64
		mu        sync.Mutex
		confirmed = map[string]string{} // external reference -> order reference
		attempted = map[string]bool{}
	)
	// send makes one request and reports the status and a decoded body (nil
	// when the transfer or the JSON broke).
	send := func(req *http.Request) (int, map[string]any) {
		sends.Add(1)
		resp, err := hc.Do(req)
		if err != nil {
			return 0, nil
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		var m map[string]any
		if err != nil || json.Unmarshal(b, &m) != nil {
			return resp.StatusCode, nil
		}
		return resp.StatusCode, m
	}

	var wg sync.WaitGroup
	for c := range loadClients {
		wg.Go(func() {
			budget := loadRequests
			token := ""
			for token == "" && budget > 0 {
				budget--
				req, _ := http.NewRequest(http.MethodPost, s.URL()+"/oauth2/token", bytes.NewBufferString(`{"grant_type":"client_credentials"}`))
				req.Header.Set("Content-Type", "application/json")
				req.SetBasicAuth(DefaultClientID, DefaultClientSecret)
				if status, m := send(req); status == http.StatusOK && m != nil {
					token, _ = m["access_token"].(string)
				}
			}
			for n := 0; budget > 0; n++ {
				ext := fmt.Sprintf("load-%02d-%02d", c, n)
				raw, _ := json.Marshal(orderBody(ext, ticket{product: ProductOpen, adults: 1}))
				mu.Lock()
				attempted[ext] = true
				mu.Unlock()
				for attempt := 1; budget > 0; attempt++ {
					budget--
					req, _ := http.NewRequest(http.MethodPost, s.URL()+"/orders", bytes.NewReader(raw))
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("Authorization", "Bearer "+token)
					req.Header.Set("Idempotency-Key", ext)
					req.Header.Set("App-Attempt", fmt.Sprint(attempt))
					status, m := send(req)
					if ref, ok := lookup(m, "data", "order", "order_reference").(string); status == http.StatusCreated && ok {
						mu.Lock()
						confirmed[ext] = ref
						mu.Unlock()
						break
					}
				}
				for budget > 0 {
					budget--
					req, _ := http.NewRequest(http.MethodGet, s.URL()+"/orders?order_external_reference="+ext, nil)
					req.Header.Set("Authorization", "Bearer "+token)
					if status, m := send(req); status == http.StatusOK && m != nil {
						total, _ := lookup(m, "data", "total_items").(float64)
						assert.LessOrEqual(t, total, 1.0, "reference %s listed %v orders", ext, total)
						break
					}
				}
			}
		})
	}
	wg.Wait()

	st := s.Stats()
	t.Logf("sends %d, server requests %d, faults %d, replays %d, orders %d, references confirmed %d of %d",
		sends.Load(), st.RequestsTotal, st.FaultsInjected, st.IdempotentReplays, st.OrdersTotal, len(confirmed), len(attempted))
	assert.Equal(t, int64(loadClients*loadRequests), sends.Load())
	assert.GreaterOrEqual(t, st.RequestsTotal, int(sends.Load()), "net/http may resend a keyed request on its own, never fewer")
	assert.Len(t, s.Requests(), st.RequestsTotal)
	assert.Positive(t, st.FaultsInjected)
	assert.Zero(t, st.DuplicateExternalReferences)
	assert.LessOrEqual(t, st.OrdersTotal, len(attempted))
	for ext := range attempted {
		assert.LessOrEqual(t, s.OrdersFor(ext), 1, ext)
	}
	for ext := range confirmed {
		assert.Equal(t, 1, s.OrdersFor(ext), "confirmed booking %s exists", ext)
	}
}

// lookup walks nested JSON objects without failing the test, for use off
// the test goroutine; it returns nil when the path is missing.
func lookup(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// TestConcurrentSameReference races 64 clients booking one external
// reference with 64 different keys: the reference rule lets one order
// through.
func TestConcurrentSameReference(t *testing.T) {
	t.Parallel()
	s := NewServer(t, WithIdempotency(IdempotencyReference), WithRequestLimit(0))
	a := newAPI(t, s).login()
	raw, err := json.Marshal(orderBody("same-ref", ticket{product: ProductOpen, adults: 1}))
	require.NoError(t, err)
	refs := make([]string, loadClients)
	var wg sync.WaitGroup
	for i := range loadClients {
		wg.Go(func() {
			r := a.do(http.MethodPost, "/orders", raw, "Idempotency-Key", fmt.Sprint("k", i))
			if assert.Equal(t, http.StatusCreated, r.status) {
				refs[i] = dig(t, r.json(t), "data", "order", "order_reference").(string)
			}
		})
	}
	wg.Wait()
	assert.Equal(t, 1, s.OrdersFor("same-ref"))
	for _, ref := range refs {
		assert.Equal(t, refs[0], ref)
	}
	assert.Equal(t, loadClients-1, s.Stats().IdempotentReplays)
}
