// Command prio-sandbox runs the priotest sandbox as a process: a stateful
// fake of the Prio Distributor API v3.8 with server-side idempotency and
// fault injection, for trying a client by hand or from another language.
//
// Usage:
//
//	prio-sandbox [-addr 127.0.0.1:8080] [-seed 1] [-faults none|flaky|hostile|JSON]
//	             [-idempotency header|reference|both|none]
//	             [-client-id sandbox-client] [-client-secret sandbox-secret]
//	             [-distributor-id 501] [-token-ttl 1h] [-hold-time 15m]
//	             [-slow-delay 30s] [-client-error-limit 60] [-request-limit 1000]
//	             [-cache-lag 0s] [-gateway-delay 0s] [-origin-delay 0s] [-v]
//
// -cache-lag makes order reads served from the cache (the default; not
// with cache=false) lag behind the live orders. -gateway-delay and
// -origin-delay, when set, replace the fault profile's delays of the
// gateway faults (gateway_502 and the like): when the client gets the
// gateway's page, and when the origin behind it has processed the call.
//
// When ready it logs one line with the API's base URL. The admin endpoints
// live outside the API path: GET /_sandbox/stats, GET and PUT
// /_sandbox/faults, POST /_sandbox/reset, GET /_sandbox/requests.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/priosdk/prio-go/priotest"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "prio-sandbox:", err)
		}
		os.Exit(2)
	}
}

// run parses args, starts the sandbox, reports its URL through ready (when
// not nil) and serves until ctx ends or a signal arrives.
func run(ctx context.Context, args []string, stderr io.Writer) error {
	return serve(ctx, args, stderr, nil)
}

func serve(ctx context.Context, args []string, stderr io.Writer, ready func(*priotest.Server)) error {
	fs := flag.NewFlagSet("prio-sandbox", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		addr         = fs.String("addr", "127.0.0.1:8080", "address to listen on")
		seed         = fs.Int64("seed", 1, "seed for voucher codes, ids and fault draws")
		faults       = fs.String("faults", "none", "fault profile: none, flaky, hostile, or a JSON profile document")
		idempotency  = fs.String("idempotency", "both", "server-side deduplication: header, reference, both or none")
		clientID     = fs.String("client-id", priotest.DefaultClientID, "client id the token endpoint accepts")
		clientSecret = fs.String("client-secret", priotest.DefaultClientSecret, "client secret the token endpoint accepts")
		distributor  = fs.String("distributor-id", priotest.DefaultDistributorID, "distributor id of the credentials")
		tokenTTL     = fs.Duration("token-ttl", priotest.DefaultTokenTTL, "lifetime of access tokens")
		holdTime     = fs.Duration("hold-time", priotest.DefaultHoldTime, "how long reservations hold capacity")
		slowDelay    = fs.Duration("slow-delay", priotest.DefaultSlowSupplierDelay, "how long orders of the slow product stay pending")
		errLimit     = fs.Int("client-error-limit", priotest.DefaultClientErrorLimit, "4XX answers per client per minute before a one-minute ban (0: off)")
		reqLimit     = fs.Int("request-limit", priotest.DefaultRequestLimit, "requests per client per minute before 429 (0: off)")
		cacheLag     = fs.Duration("cache-lag", 0, "how far cached order reads (no cache=false) lag behind the live orders")
		gatewayDelay = fs.Duration("gateway-delay", 0, "when a gateway fault answers the client (0: the profile's, default 100ms)")
		originDelay  = fs.Duration("origin-delay", 0, "when the origin behind a gateway fault has processed the call (0: the profile's, default 500ms)")
		verbose      = fs.Bool("v", false, "log every request")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	profile, err := priotest.ParseProfile(*faults)
	if err != nil {
		return err
	}
	if *gatewayDelay < 0 || *originDelay < 0 || *cacheLag < 0 {
		return fmt.Errorf("negative -cache-lag, -gateway-delay or -origin-delay")
	}
	profile = profile.With(priotest.Profile{GatewayDelay: *gatewayDelay, OriginDelay: *originDelay})
	mode, err := priotest.ParseIdempotencyMode(*idempotency)
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	s, err := priotest.Start(*addr,
		priotest.WithSeed(*seed),
		priotest.WithFaults(profile),
		priotest.WithIdempotency(mode),
		priotest.WithCredentials(*clientID, *clientSecret),
		priotest.WithDistributorID(*distributor),
		priotest.WithTokenTTL(*tokenTTL),
		priotest.WithHoldTime(*holdTime),
		priotest.WithSlowSupplierDelay(*slowDelay),
		priotest.WithClientErrorLimit(*errLimit),
		priotest.WithRequestLimit(*reqLimit),
		priotest.WithOrderCacheLag(*cacheLag),
		priotest.WithLogger(logger),
	)
	if err != nil {
		return err
	}
	defer s.Close()
	logger.Info("prio-sandbox ready", "url", s.URL(), "admin", s.AdminURL()+"/_sandbox/stats",
		"faults", profile.Name, "idempotency", string(mode), "cache_lag", cacheLag.String())
	if ready != nil {
		ready(s)
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	logger.Info("prio-sandbox stopping")
	return nil
}
