package prio

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// tokenEarlyExpiry is how long before expires_in a token is replaced, so a
// request never leaves with a token that dies on the way.
const tokenEarlyExpiry = 60 * time.Second

// tokenFetchTimeout bounds one token request. oauth2.TokenSource has no
// context, so the bound is ours.
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
	resp, err := f.rt.RoundTrip(req)
	if err != nil {
		return nil, &AuthError{Err: err}
	}
	defer resp.Body.Close()
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
		t.Expiry = time.Now().Add(time.Duration(tr.ExpiresIn) * time.Second)
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
// a time, replaced ahead of expiry) and adds what it lacks: dropping a token
// that the API refused with 401, once, however many requests saw the 401.
type tokenCache struct {
	newSource func() oauth2.TokenSource
	mu        sync.Mutex
	src       oauth2.TokenSource
}

func newTokenCache(fetch oauth2.TokenSource) *tokenCache {
	tc := &tokenCache{newSource: func() oauth2.TokenSource {
		return oauth2.ReuseTokenSourceWithExpiry(nil, fetch, tokenEarlyExpiry)
	}}
	tc.src = tc.newSource()
	return tc
}

func (tc *tokenCache) Token() (*oauth2.Token, error) {
	tc.mu.Lock()
	src := tc.src
	tc.mu.Unlock()
	return src.Token()
}

// invalidate drops the cached token if it is still the refused one.
func (tc *tokenCache) invalidate(refused string) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if t, err := tc.src.Token(); err == nil && t.AccessToken != refused {
		return // someone already replaced it
	}
	tc.src = tc.newSource()
}

// authTransport adds the bearer token and the API key to requests for the
// API host, and answers a 401 by refreshing the token once and sending once
// more. It sits below the retry loop and above the send counter, so the
// extra send is counted.
type authTransport struct {
	next   http.RoundTripper
	host   string
	tokens *tokenCache
	apiKey secret
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
	return &authTransport{next: next, host: base.Host, tokens: newTokenCache(ts), apiKey: cfg.apiKey}
}

// RoundTrip implements http.RoundTripper.
func (a *authTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host != a.host {
		// Never hand credentials to another host.
		return a.next.RoundTrip(req)
	}
	tok, err := a.tokens.Token()
	if err != nil {
		return nil, err
	}
	resp, err := a.next.RoundTrip(a.authorize(req, tok.AccessToken))
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	if req.Body != nil && req.GetBody == nil {
		return resp, nil // cannot replay the body
	}
	discardBody(resp.Body)
	a.tokens.invalidate(tok.AccessToken)
	if tok, err = a.tokens.Token(); err != nil {
		return nil, err
	}
	retry := req.Clone(req.Context())
	if req.GetBody != nil {
		if retry.Body, err = req.GetBody(); err != nil {
			return nil, err
		}
	}
	return a.next.RoundTrip(a.authorize(retry, tok.AccessToken))
}

// authorize returns a copy of req with the bearer token and API key. The
// key goes into the copy's URL only, so no error built from the caller's
// request can show it.
func (a *authTransport) authorize(req *http.Request, token string) *http.Request {
	r := req.Clone(req.Context())
	r.Body = req.Body
	if cs := callStateFrom(req.Context()); cs != nil && cs.stopOnDoubt {
		// net/http re-sends on its own a request it can rewind when a
		// kept-alive connection dies after the request was written. For a
		// booking that re-send would skip the look-up that makes Create
		// safe against a server without idempotency, so the copy handed
		// down cannot be rewound: the failure comes back to Create instead.
		r.GetBody = nil
	}
	r.Header.Set("Authorization", "Bearer "+token)
	if k := a.apiKey.value(); k != "" {
		q := r.URL.Query()
		q.Set("key", k)
		r.URL.RawQuery = q.Encode()
	}
	return r
}
