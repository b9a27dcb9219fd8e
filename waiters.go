package prio

import "sync"

// waiters lets webhook events wake Reconcile calls waiting on an order. A
// waiter is keyed by the external reference and, once known, by the order
// reference too, since a notification may carry only the latter.
type waiters struct {
	mu      sync.Mutex
	byRef   map[string]map[*waiter]struct{}
	aliases map[string]string // order reference → external reference
}

type waiter struct{ ch chan struct{} }

func newWaiters() *waiters {
	return &waiters{byRef: map[string]map[*waiter]struct{}{}, aliases: map[string]string{}}
}

// add registers a waiter for an external reference. The channel receives
// (without blocking the notifier) when an event for the order arrives.
func (w *waiters) add(externalReference string) (<-chan struct{}, func()) {
	wt := &waiter{ch: make(chan struct{}, 1)}
	w.mu.Lock()
	set := w.byRef[externalReference]
	if set == nil {
		set = map[*waiter]struct{}{}
		w.byRef[externalReference] = set
	}
	set[wt] = struct{}{}
	w.mu.Unlock()
	return wt.ch, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		delete(set, wt)
		if len(set) == 0 {
			delete(w.byRef, externalReference)
			for o, e := range w.aliases {
				if e == externalReference {
					delete(w.aliases, o)
				}
			}
		}
	}
}

// alias records that orderReference belongs to externalReference, while
// someone waits on it.
func (w *waiters) alias(externalReference, orderReference string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.byRef[externalReference]; ok {
		w.aliases[orderReference] = externalReference
	}
}

// notify wakes every waiter of the order. Either reference may be empty.
func (w *waiters) notify(orderReference, externalReference string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if externalReference == "" {
		externalReference = w.aliases[orderReference]
	}
	for wt := range w.byRef[externalReference] {
		select {
		case wt.ch <- struct{}{}:
		default:
		}
	}
}

// NotifyOrderEvent tells waiting Reconcile calls that something happened to
// an order, so they poll now instead of at their next scheduled time. The
// webhook handler calls it (see WithWebhookNotify); call it yourself if you
// receive Prio's notifications another way.
func (c *Client) NotifyOrderEvent(orderReference, externalReference string) {
	c.waiters.notify(orderReference, externalReference)
}
