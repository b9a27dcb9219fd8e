package prio

import (
	"net/url"
	"regexp"
	"strings"
)

// Secrets and guest personal data must never reach a log line or an error
// string. Two mechanisms work together: patterns catch what can be
// recognised (emails, phone numbers, bearer and basic credentials, JWTs,
// secret-bearing query parameters), and a redactor removes exact values the
// client knows are secret (client secret, API key, the tokens it fetched).
const redacted = "[REDACTED]"

var redactPatterns = []*regexp.Regexp{
	regexp.MustCompile(`(?i)\b(bearer|basic)\s+[A-Za-z0-9\-._~+/]+=*`),
	regexp.MustCompile(`\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*`),
	regexp.MustCompile(`[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}`),
	regexp.MustCompile(`\+?\d[\d \-()]{7,}\d`),
	regexp.MustCompile(`(?i)\b(key|client_secret|access_token|token|password|secret)=[^&\s"']+`),
}

// redactText removes anything that looks like a credential or personal data.
func redactText(s string) string {
	for _, re := range redactPatterns {
		s = re.ReplaceAllStringFunc(s, func(m string) string {
			if i := strings.IndexAny(m, " ="); i > 0 && (strings.HasPrefix(strings.ToLower(m), "bearer") ||
				strings.HasPrefix(strings.ToLower(m), "basic") || strings.Contains(m, "=")) {
				return m[:i+1] + redacted
			}
			return redacted
		})
	}
	return s
}

// safeQuery lists query parameters whose values carry no personal data or
// credentials and may appear in logs.
var safeQuery = map[string]bool{
	"items_per_page": true, "start_index": true, "page": true, "cache": true,
	"from_date": true, "to_date": true, "distributor_id": true, "product_id": true,
	"order_external_reference": true, "order_reference": true, "booking_reference": true,
	"payment_refund": true, "force_release": true, "include_disabled": true,
}

// redactURL renders u for a log line: credentials in the user info are
// dropped and every query value not known to be safe is replaced.
func redactURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	c := *u
	c.User = nil
	if c.RawQuery != "" {
		q := c.Query()
		for k, vs := range q {
			if safeQuery[k] {
				continue
			}
			for i := range vs {
				vs[i] = "REDACTED"
			}
		}
		c.RawQuery = q.Encode()
	}
	return c.String()
}

// redactor removes exact secret values as well as the patterns. It is safe
// for concurrent use once built; secrets added later go through add.
type redactor struct {
	values *secretSet
}

func (r redactor) text(s string) string {
	if r.values != nil {
		s = r.values.replace(s)
	}
	return redactText(s)
}
