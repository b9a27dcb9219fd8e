package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/priosdk/prio-go/internal/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// TestCheckoutIsBookedOnce: a checkout is recorded and queued at once, a
// worker books it, and GET shows the order booked, with the sandbox holding
// exactly one order for it.
func TestCheckoutIsBookedOnce(t *testing.T) {
	pool := pgtest.Pool(t)
	client, sandbox, _, err := connect("none")
	require.NoError(t, err)
	t.Cleanup(sandbox.Close)
	s, err := newShop(t.Context(), pool, client, 2, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	t.Cleanup(s.close)
	srv := httptest.NewServer(s.handler())
	t.Cleanup(srv.Close)

	resp, err := http.Post(srv.URL+"/checkout", "application/json", strings.NewReader(`{"product_id":"30001","product_type_id":"101","quantity":2}`))
	require.NoError(t, err)
	var created struct {
		ID      string `json:"id"`
		Booking string `json:"booking"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&created))
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	assert.Equal(t, "queued", created.Booking)

	var v checkoutView
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(srv.URL + "/checkout/" + created.ID)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&v))
		resp.Body.Close()
		if v.Booking != "queued" || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	assert.Equal(t, "booked", v.Booking)
	assert.NotEmpty(t, v.OrderReference)
	require.NotNil(t, v.Job)
	assert.Equal(t, "completed", v.Job.State)
	assert.Equal(t, v.OrderReference, v.Job.Output.OrderReference)
	assert.Equal(t, 1, sandbox.OrdersFor(created.ID))

	resp, err = http.Get(srv.URL + "/checkout/shop-nope")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	resp, err = http.Post(srv.URL+"/checkout", "application/json", strings.NewReader(`{"quantity":0}`))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
}
