package api_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/priosdk/prio-go/generated"
)

// benchPageSize is the number of orders in the page BenchmarkDecodeOrderList
// decodes: a full page of List Orders as Create's look-ups read it.
const benchPageSize = 25

// orderListPage builds a List Orders answer of n copies of the order
// fixture, each with its own reference.
func orderListPage(b *testing.B, n int) []byte {
	b.Helper()
	var one struct {
		Data struct {
			Order map[string]json.RawMessage `json:"order"`
		} `json:"data"`
	}
	if err := json.Unmarshal(readFixture(b, "order.json"), &one); err != nil {
		b.Fatal(err)
	}
	items := make([]map[string]json.RawMessage, n)
	for i := range items {
		o := make(map[string]json.RawMessage, len(one.Data.Order))
		for k, v := range one.Data.Order {
			o[k] = v
		}
		o["order_reference"] = json.RawMessage(fmt.Sprintf(`"BENCH-%04d"`, i))
		items[i] = o
	}
	page := map[string]any{
		"api_version": "3.8.0",
		"data": map[string]any{
			"kind": "order", "current_item_count": n, "items_per_page": n, "start_index": 1,
			"total_items": n, "page_index": 1, "total_pages": 1, "items": items,
		},
	}
	raw, err := json.Marshal(page)
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

// BenchmarkDecodeOrderList measures decoding one page of orders into the
// generated model, the work every Create look-up and every List does.
func BenchmarkDecodeOrderList(b *testing.B) {
	raw := orderListPage(b, benchPageSize)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		var out generated.OrderListResponse
		if err := json.Unmarshal(raw, &out); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeOrder measures encoding one order, as an Update sends it.
func BenchmarkEncodeOrder(b *testing.B) {
	var in generated.OrderDetailResponse
	if err := json.Unmarshal(readFixture(b, "order.json"), &in); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(in.Data.Order); err != nil {
			b.Fatal(err)
		}
	}
}
