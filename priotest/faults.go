package priotest

import (
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"
)

// FaultKind is one way a call can go wrong between the client and Prio.
type FaultKind string

// The faults the sandbox can inject. "Before" faults answer without
// touching any state; "after" faults run the operation first, so the effect
// (an order, a cancellation) exists although the client never learns it.
const (
	// FaultNone lets the call through; useful as a gap in a Sequence.
	FaultNone FaultKind = "none"
	// FaultDelay holds the call for Profile.Delay, then processes it. The
	// operation runs even when the client has given up meanwhile, and its
	// idempotency key stays busy for the whole delay.
	FaultDelay FaultKind = "delay"
	// FaultHang never answers and never processes: the call blocks until the
	// client gives up or the server closes.
	FaultHang FaultKind = "hang"
	// Fault5xxBefore answers 503 without processing.
	Fault5xxBefore FaultKind = "5xx_before"
	// Fault5xxAfter processes the call, then answers 500 instead of the
	// result (which an idempotent replay will return).
	Fault5xxAfter FaultKind = "5xx_after"
	// FaultDropAfter processes the call, then closes the connection without
	// writing a byte of the response.
	FaultDropAfter FaultKind = "drop_after"
	// FaultResetMidBody processes the call, writes the status line, the
	// headers (with the full Content-Length) and half of the body, then
	// resets the connection.
	FaultResetMidBody FaultKind = "reset_mid_body"
	// Fault429 answers 429 with a Retry-After header, without processing.
	Fault429 FaultKind = "429"
	// Fault429NoRetryAfter answers 429 without Retry-After, without
	// processing.
	Fault429NoRetryAfter FaultKind = "429_no_retry_after"
	// FaultMalformedJSON processes the call, then sends its status with a
	// body that is not valid JSON.
	FaultMalformedJSON FaultKind = "malformed_json"
	// FaultTruncatedJSON processes the call, then sends its status with the
	// first half of the body and a Content-Length to match, so the transfer
	// itself completes cleanly.
	FaultTruncatedJSON FaultKind = "truncated_json"
	// FaultHTML answers 502 with an HTML page, as a proxy in front of Prio
	// would, without processing.
	FaultHTML FaultKind = "html"
	// FaultGateway502 models nginx in front of a slow origin: after
	// Profile.GatewayDelay the client gets 502 with nginx's HTML page (no
	// Prio error body), while the origin goes on and processes the call
	// Profile.OriginDelay after it arrived, so the effect exists
	// afterwards. Under IdempotencyHeader the key stays in flight (409
	// IDEMPOTENCY_KEY_IN_USE) until the origin finishes; then its answer
	// replays.
	FaultGateway502 FaultKind = "gateway_502"
	// FaultGateway503 is FaultGateway502 answering 503.
	FaultGateway503 FaultKind = "gateway_503"
	// FaultGateway504 is FaultGateway502 answering 504 Gateway Time-out.
	FaultGateway504 FaultKind = "gateway_504"
	// FaultGateway524 is FaultGateway502 with Cloudflare in front: status
	// 524 and its "A timeout occurred" page.
	FaultGateway524 FaultKind = "gateway_524"
)

// faultKinds lists every kind in the order probabilities are drawn, so a
// seed always picks the same faults.
var faultKinds = []FaultKind{
	FaultDelay, FaultHang, Fault5xxBefore, Fault5xxAfter, FaultDropAfter, FaultResetMidBody,
	Fault429, Fault429NoRetryAfter, FaultMalformedJSON, FaultTruncatedJSON, FaultHTML,
	// New kinds go last, so the draws of a seed do not move.
	FaultGateway502, FaultGateway503, FaultGateway504, FaultGateway524,
}

// gatewayKinds are the faults of a gateway in front of a slow origin.
var gatewayKinds = []FaultKind{FaultGateway502, FaultGateway503, FaultGateway504, FaultGateway524}

func (k FaultKind) valid() bool { return k == FaultNone || slices.Contains(faultKinds, k) }

// Defaults for the knobs of a Profile left at zero.
const (
	defaultFaultDelay   = 250 * time.Millisecond
	defaultRetryAfter   = time.Second
	defaultGatewayDelay = 100 * time.Millisecond
	defaultOriginDelay  = 500 * time.Millisecond
)

// Profile says which calls fail and how. Probabilities are per operation
// (its operationId, such as "createOrder", or "*" for every operation; an
// operation's own entry for a kind wins over "*"), drawn from a generator
// seeded with Seed (the server's seed when 0). Sequences are exact: the n-th
// call of the operation (counted from when the profile was set) gets the
// n-th kind, and calls past the end fall back to the probabilities. A
// sequence for an operation wins over a sequence for "*".
//
// The zero Profile injects nothing. As JSON (the body of PUT
// /_sandbox/faults) durations are strings such as "250ms":
//
//	{"name": "mine", "seed": 7, "delay": "2s", "retry_after": "1s",
//	 "gateway_delay": "100ms", "origin_delay": "2s",
//	 "probabilities": {"*": {"5xx_after": 0.05}, "createOrder": {"drop_after": 0.2}},
//	 "sequences": {"createOrder": ["drop_after", "none", "5xx_after"]}}
type Profile struct {
	Name          string
	Seed          int64
	Probabilities map[string]map[FaultKind]float64
	Sequences     map[string][]FaultKind
	// Delay is how long FaultDelay holds a call (default 250ms).
	Delay time.Duration
	// RetryAfter is the Retry-After that Fault429 sends, rounded up to
	// whole seconds (default 1s).
	RetryAfter time.Duration
	// GatewayDelay is how long after a call arrives a gateway fault
	// answers the client (default 100ms).
	GatewayDelay time.Duration
	// OriginDelay is how long after a call arrives the origin behind a
	// gateway fault processes it (default 500ms). It must exceed
	// GatewayDelay.
	OriginDelay time.Duration
}

// Sequence returns a profile in which the n-th call of operationID (or of
// any operation, for "*") gets kinds[n]; later calls get no fault.
func Sequence(operationID string, kinds ...FaultKind) Profile {
	return Profile{
		Name:      "sequence",
		Sequences: map[string][]FaultKind{operationID: slices.Clone(kinds)},
	}
}

// With returns p combined with q: q's probabilities and sequences are
// added to p's, replacing p's entries for the same operation (and kind);
// q's non-zero seed, delay, retry-after, gateway and origin delays win.
func (p Profile) With(q Profile) Profile {
	out := Profile{
		Name:         joinNames(p.Name, q.Name),
		Seed:         p.Seed,
		Delay:        p.Delay,
		RetryAfter:   p.RetryAfter,
		GatewayDelay: p.GatewayDelay,
		OriginDelay:  p.OriginDelay,
	}
	if q.GatewayDelay != 0 {
		out.GatewayDelay = q.GatewayDelay
	}
	if q.OriginDelay != 0 {
		out.OriginDelay = q.OriginDelay
	}
	if q.Seed != 0 {
		out.Seed = q.Seed
	}
	if q.Delay != 0 {
		out.Delay = q.Delay
	}
	if q.RetryAfter != 0 {
		out.RetryAfter = q.RetryAfter
	}
	if len(p.Probabilities)+len(q.Probabilities) > 0 {
		out.Probabilities = map[string]map[FaultKind]float64{}
		for _, src := range []map[string]map[FaultKind]float64{p.Probabilities, q.Probabilities} {
			for op, kinds := range src {
				if out.Probabilities[op] == nil {
					out.Probabilities[op] = map[FaultKind]float64{}
				}
				maps.Copy(out.Probabilities[op], kinds)
			}
		}
	}
	if len(p.Sequences)+len(q.Sequences) > 0 {
		out.Sequences = map[string][]FaultKind{}
		for _, src := range []map[string][]FaultKind{p.Sequences, q.Sequences} {
			for op, kinds := range src {
				out.Sequences[op] = slices.Clone(kinds)
			}
		}
	}
	return out
}

func joinNames(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "+" + b
}

// every returns probabilities giving each kind in kinds the same chance on
// every operation.
func every(p float64, kinds ...FaultKind) map[string]map[FaultKind]float64 {
	m := map[FaultKind]float64{}
	for _, k := range kinds {
		m[k] = p
	}
	return map[string]map[FaultKind]float64{"*": m}
}

// ProfileByName returns a named profile:
//
//   - "none": no faults.
//   - "flaky": each fault on about 0.5 to 3 % of calls (about 20 % in all),
//     the gateway faults on 0.5 % each; delays of 200ms, the gateway
//     answering after 50ms and its origin after 300ms.
//   - "hostile": each fault on 2 to 10 % of calls (about 70 % in all), the
//     gateway faults on 2 % each; delays of 1s, the gateway answering
//     after 50ms and its origin after 800ms.
func ProfileByName(name string) (Profile, error) {
	switch name {
	case "none", "":
		return Profile{Name: "none"}, nil
	case "flaky":
		p := every(0.015, faultKinds...)
		p["*"][FaultDelay] = 0.03
		p["*"][Fault5xxBefore] = 0.02
		p["*"][Fault5xxAfter] = 0.02
		p["*"][FaultDropAfter] = 0.02
		p["*"][FaultHang] = 0.005
		for _, k := range gatewayKinds {
			p["*"][k] = 0.005
		}
		return Profile{Name: "flaky", Probabilities: p, Delay: 200 * time.Millisecond,
			GatewayDelay: 50 * time.Millisecond, OriginDelay: 300 * time.Millisecond}, nil
	case "hostile":
		p := every(0.04, faultKinds...)
		p["*"][FaultDelay] = 0.10
		p["*"][FaultHang] = 0.03
		p["*"][Fault5xxBefore] = 0.08
		p["*"][Fault5xxAfter] = 0.08
		p["*"][FaultDropAfter] = 0.08
		p["*"][FaultResetMidBody] = 0.05
		p["*"][Fault429] = 0.05
		p["*"][Fault429NoRetryAfter] = 0.03
		for _, k := range gatewayKinds {
			p["*"][k] = 0.02
		}
		return Profile{Name: "hostile", Probabilities: p, Delay: time.Second,
			GatewayDelay: 50 * time.Millisecond, OriginDelay: 800 * time.Millisecond}, nil
	}
	return Profile{}, fmt.Errorf("priotest: unknown fault profile %q (want none, flaky or hostile)", name)
}

// validate rejects unknown kinds and probabilities outside [0, 1].
func (p Profile) validate() error {
	for op, kinds := range p.Probabilities {
		sum := 0.0
		for k, v := range kinds {
			if !k.valid() || k == FaultNone {
				return fmt.Errorf("priotest: unknown fault kind %q for %s", k, op)
			}
			if v < 0 || v > 1 {
				return fmt.Errorf("priotest: probability %v of %s for %s is outside [0, 1]", v, k, op)
			}
			sum += v
		}
		if sum > 1.000001 {
			return fmt.Errorf("priotest: probabilities for %s add up to %v, more than 1", op, sum)
		}
	}
	for op, kinds := range p.Sequences {
		for _, k := range kinds {
			if !k.valid() {
				return fmt.Errorf("priotest: unknown fault kind %q in the sequence for %s", k, op)
			}
		}
	}
	if p.Delay < 0 || p.RetryAfter < 0 || p.GatewayDelay < 0 || p.OriginDelay < 0 {
		return fmt.Errorf("priotest: negative delay, retry-after, gateway or origin delay")
	}
	if p.originDelay() <= p.gatewayDelay() {
		return fmt.Errorf("priotest: origin delay %v must exceed gateway delay %v", p.originDelay(), p.gatewayDelay())
	}
	return nil
}

func (p Profile) gatewayDelay() time.Duration {
	if p.GatewayDelay > 0 {
		return p.GatewayDelay
	}
	return defaultGatewayDelay
}

func (p Profile) originDelay() time.Duration {
	if p.OriginDelay > 0 {
		return p.OriginDelay
	}
	return defaultOriginDelay
}

func (p Profile) delay() time.Duration {
	if p.Delay > 0 {
		return p.Delay
	}
	return defaultFaultDelay
}

func (p Profile) retryAfter() time.Duration {
	if p.RetryAfter > 0 {
		return p.RetryAfter
	}
	return defaultRetryAfter
}

// profileJSON is the wire form of a Profile.
type profileJSON struct {
	Name          string                           `json:"name,omitempty"`
	Seed          int64                            `json:"seed,omitempty"`
	Delay         string                           `json:"delay,omitempty"`
	RetryAfter    string                           `json:"retry_after,omitempty"`
	GatewayDelay  string                           `json:"gateway_delay,omitempty"`
	OriginDelay   string                           `json:"origin_delay,omitempty"`
	Probabilities map[string]map[FaultKind]float64 `json:"probabilities,omitempty"`
	Sequences     map[string][]FaultKind           `json:"sequences,omitempty"`
}

// MarshalJSON writes the document form described on Profile.
func (p Profile) MarshalJSON() ([]byte, error) {
	j := profileJSON{Name: p.Name, Seed: p.Seed, Probabilities: p.Probabilities, Sequences: p.Sequences}
	if p.Delay != 0 {
		j.Delay = p.Delay.String()
	}
	if p.RetryAfter != 0 {
		j.RetryAfter = p.RetryAfter.String()
	}
	if p.GatewayDelay != 0 {
		j.GatewayDelay = p.GatewayDelay.String()
	}
	if p.OriginDelay != 0 {
		j.OriginDelay = p.OriginDelay.String()
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads either a profile name (a JSON string) or the document
// form described on Profile, and validates it.
func (p *Profile) UnmarshalJSON(b []byte) error {
	var name string
	if err := json.Unmarshal(b, &name); err == nil {
		q, err := ProfileByName(name)
		if err != nil {
			return err
		}
		*p = q
		return nil
	}
	var j profileJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("priotest: fault profile: %w", err)
	}
	q := Profile{Name: j.Name, Seed: j.Seed, Probabilities: j.Probabilities, Sequences: j.Sequences}
	var err error
	if j.Delay != "" {
		if q.Delay, err = time.ParseDuration(j.Delay); err != nil {
			return fmt.Errorf("priotest: fault profile delay: %w", err)
		}
	}
	if j.RetryAfter != "" {
		if q.RetryAfter, err = time.ParseDuration(j.RetryAfter); err != nil {
			return fmt.Errorf("priotest: fault profile retry_after: %w", err)
		}
	}
	if j.GatewayDelay != "" {
		if q.GatewayDelay, err = time.ParseDuration(j.GatewayDelay); err != nil {
			return fmt.Errorf("priotest: fault profile gateway_delay: %w", err)
		}
	}
	if j.OriginDelay != "" {
		if q.OriginDelay, err = time.ParseDuration(j.OriginDelay); err != nil {
			return fmt.Errorf("priotest: fault profile origin_delay: %w", err)
		}
	}
	if err := q.validate(); err != nil {
		return err
	}
	*p = q
	return nil
}

// ParseProfile reads a profile name ("flaky") or a profile document (JSON,
// as described on Profile), as PUT /_sandbox/faults and the -faults flag of
// prio-sandbox accept them.
func ParseProfile(s string) (Profile, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "{") || strings.HasPrefix(s, `"`) {
		var p Profile
		err := json.Unmarshal([]byte(s), &p)
		return p, err
	}
	return ProfileByName(s)
}

// injector decides the fault of each call under the current profile.
type injector struct {
	mu       sync.Mutex
	profile  Profile
	rng      *rand.Rand
	counters map[string]int // calls per sequence key since the profile was set
}

func newInjector(p Profile, serverSeed int64) *injector {
	in := &injector{}
	in.set(p, serverSeed)
	return in
}

func (in *injector) set(p Profile, serverSeed int64) {
	seed := p.Seed
	if seed == 0 {
		seed = serverSeed
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	in.profile = p
	in.rng = rand.New(rand.NewPCG(uint64(seed), 0x5eed_fa17))
	in.counters = map[string]int{}
}

func (in *injector) current() Profile {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.profile
}

// pick returns the fault for the next call of operationID and the profile
// it came from.
func (in *injector) pick(operationID string) (FaultKind, Profile) {
	in.mu.Lock()
	defer in.mu.Unlock()
	p := in.profile
	kind, fromSeq := FaultKind(""), false
	for _, key := range []string{operationID, "*"} {
		seq, ok := p.Sequences[key]
		if !ok {
			continue
		}
		n := in.counters[key]
		in.counters[key] = n + 1
		if n < len(seq) && !fromSeq {
			kind, fromSeq = seq[n], true
		}
	}
	if fromSeq {
		return kind, p
	}
	own, all := p.Probabilities[operationID], p.Probabilities["*"]
	if len(own) == 0 && len(all) == 0 {
		return FaultNone, p
	}
	r := in.rng.Float64()
	acc := 0.0
	for _, k := range faultKinds {
		v, ok := own[k]
		if !ok {
			v = all[k]
		}
		acc += v
		if r < acc {
			return k, p
		}
	}
	return FaultNone, p
}
