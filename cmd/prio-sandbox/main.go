// Command prio-sandbox runs the priotest sandbox as a process: a stateful
// fake of the Prio Distributor API v3.8 with server-side idempotency and
// fault injection, for trying a client by hand or from another language.
// It is the same as `prio sandbox` (cmd/prio), for scripts that want a
// binary of its own.
//
// Usage:
//
//	prio-sandbox [-addr 127.0.0.1:8080] [-seed 1] [-faults none|flaky|hostile|JSON]
//	             [-idempotency header|reference|both|none]
//	             [-client-id sandbox-client] [-client-secret sandbox-secret]
//	             [-distributor-id 501] [-token-ttl 1h] [-hold-time 15m]
//	             [-slow-delay 30s] [-client-error-limit 60] [-request-limit 1000]
//	             [-cache-lag 0] [-gateway-delay 0] [-origin-delay 0] [-v]
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
	"os"

	"github.com/priosdk/prio-go/internal/sandboxcmd"
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
	return sandboxcmd.Serve(ctx, "prio-sandbox", args, stderr, ready)
}
