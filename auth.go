package prio

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
)

// tokenEarlyExpiry is how long before expires_in a token is replaced, so a
// request never leaves with a token that dies on the way: a tenth of the
// token's lifetime, at most a minute (an hour's token is replaced a minute
// early, a 5 s token half a second early).
func tokenEarlyExpiry(lifetime time.Duration) time.Duration {
	return min(time.Minute, lifetime/10)
}

// tokenFetchTimeout bounds one token request. oauth2.TokenSource has no
// context, so the bound is ours; callers wait for it with their own
// context (tokenCache.Token).
const tokenFetchTimeout = 30 * time.Second

// tokenFetcher asks Prio for a token the way Prio documents it: HTTP Basic
// with the client id and secret, and a JSON body (not the form body that
// the standard clientcredentials package sends).
type tokenFetcher struct {
	url      string
	clientID string
	secret   secret
	scope    string
	rt       http.RoundTripper
	secrets  *secretSet
	guard    *clientErrorGuard // Prio counts the token endpoint's 4XX too
	tel      *telemetry
}

type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope"`
}

// Token implements oauth2.TokenSource.
func (f *tokenFetcher) Token() (*oauth2.Token, error) {
	ctx, cancel := context.WithTimeout(context.Background(), tokenFetchTimeout)
	defer cancel()
	body, _ := json.Marshal(map[string]string{"grant_type": "client_credentials", "scope": f.scope})
	if f.scope == "" {
		body = []byte(`{"grant_type":"client_credentials"}`)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.url, bytes.NewReader(body))
	if err != nil {
		return nil, &AuthError{Err: err}
	}
	req.SetBasicAuth(f.clientID, f.secret.value())
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	place, err := f.guard.reserveNow()
	if err != nil {
		return nil, &AuthError{Err: err}
	}
	start := time.Now()
	resp, err := f.rt.RoundTrip(req)
	if err != nil {
		place.settle(false)
		f.tel.tokenFetched(false)
		return nil, &AuthError{Err: err}
	}
	defer resp.Body.Close()
	place.settle(resp.StatusCode >= 400 && resp.StatusCode < 500)
	f.tel.tokenFetched(resp.StatusCode == http.StatusOK)
	if resp.StatusCode != http.StatusOK {
		return nil, &AuthError{Err: newAPIError(resp, "getToken")}
	}
	raw, truncated, err := readCapped(resp.Body, maxErrorBody)
	if err != nil || truncated {
		return nil, &AuthError{Err: fmt.Errorf("reading token response: %w", errOrTooLarge(err))}
	}
	var tr tokenResponse
	if err := json.Unmarshal(raw, &tr); err != nil || tr.AccessToken == "" {
		return nil, &AuthError{Err: fmt.Errorf("token response is not a usable token (%d bytes)", len(raw))}
	}
	f.secrets.addToken(tr.AccessToken)
	t := &oauth2.Token{AccessToken: tr.AccessToken, TokenType: "Bearer"}
	if tr.ExpiresIn > 0 {
		// Counted from when the request left, minus the early expiry.
		life := time.Duration(tr.ExpiresIn) * time.Second
		t.Expiry = start.Add(life - tokenEarlyExpiry(life))
	}
	return t, nil
}

func errOrTooLarge(err error) error {
	if err != nil {
		return err
	}
	return fmt.Errorf("body over %d bytes", maxErrorBody)
}

// AuthError is a failure to obtain an access token. Err is an *APIError
// when the token endpoint answered (401: wrong client id or secret), or a
// network error. It never contains the secret or a token.
type AuthError struct{ Err error }

// Error names the token request and its cause, which carries no secret.
func (e *AuthError) Error() string { return "prio: getting an access token: " + e.Err.Error() }

// Unwrap returns the cause.
func (e *AuthError) Unwrap() error { return e.Err }

// retryable reports whether fetching again may help: network errors and
// 429/5xx do; a refused credential does not.
func (e *AuthError) retryable() bool {
	var ae *APIError
	if errors.As(e.Err, &ae) {
		return ae.StatusCode == http.StatusTooManyRequests || ae.StatusCode >= 500
	}
	return true
}

// tokenCache caches tokens with x/oauth2's ReuseTokenSource (one refresh at
// a time, replaced ahead of expiry) and adds what it lacks: a caller's
// context bounds its wait for a token, and a token the API refused with 401
// is dropped once, however many requests saw the 401.
type tokenCache struct {
	newSource func() oauth2.TokenSource
	mu        sync.Mutex
	src       oauth2.TokenSource
	// last is the token src gave last, read without a goroutine while it
	// is valid: the path of nearly every request.
	last    atomic.Pointer[oauth2.Token]
	dropped string // the last token invalidate dropped
}

// tokenReuseDelta is the early expiry handed to ReuseTokenSource. The
// fetcher already moves each token's expiry forward by an amount that
// scales with its lifetime; ReuseTokenSource would otherwise apply its own
// fixed 10 s, which is longer than a short-lived token lives.
const tokenReuseDelta = time.Nanosecond

func newTokenCache(fetch oauth2.TokenSource) *tokenCache {
	tc := &tokenCache{newSource: func() oauth2.TokenSource {
		return oauth2.ReuseTokenSourceWithExpiry(nil, fetch, tokenReuseDelta)
	}}
	tc.src = tc.newSource()
	return tc
}

type tokenResult struct {
	t   *oauth2.Token
	err error
}

// Token returns a valid token. A fetch runs on its own goroutine, bounded
// by tokenFetchTimeout, so that the caller's ctx ends the caller's wait
// (with an *AuthError wrapping ctx's error) whatever the token endpoint
// does; the fetch then finishes for the next caller.
func (tc *tokenCache) Token(ctx context.Context) (*oauth2.Token, error) {
	if t := tc.last.Load(); t.Valid() {
		return t, nil
	}
	tc.mu.Lock()
	src := tc.src
	tc.mu.Unlock()
	done := make(chan tokenResult, 1)
	go func() {
		t, err := src.Token()
		if err == nil {
			tc.mu.Lock()
			if tc.src == src { // not a source invalidate has replaced
				tc.last.Store(t)
			}
			tc.mu.Unlock()
		}
		done <- tokenResult{t, err}
	}()
	select {
	case r := <-done:
		return r.t, r.err
	case <-ctx.Done():
		return nil, &AuthError{Err: ctx.Err()}
	}
}

// invalidate drops the cached token if it is still the refused one. It
// never waits for the token endpoint.
func (tc *tokenCache) invalidate(refused string) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if refused == tc.dropped {
		return // another request's 401 already dropped it
	}
	if t := tc.last.Load(); t != nil && t.AccessToken != refused {
		return // already replaced
	}
	tc.dropped = refused
	tc.src = tc.newSource()
	tc.last.Store(nil)
}

// authTransport adds the bearer token and the API key to requests for the
// API host, and answers a 401 by refreshing the token once and sending once
// more. It sits below the retry loop and above the send counter, so the
// extra send is counted.
type authTransport struct {
	next    http.RoundTripper
	host    string
	tokens  *tokenCache
	fetcher *tokenFetcher
	apiKey  secret
	// header is the Authorization value of the latest token, made once
	// per token rather than once per send.
	header atomic.Pointer[bearerHeader]
}

type bearerHeader struct{ token, value string }

// bearer returns "Bearer " and token.
func (a *authTransport) bearer(token string) string {
	if h := a.header.Load(); h != nil && h.token == token {
		return h.value
	}
	h := &bearerHeader{token: token, value: "Bearer " + token}
	a.header.Store(h)
	return h.value
}

func newAuthTransport(next http.RoundTripper, base *url.URL, cfg *config, secrets *secretSet) *authTransport {
	ts := &tokenFetcher{
		url:      strings.TrimRight(base.String(), "/") + "/oauth2/token",
		clientID: cfg.clientID,
		secret:   cfg.clientSecret,
		scope:    strings.Join(cfg.scopes, " "),
		rt:       next,
		secrets:  secrets,
	}
	return &authTransport{next: next, host: base.Host, tokens: newTokenCache(ts), fetcher: ts, apiKey: cfg.apiKey}
}

// RoundTrip implements http.RoundTripper.
//
// A 401 says the token was refused before the request was acted on, so the
// request is sent once more with a fresh token, bookings included (a
// booking's bytes come from its call, since its request cannot be rewound).
// The 401 counts in the 4XX guard, and the re-send takes a place of its own
// there, or is not made.
func (a *authTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host != a.host {
		// Never hand credentials to another host.
		return a.next.RoundTrip(req)
	}
	ctx := req.Context()
	tok, err := a.tokens.Token(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := a.next.RoundTrip(a.authorize(req, tok.AccessToken))
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	body, ok := replayBody(req)
	if !ok {
		return resp, nil
	}
	run := runFrom(ctx)
	if run != nil {
		// The 401 is an answer Prio counts; the re-send needs a place.
		run.place.settle(true)
		place, perr := run.d.limits.guard.reserveNow()
		if perr != nil {
			return resp, nil
		}
		run.place = place
	}
	discardBody(resp.Body)
	a.tokens.invalidate(tok.AccessToken)
	if tok, err = a.tokens.Token(ctx); err != nil {
		return nil, err
	}
	retry := req.Clone(ctx)
	if body != nil {
		retry.Body = body
	}
	return a.next.RoundTrip(a.authorize(retry, tok.AccessToken))
}

// replayBody returns a fresh body for sending req again (nil for none),
// or false when it cannot be had.
func replayBody(req *http.Request) (io.ReadCloser, bool) {
	switch {
	case req.Body == nil || req.Body == http.NoBody:
		return nil, true
	case req.GetBody != nil:
		b, err := req.GetBody()
		return b, err == nil
	}
	if run := runFrom(req.Context()); run != nil && run.body != nil {
		return io.NopCloser(bytes.NewReader(run.body)), true
	}
	return nil, false
}

// authorize returns req with the bearer token and API key: a copy of it,
// or, for the request attemptTransport made for the current send (which
// nothing above it reads), req itself. The key goes into that request's URL
// only, so no error built from the caller's request can show it. The copy
// is shallow: the header map is this send's own (the loop copies it before
// every re-send, a redirect hop and the re-send after a 401 get theirs, and
// a first send's belongs to its call), so the token is written into it.
func (a *authTransport) authorize(req *http.Request, token string) *http.Request {
	r := req
	if run := runFrom(req.Context()); run == nil || run.sendReq != req {
		r = new(http.Request)
		*r = *req
	}
	if r.Header == nil {
		r.Header = http.Header{}
	}
	if cs := callStateFrom(req.Context()); cs != nil && cs.stopOnDoubt {
		// net/http re-sends on its own a request it can rewind when a
		// kept-alive connection dies after the request was written. For a
		// booking that re-send would skip the look-up that makes Create
		// safe against a server without idempotency, so the copy handed
		// down cannot be rewound: the failure comes back to Create instead.
		r.GetBody = nil
	}
	r.Header.Set("Authorization", a.bearer(token))
	if k := a.apiKey.value(); k != "" {
		u := *req.URL
		r.URL = &u
		q := r.URL.Query()
		q.Set("key", k)
		r.URL.RawQuery = q.Encode()
	}
	return r
}
