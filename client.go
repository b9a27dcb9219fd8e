package prio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/priosdk/prio-go/generated"
)

// Environment names one of Prio's hosted environments.
type Environment string

// Prio's environments. Staging is where integrations are certified.
const (
	Production Environment = "distributor-api"
	Sandbox    Environment = "sandbox-distributor-api"
	Staging    Environment = "staging-distributor-api"
)

// BaseURL returns the environment's v3.8 distributor base URL.
func (e Environment) BaseURL() string {
	return "https://" + string(e) + ".prioticket.com/v3.8/distributor"
}

// ErrInvalidConfig is matched by every error NewClient returns for a bad or
// missing option. A call's invalid arguments match ErrInvalidArgument
// instead, never this.
var ErrInvalidConfig = errors.New("prio: invalid configuration")

// ErrInvalidArgument is matched by errors for a call's invalid arguments,
// found before anything is sent.
var ErrInvalidArgument = errors.New("prio: invalid argument")

// Client talks to the Prio Distributor API. It is safe for concurrent use;
// create one per set of credentials and share it.
type Client struct {
	Orders       *OrdersService
	Reservations *ReservationsService
	Products     *ProductsService
	Webhooks     *WebhooksService

	cfg     config
	raw     *generated.Client              // hand-written services call this
	orders  *url.URL                       // POST /orders, resolved once (see newJSONPost)
	api     *generated.ClientWithResponses // Client.API
	doer    *doer
	keys    *keyGuard
	auth    *authTransport
	red     redactor
	waiters *waiters
}

// secret holds a credential. It is a pointer so that printing a config or a
// Client with %+v shows an address, never the value.
type secret struct{ p *string }

func newSecret(v string) secret { return secret{&v} }

func (s secret) value() string {
	if s.p == nil {
		return ""
	}
	return *s.p
}

// String hides the value.
func (s secret) String() string { return redacted }

// GoString hides the value.
func (s secret) GoString() string { return redacted }

type config struct {
	baseURL        string
	clientID       string
	clientSecret   secret
	apiKey         secret
	distributorID  string
	scopes         []string
	appHeaders     http.Header
	httpClient     *http.Client
	logger         *slog.Logger
	policy         RetryPolicy
	maxConcurrency int
	reconcile      ReconcileSchedule
	now            func() time.Time
	telemetry      telemetryConfig
}

// Option configures a Client.
type Option func(*config) error

// WithTracerProvider sets where the client's spans go (default: the
// global provider as it is when NewClient runs; none set, no spans and no
// cost). docs/TELEMETRY.md lists the spans and their attributes.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) error {
		c.telemetry.tracerProvider = tp
		return nil
	}
}

// WithMeterProvider sets where the client's metrics go (default: the
// global provider as it is when NewClient runs; none set, no metrics and
// no cost). docs/TELEMETRY.md lists the instruments.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) error {
		c.telemetry.meterProvider = mp
		return nil
	}
}

// WithEnvironment selects one of Prio's environments (default Sandbox).
func WithEnvironment(e Environment) Option {
	return func(c *config) error {
		switch e {
		case Production, Sandbox, Staging:
		default:
			return fmt.Errorf("%w: unknown environment %q", ErrInvalidConfig, string(e))
		}
		c.baseURL = e.BaseURL()
		return nil
	}
}

// apiRoot is the path every base URL of this API version ends in.
const apiRoot = "/v3.8/distributor"

// WithBaseURL sets any base URL, such as a proxy's. It must be absolute
// http or https and end in the API root, /v3.8/distributor (one trailing
// slash is allowed): NewClient refuses anything else, so a base URL missing
// the root fails at construction rather than as a 404 at the first call.
// For a priotest server, WithServer sets the URL and the credentials at
// once.
func WithBaseURL(u string) Option {
	return func(c *config) error {
		p, err := url.Parse(u)
		if err != nil || p.Scheme == "" || p.Host == "" {
			return fmt.Errorf("%w: base URL %q is not absolute", ErrInvalidConfig, u)
		}
		if p.Scheme != "https" && p.Scheme != "http" {
			return fmt.Errorf("%w: base URL scheme %q", ErrInvalidConfig, p.Scheme)
		}
		if p.RawQuery != "" || p.User != nil || p.Fragment != "" {
			return fmt.Errorf("%w: base URL must not carry a query, a fragment or credentials", ErrInvalidConfig)
		}
		p.Path = strings.TrimSuffix(p.Path, "/")
		p.RawPath = strings.TrimSuffix(p.RawPath, "/")
		if !strings.HasSuffix(p.Path, apiRoot) {
			return fmt.Errorf("%w: base URL %q must end in the API root %s, as in %s",
				ErrInvalidConfig, u, apiRoot, Sandbox.BaseURL())
		}
		c.baseURL = p.String()
		return nil
	}
}

// Server is an API server a client can be pointed at with one option: where
// it serves the API, the credentials it accepts and the distributor they
// belong to. *priotest.Server implements it.
type Server interface {
	URL() string
	Credentials() (clientID, clientSecret string)
	DistributorID() string
}

// WithServer points the client at s: its URL as the base URL (checked as by
// WithBaseURL), its credentials and its distributor id. With a priotest
// server, it is the only option a test or an example needs:
//
//	client, err := prio.NewClient(prio.WithServer(sandbox))
func WithServer(s Server) Option {
	return func(c *config) error {
		if s == nil {
			return fmt.Errorf("%w: nil server", ErrInvalidConfig)
		}
		id, secret := s.Credentials()
		for _, o := range []Option{WithBaseURL(s.URL()), WithCredentials(id, secret), WithDistributorID(s.DistributorID())} {
			if err := o(c); err != nil {
				return err
			}
		}
		return nil
	}
}

// WithCredentials sets the OAuth2 client id and secret Prio issued.
func WithCredentials(clientID, clientSecret string) Option {
	return func(c *config) error {
		if clientID == "" || clientSecret == "" {
			return fmt.Errorf("%w: client id and secret are both required", ErrInvalidConfig)
		}
		c.clientID = clientID
		c.clientSecret = newSecret(clientSecret)
		return nil
	}
}

// WithDistributorID sets the distributor id used in bookings and in derived
// idempotency keys.
func WithDistributorID(id string) Option {
	return func(c *config) error {
		if strings.TrimSpace(id) == "" {
			return fmt.Errorf("%w: empty distributor id", ErrInvalidConfig)
		}
		c.distributorID = id
		return nil
	}
}

// WithAPIKey sets the optional API key sent as the "key" query parameter.
// It is added below the retry layer, so it never appears in an error string.
func WithAPIKey(key string) Option {
	return func(c *config) error {
		c.apiKey = newSecret(key)
		return nil
	}
}

// WithScopes sets the scopes asked for with every token (default: none, so
// Prio grants the account's scopes).
func WithScopes(scopes ...string) Option {
	return func(c *config) error {
		c.scopes = append([]string(nil), scopes...)
		return nil
	}
}

// WithAppHeader sets one of Prio's application-info headers, sent on every
// request: App-Name, App-Version, App-Flavor, App-Package-Name,
// App-Build-Number, App-Platform, App-Machine-ID, or any other App-* name.
// App-Reference and App-Attempt are set by the client itself.
func WithAppHeader(name, value string) Option {
	return func(c *config) error {
		cn := http.CanonicalHeaderKey(name)
		if !strings.HasPrefix(cn, "App-") || cn == "App-Reference" || cn == "App-Attempt" {
			return fmt.Errorf("%w: %q is not a settable App-* header", ErrInvalidConfig, name)
		}
		if c.appHeaders == nil {
			c.appHeaders = http.Header{}
		}
		c.appHeaders.Set(cn, value)
		return nil
	}
}

// WithHTTPClient sets the *http.Client whose Transport carries the requests.
// Its Timeout is ignored (each send has its own timeout from the
// RetryPolicy, and the caller's context bounds the whole call), and so is
// its CheckRedirect (redirects to another host are refused).
func WithHTTPClient(hc *http.Client) Option {
	return func(c *config) error {
		if hc == nil {
			return fmt.Errorf("%w: nil *http.Client", ErrInvalidConfig)
		}
		c.httpClient = hc
		return nil
	}
}

// WithLogger turns on logging through l. Nothing is logged without it.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		c.logger = l
		return nil
	}
}

// WithRetryPolicy replaces the client-wide retry policy.
func WithRetryPolicy(p RetryPolicy) Option {
	return func(c *config) error {
		if err := p.validate(); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalidConfig, err)
		}
		c.policy = p
		return nil
	}
}

// WithMaxConcurrency tells the client how many calls may run at once (for
// example the batch runner's workers), so it keeps that many idle
// connections per host. Default 64.
func WithMaxConcurrency(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("%w: max concurrency %d", ErrInvalidConfig, n)
		}
		c.maxConcurrency = n
		return nil
	}
}

// WithReconcileSchedule replaces the polling schedule of Orders.Reconcile.
func WithReconcileSchedule(s ReconcileSchedule) Option {
	return func(c *config) error {
		if s.Interval <= 0 {
			return fmt.Errorf("%w: reconcile interval must be positive", ErrInvalidConfig)
		}
		c.reconcile = s
		return nil
	}
}

// FromEnv builds options from the environment: PRIO_CLIENT_ID,
// PRIO_CLIENT_SECRET, PRIO_DISTRIBUTOR_ID, PRIO_ENV (production, sandbox or
// staging) or PRIO_BASE_URL, and PRIO_API_KEY. ok is false when neither
// PRIO_CLIENT_ID nor PRIO_CLIENT_SECRET is set, so a program can fall back
// to the embedded sandbox.
func FromEnv() (opts []Option, ok bool, err error) {
	id, secretValue := os.Getenv("PRIO_CLIENT_ID"), os.Getenv("PRIO_CLIENT_SECRET")
	if id == "" && secretValue == "" {
		return nil, false, nil
	}
	if id == "" || secretValue == "" {
		return nil, true, fmt.Errorf("%w: PRIO_CLIENT_ID and PRIO_CLIENT_SECRET must both be set", ErrInvalidConfig)
	}
	opts = append(opts, WithCredentials(id, secretValue))
	if d := os.Getenv("PRIO_DISTRIBUTOR_ID"); d != "" {
		opts = append(opts, WithDistributorID(d))
	}
	base, env := os.Getenv("PRIO_BASE_URL"), os.Getenv("PRIO_ENV")
	switch {
	case base != "" && env != "":
		return nil, true, fmt.Errorf("%w: set PRIO_ENV or PRIO_BASE_URL, not both", ErrInvalidConfig)
	case base != "":
		opts = append(opts, WithBaseURL(base))
	case env != "":
		e, ok := map[string]Environment{"production": Production, "sandbox": Sandbox, "staging": Staging}[strings.ToLower(env)]
		if !ok {
			return nil, true, fmt.Errorf("%w: PRIO_ENV=%q (want production, sandbox or staging)", ErrInvalidConfig, env)
		}
		opts = append(opts, WithEnvironment(e))
	}
	if k := os.Getenv("PRIO_API_KEY"); k != "" {
		opts = append(opts, WithAPIKey(k))
	}
	return opts, true, nil
}

// NewClient builds a Client. Credentials and a distributor id are required;
// everything else has a default documented on its option.
func NewClient(opts ...Option) (*Client, error) {
	cfg := config{
		baseURL:        Sandbox.BaseURL(),
		policy:         DefaultRetryPolicy(),
		maxConcurrency: 64,
		reconcile:      DefaultReconcileSchedule(),
		now:            time.Now,
	}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if cfg.clientID == "" {
		return nil, fmt.Errorf("%w: credentials are required (WithCredentials or FromEnv)", ErrInvalidConfig)
	}
	if cfg.distributorID == "" {
		return nil, fmt.Errorf("%w: a distributor id is required (WithDistributorID)", ErrInvalidConfig)
	}

	c := &Client{cfg: cfg, waiters: newWaiters()}
	c.red = redactor{values: &secretSet{}}
	c.red.values.addFixed(cfg.clientSecret.value())
	c.red.values.addFixed(cfg.apiKey.value())

	var base http.RoundTripper
	if cfg.httpClient != nil && cfg.httpClient.Transport != nil {
		base = cfg.httpClient.Transport
	} else {
		base = newBaseTransport(cfg.maxConcurrency)
	}
	counted := countSends(base)
	baseURL, _ := url.Parse(cfg.baseURL)
	c.auth = newAuthTransport(counted, baseURL, &cfg, c.red.values)
	c.doer = newDoer(c.auth, cfg.policy, cfg.logger, c.red)
	c.auth.fetcher.guard = c.doer.limits.guard // the token endpoint's 4XX count too
	c.doer.tel = newTelemetry(cfg.telemetry, c.doer, clientAttributes(baseURL, cfg.distributorID))
	c.auth.fetcher.tel = c.doer.tel
	c.keys = newKeyGuard(100_000, 24*time.Hour)

	var err error
	c.raw, err = generated.NewClient(cfg.baseURL, generated.WithHTTPClient(c.doer),
		generated.WithRequestEditorFn(c.stampHeaders))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	if c.orders, err = resolveOperation(c.raw.Server, "/orders"); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	c.api, err = generated.NewClientWithResponses(cfg.baseURL, generated.WithHTTPClient(c.doer),
		generated.WithRequestEditorFn(c.stampHeaders), generated.WithRequestEditorFn(randomKeyForPOST))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	c.Orders = &OrdersService{c: c}
	c.Reservations = &ReservationsService{c: c}
	c.Products = &ProductsService{c: c}
	c.Webhooks = &WebhooksService{c: c}
	return c, nil
}

// API returns the generated typed client, wired to the same authentication,
// retries, rate limits and logging as the services. Use it for endpoints the
// services do not wrap (payments, contacts, taxes, ...). Every POST made
// through it gets a random idempotency key unless the request already has
// one; prefer the services for bookings, which derive keys from your
// references and look orders up before re-sending.
func (c *Client) API() *generated.ClientWithResponses { return c.api }

// RetryPolicy returns the client-wide retry policy, for code that must
// agree with it (a queue worker's processing horizon, say).
func (c *Client) RetryPolicy() RetryPolicy { return c.cfg.policy }

// DistributorID returns the configured distributor id.
func (c *Client) DistributorID() string { return c.cfg.distributorID }

// BaseURL returns the API root the client talks to.
func (c *Client) BaseURL() string { return c.cfg.baseURL }

// stampHeaders adds the application-info headers to every request.
func (c *Client) stampHeaders(_ context.Context, req *http.Request) error {
	for k, v := range c.cfg.appHeaders {
		req.Header[k] = v
	}
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "application/json")
	}
	return nil
}

// randomKeyForPOST gives a POST made through API() a key of its own, made
// once per call (editors run before the retry loop), so it can be retried.
func randomKeyForPOST(_ context.Context, req *http.Request) error {
	if req.Method == http.MethodPost && req.Header.Get(keyHeader) == "" {
		req.Header.Set(keyHeader, NewRandomKey())
	}
	return nil
}
