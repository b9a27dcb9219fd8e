package main

import (
	"errors"
	"fmt"
	"slices"

	"github.com/spf13/cobra"

	"github.com/priosdk/prio-go/internal/sandboxcmd"
)

func (a *app) sandboxCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "sandbox [-addr 127.0.0.1:8080] [-faults none|flaky|hostile|JSON] [-idempotency both|header|reference|none] ...",
		Short: "Run the priotest sandbox, a stateful fake of the Prio API, until interrupted",
		Long: "Runs the priotest sandbox on -addr (default 127.0.0.1:8080), like cmd/prio-sandbox, and logs its\n" +
			"base URL. Point the other subcommands at it with PRIO_BASE_URL and the sandbox credentials\n" +
			"(PRIO_CLIENT_ID=sandbox-client PRIO_CLIENT_SECRET=sandbox-secret PRIO_DISTRIBUTOR_ID=501).\n" +
			"Its flags are those of prio-sandbox; 'prio sandbox -help' lists them.",
		// The sandbox parses its own flags, shared with cmd/prio-sandbox.
		DisableFlagParsing: true,
		RunE: a.do(func(cmd *cobra.Command, argv []string) error {
			if slices.ContainsFunc(argv, func(s string) bool { return s == "-h" || s == "-help" || s == "--help" }) {
				fmt.Fprintf(a.stdout, "%s\n\n", cmd.Long)
				_ = sandboxcmd.Serve(cmd.Context(), "prio sandbox", []string{"-h"}, a.stdout, nil)
				return nil
			}
			err := sandboxcmd.Serve(cmd.Context(), "prio sandbox", argv, a.stderr, a.sandboxReady)
			var ue *sandboxcmd.UsageError
			if errors.As(err, &ue) {
				return &usageError{err}
			}
			return err
		}),
	}
}
