package priotest

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/priosdk/prio-go/generated"
	"github.com/priosdk/prio-go/wire"
)

// state is everything the sandbox remembers about bookings. It is guarded
// by Server.mu; every method expects the lock to be held.
type state struct {
	epoch time.Time // when the catalogue was seeded (Last-Modified of products)
	rng   *rand.Rand
	seq   int // one counter for every reference, so references never repeat

	orders      []*order
	ordersByRef map[string]*order
	ordersByExt map[string][]*order
	pending     []*order // slow-supplier orders not yet confirmed

	reservations map[string]*reservation
	holding      []*reservation // reservations whose lines hold capacity

	usage map[string]*slotUsage // by availability id

	webhooks []*webhook

	// cacheLag is how far behind the live orders cached reads are (see
	// WithOrderCacheLag); with a lag, each order keeps its recent versions.
	cacheLag time.Duration

	ext extState // contacts, payments and notifications (extstate.go)
}

type slotUsage struct{ booked, held int }

func newState(now time.Time, seed int64, cacheLag time.Duration) *state {
	return &state{
		cacheLag:     cacheLag,
		epoch:        now.Truncate(time.Second),
		rng:          rand.New(rand.NewPCG(uint64(seed), 0x5a9d_b0c5)),
		ordersByRef:  map[string]*order{},
		ordersByExt:  map[string][]*order{},
		reservations: map[string]*reservation{},
		usage:        map[string]*slotUsage{},
	}
}

func (st *state) next(prefix byte) string {
	st.seq++
	return fmt.Sprintf("%c%09d", prefix, st.seq)
}

// voucherCode draws a 12-digit code, the product_type_code a guest redeems.
func (st *state) voucherCode() string { return fmt.Sprintf("%012d", st.rng.Int64N(1_000_000_000_000)) }

func (st *state) uuid() uuid.UUID {
	var b [16]byte
	for i := range b {
		b[i] = byte(st.rng.UintN(256))
	}
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	return uuid.UUID(b)
}

func (st *state) use(slotID string) *slotUsage {
	u := st.usage[slotID]
	if u == nil {
		u = &slotUsage{}
		st.usage[slotID] = u
	}
	return u
}

func (st *state) open(p *product, slotID string) int {
	u := st.usage[slotID]
	if u == nil {
		return p.capacity
	}
	return p.capacity - u.booked - u.held
}

// lineItem is one product type and count of a booking request.
type lineItem struct {
	typeID string
	count  int
}

// bookingLine is a validated request line: a product, maybe a slot, pax.
type bookingLine struct {
	extRef   string
	product  *product
	slot     *slot
	items    []lineItem
	language string
}

func (l bookingLine) pax() int {
	n := 0
	for _, it := range l.items {
		n += it.count
	}
	return n
}

// parseLine checks one requested booking line against the catalogue.
func parseLine(now time.Time, productID string, availabilityID *string, items []generated.RegularBookingItem) (bookingLine, *apiError) {
	p, ok := productByID(productID)
	if !ok {
		return bookingLine{}, errorf(http.StatusUnprocessableEntity, codeInvalidProduct, "Product %s does not exist or is not sold to this distributor.", productID)
	}
	if len(items) == 0 {
		return bookingLine{}, errorf(http.StatusBadRequest, codeInvalidRequest, "Booking of product %s has no product_type_details.", productID)
	}
	line := bookingLine{product: p}
	for _, it := range items {
		if _, ok := productTypeByID(it.ProductTypeId); !ok {
			return bookingLine{}, errorf(http.StatusUnprocessableEntity, "INVALID_PRODUCT_TYPE", "Product type %s is not sold with product %s.", it.ProductTypeId, productID)
		}
		if it.ProductTypeCount < 1 {
			return bookingLine{}, errorf(http.StatusBadRequest, codeInvalidRequest, "product_type_count must be at least 1.")
		}
		line.items = append(line.items, lineItem{typeID: it.ProductTypeId, count: it.ProductTypeCount})
	}
	if p.capacity == 0 {
		return line, nil
	}
	if availabilityID == nil || *availabilityID == "" {
		return bookingLine{}, errorf(http.StatusBadRequest, codeInvalidRequest, "Product %s has managed capacity: product_availability_id is required.", productID)
	}
	s, ok := p.slotByID(*availabilityID)
	if !ok {
		return bookingLine{}, errorf(http.StatusUnprocessableEntity, "INVALID_AVAILABILITY", "Availability %s does not exist for product %s.", *availabilityID, productID)
	}
	if !s.to.After(now) || s.from.After(now.Add(maxBookingHorizon)) {
		return bookingLine{}, errorf(http.StatusUnprocessableEntity, codeNoAvailability, "Availability %s cannot be booked any more (or not yet).", s.id)
	}
	line.slot = &s
	return line, nil
}

// checkCapacity verifies that lines fit in what is open, counting lines of
// the same slot together.
func (st *state) checkCapacity(lines []bookingLine) *apiError {
	demand := map[string]int{}
	for _, l := range lines {
		if l.slot != nil {
			demand[l.slot.id] += l.pax()
		}
	}
	for _, l := range lines {
		if l.slot == nil {
			continue
		}
		if open := st.open(l.product, l.slot.id); demand[l.slot.id] > open {
			return errorf(http.StatusConflict, codeNoAvailability, "Availability %s has %d open spots; %d asked.", l.slot.id, max(open, 0), demand[l.slot.id])
		}
	}
	return nil
}

// reservation is a hold on capacity until validUntil.
type reservation struct {
	ref, extRef   string
	distributorID string
	partnerID     *string
	created       time.Time
	modified      time.Time
	validUntil    time.Time
	lines         []*resLine
	orderRef      string
	promos        []string // promocodes applied, in order (promocodes.go)
}

type resLine struct {
	ref    string
	line   bookingLine
	status generated.BookingStatusTypes
}

func (r *reservation) active() bool {
	return slices.ContainsFunc(r.lines, func(l *resLine) bool { return l.status == generated.BOOKINGRESERVED })
}

func (r *reservation) anyStatus(s generated.BookingStatusTypes) bool {
	return slices.ContainsFunc(r.lines, func(l *resLine) bool { return l.status == s })
}

// release gives a reserved line's spots back and sets its final status.
func (st *state) release(l *resLine, status generated.BookingStatusTypes) {
	if l.status != generated.BOOKINGRESERVED {
		return
	}
	if l.line.slot != nil {
		st.use(l.line.slot.id).held -= l.line.pax()
	}
	l.status = status
}

func (st *state) dropHolding(r *reservation) {
	if !r.active() {
		st.holding = slices.DeleteFunc(st.holding, func(x *reservation) bool { return x == r })
	}
}

// order is a confirmed (or pending) order.
type order struct {
	seq            int
	ref, extRef    string
	distributorID  string
	partnerID      *string
	language       string
	channel        generated.OrderChannel
	settlement     *generated.SettlementType
	contacts       *[]generated.ContactDetails
	notes          *[]generated.Note
	customFields   *[]generated.CustomField
	options        *generated.OrderOptions
	status         generated.OrderStatusTypes
	version        int
	created        time.Time
	modified       time.Time
	confirmed      time.Time
	cancelled      time.Time
	confirmAt      time.Time // when a pending order confirms
	reservationRef string
	bookings       []*booking
	extra          orderExtra // fields the spec does not know (extra.go)
	promos         []string   // promocodes taken over from the reservation
	// versions are frozen copies of the order, each with the time it was
	// committed, oldest first, for cached reads; kept only with a cache lag.
	versions []orderVersion
}

// orderVersion is an order as it was from at until the next version.
type orderVersion struct {
	at time.Time
	o  *order
}

// frozen is a copy of o that later changes to o do not reach.
func (o *order) frozen() *order {
	c := *o
	c.versions = nil
	c.bookings = make([]*booking, len(o.bookings))
	for i, b := range o.bookings {
		bc := *b
		bc.pax = make([]*pax, len(b.pax))
		for j, p := range b.pax {
			pc := *p
			bc.pax[j] = &pc
		}
		c.bookings[i] = &bc
	}
	return &c
}

// commit records o, as it is now, as committed at at, for cached reads. It
// drops the versions that no cached read can see any more: those replaced
// before at minus the lag.
func (st *state) commit(o *order, at time.Time) {
	if st.cacheLag <= 0 {
		return
	}
	cut := at.Add(-st.cacheLag)
	i := 0
	for i+1 < len(o.versions) && !o.versions[i+1].at.After(cut) {
		i++
	}
	o.versions = append(o.versions[i:], orderVersion{at: at, o: o.frozen()})
}

// cachedView is o as a read from Prio's cache sees it at now: the last
// version committed at least the lag ago, or nil when the order is too new
// to be there. Without a lag it is o itself.
func (st *state) cachedView(o *order, now time.Time) *order {
	if st.cacheLag <= 0 {
		return o
	}
	cut := now.Add(-st.cacheLag)
	for i := len(o.versions) - 1; i >= 0; i-- {
		if !o.versions[i].at.After(cut) {
			return o.versions[i].o
		}
	}
	return nil
}

type booking struct {
	ref       string
	extRef    string
	line      bookingLine
	status    generated.BookingStatusTypes
	version   int
	created   time.Time
	modified  time.Time
	confirmed time.Time
	cancelled time.Time
	pax       []*pax
}

type pax struct {
	typeID string
	code   string
	txID   string
	cents  int
	status generated.StatusTypes
}

func (o *order) totalCents() int {
	n := 0
	for _, b := range o.bookings {
		n += b.cents()
	}
	return n
}

func (b *booking) cents() int {
	n := 0
	for _, p := range b.pax {
		if p.status != generated.StatusTypesCANCELLED {
			n += p.cents
		}
	}
	return n
}

// newOrder books lines (whose capacity the caller has checked or held) as
// one order. Slow products leave it pending until now+slowDelay.
func (st *state) newOrder(now time.Time, req *generated.CreateOrderModel, lines []bookingLine, slowDelay time.Duration, fromHold bool) *order {
	ref := st.next('9')
	o := &order{
		seq:           st.seq,
		ref:           ref,
		extRef:        req.OrderExternalReference,
		distributorID: req.OrderDistributorId,
		partnerID:     req.OrderPartnerId,
		language:      req.OrderLanguage,
		channel:       generated.OrderChannelPARTNER,
		settlement:    req.OrderSettlementType,
		contacts:      req.OrderContacts,
		notes:         req.OrderNotes,
		customFields:  req.OrderCustomFields,
		options:       req.OrderOptions,
		status:        generated.ORDERCONFIRMED,
		version:       1,
		created:       now,
		modified:      now,
		confirmed:     now,
	}
	if req.OrderChannel != nil && *req.OrderChannel != "" {
		o.channel = *req.OrderChannel
	}
	slow := false
	for _, l := range lines {
		slow = slow || (l.product.slow && slowDelay > 0)
	}
	bookingStatus, paxStatus := generated.BOOKINGCONFIRMED, generated.StatusTypesCONFIRMED
	if slow {
		o.status, o.confirmed, o.confirmAt = generated.ORDERPENDING, time.Time{}, now.Add(slowDelay)
		bookingStatus, paxStatus = generated.BOOKINGPROCESSINGCONFIRMATION, generated.StatusTypesRESERVED
		st.pending = append(st.pending, o)
	}
	for _, l := range lines {
		b := &booking{
			ref: st.next('8'), extRef: l.extRef, line: l, status: bookingStatus, version: 1,
			created: now, modified: now,
		}
		if !slow {
			b.confirmed = now
		}
		for _, it := range l.items {
			for range it.count {
				b.pax = append(b.pax, &pax{typeID: it.typeID, code: st.voucherCode(), txID: st.next('5'),
					cents: l.product.prices[it.typeID], status: paxStatus})
			}
		}
		if l.slot != nil {
			u := st.use(l.slot.id)
			u.booked += l.pax()
			if fromHold {
				u.held -= l.pax()
			}
		}
		o.bookings = append(o.bookings, b)
	}
	st.commit(o, now)
	st.orders = append(st.orders, o)
	st.ordersByRef[o.ref] = o
	st.ordersByExt[o.extRef] = append(st.ordersByExt[o.extRef], o)
	return o
}

// cancelPax cancels one person of a booking, giving its spot back.
func (st *state) cancelPax(b *booking, p *pax) bool {
	if p.status == generated.StatusTypesCANCELLED {
		return false
	}
	p.status = generated.StatusTypesCANCELLED
	if b.line.slot != nil {
		st.use(b.line.slot.id).booked--
	}
	return true
}

// event is a change a webhook may be told about.
type event struct {
	kind  generated.NotificationEvent
	order generated.ConfirmedOrderModel
	ref   string
	at    time.Time
}

// settle applies what the clock says has happened: holds that ran out
// expire (and give their capacity back) and slow orders that waited long
// enough confirm. It returns the order events to deliver.
func (st *state) settle(now time.Time, distributorName string) []event {
	for _, r := range slices.Clone(st.holding) {
		if now.Before(r.validUntil) {
			continue
		}
		for _, l := range r.lines {
			st.release(l, generated.BOOKINGRESERVATIONEXPIRED)
		}
		r.modified = r.validUntil
		st.dropHolding(r)
	}
	var events []event
	keep := st.pending[:0]
	for _, o := range st.pending {
		if o.status != generated.ORDERPENDING {
			continue
		}
		if now.Before(o.confirmAt) {
			keep = append(keep, o)
			continue
		}
		at := o.confirmAt
		o.status, o.confirmed, o.modified = generated.ORDERCONFIRMED, at, at
		o.version++
		for _, b := range o.bookings {
			if b.status != generated.BOOKINGPROCESSINGCONFIRMATION {
				continue
			}
			b.status, b.confirmed, b.modified = generated.BOOKINGCONFIRMED, at, at
			b.version++
			for _, p := range b.pax {
				if p.status == generated.StatusTypesRESERVED {
					p.status = generated.StatusTypesCONFIRMED
				}
			}
		}
		st.commit(o, at)
		events = append(events, event{kind: generated.ORDERUPDATE, order: o.model(distributorName), ref: o.ref, at: at})
	}
	clear(st.pending[len(keep):])
	st.pending = keep
	return events
}

// model renders o as Prio's ConfirmedOrderModel.
func (o *order) model(distributorName string) generated.ConfirmedOrderModel {
	m := generated.ConfirmedOrderModel{
		OrderReference:            ptr(o.ref),
		OrderExternalReference:    o.extRef,
		OrderDistributorId:        o.distributorID,
		OrderDistributorName:      ptr(distributorName),
		OrderPartnerId:            o.partnerID,
		OrderPlatformId:           ptr("1"),
		OrderPlatformName:         ptr("Prio Sandbox"),
		OrderResellerId:           ptr("500"),
		OrderResellerName:         ptr("Sandbox Reseller"),
		OrderLanguage:             o.language,
		OrderChannel:              o.channel,
		OrderSettlementType:       o.settlement,
		OrderContacts:             o.contacts,
		OrderNotes:                o.notes,
		OrderCustomFields:         o.customFields,
		OrderOptions:              o.options,
		OrderStatus:               o.status,
		OrderVersion:              ptr(o.version),
		OrderPricing:              pricing(o.totalCents()),
		OrderCreated:              dtp(o.created),
		OrderModified:             dtp(o.modified),
		OrderConfirmed:            dtp(o.confirmed),
		OrderCancellationDateTime: dtp(o.cancelled),
		OrderCreatedName:          ptr("Sandbox API"),
		OrderCreatedEmail:         ptr("api@sandbox.example"),
		OrderRedacted:             ptr(wire.NewBool(false)),
		OrderViewType:             "DISTRIBUTOR",
		OrderBookings:             make([]generated.ConfirmedBooking, 0, len(o.bookings)),
	}
	for _, b := range o.bookings {
		m.OrderBookings = append(m.OrderBookings, b.model())
	}
	if len(o.promos) > 0 {
		m.OrderPricing, m.OrderPromocodes = promoPricing(o.totalCents(), o.promos)
	}
	o.extra.attach(&m)
	return m
}

func (b *booking) model() generated.ConfirmedBooking {
	p := b.line.product
	m := generated.ConfirmedBooking{
		BookingReference:           ptr(b.ref),
		BookingExternalReference:   b.extRef,
		BookingStatus:              b.status,
		BookingVersion:             ptr(b.version),
		BookingLanguage:            ptr(b.line.language),
		BookingCreated:             dtp(b.created),
		BookingModified:            dtp(b.modified),
		BookingConfirmed:           dtp(b.confirmed),
		BookingCancelled:           dtp(b.cancelled),
		BookingVoucherReleased:     ptr(wire.NewBool(b.status == generated.BOOKINGCONFIRMED)),
		BookingPricing:             pricing(b.cents()),
		ProductId:                  p.id,
		ProductTitle:               ptr(p.title),
		ProductAdmissionType:       p.admission,
		ProductSupplierId:          ptr("9001"),
		ProductSupplierName:        ptr("Sandbox Supplier"),
		ProductMarketAdminId:       ptr("500"),
		ProductMarketAdminName:     ptr("Sandbox Market"),
		ProductCurrencyCode:        ptr("EUR"),
		ProductCancellationAllowed: ptr(wire.NewBool(true)),
		ProductCodeSettings:        codeSettings(),
		ProductTypeDetails:         make([]generated.ConfirmedBookingDetail, 0, len(b.pax)),
	}
	if b.line.language == "" {
		m.BookingLanguage = ptr("en")
	}
	if s := b.line.slot; s != nil {
		m.ProductAvailabilityId = ptr(s.id)
		m.ProductAvailabilityFromDateTime = dtp(s.from)
		m.ProductAvailabilityToDateTime = dtp(s.to)
		m.BookingTravelDate = dtp(s.from)
	}
	for _, x := range b.pax {
		t, _ := productTypeByID(x.typeID)
		redemption := generated.RedemptionStatusACTIVE
		if x.status == generated.StatusTypesCANCELLED {
			redemption = generated.RedemptionStatusCANCELLED
		}
		m.ProductTypeDetails = append(m.ProductTypeDetails, generated.ConfirmedBookingDetail{
			ProductType:                 t.kind,
			ProductTypeId:               t.id,
			ProductTypeLabel:            ptr(t.label),
			ProductTypeCount:            1,
			ProductTypePax:              ptr(1),
			ProductTypeCode:             ptr(x.code),
			ProductTypeTransactionId:    ptr(x.txID),
			ProductTypeStatus:           ptr(x.status),
			ProductTypeRedemptionStatus: redemption,
			ProductTypePricing:          pricing(x.cents),
		})
	}
	return m
}

// model renders r as Prio's ReservationModel.
func (r *reservation) model(distributorName string) generated.ReservationModel {
	m := generated.ReservationModel{
		ReservationReference:         ptr(r.ref),
		ReservationExternalReference: r.extRef,
		ReservationDistributorId:     r.distributorID,
		ReservationDistributorName:   ptr(distributorName),
		ReservationPartnerId:         r.partnerID,
		ReservationValidUntil:        dtp(r.validUntil),
		ReservationDetails:           make([]generated.ReservationDetail, 0, len(r.lines)),
	}
	total := 0
	for _, l := range r.lines {
		p := l.line.product
		d := generated.ReservationDetail{
			BookingExternalReference:     l.line.extRef,
			BookingReservationReference:  ptr(l.ref),
			BookingReservationValidUntil: dtp(r.validUntil),
			BookingStatus:                ptr(l.status),
			BookingLanguage:              ptr("en"),
			BookingCreated:               dtp(r.created),
			BookingModified:              dtp(r.modified),
			ProductId:                    p.id,
			ProductTitle:                 ptr(p.title),
			ProductAdmissionType:         ptr(p.admission),
			ProductSupplierId:            ptr("9001"),
			ProductSupplierName:          ptr("Sandbox Supplier"),
			ProductMarketAdminId:         ptr("500"),
			ProductMarketAdminName:       ptr("Sandbox Market"),
			ProductCurrencyCode:          ptr("EUR"),
			ProductCancellationAllowed:   ptr(wire.NewBool(true)),
		}
		if s := l.line.slot; s != nil {
			d.ProductAvailabilityId = ptr(s.id)
			d.ProductAvailabilityFromDateTime = dtp(s.from)
			d.ProductAvailabilityToDateTime = dtp(s.to)
			d.BookingTravelDate = dtp(s.from)
		}
		lineCents := 0
		for _, it := range l.line.items {
			t, _ := productTypeByID(it.typeID)
			price := p.prices[it.typeID]
			for range it.count {
				lineCents += price
				d.ProductTypeDetails = append(d.ProductTypeDetails, generated.RegularBookingItem{
					ProductType:        ptr(t.kind),
					ProductTypeId:      t.id,
					ProductTypeLabel:   ptr(t.label),
					ProductTypeCount:   1,
					ProductTypePax:     ptr(1),
					ProductTypePricing: ptr(pricing(price)),
				})
			}
		}
		d.BookingPricing = ptr(pricing(lineCents))
		if l.status == generated.BOOKINGRESERVED || l.status == generated.BOOKINGCONFIRMED {
			total += lineCents
		}
		m.ReservationDetails = append(m.ReservationDetails, d)
	}
	m.ReservationPricing = ptr(pricing(total))
	if len(r.promos) > 0 {
		p, applied := promoPricing(total, r.promos)
		m.ReservationPricing, m.ReservationPromocodes = &p, applied
	}
	return m
}
