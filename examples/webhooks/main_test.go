package main

import (
	"bytes"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestWebhooksExample runs the example: a booking followed by its
// notification, a duplicate dropped and a wrong credential refused.
func TestWebhooksExample(t *testing.T) {
	var out bytes.Buffer
	if err := run(&out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"event=ORDER_CREATE",
		`msg="same notification delivered again" status=200 handled_again=false`,
		`msg="delivery with a wrong credential" status=401`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
