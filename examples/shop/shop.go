package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	prio "github.com/priosdk/prio-go"
	"github.com/priosdk/prio-go/prioqueue"
)

const schema = `CREATE TABLE IF NOT EXISTS shop_orders (
	id              text PRIMARY KEY,
	product_id      text NOT NULL,
	product_type_id text NOT NULL,
	quantity        int NOT NULL,
	email           text,
	paid_at         timestamptz NOT NULL DEFAULT now(),
	booking         text NOT NULL DEFAULT 'queued',
	order_reference text,
	booking_error   text,
	updated_at      timestamptz NOT NULL DEFAULT now()
)`

// shop is the service: its own table, River's queue in the same database,
// and the workers that book.
type shop struct {
	pool   *pgxpool.Pool
	client *prio.Client
	queue  *river.Client[pgx.Tx]
}

func newShop(ctx context.Context, pool *pgxpool.Pool, client *prio.Client, workers int, logger *slog.Logger) (*shop, error) {
	if err := prioqueue.Migrate(ctx, pool); err != nil {
		return nil, err
	}
	if _, err := pool.Exec(ctx, schema); err != nil {
		return nil, fmt.Errorf("shop schema: %w", err)
	}
	s := &shop{pool: pool, client: client}
	w, err := prioqueue.NewWorker(prioqueue.Config{
		Client:      client,
		DB:          pool,
		OnSettled:   s.settled,
		Logger:      logger,
		Concurrency: workers,
	})
	if err != nil {
		return nil, err
	}
	ws := river.NewWorkers()
	if err := river.AddWorkerSafely(ws, w); err != nil {
		return nil, err
	}
	s.queue, err = river.NewClient(riverpgxv5.New(pool), &river.Config{
		Queues:               map[string]river.QueueConfig{river.QueueDefault: prioqueue.QueueConfig(workers)},
		Workers:              ws,
		JobTimeout:           w.Timeout(nil),
		RescueStuckJobsAfter: w.Timeout(nil) + time.Minute,
		Logger:               logger,
		// With the global OpenTelemetry providers set, a checkout's trace
		// runs from its enqueue through each attempt to Prio.
		Middleware: []rivertype.Middleware{prioqueue.Telemetry(nil, nil)},
	})
	if err != nil {
		return nil, err
	}
	if err := s.queue.Start(context.WithoutCancel(ctx)); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *shop) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = s.queue.Stop(ctx)
}

// settled runs in the transaction that completes (or cancels) the booking's
// job: the shop's row and the job change together.
func (s *shop) settled(ctx context.Context, tx pgx.Tx, job *river.Job[prioqueue.CreateOrderArgs], res *prioqueue.Result) error {
	_, err := tx.Exec(ctx, `UPDATE shop_orders SET booking = $2, order_reference = NULLIF($3, ''), booking_error = NULLIF($4, ''), updated_at = now() WHERE id = $1`,
		job.Args.ExternalReference, res.Outcome, res.OrderReference, res.Error)
	return err
}

func (s *shop) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /checkout", s.checkout)
	mux.HandleFunc("GET /checkout/{id}", s.show)
	return mux
}

type checkoutRequest struct {
	ProductID     string `json:"product_id"`
	ProductTypeID string `json:"product_type_id"`
	Quantity      int    `json:"quantity"`
	Email         string `json:"email,omitempty"`
}

// checkout records the paid order and enqueues its booking in one
// transaction.
func (s *shop) checkout(w http.ResponseWriter, r *http.Request) {
	var in checkoutRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&in); err != nil {
		httpError(w, http.StatusBadRequest, "body: %v", err)
		return
	}
	if in.ProductID == "" || in.ProductTypeID == "" || in.Quantity < 1 || in.Quantity > 100 {
		httpError(w, http.StatusBadRequest, "product_id, product_type_id and a quantity from 1 to 100 are required")
		return
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	id := "shop-" + hex.EncodeToString(b[:])
	req := &prio.OrderRequest{
		OrderExternalReference: id, // the shop's id is the booking's identity
		OrderBookings: prio.Bookings(prio.Item{
			ProductID: in.ProductID,
			Tickets:   []prio.ProductTypeDetail{prio.Tickets(in.ProductTypeID, in.Quantity)},
		}),
	}
	if in.Email != "" {
		req.OrderContacts = prio.Contacts(prio.Person{Type: prio.ContactBooker, Email: in.Email})
	}
	args, err := prioqueue.NewCreateOrderArgs(s.client.DistributorID(), req)
	if err != nil {
		httpError(w, http.StatusBadRequest, "%v", err)
		return
	}
	var jobID int64
	err = pgx.BeginFunc(r.Context(), s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(r.Context(), `INSERT INTO shop_orders (id, product_id, product_type_id, quantity, email) VALUES ($1, $2, $3, $4, NULLIF($5, ''))`,
			id, in.ProductID, in.ProductTypeID, in.Quantity, in.Email); err != nil {
			return err
		}
		res, err := s.queue.InsertTx(r.Context(), tx, args, nil)
		if err != nil {
			return err
		}
		jobID = res.Job.ID
		return nil
	})
	if err != nil {
		httpError(w, http.StatusInternalServerError, "checkout: %v", err)
		return
	}
	w.Header().Set("Location", "/checkout/"+id)
	writeJSON(w, http.StatusCreated, map[string]any{"id": id, "booking": "queued", "job_id": jobID})
}

// checkoutView is GET /checkout/{id}.
type checkoutView struct {
	ID             string     `json:"id"`
	ProductID      string     `json:"product_id"`
	Quantity       int        `json:"quantity"`
	PaidAt         time.Time  `json:"paid_at"`
	Booking        string     `json:"booking"`
	OrderReference string     `json:"order_reference,omitempty"`
	BookingError   string     `json:"booking_error,omitempty"`
	Job            *jobView   `json:"job,omitempty"`
	UpdatedAt      *time.Time `json:"updated_at,omitempty"`
}

type jobView struct {
	ID      int64             `json:"id"`
	State   string            `json:"state"`
	Attempt int               `json:"attempt"`
	Output  *prioqueue.Result `json:"output,omitempty"`
	Errors  []string          `json:"errors,omitempty"`
}

func (s *shop) show(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var v checkoutView
	var orderRef, bookingErr *string
	var updated time.Time
	err := s.pool.QueryRow(r.Context(), `SELECT id, product_id, quantity, paid_at, booking, order_reference, booking_error, updated_at FROM shop_orders WHERE id = $1`, id).
		Scan(&v.ID, &v.ProductID, &v.Quantity, &v.PaidAt, &v.Booking, &orderRef, &bookingErr, &updated)
	if errors.Is(err, pgx.ErrNoRows) {
		httpError(w, http.StatusNotFound, "no checkout %q", id)
		return
	}
	if err != nil {
		httpError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	if orderRef != nil {
		v.OrderReference = *orderRef
	}
	if bookingErr != nil {
		v.BookingError = *bookingErr
	}
	v.UpdatedAt = &updated
	st, ok, err := prioqueue.Lookup(r.Context(), s.pool, s.client.DistributorID(), id)
	if err != nil {
		httpError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	if ok {
		v.Job = &jobView{ID: st.JobID, State: string(st.State), Attempt: st.Attempt, Output: st.Result}
		for _, e := range st.Errors {
			v.Job.Errors = append(v.Job.Errors, e.Error)
		}
	}
	writeJSON(w, http.StatusOK, v)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func httpError(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, map[string]string{"error": fmt.Sprintf(format, args...)})
}
