package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	prio "github.com/priosdk/prio-go"
	"github.com/priosdk/prio-go/priotest"
)

// syncBuffer is a stream safe for the progress goroutine.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// result is one run of the command.
type result struct {
	code           int
	stdout, stderr string
}

func quickPolicy() prio.RetryPolicy {
	p := prio.DefaultRetryPolicy()
	p.BaseDelay, p.MaxDelay = time.Millisecond, 5*time.Millisecond
	p.AttemptTimeout, p.BookingAttemptTimeout = 2*time.Second, 2*time.Second
	// The sandbox processes nothing after its answer is lost but within
	// the request; a short horizon keeps "never booked" quick to decide.
	p.ProcessingHorizon = 300 * time.Millisecond
	return p
}

func sandboxOptions(url string) []prio.Option {
	return []prio.Option{prio.WithBaseURL(url), prio.WithCredentials(priotest.DefaultClientID, priotest.DefaultClientSecret),
		prio.WithDistributorID(priotest.DefaultDistributorID), prio.WithRetryPolicy(quickPolicy())}
}

// runWith runs the command in process with client options (nil: the
// environment).
func runWith(t *testing.T, opts []prio.Option, args ...string) result {
	t.Helper()
	var out, errOut syncBuffer
	a := &app{stdout: &out, stderr: &errOut, clientOptions: opts}
	code := a.run(t.Context(), args)
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

// prioAt runs the command against the sandbox s.
func prioAt(t *testing.T, s *priotest.Server, args ...string) result {
	t.Helper()
	return runWith(t, sandboxOptions(s.URL()), args...)
}

func sdk(t *testing.T, s *priotest.Server) *prio.Client {
	t.Helper()
	c, err := prio.NewClient(sandboxOptions(s.URL())...)
	require.NoError(t, err)
	return c
}

func book(t *testing.T, c *prio.Client, ext, product string) *prio.Order {
	t.Helper()
	o, err := c.Orders.Create(t.Context(), &prio.OrderRequest{OrderExternalReference: ext, OrderLanguage: "en",
		OrderBookings: []prio.BookingOption{{ProductId: prio.Ptr(product),
			ProductTypeDetails: &[]prio.ProductTypeDetail{{ProductTypeId: priotest.ProductTypeAdult, ProductTypeCount: 2}}}}})
	require.NoError(t, err)
	return o
}

func tomorrow(s *priotest.Server) string { return s.Now().AddDate(0, 0, 2).Format(time.DateOnly) }

// commandPaths lists every command of the tree, as argument lists.
func commandPaths(c *cobra.Command, prefix []string) [][]string {
	var out [][]string
	for _, sub := range c.Commands() {
		p := append(append([]string(nil), prefix...), sub.Name())
		out = append(out, p)
		out = append(out, commandPaths(sub, p)...)
	}
	return out
}

func TestHelpOfEverySubcommand(t *testing.T) {
	t.Parallel()
	paths := commandPaths((&app{}).rootCommand(), nil)
	require.GreaterOrEqual(t, len(paths), 15, "%v", paths)
	for _, p := range append(paths, []string{}) {
		t.Run(strings.Join(append([]string{"prio"}, p...), " "), func(t *testing.T) {
			t.Parallel()
			r := runWith(t, nil, append(p, "--help")...)
			assert.Equal(t, exitOK, r.code, "%s", r.stderr)
			assert.Contains(t, r.stdout, "Exit codes:")
			assert.Contains(t, r.stdout, "4  refused")
			if len(p) > 0 && p[0] == "sandbox" {
				assert.Contains(t, r.stdout, "-addr")
			} else {
				assert.Contains(t, r.stdout, "Usage:")
			}
		})
	}
	r := runWith(t, nil, "--help")
	assert.Contains(t, r.stdout, "PRIO_CLIENT_ID")
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	s := priotest.NewServer(t)
	for _, args := range [][]string{
		{"bogus"},
		{"orders", "bogus"},
		{"orders", "get"},
		{"orders", "get", "1", "2"},
		{"orders", "get", " "},
		{"orders", "find", "--nope", "x"},
		{"orders", "list", "--limit", "0"},
		{"orders", "list", "--from", "yesterday"},
		{"orders", "reconcile", "x", "--poll-interval", "0s"},
		{"orders", "reconcile", "x", "--poll-interval", "soon"},
		{"availability", priotest.ProductTimeSlot},
		{"availability", priotest.ProductTimeSlot, "--from", "2026-13-01"},
		{"products", "list", "extra"},
		{"reservations", "cancel"},
		{"sandbox", "-nope"},
		{"sandbox", "-idempotency", "sometimes"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			t.Parallel()
			r := prioAt(t, s, args...)
			assert.Equal(t, exitUsage, r.code, "stdout %s\nstderr %s", r.stdout, r.stderr)
			assert.Contains(t, r.stderr, "prio: ")
		})
	}
}

func TestNoCredentialsIsAUsageError(t *testing.T) {
	for _, k := range []string{"PRIO_CLIENT_ID", "PRIO_CLIENT_SECRET", "PRIO_DISTRIBUTOR_ID", "PRIO_BASE_URL", "PRIO_ENV", "PRIO_API_KEY"} {
		t.Setenv(k, "")
	}
	r := runWith(t, nil, "orders", "find", "x")
	assert.Equal(t, exitUsage, r.code)
	assert.Contains(t, r.stderr, "PRIO_CLIENT_ID")
	t.Setenv("PRIO_CLIENT_ID", "only-half")
	assert.Equal(t, exitUsage, runWith(t, nil, "orders", "find", "x").code)
}

// TestEnvironmentAndSandboxSubcommand starts `prio sandbox` in process and
// points `prio orders find` at it through PRIO_* variables, as the README
// shows.
func TestEnvironmentAndSandboxSubcommand(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	ready := make(chan *priotest.Server, 1)
	var logs syncBuffer
	done := make(chan int, 1)
	go func() {
		a := &app{stdout: &logs, stderr: &logs, sandboxReady: func(s *priotest.Server) { ready <- s }}
		done <- a.run(ctx, []string{"sandbox", "-addr", "127.0.0.1:0", "-seed", "3"})
	}()
	var s *priotest.Server
	select {
	case s = <-ready:
	case code := <-done:
		t.Fatalf("prio sandbox exited %d: %s", code, logs.String())
	}
	defer func() {
		cancel()
		assert.Equal(t, exitOK, <-done)
	}()
	assert.Contains(t, logs.String(), "prio-sandbox ready")
	book(t, sdk(t, s), "shop-order-1042", priotest.ProductOpen)

	t.Setenv("PRIO_BASE_URL", s.URL())
	t.Setenv("PRIO_CLIENT_ID", priotest.DefaultClientID)
	t.Setenv("PRIO_CLIENT_SECRET", priotest.DefaultClientSecret)
	t.Setenv("PRIO_DISTRIBUTOR_ID", priotest.DefaultDistributorID)
	t.Setenv("PRIO_ENV", "")
	t.Setenv("PRIO_API_KEY", "")
	r := runWith(t, nil, "orders", "find", "shop-order-1042")
	require.Equal(t, exitOK, r.code, "%s", r.stderr)
	assert.Contains(t, r.stdout, "shop-order-1042")
	assert.Contains(t, r.stdout, "ORDER_CONFIRMED")
	assert.Equal(t, exitNotFound, runWith(t, nil, "orders", "find", "shop-order-9999").code)
}

func TestProductsAndAvailability(t *testing.T) {
	t.Parallel()
	s := priotest.NewServer(t)

	r := prioAt(t, s, "products", "list")
	require.Equal(t, exitOK, r.code, "%s", r.stderr)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	require.Len(t, lines, 6, "a header and five products: %s", r.stdout)
	assert.Regexp(t, `^PRODUCT\s+ADMISSION\s+FROM PRICE\s+TITLE$`, lines[0])
	assert.Regexp(t, `^30002\s+TIME_SLOT\s+15\.00\s+Sandbox Tower timed entry$`, lines[2])

	r = prioAt(t, s, "--json", "products", "list")
	require.Equal(t, exitOK, r.code, "%s", r.stderr)
	var products []map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &products))
	assert.Len(t, products, 5)

	r = prioAt(t, s, "products", "get", priotest.ProductTimeSlot)
	require.Equal(t, exitOK, r.code, "%s", r.stderr)
	assert.Regexp(t, `ADMISSION\s+TIME_SLOT`, r.stdout)
	assert.Regexp(t, `101\s+ADULT\s+Adult\s+30\.00`, r.stdout)
	assert.Equal(t, exitNotFound, prioAt(t, s, "products", "get", "99999").code)

	day := tomorrow(s)
	r = prioAt(t, s, "availability", priotest.ProductTimeSlot, "--from", day)
	require.Equal(t, exitOK, r.code, "%s", r.stderr)
	lines = strings.Split(strings.TrimSpace(r.stdout), "\n")
	require.Len(t, lines, 5, "four slots a day: %s", r.stdout)
	assert.Regexp(t, `^30002-\d{8}-1000\s+\S+T10:00:00\+01:00\s+\S+T12:00:00\+01:00\s+10\s+10$`, lines[1])

	r = prioAt(t, s, "--json", "availability", priotest.ProductTimeDate, "--from", day, "--to", s.Now().AddDate(0, 0, 4).Format(time.DateOnly))
	require.Equal(t, exitOK, r.code, "%s", r.stderr)
	var slots []map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &slots))
	assert.Len(t, slots, 3)
	r = prioAt(t, s, "availability", priotest.ProductTimeSlot, "--from", day, "--min-open", "11")
	assert.Equal(t, 1, len(strings.Split(strings.TrimSpace(r.stdout), "\n")), "only the header: %s", r.stdout)
	assert.Equal(t, exitNotFound, prioAt(t, s, "availability", "99999", "--from", day).code)
}

func TestOrders(t *testing.T) {
	t.Parallel()
	s := priotest.NewServer(t)
	c := sdk(t, s)
	o := book(t, c, "shop-order-1042", priotest.ProductOpen)
	ref := *o.OrderReference
	book(t, c, "shop-order-1043", priotest.ProductOpen)

	r := prioAt(t, s, "orders", "find", "shop-order-1042")
	require.Equal(t, exitOK, r.code, "%s", r.stderr)
	assert.Regexp(t, `ORDER\s+`+ref, r.stdout)
	assert.Regexp(t, `STATUS\s+ORDER_CONFIRMED`, r.stdout)
	assert.Regexp(t, `TOTAL\s+50\.00 EUR`, r.stdout)
	assert.Regexp(t, `\d+\s+30001\s+BOOKING_CONFIRMED\s+2`, r.stdout, "one booking of two tickets")

	r = prioAt(t, s, "--json", "orders", "get", ref)
	require.Equal(t, exitOK, r.code, "%s", r.stderr)
	var got map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got))
	assert.Equal(t, "shop-order-1042", got["order_external_reference"])

	r = prioAt(t, s, "orders", "list")
	require.Equal(t, exitOK, r.code, "%s", r.stderr)
	assert.Len(t, strings.Split(strings.TrimSpace(r.stdout), "\n"), 3)
	assert.Regexp(t, `shop-order-1043[\s\S]*shop-order-1042`, r.stdout, "newest first")
	r = prioAt(t, s, "orders", "list", "--limit", "1")
	assert.Len(t, strings.Split(strings.TrimSpace(r.stdout), "\n"), 2)

	r = prioAt(t, s, "orders", "voucher", ref)
	require.Equal(t, exitOK, r.code, "%s", r.stderr)
	assert.Regexp(t, `VOUCHER\s+http://\S+/_sandbox/vouchers/`+ref+`\.pdf`, r.stdout)
	file := filepath.Join(t.TempDir(), "v.pdf")
	r = prioAt(t, s, "orders", "voucher", ref, "--pdf", file)
	require.Equal(t, exitOK, r.code, "%s", r.stderr)
	pdf, err := os.ReadFile(file)
	require.NoError(t, err)
	assert.True(t, bytes.HasPrefix(pdf, []byte("%PDF-")))

	r = prioAt(t, s, "orders", "cancel", ref, "--reason", "guest called")
	require.Equal(t, exitOK, r.code, "%s", r.stderr)
	assert.Regexp(t, `STATUS\s+ORDER_CANCELLED`, r.stdout)
	r = prioAt(t, s, "orders", "list", "--status", "ORDER_CANCELLED")
	assert.Contains(t, r.stdout, ref)
	assert.NotContains(t, r.stdout, "shop-order-1043")

	r = prioAt(t, s, "orders", "voucher", ref)
	assert.Equal(t, exitRefused, r.code, "a cancelled order has no voucher: %s", r.stderr)
	assert.Contains(t, r.stderr, "ORDER_CANCELLED")
	assert.Equal(t, exitNotFound, prioAt(t, s, "orders", "get", "00000000").code)
	assert.Equal(t, exitNotFound, prioAt(t, s, "orders", "find", "no-such-order").code)
	assert.Equal(t, exitNotFound, prioAt(t, s, "orders", "cancel", "00000000").code)
}

func TestReservations(t *testing.T) {
	t.Parallel()
	s := priotest.NewServer(t)
	c := sdk(t, s)
	ctx := t.Context()
	line := func(ext string) prio.ReservationLine {
		return prio.ReservationLine{BookingExternalReference: ext, ProductId: priotest.ProductOpen,
			ProductTypeDetails: []prio.ProductTypeDetail{{ProductTypeId: priotest.ProductTypeAdult, ProductTypeCount: 1}}}
	}
	res, err := c.Reservations.Create(ctx, &prio.Reservation{ReservationExternalReference: "cart-7",
		ReservationDetails: []prio.ReservationLine{line("cart-7-1"), line("cart-7-2")}})
	require.NoError(t, err)
	ref, first := *res.ReservationReference, *res.ReservationDetails[0].BookingReservationReference

	r := prioAt(t, s, "reservations", "get", ref)
	require.Equal(t, exitOK, r.code, "%s", r.stderr)
	assert.Regexp(t, `RESERVATION\s+`+ref, r.stdout)
	assert.Regexp(t, `TOTAL\s+50\.00 EUR`, r.stdout)

	r = prioAt(t, s, "reservations", "cancel", ref, "--line", first)
	require.Equal(t, exitOK, r.code, "%s", r.stderr)
	assert.Regexp(t, first+`\s+30001\s+BOOKING_RESERVATION_CANCELLED`, r.stdout)
	assert.Regexp(t, `TOTAL\s+25\.00 EUR`, r.stdout)

	r = prioAt(t, s, "--json", "reservations", "get", ref)
	var got map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got))
	assert.Equal(t, "cart-7", got["reservation_external_reference"])

	confirmed, err := c.Reservations.Create(ctx, &prio.Reservation{ReservationExternalReference: "cart-8", ReservationDetails: []prio.ReservationLine{line("cart-8-1")}})
	require.NoError(t, err)
	_, err = c.Reservations.Confirm(ctx, *confirmed.ReservationReference, &prio.OrderRequest{OrderExternalReference: "cart-8-order", OrderLanguage: "en"})
	require.NoError(t, err)
	r = prioAt(t, s, "reservations", "cancel", *confirmed.ReservationReference)
	assert.Equal(t, exitRefused, r.code, "a confirmed reservation cannot be cancelled: %s", r.stderr)
	assert.Equal(t, exitNotFound, prioAt(t, s, "reservations", "get", "70000000").code)
}

// TestReconcile settles an order whose Create met a dropped connection
// while its slow supplier kept it pending, and shows the exit codes of a
// reconcile that finds nothing and of one that runs out of time.
func TestReconcile(t *testing.T) {
	t.Parallel()
	s := priotest.NewServer(t, priotest.WithSlowSupplierDelay(400*time.Millisecond),
		priotest.WithFaults(priotest.Sequence("createOrder", priotest.FaultDropAfter)))
	c := sdk(t, s)
	_, err := c.Orders.Create(t.Context(), &prio.OrderRequest{OrderExternalReference: "shop-order-77", OrderLanguage: "en",
		OrderBookings: []prio.BookingOption{{ProductId: prio.Ptr(priotest.ProductSlow),
			ProductTypeDetails: &[]prio.ProductTypeDetail{{ProductTypeId: priotest.ProductTypeAdult, ProductTypeCount: 1}}}}})
	if err != nil {
		outcome, _ := prio.OutcomeOf(err)
		require.Equal(t, prio.OutcomeUnknown, outcome, "%v", err)
	}
	require.Equal(t, 1, s.OrdersFor("shop-order-77"), "the dropped request was processed")
	require.Positive(t, s.Stats().FaultsInjected)

	r := prioAt(t, s, "orders", "reconcile", "shop-order-77", "--poll-interval", "50ms")
	require.Equal(t, exitOK, r.code, "%s", r.stderr)
	assert.Regexp(t, `STATUS\s+ORDER_CONFIRMED`, r.stdout)
	assert.Regexp(t, `\s+30004\s+BOOKING_CONFIRMED\s+1`, r.stdout)
	assert.Contains(t, r.stderr, "reconciling shop-order-77: waiting for the order to settle (polling every 50ms)")

	r = prioAt(t, s, "orders", "reconcile", "never-booked", "--poll-interval", "20ms", "--give-up-after", "100ms")
	assert.Equal(t, exitNotFound, r.code, "%s", r.stderr)

	book(t, c, "shop-order-78", priotest.ProductSlow)
	r = prioAt(t, s, "orders", "reconcile", "shop-order-78", "--poll-interval", "20ms", "--timeout", "100ms")
	assert.Equal(t, exitUnknown, r.code, "still pending when the wait ends: %s", r.stderr)
}

func TestOtherFailures(t *testing.T) {
	t.Parallel()
	s, err := priotest.Start("")
	require.NoError(t, err)
	url := s.URL()
	s.Close()
	r := runWith(t, sandboxOptions(url), "products", "list")
	assert.Equal(t, exitFailure, r.code, "no server: %s", r.stderr)
}

// TestCLILibraryStaysOutOfTheSDK fails when the SDK, the sandbox or the
// batch runner would pull the command-line library into a program.
func TestCLILibraryStaysOutOfTheSDK(t *testing.T) {
	t.Parallel()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	for _, pkg := range []string{"github.com/priosdk/prio-go", "github.com/priosdk/prio-go/priotest", "github.com/priosdk/prio-go/batch"} {
		out, err := exec.CommandContext(t.Context(), goBin, "list", "-deps", pkg).CombinedOutput()
		require.NoError(t, err, "%s", out)
		deps := string(out)
		require.Contains(t, deps, pkg+"\n")
		for _, cli := range []string{"github.com/spf13/cobra", "github.com/spf13/pflag"} {
			assert.NotContains(t, deps, cli, "%s depends on %s", pkg, cli)
		}
	}
}
