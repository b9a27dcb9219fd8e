package priotest

import (
	"cmp"
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/priosdk/prio-go/generated"
	"github.com/priosdk/prio-go/internal/apiserver"
	"github.com/priosdk/prio-go/wire"
)

// handlers implements the generated strict server interface on the
// sandbox's state. Every method runs behind the pipeline, so the caller is
// authenticated and the request matches the spec.
type handlers struct{ s *Server }

var _ apiserver.StrictServerInterface = handlers{}

const distributorName = "Sandbox Distributor"

// callInfo carries what the pipeline knows about a call into the handlers.
type callInfo struct {
	w        http.ResponseWriter
	r        *http.Request
	clientID string
}

type callInfoKey struct{}

func info(ctx context.Context) *callInfo {
	if ci, ok := ctx.Value(callInfoKey{}).(*callInfo); ok {
		return ci
	}
	return &callInfo{}
}

// setLastModified lets the pipeline answer If-Modified-Since with 304.
func setLastModified(ctx context.Context, t time.Time) {
	if ci := info(ctx); ci.w != nil {
		ci.w.Header().Set("Last-Modified", t.UTC().Format(http.TimeFormat))
	}
}

func markReplayed(ctx context.Context) {
	if ci := info(ctx); ci.w != nil {
		ci.w.Header().Set(headerReplayed, "true")
	}
}

func (h handlers) checkDistributor(id *string) *apiError {
	if id != nil && *id != "" && *id != h.s.cfg.distributorID {
		return errorf(http.StatusForbidden, "FORBIDDEN", "These credentials cannot act for distributor %s.", *id)
	}
	return nil
}

// --- authentication and system ---

// GetToken issues an access token; the Basic credentials were checked by
// the pipeline.
func (h handlers) GetToken(ctx context.Context, req apiserver.GetTokenRequestObject) (apiserver.GetTokenResponseObject, error) {
	if req.Body == nil || req.Body.GrantType != "client_credentials" {
		return nil, errorf(http.StatusBadRequest, "unsupported_grant_type", "grant_type must be client_credentials.")
	}
	token, ttl := h.s.issueToken(info(ctx).clientID)
	out := apiserver.GetToken200JSONResponse{
		AccessToken: token,
		TokenType:   "Bearer",
		ExpiresIn:   int((ttl + time.Second - 1) / time.Second),
		Scope:       req.Body.Scope,
	}
	return out, nil
}

// GetSystemPing answers "Ping".
func (handlers) GetSystemPing(context.Context, apiserver.GetSystemPingRequestObject) (apiserver.GetSystemPingResponseObject, error) {
	return apiserver.GetSystemPing200TextResponse("Ping"), nil
}

// GetSystemStatus answers 200.
func (handlers) GetSystemStatus(context.Context, apiserver.GetSystemStatusRequestObject) (apiserver.GetSystemStatusResponseObject, error) {
	return apiserver.GetSystemStatus200Response{}, nil
}

// --- products and availability ---

// GetProducts lists the seeded catalogue, optionally filtered by product_id.
func (h handlers) GetProducts(ctx context.Context, req apiserver.GetProductsRequestObject) (apiserver.GetProductsResponseObject, error) {
	p := req.Params
	if e := h.checkDistributor(p.DistributorId); e != nil {
		return nil, e
	}
	var items []generated.ProductModel
	epoch := h.s.epoch()
	for i := range catalogue {
		pr := &catalogue[i]
		if p.ProductId != nil && len(*p.ProductId) > 0 && !slices.Contains(*p.ProductId, pr.id) {
			continue
		}
		items = append(items, pr.model(epoch, h.s.cfg.distributorID))
	}
	pg, e := paginate(len(items), p.ItemsPerPage, p.StartIndex, p.Page)
	if e != nil {
		return nil, e
	}
	setLastModified(ctx, epoch)
	items = items[pg.from:pg.to]
	return apiserver.GetProducts200JSONResponse{
		ApiVersion: ptr(apiVersion),
		Data: generated.ProductListResponseData{
			Kind: generated.KindProduct, Items: nonNil(items),
			CurrentItemCount: len(items), ItemsPerPage: pg.perPage, StartIndex: pg.start,
			TotalItems: pg.total, PageIndex: pg.pageIndex, TotalPages: pg.totalPages,
		},
	}, nil
}

// GetProduct answers one seeded product.
func (h handlers) GetProduct(ctx context.Context, req apiserver.GetProductRequestObject) (apiserver.GetProductResponseObject, error) {
	if e := h.checkDistributor(req.Params.DistributorId); e != nil {
		return nil, e
	}
	p, ok := productByID(req.ProductId)
	if !ok {
		return nil, errorf(http.StatusNotFound, "NOT_FOUND", "Product %s does not exist.", req.ProductId)
	}
	epoch := h.s.epoch()
	setLastModified(ctx, epoch)
	return apiserver.GetProduct200JSONResponse{
		ApiVersion: ptr(apiVersion),
		Data:       generated.ProductDetailData{Kind: generated.KindProduct, Product: p.model(epoch, h.s.cfg.distributorID)},
	}, nil
}

// maxAvailabilityDays is Prio's limit on one availability request.
const maxAvailabilityDays = 90

func dayRange(from wire.Date, to *wire.Date) ([]time.Time, *apiError) {
	start := time.Date(from.Year(), from.Month(), from.Day(), 0, 0, 0, 0, sandboxZone)
	end := start
	if to != nil {
		end = time.Date(to.Year(), to.Month(), to.Day(), 0, 0, 0, 0, sandboxZone)
	}
	if end.Before(start) {
		return nil, errorf(http.StatusBadRequest, codeInvalidRequest, "to_date is before from_date.")
	}
	var days []time.Time
	for d := start; !d.After(end); d = d.AddDate(0, 0, 1) {
		if len(days) == maxAvailabilityDays {
			return nil, errorf(http.StatusBadRequest, codeInvalidRequest, "At most %d days of availability per request.", maxAvailabilityDays)
		}
		days = append(days, d)
	}
	return days, nil
}

// availability lists the slots of products over days with their spots now.
func (h handlers) availability(ctx context.Context, products []*product, days []time.Time, spotsOpenMin *int) generated.AvailabilitiesListResponse {
	s := h.s
	s.mu.Lock()
	now := s.now()
	events := s.st.settle(now, distributorName)
	items := []generated.AvailabilityModel{}
	for _, p := range products {
		for _, d := range days {
			for _, sl := range p.slotsOn(d) {
				if sl.to.Before(now) || sl.from.After(now.Add(maxBookingHorizon)) {
					continue
				}
				u := s.st.usage[sl.id]
				booked, held := 0, 0
				if u != nil {
					booked, held = u.booked, u.held
				}
				open := max(p.capacity-booked-held, 0)
				if spotsOpenMin != nil && open < *spotsOpenMin {
					continue
				}
				items = append(items, generated.AvailabilityModel{
					AvailabilityId:            ptr(sl.id),
					AvailabilityProductId:     ptr(p.id),
					AvailabilityActive:        wire.NewBool(true),
					AvailabilityAdmissionType: ptr(p.admission),
					AvailabilityCapacityId:    ptr(sl.id),
					AvailabilityFromDateTime:  dt(sl.from),
					AvailabilityToDateTime:    dtp(sl.to),
					AvailabilityDuration:      ptr(int(sl.to.Sub(sl.from) / time.Second)),
					AvailabilityCreated:       dt(s.st.epoch),
					AvailabilityModified:      dt(now),
					AvailabilitySpots: &generated.AvailabilitySpots{
						AvailabilitySpotsTotal:    ptr(p.capacity),
						AvailabilitySpotsBooked:   ptr(booked),
						AvailabilitySpotsReserved: ptr(held),
						AvailabilitySpotsOpen:     open,
					},
				})
			}
		}
	}
	s.mu.Unlock()
	s.dispatch(events)
	return generated.AvailabilitiesListResponse{
		ApiVersion: ptr(apiVersion),
		Data:       generated.AvailabilitiesListResponseData{Kind: generated.KindAvailability, Items: items, TotalItems: len(items)},
	}
}

// GetProductAvailability lists the availability of one product.
func (h handlers) GetProductAvailability(ctx context.Context, req apiserver.GetProductAvailabilityRequestObject) (apiserver.GetProductAvailabilityResponseObject, error) {
	if e := h.checkDistributor(req.Params.DistributorId); e != nil {
		return nil, e
	}
	p, ok := productByID(req.ProductId)
	if !ok {
		return nil, errorf(http.StatusNotFound, "NOT_FOUND", "Product %s does not exist.", req.ProductId)
	}
	days, e := dayRange(req.Params.FromDate, req.Params.ToDate)
	if e != nil {
		return nil, e
	}
	return apiserver.GetProductAvailability200JSONResponse(h.availability(ctx, []*product{p}, days, req.Params.SpotsOpenMin)), nil
}

// GetAvailability lists the availability of several products (all when
// product_id is not given).
func (h handlers) GetAvailability(ctx context.Context, req apiserver.GetAvailabilityRequestObject) (apiserver.GetAvailabilityResponseObject, error) {
	if e := h.checkDistributor(req.Params.DistributorId); e != nil {
		return nil, e
	}
	var products []*product
	for i := range catalogue {
		if req.Params.ProductId == nil || len(*req.Params.ProductId) == 0 || slices.Contains(*req.Params.ProductId, catalogue[i].id) {
			products = append(products, &catalogue[i])
		}
	}
	days, e := dayRange(req.Params.FromDate, req.Params.ToDate)
	if e != nil {
		return nil, e
	}
	return apiserver.GetAvailability200JSONResponse(h.availability(ctx, products, days, req.Params.SpotsOpenMin)), nil
}

// --- reservations ---

// CreateReservation holds capacity for HoldTime.
func (h handlers) CreateReservation(ctx context.Context, req apiserver.CreateReservationRequestObject) (apiserver.CreateReservationResponseObject, error) {
	s := h.s
	in := req.Body.Data.Reservation
	if e := h.checkDistributor(&in.ReservationDistributorId); e != nil {
		return nil, e
	}
	if len(in.ReservationDetails) == 0 {
		return nil, errorf(http.StatusBadRequest, codeInvalidRequest, "reservation_details is empty.")
	}
	s.mu.Lock()
	now := s.now()
	events := s.st.settle(now, distributorName)
	defer func() { s.mu.Unlock(); s.dispatch(events) }()
	lines := make([]bookingLine, 0, len(in.ReservationDetails))
	for _, d := range in.ReservationDetails {
		l, e := parseLine(now, d.ProductId, d.ProductAvailabilityId, d.ProductTypeDetails)
		if e != nil {
			return nil, e
		}
		l.extRef, l.language = d.BookingExternalReference, deref(d.BookingLanguage)
		lines = append(lines, l)
	}
	if e := s.st.checkCapacity(lines); e != nil {
		return nil, e
	}
	r := &reservation{
		ref: s.st.next('7'), extRef: in.ReservationExternalReference, distributorID: in.ReservationDistributorId,
		partnerID: in.ReservationPartnerId, created: now, modified: now, validUntil: now.Add(s.cfg.holdTime),
	}
	for _, l := range lines {
		r.lines = append(r.lines, &resLine{ref: s.st.next('6'), line: l, status: generated.BOOKINGRESERVED})
		if l.slot != nil {
			s.st.use(l.slot.id).held += l.pax()
		}
	}
	s.st.reservations[r.ref] = r
	s.st.holding = append(s.st.holding, r)
	s.scheduleSettle(s.cfg.holdTime)
	return apiserver.CreateReservation201JSONResponse{
		ApiVersion: ptr(apiVersion),
		Data:       generated.ReservationDetailData{Kind: generated.KindReservation, Reservation: r.model(distributorName)},
	}, nil
}

func (h handlers) reservationResponse(ctx context.Context, ref string, change func(now time.Time, r *reservation) *apiError) (generated.ReservationDetailResponse, error) {
	s := h.s
	s.mu.Lock()
	now := s.now()
	events := s.st.settle(now, distributorName)
	defer func() { s.mu.Unlock(); s.dispatch(events) }()
	r, ok := s.st.reservations[ref]
	if !ok {
		return generated.ReservationDetailResponse{}, errorf(http.StatusNotFound, "NOT_FOUND", "Reservation %s does not exist.", ref)
	}
	if change != nil {
		if e := change(now, r); e != nil {
			return generated.ReservationDetailResponse{}, e
		}
	}
	setLastModified(ctx, r.modified)
	return generated.ReservationDetailResponse{
		ApiVersion: ptr(apiVersion),
		Data:       generated.ReservationDetailData{Kind: generated.KindReservation, Reservation: r.model(distributorName)},
	}, nil
}

// GetReservation answers a reservation, expired ones included.
func (h handlers) GetReservation(ctx context.Context, req apiserver.GetReservationRequestObject) (apiserver.GetReservationResponseObject, error) {
	out, err := h.reservationResponse(ctx, req.ReservationReference, nil)
	if err != nil {
		return nil, err
	}
	return apiserver.GetReservation200JSONResponse(out), nil
}

// CancelReservation releases a hold, whole or some lines. Cancelling what
// is already cancelled or expired answers the reservation as it is; a
// confirmed reservation is refused with 409 RESERVATION_ALREADY_CONFIRMED.
func (h handlers) CancelReservation(ctx context.Context, req apiserver.CancelReservationRequestObject) (apiserver.CancelReservationResponseObject, error) {
	var only []string
	if req.Params.BookingReservationReference != nil {
		only = *req.Params.BookingReservationReference
	}
	out, err := h.reservationResponse(ctx, req.ReservationReference, func(now time.Time, r *reservation) *apiError {
		if r.orderRef != "" {
			return errorf(http.StatusConflict, codeReservationConfirmed, "Reservation %s was confirmed by order %s.", r.ref, r.orderRef)
		}
		for _, ref := range only {
			if !slices.ContainsFunc(r.lines, func(l *resLine) bool { return l.ref == ref }) {
				return errorf(http.StatusNotFound, "NOT_FOUND", "Reservation %s has no line %s.", r.ref, ref)
			}
		}
		changed := false
		for _, l := range r.lines {
			if (len(only) == 0 || slices.Contains(only, l.ref)) && l.status == generated.BOOKINGRESERVED {
				h.s.st.release(l, generated.BOOKINGRESERVATIONCANCELLED)
				changed = true
			}
		}
		if changed {
			r.modified = now
			h.s.st.dropHolding(r)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return apiserver.CancelReservation200JSONResponse(out), nil
}

// --- orders ---

// CreateOrder books directly or confirms a reservation. See the package
// documentation for the answers to declined products, full slots and dead
// reservations.
func (h handlers) CreateOrder(ctx context.Context, req apiserver.CreateOrderRequestObject) (apiserver.CreateOrderResponseObject, error) {
	s := h.s
	in := req.Body.Data.Order
	if e := h.checkDistributor(&in.OrderDistributorId); e != nil {
		return nil, e
	}
	if in.OrderExternalReference == "" {
		return nil, errorf(http.StatusBadRequest, codeInvalidRequest, "order_external_reference is required.")
	}
	if len(in.OrderBookings) == 0 {
		return nil, errorf(http.StatusBadRequest, codeInvalidRequest, "order_bookings is empty.")
	}
	s.mu.Lock()
	now := s.now()
	events := s.st.settle(now, distributorName)
	defer func() { s.mu.Unlock(); s.dispatch(events) }()

	if s.cfg.idempotency.byReference() {
		if prior := s.st.ordersByExt[in.OrderExternalReference]; len(prior) > 0 {
			s.replays.Add(1)
			markReplayed(ctx)
			return apiserver.CreateOrder201JSONResponse{
				ApiVersion: ptr(apiVersion),
				Data:       generated.OrderDetailResponseData{Kind: generated.KindOrder, Order: prior[0].model(distributorName)},
			}, nil
		}
	}

	kind := func(b generated.BookingOption) string {
		return cmp.Or(b.BookingOptionType, string(generated.DIRECTBOOKING))
	}
	first := kind(in.OrderBookings[0])
	for _, b := range in.OrderBookings {
		if kind(b) != first {
			return nil, errorf(http.StatusBadRequest, codeInvalidRequest, "Booking options cannot be mixed in one order.")
		}
	}
	var (
		lines []bookingLine
		res   *reservation
	)
	switch first {
	case string(generated.DIRECTBOOKING):
		for _, b := range in.OrderBookings {
			var items []generated.RegularBookingItem
			if b.ProductTypeDetails != nil {
				items = *b.ProductTypeDetails
			}
			l, e := parseLine(now, deref(b.ProductId), b.ProductAvailabilityId, items)
			if e != nil {
				return nil, e
			}
			l.extRef, l.language = deref(b.BookingExternalReference), deref(b.BookingLanguage)
			lines = append(lines, l)
		}
		if e := s.st.checkCapacity(lines); e != nil {
			return nil, e
		}
	case string(generated.CONFIRMRESERVATION):
		if len(in.OrderBookings) != 1 {
			return nil, errorf(http.StatusBadRequest, codeInvalidRequest, "Only one CONFIRM_RESERVATION booking per order.")
		}
		ref := deref(in.OrderBookings[0].ReservationReference)
		r, ok := s.st.reservations[ref]
		switch {
		case !ok:
			return nil, errorf(http.StatusNotFound, "NOT_FOUND", "Reservation %q does not exist.", ref)
		case r.orderRef != "":
			return nil, errorf(http.StatusConflict, codeReservationConfirmed, "Reservation %s was already confirmed by order %s.", r.ref, r.orderRef)
		case r.anyStatus(generated.BOOKINGRESERVATIONEXPIRED) && !r.active():
			return nil, errorf(http.StatusConflict, codeReservationExpired, "Reservation %s expired at %s.", r.ref, dt(r.validUntil))
		case !r.active():
			return nil, errorf(http.StatusConflict, codeReservationCancelled, "Reservation %s was cancelled.", r.ref)
		}
		res = r
		for _, l := range r.lines {
			if l.status == generated.BOOKINGRESERVED {
				lines = append(lines, l.line)
			}
		}
	default:
		return nil, errorf(http.StatusBadRequest, codeInvalidRequest, "booking_option_type %s cannot create an order.", first)
	}
	for _, l := range lines {
		if l.product.declined {
			return nil, errorf(http.StatusUnprocessableEntity, codeBookingDeclined, "The supplier of product %s declined the booking.", l.product.id)
		}
	}
	o := s.st.newOrder(now, &in, lines, s.cfg.slowDelay, res != nil)
	if res != nil {
		for _, l := range res.lines {
			if l.status == generated.BOOKINGRESERVED {
				l.status = generated.BOOKINGCONFIRMED
			}
		}
		res.orderRef, res.modified, o.reservationRef = o.ref, now, res.ref
		s.st.dropHolding(res)
	}
	s.st.orderCreated(now, o, res)
	if o.status == generated.ORDERPENDING {
		s.scheduleSettle(s.cfg.slowDelay)
	}
	m := o.model(distributorName)
	events = append(events, event{kind: generated.ORDERCREATE, order: m, ref: o.ref, at: now})
	return apiserver.CreateOrder201JSONResponse{
		ApiVersion: ptr(apiVersion),
		Data:       generated.OrderDetailResponseData{Kind: generated.KindOrder, Order: m},
	}, nil
}

// orderMatches applies the filters of List Orders.
func orderMatches(o *order, p generated.GetOrdersParams) bool {
	eq := func(want *string, have string) bool { return want == nil || *want == "" || *want == have }
	if !eq(p.DistributorId, o.distributorID) || !eq(p.OrderReference, o.ref) || !eq(p.OrderExternalReference, o.extRef) {
		return false
	}
	if p.OrderStatus != nil && len(*p.OrderStatus) > 0 && !slices.Contains(*p.OrderStatus, o.status) {
		return false
	}
	if p.OrderCreatedFrom != nil && o.created.Before(p.OrderCreatedFrom.Time) {
		return false
	}
	if p.OrderCreatedTo != nil && o.created.After(p.OrderCreatedTo.Time) {
		return false
	}
	if p.OrderModified != nil && o.modified.Before(p.OrderModified.Time) {
		return false
	}
	if p.ProductId != nil && len(*p.ProductId) > 0 &&
		!slices.ContainsFunc(o.bookings, func(b *booking) bool { return slices.Contains(*p.ProductId, b.line.product.id) }) {
		return false
	}
	if p.BookingReference != nil && *p.BookingReference != "" &&
		!slices.ContainsFunc(o.bookings, func(b *booking) bool { return b.ref == *p.BookingReference }) {
		return false
	}
	if p.BookingExternalReference != nil && *p.BookingExternalReference != "" &&
		!slices.ContainsFunc(o.bookings, func(b *booking) bool { return b.extRef == *p.BookingExternalReference }) {
		return false
	}
	if p.ProductTypeCode != nil && *p.ProductTypeCode != "" &&
		!slices.ContainsFunc(o.bookings, func(b *booking) bool {
			return slices.ContainsFunc(b.pax, func(x *pax) bool { return x.code == *p.ProductTypeCode })
		}) {
		return false
	}
	return true
}

// GetOrders lists orders in Prio's paginated envelope, newest first unless
// order_sort_order is ASC, as the cache has them unless cache=false.
func (h handlers) GetOrders(ctx context.Context, req apiserver.GetOrdersRequestObject) (apiserver.GetOrdersResponseObject, error) {
	s := h.s
	p := req.Params
	cached := s.cachedRead(p.Cache, false)
	s.mu.Lock()
	now := s.now()
	events := s.st.settle(now, distributorName)
	var found []*order
	last := s.st.epoch
	candidates := s.st.orders
	if p.OrderExternalReference != nil && *p.OrderExternalReference != "" {
		// The look-up the SDK makes after every doubtful send: use the
		// index rather than a scan of every order.
		candidates = s.st.ordersByExt[*p.OrderExternalReference]
	}
	for _, o := range candidates {
		if cached {
			if o = s.st.cachedView(o, now); o == nil {
				continue
			}
		}
		if orderMatches(o, p) {
			found = append(found, o)
			if o.modified.After(last) {
				last = o.modified
			}
		}
	}
	byModified := p.OrderSortBy != nil && strings.EqualFold(*p.OrderSortBy, "ORDER_MODIFIED")
	asc := p.OrderSortOrder != nil && strings.EqualFold(*p.OrderSortOrder, "ASC")
	slices.SortStableFunc(found, func(a, b *order) int {
		c := cmp.Compare(a.seq, b.seq)
		if byModified {
			c = cmp.Or(a.modified.Compare(b.modified), c)
		}
		if asc {
			return c
		}
		return -c
	})
	pg, e := paginate(len(found), p.ItemsPerPage, p.StartIndex, p.Page)
	var items []generated.ConfirmedOrderModel
	if e == nil {
		for _, o := range found[pg.from:pg.to] {
			items = append(items, o.model(distributorName))
		}
	}
	s.mu.Unlock()
	s.dispatch(events)
	if e != nil {
		return nil, e
	}
	setLastModified(ctx, last)
	return apiserver.GetOrders200JSONResponse{
		ApiVersion: ptr(apiVersion),
		Data: generated.OrderListResponseData{
			Kind: generated.KindOrder, Items: nonNil(items),
			CurrentItemCount: len(items), ItemsPerPage: pg.perPage, StartIndex: pg.start,
			TotalItems: pg.total, PageIndex: pg.pageIndex, TotalPages: pg.totalPages,
		},
	}, nil
}

// cachedRead reports whether an order read is served from Prio's cache
// (the default; cache=false or cache=0 turns it off, as does a revision
// parameter) and counts it.
func (s *Server) cachedRead(param *string, revision bool) bool {
	cached := !revision && (param == nil || !(strings.EqualFold(strings.TrimSpace(*param), "false") || strings.TrimSpace(*param) == "0"))
	if cached {
		s.cachedReads.Add(1)
	} else {
		s.uncachedReads.Add(1)
	}
	return cached
}

// withOrder runs change (if any) on the live order ref under the lock and
// answers the order afterwards.
func (h handlers) withOrder(ctx context.Context, ref string, change func(now time.Time, o *order) (*event, *apiError)) (generated.OrderDetailResponse, error) {
	return h.orderAnswer(ctx, ref, false, change)
}

// orderAnswer is withOrder, reading the order as the cache has it when
// cached is set (then an order too new for the cache is 404).
func (h handlers) orderAnswer(ctx context.Context, ref string, cached bool, change func(now time.Time, o *order) (*event, *apiError)) (generated.OrderDetailResponse, error) {
	s := h.s
	s.mu.Lock()
	now := s.now()
	events := s.st.settle(now, distributorName)
	defer func() { s.mu.Unlock(); s.dispatch(events) }()
	o, ok := s.st.ordersByRef[ref]
	if ok && cached {
		o = s.st.cachedView(o, now)
		ok = o != nil
	}
	if !ok {
		return generated.OrderDetailResponse{}, errorf(http.StatusNotFound, "NOT_FOUND", "Order %s does not exist.", ref)
	}
	if change != nil {
		ev, e := change(now, o)
		if e != nil {
			return generated.OrderDetailResponse{}, e
		}
		if ev != nil {
			s.st.commit(o, now)
			events = append(events, *ev)
		}
	}
	setLastModified(ctx, o.modified)
	return generated.OrderDetailResponse{
		ApiVersion: ptr(apiVersion),
		Data:       generated.OrderDetailResponseData{Kind: generated.KindOrder, Order: o.model(distributorName)},
	}, nil
}

// GetOrder answers one order, from the cache unless cache=false or
// order_version is given.
func (h handlers) GetOrder(ctx context.Context, req apiserver.GetOrderRequestObject) (apiserver.GetOrderResponseObject, error) {
	cached := h.s.cachedRead(req.Params.Cache, req.Params.OrderVersion != nil)
	out, err := h.orderAnswer(ctx, req.OrderReference, cached, nil)
	if err != nil {
		return nil, err
	}
	return apiserver.GetOrder200JSONResponse(out), nil
}

// UpdateOrder replaces the order's contacts, notes, custom fields, options
// and language and raises its version. Booking amendments are not
// simulated; a cancelled order is refused with 409 ORDER_CANCELLED.
func (h handlers) UpdateOrder(ctx context.Context, req apiserver.UpdateOrderRequestObject) (apiserver.UpdateOrderResponseObject, error) {
	in := req.Body.Data.Order
	if e := h.checkDistributor(&in.OrderDistributorId); e != nil {
		return nil, e
	}
	out, err := h.withOrder(ctx, req.OrderReference, func(now time.Time, o *order) (*event, *apiError) {
		if o.status == generated.ORDERCANCELLED {
			return nil, errorf(http.StatusConflict, "ORDER_CANCELLED", "Order %s is cancelled and cannot be amended.", o.ref)
		}
		o.contacts, o.notes, o.customFields, o.options = in.OrderContacts, in.OrderNotes, in.OrderCustomFields, in.OrderOptions
		h.s.st.adoptContacts(now, o)
		o.extra.replace(in)
		if in.OrderLanguage != "" {
			o.language = in.OrderLanguage
		}
		o.version++
		o.modified = now
		return &event{kind: generated.ORDERUPDATE, order: o.model(distributorName), ref: o.ref, at: now}, nil
	})
	if err != nil {
		return nil, err
	}
	return apiserver.UpdateOrder200JSONResponse(out), nil
}

// CancelOrder cancels an order, or some bookings (booking_reference) or
// persons (product_type_transaction_id) of it, and gives capacity back.
// Cancelling what is already cancelled answers the order unchanged.
func (h handlers) CancelOrder(ctx context.Context, req apiserver.CancelOrderRequestObject) (apiserver.CancelOrderResponseObject, error) {
	var bookings, persons []string
	if req.Params.BookingReference != nil {
		bookings = *req.Params.BookingReference
	}
	if req.Params.ProductTypeTransactionId != nil {
		persons = *req.Params.ProductTypeTransactionId
	}
	out, err := h.withOrder(ctx, req.OrderReference, func(now time.Time, o *order) (*event, *apiError) {
		for _, ref := range bookings {
			if !slices.ContainsFunc(o.bookings, func(b *booking) bool { return b.ref == ref }) {
				return nil, errorf(http.StatusNotFound, "NOT_FOUND", "Order %s has no booking %s.", o.ref, ref)
			}
		}
		changed := false
		for _, b := range o.bookings {
			whole := len(persons) == 0 && (len(bookings) == 0 || slices.Contains(bookings, b.ref))
			for _, x := range b.pax {
				if whole || slices.Contains(persons, x.txID) {
					changed = h.s.st.cancelPax(b, x) || changed
				}
			}
			if b.status != generated.BOOKINGCANCELLED && !slices.ContainsFunc(b.pax, func(x *pax) bool { return x.status != generated.StatusTypesCANCELLED }) {
				b.status, b.cancelled, b.modified = generated.BOOKINGCANCELLED, now, now
				b.version++
			}
		}
		if !changed {
			return nil, nil
		}
		o.version++
		o.modified = now
		if !slices.ContainsFunc(o.bookings, func(b *booking) bool { return b.status != generated.BOOKINGCANCELLED }) {
			o.status, o.cancelled = generated.ORDERCANCELLED, now
		} else if o.status == generated.ORDERCONFIRMED {
			o.status = generated.ORDERUPDATED
		}
		return &event{kind: generated.ORDERCANCEL, order: o.model(distributorName), ref: o.ref, at: now}, nil
	})
	if err != nil {
		return nil, err
	}
	return apiserver.CancelOrder200JSONResponse(out), nil
}

// GetVoucher answers the voucher of an order: a download URL by default, a
// small PDF for Accept: application/pdf. Vouchers of pending orders are
// released only with force_release; cancelled orders have none.
func (h handlers) GetVoucher(ctx context.Context, req apiserver.GetVoucherRequestObject) (apiserver.GetVoucherResponseObject, error) {
	force := req.Params.ForceRelease != nil && req.Params.ForceRelease.Bool()
	_, err := h.withOrder(ctx, req.OrderReference, func(_ time.Time, o *order) (*event, *apiError) {
		switch o.status {
		case generated.ORDERCANCELLED:
			return nil, errorf(http.StatusConflict, "ORDER_CANCELLED", "Order %s is cancelled; it has no voucher.", o.ref)
		case generated.ORDERPENDING:
			if !force {
				return nil, errorf(http.StatusConflict, "VOUCHER_NOT_RELEASED", "The voucher of order %s is not released yet.", o.ref)
			}
		}
		if b := req.Params.BookingReference; b != nil && *b != "" &&
			!slices.ContainsFunc(o.bookings, func(x *booking) bool { return x.ref == *b }) {
			return nil, errorf(http.StatusNotFound, "NOT_FOUND", "Order %s has no booking %s.", o.ref, *b)
		}
		return nil, nil
	})
	if err != nil {
		return nil, err
	}
	if ci := info(ctx); ci.r != nil && strings.Contains(ci.r.Header.Get("Accept"), "application/pdf") {
		pdf := voucherPDF(req.OrderReference)
		return apiserver.GetVoucher200ApplicationpdfResponse{Body: strings.NewReader(pdf), ContentLength: int64(len(pdf))}, nil
	}
	url := h.s.AdminURL() + "/_sandbox/vouchers/" + req.OrderReference + ".pdf"
	return apiserver.GetVoucher200JSONResponse{Url: url, Data: generated.GetVoucherResponseJSONData{Url: ptr(url)}}, nil
}

// voucherPDF is a minimal one-page PDF naming the order.
func voucherPDF(ref string) string {
	return "%PDF-1.4\n% priotest voucher for order " + ref + "\n" +
		"1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n" +
		"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n" +
		"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 100]>>endobj\n" +
		"trailer<</Root 1 0 R>>\n%%EOF\n"
}

// --- webhooks and notifications ---

// AddWebhook registers a webhook.
func (h handlers) AddWebhook(_ context.Context, req apiserver.AddWebhookRequestObject) (apiserver.AddWebhookResponseObject, error) {
	in := req.Body.Data.Webhook
	if len(in.WebhookEvents) == 0 {
		return nil, errorf(http.StatusBadRequest, codeInvalidRequest, "webhook_events is empty.")
	}
	s := h.s
	s.mu.Lock()
	defer s.mu.Unlock()
	wh := &webhook{
		id:      s.st.uuid(),
		url:     deref(in.WebhookUrl),
		auth:    deref(in.WebhookAuth),
		email:   in.WebhookEmail,
		events:  slices.Clone(in.WebhookEvents),
		payload: in.WebhookPayload == nil || in.WebhookPayload.Bool(),
		created: s.now(),
	}
	s.st.webhooks = append(s.st.webhooks, wh)
	return apiserver.AddWebhook201JSONResponse{
		ApiVersion: ptr(apiVersion),
		Data:       generated.CreateWebhookResponseData{Kind: generated.KindWebhook, Webhook: wh.model()},
	}, nil
}

// GetWebhooks lists the registered webhooks.
func (h handlers) GetWebhooks(_ context.Context, req apiserver.GetWebhooksRequestObject) (apiserver.GetWebhooksResponseObject, error) {
	s := h.s
	s.mu.Lock()
	all := make([]generated.Webhook, 0, len(s.st.webhooks))
	for _, wh := range s.st.webhooks {
		all = append(all, wh.model())
	}
	s.mu.Unlock()
	pg, e := paginate(len(all), req.Params.ItemsPerPage, req.Params.StartIndex, req.Params.Page)
	if e != nil {
		return nil, e
	}
	items := all[pg.from:pg.to]
	return apiserver.GetWebhooks200JSONResponse{
		ApiVersion: ptr(apiVersion),
		Data: generated.WebhookListResponseData{
			Kind: generated.KindWebhook, Items: items,
			CurrentItemCount: len(items), ItemsPerPage: pg.perPage, StartIndex: pg.start,
			TotalItems: pg.total, PageIndex: pg.pageIndex, TotalPages: pg.totalPages,
		},
	}, nil
}

// RemoveWebhook deletes a webhook.
func (h handlers) RemoveWebhook(_ context.Context, req apiserver.RemoveWebhookRequestObject) (apiserver.RemoveWebhookResponseObject, error) {
	s := h.s
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.st.webhooks)
	s.st.webhooks = slices.DeleteFunc(s.st.webhooks, func(wh *webhook) bool { return wh.id.String() == req.WebhookId })
	if len(s.st.webhooks) == n {
		return nil, errorf(http.StatusNotFound, "NOT_FOUND", "Webhook %s does not exist.", req.WebhookId)
	}
	return apiserver.RemoveWebhook200Response{}, nil
}

// AddNotification sends the given notification to every webhook with a
// URL, whatever events it subscribed to, with the order as payload when
// notification_item_id names one.
func (h handlers) AddNotification(_ context.Context, req apiserver.AddNotificationRequestObject) (apiserver.AddNotificationResponseObject, error) {
	n := req.Body.Data.Notification
	s := h.s
	s.mu.Lock()
	now := s.now()
	ev := event{kind: n.NotificationEvent, ref: n.NotificationItemId, at: now}
	if o, ok := s.st.ordersByRef[n.NotificationItemId]; ok {
		ev.order = o.model(distributorName)
	}
	s.mu.Unlock()
	s.dispatchTo(ev, func(*webhook) bool { return true })
	return apiserver.AddNotification200Response{}, nil
}

// --- helpers ---

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// page is a resolved pagination request.
type page struct {
	from, to                     int // slice bounds into the full result
	perPage, start               int
	total, pageIndex, totalPages int
}

const (
	defaultPerPage = 10
	maxPerPage     = 200
	maxStartIndex  = 10000
)

// paginate resolves items_per_page, start_index and page (page counts only
// when start_index is absent) against total items.
func paginate(total int, perPage, startIndex, pageNo *int) (page, *apiError) {
	pg := page{perPage: defaultPerPage, start: 1, total: total}
	if perPage != nil {
		if *perPage < 1 || *perPage > maxPerPage {
			return page{}, errorf(http.StatusBadRequest, codeInvalidRequest, "items_per_page must be between 1 and %d.", maxPerPage)
		}
		pg.perPage = *perPage
	}
	switch {
	case startIndex != nil:
		if *startIndex < 1 || *startIndex > maxStartIndex {
			return page{}, errorf(http.StatusBadRequest, codeInvalidRequest, "start_index must be between 1 and %d.", maxStartIndex)
		}
		pg.start = *startIndex
	case pageNo != nil:
		if *pageNo < 1 {
			return page{}, errorf(http.StatusBadRequest, codeInvalidRequest, "page must be at least 1.")
		}
		pg.start = (*pageNo-1)*pg.perPage + 1
	}
	pg.pageIndex = (pg.start-1)/pg.perPage + 1
	pg.totalPages = (total + pg.perPage - 1) / pg.perPage
	pg.from = min(pg.start-1, total)
	pg.to = min(pg.from+pg.perPage, total)
	return pg, nil
}
