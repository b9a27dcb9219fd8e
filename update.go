package prio

import (
	"encoding/json"
	"fmt"
)

// UpdateOf returns the body of an Update Order that sends o back as it is,
// to change and pass to OrdersService.Update. Prio replaces the order with
// what an update sends, so the body keeps every field of o and of its
// bookings, contacts and options, including the fields this SDK version does
// not know (they travel in the models' AdditionalProperties). Fields Prio
// sets itself are sent back too; Prio ignores read-only fields in a request.
func UpdateOf(o *Order) (*OrderUpdate, error) {
	if o == nil {
		return nil, fmt.Errorf("%w: no order", ErrInvalidArgument)
	}
	b, err := json.Marshal(o)
	if err != nil {
		return nil, fmt.Errorf("prio: encoding the order: %w", err)
	}
	var u OrderUpdate
	if err := json.Unmarshal(b, &u); err != nil {
		return nil, fmt.Errorf("prio: the order does not fit an update: %w", err)
	}
	return &u, nil
}
