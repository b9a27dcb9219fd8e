package prio

import (
	"strings"
	"sync"
)

// secretSet holds exact values that must never be printed: the client
// secret, the API key and every access token the client has fetched. Tokens
// are kept only while they may still be in use (the last few).
//
// Values are held behind pointers so that printing a struct that contains
// the set (with %v, %+v, %#v or a wrong verb, at any depth) shows addresses,
// never the values.
type secretSet struct {
	mu     sync.RWMutex
	fixed  []*string
	tokens []*string
}

const keepTokens = 8

// minSecretLen keeps tiny values out: replacing "abc" everywhere would
// wreck every message without protecting anything.
const minSecretLen = 4

func (s *secretSet) addFixed(v string) {
	if len(v) < minSecretLen {
		return
	}
	s.mu.Lock()
	s.fixed = append(s.fixed, &v)
	s.mu.Unlock()
}

func (s *secretSet) addToken(v string) {
	if len(v) < minSecretLen {
		return
	}
	s.mu.Lock()
	s.tokens = append(s.tokens, &v)
	if len(s.tokens) > keepTokens {
		s.tokens = s.tokens[len(s.tokens)-keepTokens:]
	}
	s.mu.Unlock()
}

func (s *secretSet) replace(text string) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, v := range s.fixed {
		text = strings.ReplaceAll(text, *v, redacted)
	}
	for _, v := range s.tokens {
		text = strings.ReplaceAll(text, *v, redacted)
	}
	return text
}
