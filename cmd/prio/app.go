package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	prio "github.com/priosdk/prio-go"
	"github.com/priosdk/prio-go/priotest"
)

// Exit codes of the command.
const (
	exitOK       = 0
	exitFailure  = 1
	exitUsage    = 2
	exitNotFound = 3
	exitRefused  = 4
	exitUnknown  = 5
)

const exitCodesHelp = `Exit codes:
  0  ok
  1  any other failure (network, server error, malformed answer)
  2  usage or configuration error (bad arguments or flags, no credentials)
  3  not found (the order, reservation or product does not exist)
  4  refused (Prio refused the request, or the client did before sending)
  5  unknown outcome (a change that may or may not have happened; reconcile)`

const envHelp = `Credentials come from the environment, as for prio.FromEnv:
  PRIO_CLIENT_ID, PRIO_CLIENT_SECRET  OAuth client credentials (required)
  PRIO_DISTRIBUTOR_ID                 the distributor to act for (required)
  PRIO_ENV or PRIO_BASE_URL           production, sandbox, staging; or a base URL
                                      such as http://127.0.0.1:8080/v3.8/distributor
  PRIO_API_KEY                        API key, when your account has one`

// app is one run of the command: its streams and how it makes clients.
type app struct {
	stdout, stderr io.Writer
	stderrIsTerm   bool // progress lines are redrawn in place

	// clientOptions, when not nil, replace the environment: tests point
	// the command at a sandbox with them.
	clientOptions []prio.Option
	// sandboxReady, when not nil, is told about the server `prio sandbox`
	// started.
	sandboxReady func(*priotest.Server)

	jsonOut bool
}

// usageError is a mistake in the command line or the configuration.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// runError is a failure of the work a subcommand did, as opposed to an
// error cobra found in the command line.
type runError struct{ err error }

func (e *runError) Error() string { return e.err.Error() }
func (e *runError) Unwrap() error { return e.err }

// exitCode maps an error of a run to the command's exit code.
func exitCode(err error) int {
	var ue *usageError
	var re *runError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue), !errors.As(err, &re):
		// Errors cobra returns itself are about the command line.
		return exitUsage
	case errors.Is(err, prio.ErrNotFound):
		return exitNotFound
	case errors.Is(err, prio.ErrOutcomeUnknown):
		return exitUnknown
	}
	if o, _ := prio.OutcomeOf(err); o == prio.OutcomeRefused {
		return exitRefused
	}
	return exitFailure
}

// run executes args and returns the exit code, having printed any error.
func (a *app) run(ctx context.Context, args []string) int {
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	err := root.ExecuteContext(ctx)
	code := exitCode(err)
	if err != nil {
		msg := err.Error()
		if !strings.HasPrefix(msg, "prio: ") { // the SDK's errors say it already
			msg = "prio: " + msg
		}
		fmt.Fprintln(a.stderr, msg)
		if code == exitUsage {
			fmt.Fprintln(a.stderr, "Run 'prio --help' for usage.")
		}
	}
	return code
}

// do wraps a subcommand's work so that its errors are told apart from
// command-line errors.
func (a *app) do(f func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		err := f(cmd, args)
		var ue *usageError
		if err == nil || errors.As(err, &ue) {
			return err
		}
		return &runError{err}
	}
}

// args checks the positional arguments: exactly the names given, none
// empty.
func args(names ...string) cobra.PositionalArgs {
	return func(_ *cobra.Command, got []string) error {
		if len(got) != len(names) {
			return usagef("want %d argument(s) (%s), got %d", len(names), strings.Join(names, " "), len(got))
		}
		for i, g := range got {
			if strings.TrimSpace(g) == "" {
				return usagef("%s is empty", names[i])
			}
		}
		return nil
	}
}

// client builds an SDK client from the environment (or the test's
// options), with extra options last.
func (a *app) client(extra ...prio.Option) (*prio.Client, error) {
	opts := a.clientOptions
	if opts == nil {
		env, ok, err := prio.FromEnv()
		if err != nil {
			return nil, &usageError{err}
		}
		if !ok {
			return nil, usagef("no credentials: set PRIO_CLIENT_ID and PRIO_CLIENT_SECRET (see 'prio --help')")
		}
		opts = env
	}
	c, err := prio.NewClient(append(append([]prio.Option(nil), opts...), extra...)...)
	if err != nil {
		return nil, &usageError{err}
	}
	return c, nil
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "prio",
		Short: "Operate a Prio Distributor API integration from the command line",
		Long: "prio reads products and availability, finds, lists, cancels and reconciles orders,\n" +
			"reads and cancels reservations, and runs the sandbox. It is built on the prio-go SDK.\n\n" +
			envHelp + "\n\nOutput is a table; --json prints the API's objects as JSON.\n\n" + exitCodesHelp,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.PersistentFlags().BoolVar(&a.jsonOut, "json", false, "print JSON instead of a table")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	root.SetHelpTemplate(root.HelpTemplate())
	root.AddCommand(a.productsCommand(), a.availabilityCommand(), a.ordersCommand(), a.reservationsCommand(), a.sandboxCommand())
	root.CompletionOptions.DisableDefaultCmd = true
	groups(root)
	for _, c := range root.Commands() {
		addExitCodes(c)
	}
	return root
}

// groups makes every command that only holds subcommands print its help
// when called alone, and refuse an unknown subcommand as a usage error
// (cobra would print the help and succeed).
func groups(c *cobra.Command) {
	if c.HasSubCommands() && c.RunE == nil {
		c.Args = cobra.ArbitraryArgs
		c.RunE = func(cmd *cobra.Command, argv []string) error {
			if len(argv) > 0 {
				return usagef("unknown command %q for %q", argv[0], cmd.CommandPath())
			}
			return cmd.Help()
		}
	}
	for _, sub := range c.Commands() {
		groups(sub)
	}
}

// addExitCodes appends the exit codes to the help of c and its children.
func addExitCodes(c *cobra.Command) {
	if c.Long == "" {
		c.Long = c.Short + "."
	}
	c.Long += "\n\n" + exitCodesHelp
	for _, sub := range c.Commands() {
		addExitCodes(sub)
	}
}
