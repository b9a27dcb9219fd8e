package main

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/priosdk/prio-go/priotest"
)

// outageProfile makes every call of every operation answer 503 without
// processing it, and without a Retry-After.
const outageProfile = `{"name": "outage", "probabilities": {"*": {"5xx_before": 1}}}`

// Outage is the outage phase: its set-up and one result per client.
type Outage struct {
	Seconds            float64        `json:"outage_seconds"`
	Callers            int            `json:"callers"`
	RecoveryWindow     int            `json:"recovery_window_calls"`
	RecoveryShare      float64        `json:"recovery_share"`
	RecoveryCapSeconds float64        `json:"recovery_cap_seconds"`
	Goal               float64        `json:"prio_go_goal_sends_per_call"`
	Clients            []OutageResult `json:"clients"`
	NaiveRetries       int            `json:"naive_retries"`
	NaiveSleepSeconds  float64        `json:"naive_sleep_seconds"`
}

// OutageResult is one client's figures. Sends are the requests the server
// answered with 503 during the outage (every request it received then);
// LogicalCalls are the calls the callers started during the outage.
// Recovery is measured on calls that completed after the outage ended,
// including calls that began during it.
type OutageResult struct {
	Client       string  `json:"client"`
	LogicalCalls int     `json:"logical_calls"`
	Sends        int     `json:"sends"`
	SendsPerCall float64 `json:"sends_per_call"`
	// SendsPerSecond is the load the server took during the outage. The
	// callers call again as soon as a call returns, so a client that
	// fails fast makes more calls, and more sends, in the same time.
	SendsPerSecond   float64        `json:"sends_per_second"`
	SendsByOperation map[string]int `json:"sends_by_operation"`
	// SendsByOperationComplete is false when the server's request log
	// (its last 50,000 requests) did not hold every send.
	SendsByOperationComplete bool  `json:"sends_by_operation_complete"`
	GoalMet                  *bool `json:"goal_met,omitempty"` // prio-go only
	// FailedDuringOutage counts calls that completed, unsuccessfully,
	// before the outage ended.
	FailedDuringOutage int  `json:"failed_during_outage"`
	Recovered          bool `json:"recovered"`
	// RecoverySeconds is null when the window never reached the share
	// within the observation.
	RecoverySeconds *float64 `json:"recovery_seconds"`
	CompletedAfter  int      `json:"completed_after_outage"`
	FailedAfter     int      `json:"failed_after_outage"`
	ObservedSeconds float64  `json:"observed_after_outage_seconds"`
}

// outageClient names a client and builds it against a server.
type outageClient struct {
	name string
	make func(ctx context.Context, s *priotest.Server) (creator, func(), error)
}

func outageClients(cfg config) []outageClient {
	return []outageClient{
		{nameSDK, func(_ context.Context, s *priotest.Server) (creator, func(), error) {
			c, err := newSDKCreator(s, cfg.outageCallers)
			return c, func() {}, err
		}},
		{nameRetryable, func(ctx context.Context, s *priotest.Server) (creator, func(), error) {
			c, err := newRetryableCreator(ctx, s)
			if err != nil {
				return nil, nil, err
			}
			return c, c.close, nil
		}},
		{nameNaive, func(ctx context.Context, s *priotest.Server) (creator, func(), error) {
			c, err := newNaiveCreator(ctx, s, cfg.naiveRetries, cfg.naiveSleep)
			if err != nil {
				return nil, nil, err
			}
			return c, c.close, nil
		}},
	}
}

func measureOutages(ctx context.Context, cfg config) (*Outage, error) {
	o := &Outage{
		Seconds:            seconds(cfg.outage),
		Callers:            cfg.outageCallers,
		RecoveryWindow:     cfg.recoveryWindow,
		RecoveryShare:      cfg.recoveryShare,
		RecoveryCapSeconds: seconds(cfg.recoveryCap),
		Goal:               goalAmplification,
		NaiveRetries:       cfg.naiveRetries,
		NaiveSleepSeconds:  seconds(cfg.naiveSleep),
	}
	for _, oc := range outageClients(cfg) {
		cfg.logf("outage: %s: %s of 503s, %d callers", oc.name, cfg.outage, cfg.outageCallers)
		r, err := runOutage(ctx, cfg, oc)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", oc.name, err)
		}
		rec := "not recovered"
		if r.RecoverySeconds != nil {
			rec = fmt.Sprintf("recovered in %.3fs", *r.RecoverySeconds)
		}
		cfg.logf("outage: %s: %d calls, %d sends (%.2f per call), %s", oc.name, r.LogicalCalls, r.Sends, r.SendsPerCall, rec)
		o.Clients = append(o.Clients, r)
	}
	return o, nil
}

// runOutage runs one client through an outage and the recovery after it,
// on a server of its own.
func runOutage(ctx context.Context, cfg config, oc outageClient) (OutageResult, error) {
	res := OutageResult{Client: oc.name}
	prof, err := priotest.ParseProfile(outageProfile)
	if err != nil {
		return res, err
	}
	s, err := newServer()
	if err != nil {
		return res, err
	}
	defer s.Close()
	c, closeClient, err := oc.make(ctx, s)
	if err != nil {
		return res, err
	}
	defer closeClient()
	// Token and connections first: the outage should meet a client in
	// its steady state.
	if _, _, _, err := concurrentRound(ctx, c, cfg.outageCallers, 0, cfg.outageCallers); err != nil {
		return res, fmt.Errorf("warm-up: %w", err)
	}

	before := s.Stats()
	var (
		inOutage atomic.Bool
		logical  atomic.Int64
		rec      = &recorder{}
		wg       sync.WaitGroup
	)
	phase, stop := context.WithCancel(ctx)
	defer stop()
	inOutage.Store(true)
	s.SetFaults(prof)
	for range cfg.outageCallers {
		wg.Go(func() {
			for phase.Err() == nil {
				if inOutage.Load() {
					logical.Add(1)
				}
				err := c.create(phase, nextRef("outage"))
				if phase.Err() != nil {
					return // cut short by the end of the phase: no outcome
				}
				rec.add(err == nil)
			}
		})
	}

	if err := sleep(ctx, cfg.outage); err != nil {
		stop()
		wg.Wait()
		return res, err
	}
	inOutage.Store(false)
	s.SetFaults(priotest.Profile{})
	off := time.Now()

	// Watch until recovery has held for recoveryHold, or the cap.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			stop()
			wg.Wait()
			return res, ctx.Err()
		case <-tick.C:
		}
		now := time.Now()
		if d, ok := recoveryTime(rec.snapshot(), off, cfg.recoveryWindow, cfg.recoveryShare); ok && now.Sub(off.Add(d)) >= cfg.recoveryHold {
			break
		}
		if now.Sub(off) >= cfg.recoveryCap {
			break
		}
	}
	stop()
	wg.Wait()
	observed := time.Since(off)

	after := s.Stats()
	res.LogicalCalls = int(logical.Load())
	res.Sends = after.FaultsInjected - before.FaultsInjected
	if res.LogicalCalls > 0 {
		res.SendsPerCall = round3(float64(res.Sends) / float64(res.LogicalCalls))
	}
	res.SendsPerSecond = round1(float64(res.Sends) / cfg.outage.Seconds())
	res.SendsByOperation = map[string]int{}
	logged := 0
	for _, r := range s.Requests() {
		if r.Fault != "" {
			res.SendsByOperation[r.Operation]++
			logged++
		}
	}
	res.SendsByOperationComplete = logged == res.Sends
	if oc.name == nameSDK {
		met := res.SendsPerCall <= goalAmplification
		res.GoalMet = &met
	}

	done := rec.snapshot()
	for _, d := range done {
		switch {
		case d.end.Before(off) && !d.ok:
			res.FailedDuringOutage++
		case !d.end.Before(off):
			res.CompletedAfter++
			if !d.ok {
				res.FailedAfter++
			}
		}
	}
	if d, ok := recoveryTime(done, off, cfg.recoveryWindow, cfg.recoveryShare); ok {
		v := round3(d.Seconds())
		res.Recovered, res.RecoverySeconds = true, &v
	}
	res.ObservedSeconds = seconds(observed)
	return res, nil
}

// completion is one finished call.
type completion struct {
	end time.Time
	ok  bool
}

// recorder collects completions in the order they finish: the time is
// read under the lock, so the slice is sorted by end.
type recorder struct {
	mu   sync.Mutex
	done []completion
}

func (r *recorder) add(ok bool) {
	r.mu.Lock()
	r.done = append(r.done, completion{end: time.Now(), ok: ok})
	r.mu.Unlock()
}

func (r *recorder) snapshot() []completion {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.done[:len(r.done):len(r.done)]
}

// recoveryTime is how long after off the calls recovered: the end of the
// first call (in order of completion, counting only calls that completed
// at or after off) at which the window of the last `window` completed
// calls holds at least share successes, and every later window does too.
// ok is false when that never happened, including when fewer than window
// calls completed after off. done must be sorted by end.
func recoveryTime(done []completion, off time.Time, window int, share float64) (time.Duration, bool) {
	if window < 1 {
		return 0, false
	}
	first := len(done)
	for i, d := range done {
		if !d.end.Before(off) {
			first = i
			break
		}
	}
	after := done[first:]
	if len(after) < window {
		return 0, false
	}
	allowed := window - int(math.Ceil(share*float64(window)-1e-9))
	failures := 0
	lastBad := -1
	for i, d := range after {
		if !d.ok {
			failures++
		}
		if i >= window && !after[i-window].ok {
			failures--
		}
		if i >= window-1 && failures > allowed {
			lastBad = i
		}
	}
	idx := max(lastBad+1, window-1)
	if idx >= len(after) {
		return 0, false
	}
	return after[idx].end.Sub(off), true
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
