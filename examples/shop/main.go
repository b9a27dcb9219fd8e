// Command shop is a small checkout service on PostgreSQL that books its
// orders with Prio through a durable queue (package prioqueue, River):
//
//	go run ./examples/shop
//
// POST /checkout records the shop's paid order and enqueues its booking in
// one transaction: the booking exists if and only if the order does, however
// the service crashes. Workers in the same process book the queued orders;
// GET /checkout/{id} shows the order with its booking's state.
//
//	curl -s -X POST localhost:8080/checkout -d '{"product_id":"30001","product_type_id":"101","quantity":2}'
//	curl -s localhost:8080/checkout/shop-…
//
// # Database
//
// -db (or DATABASE_URL) names the PostgreSQL database; River's tables and
// the shop's are created in it if missing. Without either, the command
// starts a throwaway PostgreSQL server from the machine's installation in a
// temporary directory and removes it on exit.
//
// # Where it books
//
// Without PRIO_CLIENT_ID the command starts the embedded sandbox (package
// priotest; -faults names its fault profile) and books there. With
// PRIO_CLIENT_ID, PRIO_CLIENT_SECRET, PRIO_DISTRIBUTOR_ID and PRIO_ENV or
// PRIO_BASE_URL it books with the real API: post a product and product type
// of yours.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	prio "github.com/priosdk/prio-go"
	"github.com/priosdk/prio-go/internal/pgtest"
	"github.com/priosdk/prio-go/prioqueue"
	"github.com/priosdk/prio-go/priotest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

type config struct {
	addr    string
	db      string
	workers int
	faults  string
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var c config
	fs := flag.NewFlagSet("shop", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8080", "address to listen on")
	fs.StringVar(&c.db, "db", os.Getenv("DATABASE_URL"), "PostgreSQL URL (default DATABASE_URL; neither: a throwaway server from the local installation)")
	fs.IntVar(&c.workers, "workers", 4, "bookings worked at once")
	fs.StringVar(&c.faults, "faults", "none", "fault profile of the embedded sandbox: none, flaky or hostile")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, "shop:", err)
		return 2
	}
	if c.workers < 1 {
		return fail(errors.New("-workers must be at least 1"))
	}

	dbURL := c.db
	if dbURL == "" {
		srv, err := pgtest.Start(ctx, pgtest.Options{Durable: true})
		if errors.Is(err, pgtest.ErrNotInstalled) {
			return fail(fmt.Errorf("no -db or DATABASE_URL given, and no local PostgreSQL to start a throwaway one: %w; or pass -db postgres://user:password@host/db", err))
		}
		if err != nil {
			return fail(err)
		}
		defer srv.Close()
		dbURL = srv.URL("postgres")
		fmt.Fprintln(stderr, "database: a throwaway PostgreSQL server (removed on exit)")
	}
	pcfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		return fail(fmt.Errorf("database: %w", err))
	}
	pcfg.MaxConns = max(pcfg.MaxConns, prioqueue.PoolSize(c.workers)+4) // and the HTTP handlers
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return fail(fmt.Errorf("database: %w", err))
	}
	defer pool.Close()

	client, sandbox, where, err := connect(c.faults)
	if err != nil {
		return fail(err)
	}
	if sandbox != nil {
		defer sandbox.Close()
	}
	s, err := newShop(ctx, pool, client, c.workers, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		return fail(err)
	}
	defer s.close()

	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return fail(err)
	}
	srv := &http.Server{Handler: s.handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	url := "http://" + ln.Addr().String()
	fmt.Fprintf(stdout, "shop ready at %s, booking with %s\n", url, where)
	fmt.Fprintf(stdout, "  curl -s -X POST %s/checkout -d '{\"product_id\":\"30001\",\"product_type_id\":\"101\",\"quantity\":2}'\n", url)
	fmt.Fprintf(stdout, "  curl -s %s/checkout/<id>\n", url)
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fail(err)
	}
	return 0
}

// sandboxHorizon is the processing horizon with the embedded sandbox,
// whose slowest injected processing is under a second.
const sandboxHorizon = 3 * time.Second

// connect returns the client for the real API when PRIO_* is set, else
// for an embedded sandbox (whose client gets the sandbox's horizon).
func connect(faults string) (*prio.Client, *priotest.Server, string, error) {
	envOpts, ok, err := prio.FromEnv()
	if err != nil {
		return nil, nil, "", err
	}
	if ok {
		c, err := prio.NewClient(envOpts...)
		return c, nil, "the Prio API (PRIO_* variables)", err
	}
	profile, err := priotest.ProfileByName(faults)
	if err != nil {
		return nil, nil, "", err
	}
	sb, err := priotest.Start("127.0.0.1:0", priotest.WithFaults(profile))
	if err != nil {
		return nil, nil, "", err
	}
	policy := prio.DefaultRetryPolicy()
	policy.ProcessingHorizon = sandboxHorizon
	policy.BookingAttemptTimeout = 5 * time.Second
	c, err := prio.NewClient(
		prio.WithServer(sb),
		prio.WithRetryPolicy(policy),
	)
	if err != nil {
		sb.Close()
		return nil, nil, "", err
	}
	return c, sb, fmt.Sprintf("the embedded sandbox at %s (faults %s)", sb.URL(), profile.Name), nil
}
