package priotest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/priosdk/prio-go/priotest"
)

// A Create Order whose connection is dropped after the order was made,
// retried with the same Idempotency-Key: one order, found again.
func Example() {
	s, err := priotest.Start("", priotest.WithFaults(priotest.Sequence("createOrder", priotest.FaultDropAfter)))
	if err != nil {
		panic(err)
	}
	defer s.Close()

	req, _ := http.NewRequest(http.MethodPost, s.URL()+"/oauth2/token", strings.NewReader(`{"grant_type":"client_credentials"}`))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth("sandbox-client", "sandbox-secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()

	body := `{"data":{"order":{"order_distributor_id":"501","order_external_reference":"example-1","order_language":"en",` +
		`"order_bookings":[{"booking_option_type":"DIRECT_BOOKING","product_id":"` + priotest.ProductOpen + `",` +
		`"product_type_details":[{"product_type_id":"` + priotest.ProductTypeAdult + `","product_type_count":1}]}]}}}`
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for attempt := 1; attempt <= 2; attempt++ {
		req, _ := http.NewRequest(http.MethodPost, s.URL()+"/orders", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		req.Header.Set("Idempotency-Key", "example-1")
		resp, err := client.Do(req)
		if err != nil {
			fmt.Println("attempt", attempt, "failed: no answer")
			continue
		}
		resp.Body.Close()
		fmt.Println("attempt", attempt, "answered", resp.StatusCode, "replayed:", resp.Header.Get("Idempotent-Replayed") == "true")
	}
	fmt.Println("orders for example-1:", s.OrdersFor("example-1"))
	// Output:
	// attempt 1 failed: no answer
	// attempt 2 answered 201 replayed: true
	// orders for example-1: 1
}
