package main

import (
	"bytes"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestQuickstart runs the example on the embedded sandbox: the first
// Create Order is processed and its response dropped, and the server must
// still hold exactly one order.
func TestQuickstart(t *testing.T) {
	t.Setenv("PRIO_CLIENT_ID", "")
	t.Setenv("PRIO_CLIENT_SECRET", "")
	var out bytes.Buffer
	if err := run(&out, false); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	last := lines[len(lines)-1]
	if !regexp.MustCompile(`^orders for external reference quickstart-\d+: 1$`).MatchString(last) {
		t.Fatalf("last line %q, want one order\n%s", last, out.String())
	}
	if !regexp.MustCompile(`(?m)^look-ups: +1$`).MatchString(out.String()) {
		t.Errorf("the dropped response should be settled by one look-up:\n%s", out.String())
	}
}

// TestQuickstartOTel: with -otel the example prints the call's span tree
// and the client's metrics. The garbage collector runs all along, as it
// may in any program: the gauges, which end with their client, must still
// be in the last export.
func TestQuickstartOTel(t *testing.T) {
	t.Setenv("PRIO_CLIENT_ID", "")
	t.Setenv("PRIO_CLIENT_SECRET", "")
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-stop:
				return
			default:
				runtime.GC()
			}
		}
	}()
	var out bytes.Buffer
	err := run(&out, true)
	close(stop)
	<-stopped
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{`"Name": "prio.createOrder"`, `"Name": "prio.getOrders"`, `"Name": "POST"`, `"Name": "GET"`,
		`"prio.idempotency_key"`, `"prio.outcome"`, `"Name": "prio.client.calls"`, `"Name": "prio.client.lookups"`,
		`"Name": "prio.client.send.duration"`, `"Name": "prio.client.retry_budget.tokens"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %s:\n%s", want, out.String())
		}
	}
}
