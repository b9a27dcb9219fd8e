package priotest

import (
	"slices"
	"time"

	"github.com/priosdk/prio-go/generated"
)

// extState is what the sandbox keeps beside bookings: the Contacts module,
// payments and the log of notifications sent. It is part of state, so
// Server.mu guards it and Reset forgets it.
type extState struct {
	contacts      map[string]*contact // by contact_uid
	contactList   []*contact          // in creation order
	payments      []*payment
	notifications []*notificationRecord
}

// orderCreated runs after Create Order made o (from the reservation res,
// nil for a direct booking): the order takes over the reservation's
// promocodes and its contacts join the Contacts module.
func (st *state) orderCreated(now time.Time, o *order, res *reservation) {
	if res != nil && len(res.promos) > 0 {
		o.promos = append([]string(nil), res.promos...)
	}
	st.adoptContacts(now, o)
}

// adoptContacts puts the order's contacts in the Contacts module and gives
// them its read-only fields (contact_uid, version, dates), as Prio does for
// the contacts of a created or an updated order. The order gets its own
// copy of the list.
func (st *state) adoptContacts(now time.Time, o *order) {
	if o.contacts == nil {
		return
	}
	cs := slices.Clone(*o.contacts)
	for i := range cs {
		cs[i] = st.registerContact(now, cs[i]).stamp(cs[i])
	}
	o.contacts = &cs
}

// notificationRecord is one notification sent to one webhook.
type notificationRecord struct {
	model generated.WebhookNotification
}
