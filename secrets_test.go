package prio

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSecretSet(t *testing.T) {
	t.Parallel()
	var s secretSet
	s.addFixed("abc") // too short to be a credential; replacing it would wreck text
	s.addFixed("client-secret-1")
	assert.Equal(t, "abc [REDACTED]", s.replace("abc client-secret-1"))

	for i := range keepTokens + 3 {
		s.addToken(fmt.Sprintf("token-%02d", i))
	}
	out := s.replace(strings.Join([]string{"token-00", "token-02", "token-03", "token-10"}, " "))
	assert.Equal(t, "token-00 token-02 [REDACTED] [REDACTED]", out, "only the last tokens are kept")
	assert.Equal(t, "[REDACTED]", s.replace("client-secret-1"), "fixed values stay however many tokens come")
}

func TestSecretSetConcurrent(t *testing.T) {
	t.Parallel()
	var s secretSet
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 100 {
				s.addToken(fmt.Sprintf("tok-%d-%d", i, j))
				_ = s.replace("tok-1-1 tok-2-2")
			}
		})
	}
	wg.Wait()
	s.mu.RLock()
	defer s.mu.RUnlock()
	assert.Len(t, s.tokens, keepTokens)
}

func TestSecretSetNotPrinted(t *testing.T) {
	t.Parallel()
	s := &secretSet{}
	s.addFixed("fixed-secret-value")
	s.addToken("token-secret-value")
	holder := struct {
		red redactor
		Set *secretSet
	}{redactor{values: s}, s}
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%d", "%x", "%q"} {
		for _, v := range []any{s, holder, &holder} {
			out := fmt.Sprintf(format, v)
			assert.NotContains(t, out, "fixed-secret-value", format)
			assert.NotContains(t, out, "token-secret-value", format)
		}
	}
}
