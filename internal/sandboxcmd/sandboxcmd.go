// Package sandboxcmd runs the priotest sandbox as a process: the flag set
// and serve loop shared by cmd/prio-sandbox and `prio sandbox`.
package sandboxcmd

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/priosdk/prio-go/priotest"
)

// ReadyMessage is the log message written once the sandbox listens; its
// url attribute is the API's base URL. Scripts and tests wait for it.
const ReadyMessage = "prio-sandbox ready"

// UsageError is a mistake in the flags given to Serve.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }

// Unwrap returns the flag package's error (flag.ErrHelp for -h).
func (e *UsageError) Unwrap() error { return e.Err }

// Serve parses args with the sandbox's flag set (named name in usage and
// errors), starts the sandbox, logs ReadyMessage to stderr, reports the
// server through ready (when not nil) and serves until ctx ends or SIGINT
// or SIGTERM arrives. Mistakes in args are *UsageError; -h and -help print
// the flags and return an error matching flag.ErrHelp.
func Serve(ctx context.Context, name string, args []string, stderr io.Writer, ready func(*priotest.Server)) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s [flags]\n\nRuns the priotest sandbox, a stateful fake of the Prio Distributor API v3.8,\n"+
			"with admin endpoints under /_sandbox/ (stats, faults, reset, requests).\n\nFlags:\n", name)
		fs.PrintDefaults()
	}
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
		return &UsageError{err}
	}
	if fs.NArg() > 0 {
		return &UsageError{fmt.Errorf("unexpected arguments: %v", fs.Args())}
	}
	profile, err := priotest.ParseProfile(*faults)
	if err != nil {
		return &UsageError{err}
	}
	if *gatewayDelay < 0 || *originDelay < 0 || *cacheLag < 0 {
		return &UsageError{fmt.Errorf("negative -cache-lag, -gateway-delay or -origin-delay")}
	}
	profile = profile.With(priotest.Profile{GatewayDelay: *gatewayDelay, OriginDelay: *originDelay})
	mode, err := priotest.ParseIdempotencyMode(*idempotency)
	if err != nil {
		return &UsageError{err}
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
	logger.Info(ReadyMessage, "url", s.URL(), "admin", s.AdminURL()+"/_sandbox/stats",
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
