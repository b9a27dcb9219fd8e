// Command prio is a command line for operators of a Prio Distributor API
// integration: read products and availability, find, list, cancel and
// reconcile orders, read and cancel reservations, and run the sandbox.
//
// Credentials come from the environment, as for prio.FromEnv:
// PRIO_CLIENT_ID, PRIO_CLIENT_SECRET, PRIO_DISTRIBUTOR_ID, and PRIO_ENV
// (production, sandbox or staging) or PRIO_BASE_URL, and PRIO_API_KEY.
//
// Output is a table; --json prints the API's objects as JSON instead.
// Exit codes: 0 ok, 1 any other failure, 2 usage or configuration error,
// 3 not found, 4 refused (by Prio, or by the client before sending), 5
// unknown outcome (a change that may or may not have happened).
//
// See cmd/prio/README.md for every subcommand.
package main

import (
	"context"
	"os"

	"golang.org/x/term"
)

func main() {
	a := &app{stdout: os.Stdout, stderr: os.Stderr, stderrIsTerm: term.IsTerminal(int(os.Stderr.Fd()))}
	os.Exit(a.run(context.Background(), os.Args[1:]))
}
