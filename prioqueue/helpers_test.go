package prioqueue_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	prio "github.com/priosdk/prio-go"
	"github.com/priosdk/prio-go/internal/pgtest"
	"github.com/priosdk/prio-go/prioqueue"
	"github.com/priosdk/prio-go/priotest"
)

// testHorizon is the processing horizon the tests give the client and the
// worker: the sandbox's slowest injected processing is well under it.
const testHorizon = 3 * time.Second

type env struct {
	schema  prioqueue.Schema
	pool    *pgxpool.Pool
	sandbox *priotest.Server
	client  *prio.Client
	queue   *river.Client[pgx.Tx]
}

type envOptions struct {
	sandbox []priotest.Option
	policy  func(*prio.RetryPolicy)
	config  func(*prioqueue.Config)
	noStart bool
	// client and middleware add options to the prio client and River
	// middleware to the queue.
	client     []prio.Option
	middleware []rivertype.Middleware
	// maxWorkers is River's MaxWorkers for the queue (default 8).
	maxWorkers int
	// schema, if set, is the schema River's tables are made in and the
	// queue is configured with; the search path holds none then.
	schema prioqueue.Schema
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	e := &env{pool: pgtest.Pool(t), schema: o.schema}
	if o.schema != "" {
		_, err := e.pool.Exec(t.Context(), `CREATE SCHEMA `+string(o.schema))
		require.NoError(t, err)
	}
	require.NoError(t, o.schema.Migrate(t.Context(), e.pool))
	e.sandbox = priotest.NewServer(t, o.sandbox...)
	policy := prio.DefaultRetryPolicy()
	policy.ProcessingHorizon = testHorizon
	policy.BookingAttemptTimeout = 2 * time.Second
	policy.RequestsPerMinute = 0
	if o.policy != nil {
		o.policy(&policy)
	}
	var err error
	e.client, err = prio.NewClient(append([]prio.Option{
		prio.WithServer(e.sandbox),
		prio.WithRetryPolicy(policy),
	}, o.client...)...)
	require.NoError(t, err)
	cfg := prioqueue.Config{
		Client: e.client, DB: e.pool,
		ClockMargin: 100 * time.Millisecond, SendWindow: 20 * time.Second,
	}
	if o.config != nil {
		o.config(&cfg)
	}
	w, err := prioqueue.NewWorker(cfg)
	require.NoError(t, err)
	workers := river.NewWorkers()
	require.NoError(t, river.AddWorkerSafely(workers, w))
	if o.maxWorkers == 0 {
		o.maxWorkers = 8
	}
	e.queue, err = river.NewClient(riverpgxv5.New(e.pool), &river.Config{
		Queues:               map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: o.maxWorkers}},
		Workers:              workers,
		FetchCooldown:        10 * time.Millisecond,
		FetchPollInterval:    50 * time.Millisecond,
		RescueStuckJobsAfter: w.Timeout(nil) + time.Minute,
		Logger:               slog.New(slog.NewTextHandler(io.Discard, nil)),
		Middleware:           o.middleware,
		Schema:               string(o.schema),
	})
	require.NoError(t, err)
	if !o.noStart {
		e.start(t)
	}
	return e
}

func (e *env) start(t *testing.T) {
	t.Helper()
	require.NoError(t, e.queue.Start(context.WithoutCancel(t.Context())))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = e.queue.Stop(ctx)
	})
}

// request is a booking of the sandbox's open product.
func request(ref string) *prio.OrderRequest {
	return &prio.OrderRequest{
		OrderExternalReference: ref,
		OrderBookings: []prio.BookingOption{{
			ProductId:          prio.Ptr("30001"),
			ProductTypeDetails: &[]prio.ProductTypeDetail{{ProductTypeId: "101", ProductTypeCount: 1}},
		}},
	}
}

func args(t *testing.T, req *prio.OrderRequest) prioqueue.CreateOrderArgs {
	t.Helper()
	a, err := prioqueue.NewCreateOrderArgs(priotest.DefaultDistributorID, req)
	require.NoError(t, err)
	return a
}

// waitSettled waits until the booking's job is finished and returns it.
func (e *env) waitSettled(t *testing.T, ref string, within time.Duration) *prioqueue.Status {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		s, ok, err := e.schema.Lookup(t.Context(), e.pool, priotest.DefaultDistributorID, ref)
		require.NoError(t, err)
		if ok && s.Settled() {
			return s
		}
		if time.Now().After(deadline) {
			state := "no job"
			if ok {
				state = fmt.Sprintf("%s, result %+v, errors %v", s.State, s.Result, s.Errors)
			}
			t.Fatalf("%s not settled within %s: %s", ref, within, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
