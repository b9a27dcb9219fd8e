package priotest

import (
	"fmt"
	"log/slog"
	"time"
)

// IdempotencyMode selects how the sandbox deduplicates repeated POSTs.
type IdempotencyMode string

// The idempotency modes.
const (
	// IdempotencyHeader replays the stored answer for a repeated
	// Idempotency-Key with the same request; the same key with another
	// request, or while the first is still running, gets 409.
	IdempotencyHeader IdempotencyMode = "header"
	// IdempotencyReference answers a Create Order whose
	// order_external_reference already has an order with that order.
	IdempotencyReference IdempotencyMode = "reference"
	// IdempotencyBoth applies the header rule, then the reference rule.
	IdempotencyBoth IdempotencyMode = "both"
	// IdempotencyNone deduplicates nothing: every POST acts again. It proves
	// a client safe against a server that offers no help.
	IdempotencyNone IdempotencyMode = "none"
)

// ParseIdempotencyMode reads "header", "reference", "both" or "none".
func ParseIdempotencyMode(s string) (IdempotencyMode, error) {
	switch m := IdempotencyMode(s); m {
	case IdempotencyHeader, IdempotencyReference, IdempotencyBoth, IdempotencyNone:
		return m, nil
	}
	return "", fmt.Errorf("priotest: unknown idempotency mode %q (want header, reference, both or none)", s)
}

func (m IdempotencyMode) byHeader() bool    { return m == IdempotencyHeader || m == IdempotencyBoth }
func (m IdempotencyMode) byReference() bool { return m == IdempotencyReference || m == IdempotencyBoth }

// Defaults of the options.
const (
	DefaultClientID          = "sandbox-client"
	DefaultClientSecret      = "sandbox-secret"
	DefaultDistributorID     = "501"
	DefaultTokenTTL          = time.Hour
	DefaultHoldTime          = 15 * time.Minute
	DefaultSlowSupplierDelay = 30 * time.Second
	DefaultClientErrorLimit  = 60
	DefaultRequestLimit      = 1000
)

type config struct {
	seed             int64
	clientID         string
	clientSecret     string
	distributorID    string
	tokenTTL         time.Duration
	holdTime         time.Duration
	slowDelay        time.Duration
	idempotency      IdempotencyMode
	faults           Profile
	clientErrorLimit int
	requestLimit     int
	orderCacheLag    time.Duration
	logger           *slog.Logger
	now              func() time.Time
}

func defaultConfig() config {
	return config{
		seed:             1,
		clientID:         DefaultClientID,
		clientSecret:     DefaultClientSecret,
		distributorID:    DefaultDistributorID,
		tokenTTL:         DefaultTokenTTL,
		holdTime:         DefaultHoldTime,
		slowDelay:        DefaultSlowSupplierDelay,
		idempotency:      IdempotencyBoth,
		faults:           Profile{Name: "none"},
		clientErrorLimit: DefaultClientErrorLimit,
		requestLimit:     DefaultRequestLimit,
		logger:           slog.New(slog.DiscardHandler),
		now:              time.Now,
	}
}

// Option configures a Server.
type Option func(*config)

// WithSeed seeds what the sandbox draws: voucher codes, webhook and
// notification ids, and fault draws (unless the profile has its own seed).
// Default 1.
func WithSeed(seed int64) Option { return func(c *config) { c.seed = seed } }

// WithCredentials sets the only client id and secret the token endpoint
// accepts (default "sandbox-client" and "sandbox-secret").
func WithCredentials(clientID, clientSecret string) Option {
	return func(c *config) { c.clientID, c.clientSecret = clientID, clientSecret }
}

// WithDistributorID sets the distributor the credentials belong to (default
// "501"). Requests naming another distributor are refused with 403.
func WithDistributorID(id string) Option { return func(c *config) { c.distributorID = id } }

// WithTokenTTL sets how long an access token lives (default 1h).
func WithTokenTTL(d time.Duration) Option { return func(c *config) { c.tokenTTL = d } }

// WithHoldTime sets how long a reservation holds its capacity (default 15m).
func WithHoldTime(d time.Duration) Option { return func(c *config) { c.holdTime = d } }

// WithSlowSupplierDelay sets how long orders of ProductSlow stay
// ORDER_PENDING with bookings in BOOKING_PROCESSING_CONFIRMATION before they
// confirm (default 30s).
func WithSlowSupplierDelay(d time.Duration) Option { return func(c *config) { c.slowDelay = d } }

// WithIdempotency selects the server-side deduplication (default
// IdempotencyBoth).
func WithIdempotency(m IdempotencyMode) Option { return func(c *config) { c.idempotency = m } }

// WithFaults sets the fault profile the server starts with.
func WithFaults(p Profile) Option { return func(c *config) { c.faults = p } }

// WithClientErrorLimit sets how many 4XX answers one client may get within a
// minute; one more bans it with 429 for a minute (default 60, as Prio; 0
// turns the ban off).
func WithClientErrorLimit(n int) Option { return func(c *config) { c.clientErrorLimit = n } }

// WithRequestLimit sets how many requests one client may send within a
// minute before it gets 429 (default 1000, as Prio; 0 turns it off).
func WithRequestLimit(n int) Option { return func(c *config) { c.requestLimit = n } }

// WithOrderCacheLag makes order reads (List Orders, Get Order) served from
// Prio's cache lag d behind the live orders, as Prio's caching server does:
// such a read sees every order as it was d ago, so an order committed less
// than d ago is not listed and Get Order answers 404 for it, and a change
// (cancellation, update, slow-supplier confirmation) made less than d ago
// is not visible yet. A read with cache=false (or "0") always sees the live
// state. Default 0: no lag.
func WithOrderCacheLag(d time.Duration) Option { return func(c *config) { c.orderCacheLag = d } }

// WithLogger makes the server log each request and each injected fault at
// debug level. By default it logs nothing.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.logger = l
		}
	}
}

// WithClock replaces time.Now as the sandbox clock: token and hold expiry,
// slow confirmations, the rate-limit windows and every timestamp read it.
func WithClock(now func() time.Time) Option {
	return func(c *config) {
		if now != nil {
			c.now = now
		}
	}
}

func (c config) validate() error {
	if c.clientID == "" || c.clientSecret == "" {
		return fmt.Errorf("priotest: empty client id or secret")
	}
	if c.distributorID == "" {
		return fmt.Errorf("priotest: empty distributor id")
	}
	if c.tokenTTL <= 0 || c.holdTime <= 0 || c.slowDelay < 0 {
		return fmt.Errorf("priotest: token TTL and hold time must be positive, the slow delay not negative")
	}
	if _, err := ParseIdempotencyMode(string(c.idempotency)); err != nil {
		return err
	}
	if c.clientErrorLimit < 0 || c.requestLimit < 0 {
		return fmt.Errorf("priotest: negative limit")
	}
	if c.orderCacheLag < 0 {
		return fmt.Errorf("priotest: negative order cache lag")
	}
	return c.faults.validate()
}
