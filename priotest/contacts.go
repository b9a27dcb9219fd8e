package priotest

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/priosdk/prio-go/generated"
	"github.com/priosdk/prio-go/internal/apiserver"
)

// contact is one entry of the Contacts module with its history. Contacts
// are created by the orders that carry them (order_contacts): the spec has
// no Create or Delete Contact.
type contact struct {
	uid      string
	versions []generated.ContactDetails // oldest first; the last is current
	created  time.Time
	modified time.Time
	version  int
}

func (c *contact) current() generated.ContactDetails { return c.versions[len(c.versions)-1] }

// registerContact stores d in the Contacts module and returns its entry.
// A contact_uid the module knows leaves that contact as it is; any other is
// kept, and a missing one is drawn.
func (st *state) registerContact(now time.Time, d generated.ContactDetails) *contact {
	if st.ext.contacts == nil {
		st.ext.contacts = map[string]*contact{}
	}
	uid := deref(d.ContactUid)
	if c, ok := st.ext.contacts[uid]; ok {
		return c
	}
	if uid == "" {
		uid = st.uuid().String()
	}
	c := &contact{uid: uid, created: now, modified: now, version: 1}
	c.versions = append(c.versions, c.stamp(d))
	st.ext.contacts[uid] = c
	st.ext.contactList = append(st.ext.contactList, c)
	return c
}

// stamp sets the read-only fields of d from c.
func (c *contact) stamp(d generated.ContactDetails) generated.ContactDetails {
	d.ContactUid = ptr(c.uid)
	d.ContactVersion = ptr(c.version)
	d.ContactCreated = dtp(c.created)
	d.ContactModified = dtp(c.modified)
	return d
}

func (h handlers) contactByUID(uid string) (*contact, *apiError) {
	c, ok := h.s.st.ext.contacts[uid]
	if !ok {
		return nil, errorf(http.StatusNotFound, "NOT_FOUND", "Contact %s does not exist.", uid)
	}
	return c, nil
}

// GetContacts lists the Contacts module, filtered by contact_type and
// contact_external_uid, paged.
func (h handlers) GetContacts(ctx context.Context, req apiserver.GetContactsRequestObject) (apiserver.GetContactsResponseObject, error) {
	p := req.Params
	if e := h.checkDistributor(p.DistributorId); e != nil {
		return nil, e
	}
	s := h.s
	s.mu.Lock()
	last := s.st.epoch
	var all []generated.ContactDetails
	for _, c := range s.st.ext.contactList {
		d := c.current()
		if p.ContactType != nil && *p.ContactType != "" && deref(d.ContactType) != *p.ContactType {
			continue
		}
		if p.ContactExternalUid != nil && *p.ContactExternalUid != "" && deref(d.ContactExternalUid) != *p.ContactExternalUid {
			continue
		}
		all = append(all, d)
		if c.modified.After(last) {
			last = c.modified
		}
	}
	s.mu.Unlock()
	pg, e := paginate(len(all), p.ItemsPerPage, p.StartIndex, p.Page)
	if e != nil {
		return nil, e
	}
	setLastModified(ctx, last)
	items := all[pg.from:pg.to]
	return apiserver.GetContacts200JSONResponse{
		ApiVersion: ptr(apiVersion),
		Data: generated.ContactListResponseData{
			Kind: generated.KindContact, Items: nonNil(items),
			CurrentItemCount: len(items), ItemsPerPage: pg.perPage, StartIndex: pg.start,
			TotalItems: pg.total, PageIndex: pg.pageIndex, TotalPages: pg.totalPages,
		},
	}, nil
}

// GetContact answers one contact; with include_versions=true its earlier
// versions follow it, newest first.
func (h handlers) GetContact(ctx context.Context, req apiserver.GetContactRequestObject) (apiserver.GetContactResponseObject, error) {
	s := h.s
	s.mu.Lock()
	defer s.mu.Unlock()
	c, e := h.contactByUID(req.ContactUid)
	if e != nil {
		return nil, e
	}
	items := []generated.ContactDetails{c.current()}
	if v := req.Params.IncludeVersions; v != nil && strings.EqualFold(*v, "true") {
		for i := len(c.versions) - 2; i >= 0; i-- {
			items = append(items, c.versions[i])
		}
	}
	setLastModified(ctx, c.modified)
	return apiserver.GetContact200JSONResponse{
		ApiVersion: ptr(apiVersion),
		Data:       generated.ContactDetailResponseData{Kind: generated.KindContact, Items: items},
	}, nil
}

// UpdateContact replaces a contact with the body (nothing is merged) as a
// new version. The orders named in order_reference get the new version in
// place of the old one (or added when they did not carry it), which raises
// their version.
func (h handlers) UpdateContact(ctx context.Context, req apiserver.UpdateContactRequestObject) (apiserver.UpdateContactResponseObject, error) {
	s := h.s
	s.mu.Lock()
	now := s.now()
	events := s.st.settle(now, distributorName)
	defer func() { s.mu.Unlock(); s.dispatch(events) }()
	c, e := h.contactByUID(req.ContactUid)
	if e != nil {
		return nil, e
	}
	var orders []*order
	if refs := req.Params.OrderReference; refs != nil {
		for _, ref := range *refs {
			o, ok := s.st.ordersByRef[ref]
			if !ok {
				return nil, errorf(http.StatusNotFound, "NOT_FOUND", "Order %s does not exist.", ref)
			}
			if o.status == generated.ORDERCANCELLED {
				return nil, errorf(http.StatusConflict, "ORDER_CANCELLED", "Order %s is cancelled and cannot be amended.", o.ref)
			}
			orders = append(orders, o)
		}
	}
	c.version++
	c.modified = now
	d := c.stamp(req.Body.Data.Contact)
	c.versions = append(c.versions, d)
	for _, o := range orders {
		var cs []generated.ContactDetails
		if o.contacts != nil {
			cs = *o.contacts
		}
		if i := slices.IndexFunc(cs, func(x generated.ContactDetails) bool { return deref(x.ContactUid) == c.uid }); i >= 0 {
			cs[i] = d
		} else {
			cs = append(cs, d)
		}
		o.contacts = &cs
		o.version++
		o.modified = now
		events = append(events, event{kind: generated.ORDERUPDATE, order: o.model(distributorName), ref: o.ref, at: now})
	}
	setLastModified(ctx, now)
	return apiserver.UpdateContact200JSONResponse{
		ApiVersion: ptr(apiVersion),
		Data:       generated.ContactDetailResponseData{Kind: generated.KindContact, Items: []generated.ContactDetails{d}},
	}, nil
}
