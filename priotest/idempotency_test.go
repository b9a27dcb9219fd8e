package priotest

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestIdempotencyModes(t *testing.T) {
	t.Parallel()
	type send struct {
		key string // "" sends no Idempotency-Key
		ext string
	}
	scenarios := []struct {
		name  string
		sends []send
		// orders created per mode
		want map[IdempotencyMode]int
	}{
		{
			name:  "same key, same body",
			sends: []send{{"k1", "ref-a"}, {"k1", "ref-a"}},
			want:  map[IdempotencyMode]int{IdempotencyHeader: 1, IdempotencyReference: 1, IdempotencyBoth: 1, IdempotencyNone: 2},
		},
		{
			name:  "new key, same external reference",
			sends: []send{{"k1", "ref-a"}, {"k2", "ref-a"}},
			want:  map[IdempotencyMode]int{IdempotencyHeader: 2, IdempotencyReference: 1, IdempotencyBoth: 1, IdempotencyNone: 2},
		},
		{
			name:  "no key, same external reference",
			sends: []send{{"", "ref-a"}, {"", "ref-a"}, {"", "ref-a"}},
			want:  map[IdempotencyMode]int{IdempotencyHeader: 3, IdempotencyReference: 1, IdempotencyBoth: 1, IdempotencyNone: 3},
		},
	}
	for _, sc := range scenarios {
		for _, mode := range []IdempotencyMode{IdempotencyHeader, IdempotencyReference, IdempotencyBoth, IdempotencyNone} {
			t.Run(sc.name+"/"+string(mode), func(t *testing.T) {
				t.Parallel()
				s := NewServer(t, WithIdempotency(mode))
				a := newAPI(t, s).login()
				var refs []string
				for _, snd := range sc.sends {
					var hdr []string
					if snd.key != "" {
						hdr = []string{"Idempotency-Key", snd.key}
					}
					r := a.do(http.MethodPost, "/orders", orderBody(snd.ext, ticket{product: ProductOpen, adults: 1}), hdr...)
					require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
					refs = append(refs, dig(t, r.json(t), "data", "order", "order_reference").(string))
				}
				want := sc.want[mode]
				assert.Equal(t, want, s.OrdersFor("ref-a"))
				st := s.Stats()
				assert.Equal(t, want, st.OrdersTotal)
				assert.Equal(t, len(sc.sends)-want, st.IdempotentReplays)
				dup := 0
				if want > 1 {
					dup = 1
				}
				assert.Equal(t, dup, st.DuplicateExternalReferences)
				listed := list(t, a, "order_external_reference=ref-a")
				assert.EqualValues(t, want, listed["total_items"], "the list shows every order of the reference")
				if want == 1 {
					for _, ref := range refs {
						assert.Equal(t, refs[0], ref, "every send answers the one order")
					}
				}
			})
		}
	}
}

func TestIdempotentReplayIsIdentical(t *testing.T) {
	t.Parallel()
	s := NewServer(t, WithIdempotency(IdempotencyHeader))
	a := newAPI(t, s).login()
	body := orderBody("replay-1", ticket{product: ProductOpen, adults: 2})
	first := a.do(http.MethodPost, "/orders", body, "Idempotency-Key", "replay-key")
	require.Equal(t, http.StatusCreated, first.status)
	assert.Empty(t, first.header.Get("Idempotent-Replayed"))
	second := a.do(http.MethodPost, "/orders", body, "Idempotency-Key", "replay-key")
	require.Equal(t, http.StatusCreated, second.status)
	assert.Equal(t, string(first.body), string(second.body), "the stored answer, byte for byte")
	assert.Equal(t, "true", second.header.Get("Idempotent-Replayed"))

	recs := s.Requests()
	require.GreaterOrEqual(t, len(recs), 3)
	last := recs[len(recs)-1]
	assert.True(t, last.Replayed)
	assert.Equal(t, "replay-key", last.IdempotencyKey)
	assert.Equal(t, recs[len(recs)-2].BodySHA256, last.BodySHA256)
}

func TestIdempotencyKeyWithAnotherBody(t *testing.T) {
	t.Parallel()
	s := NewServer(t)
	a := newAPI(t, s).login()
	require.Equal(t, http.StatusCreated, a.do(http.MethodPost, "/orders", orderBody("body-1", ticket{product: ProductOpen, adults: 1}), "Idempotency-Key", "k").status)
	r := a.do(http.MethodPost, "/orders", orderBody("body-2", ticket{product: ProductOpen, adults: 1}), "Idempotency-Key", "k")
	assert.Equal(t, http.StatusConflict, r.status)
	assert.Equal(t, "IDEMPOTENCY_KEY_REUSED", r.errorCode(t))
	assert.Zero(t, s.OrdersFor("body-2"))

	res := a.do(http.MethodPost, "/reservations", reservationBody("body-3", ticket{product: ProductOpen, adults: 1}), "Idempotency-Key", "k")
	assert.Equal(t, http.StatusConflict, res.status, "a key used on another operation is refused too")
}

func TestIdempotencyKeyFormat(t *testing.T) {
	t.Parallel()
	s := NewServer(t)
	a := newAPI(t, s).login()
	for _, key := range []string{"", "has space", strings.Repeat("x", 256), "tab\tkey"} {
		req := a.request(http.MethodPost, "/orders", orderBody("fmt", ticket{product: ProductOpen, adults: 1}))
		req.Header["Idempotency-Key"] = []string{key}
		r := a.send(req)
		assert.Equal(t, http.StatusBadRequest, r.status, "key %q", key)
	}
	assert.Equal(t, http.StatusCreated, a.do(http.MethodPost, "/orders", orderBody("fmt", ticket{product: ProductOpen, adults: 1}),
		"Idempotency-Key", strings.Repeat("x", 255)).status)
}

// TestIdempotencyKeyInFlight holds the first request of a key in a delay
// and sends the same key meanwhile: 409 until the first finishes, then the
// stored answer.
func TestIdempotencyKeyInFlight(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p := Sequence("createOrder", FaultDelay)
		p.Delay = 20 * time.Second
		s, err := NewUnstarted(WithFaults(p))
		require.NoError(t, err)
		defer s.Close()
		a := pipeAPI(t, s).login()
		body := orderBody("inflight-1", ticket{product: ProductOpen, adults: 1})

		var wg sync.WaitGroup
		var first reply
		start := time.Now()
		wg.Go(func() { first = a.do(http.MethodPost, "/orders", body, "Idempotency-Key", "slow-key") })
		synctest.Wait()

		busy := a.do(http.MethodPost, "/orders", body, "Idempotency-Key", "slow-key")
		assert.Equal(t, http.StatusConflict, busy.status)
		assert.Equal(t, "IDEMPOTENCY_KEY_IN_USE", busy.errorCode(t))
		other := a.do(http.MethodPost, "/orders", orderBody("inflight-2", ticket{product: ProductOpen, adults: 1}), "Idempotency-Key", "slow-key")
		assert.Equal(t, http.StatusConflict, other.status)

		wg.Wait()
		assert.Equal(t, 20*time.Second, time.Since(start), "the delay fault held the call exactly Profile.Delay")
		require.Equal(t, http.StatusCreated, first.status, "%s", first.body)
		after := a.do(http.MethodPost, "/orders", body, "Idempotency-Key", "slow-key")
		assert.Equal(t, http.StatusCreated, after.status)
		assert.Equal(t, string(first.body), string(after.body))
		assert.Equal(t, 1, s.OrdersFor("inflight-1"))
		assert.Zero(t, s.OrdersFor("inflight-2"))
	})
}

// TestDelayedCallCompletesAfterClientLeaves: a client that times out during
// a delay does not stop the booking; its retry with the key gets it.
func TestDelayedCallCompletesAfterClientLeaves(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p := Sequence("createOrder", FaultDelay)
		p.Delay = time.Minute
		s, err := NewUnstarted(WithFaults(p), WithIdempotency(IdempotencyHeader))
		require.NoError(t, err)
		defer s.Close()
		a := pipeAPI(t, s).login()
		body := orderBody("left-1", ticket{product: ProductOpen, adults: 1})

		impatient := *a.hc
		impatient.Timeout = 10 * time.Second
		req := a.request(http.MethodPost, "/orders", body, "Idempotency-Key", "left-key")
		_, err = impatient.Do(req)
		require.Error(t, err, "the client gave up")
		assert.Zero(t, s.OrdersFor("left-1"), "not booked yet")

		time.Sleep(time.Minute)
		synctest.Wait()
		assert.Equal(t, 1, s.OrdersFor("left-1"), "booked although nobody waited for the answer")
		r := a.do(http.MethodPost, "/orders", body, "Idempotency-Key", "left-key")
		require.Equal(t, http.StatusCreated, r.status)
		assert.Equal(t, "true", r.header.Get("Idempotent-Replayed"))
		assert.Equal(t, 1, s.OrdersFor("left-1"))
	})
}

func TestTokenRequestsAreNotDeduplicated(t *testing.T) {
	t.Parallel()
	s := NewServer(t)
	a := newAPI(t, s)
	var tokens []string
	for i := range 2 {
		req, err := http.NewRequest(http.MethodPost, a.base+"/oauth2/token", strings.NewReader(`{"grant_type":"client_credentials"}`))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", "same-key")
		req.SetBasicAuth(DefaultClientID, DefaultClientSecret)
		r := a.send(req)
		require.Equal(t, http.StatusOK, r.status, "token %d: %s", i, r.body)
		tokens = append(tokens, fmt.Sprint(r.json(t)["access_token"]))
	}
	assert.NotEqual(t, tokens[0], tokens[1], "each token request issues a new token")
	assert.Zero(t, s.Stats().IdempotentReplays)
}
