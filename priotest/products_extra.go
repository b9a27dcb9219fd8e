package priotest

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/priosdk/prio-go/generated"
	"github.com/priosdk/prio-go/internal/apiserver"
	"github.com/priosdk/prio-go/wire"
)

// The product lists beside the catalogue: categories, destinations,
// locations, routes, taxes, currency rates and stock. They are seeded with
// the catalogue and name its products; only stock moves, with bookings.

type seededCategory struct {
	id, name, slug string
	products       []string
}

var categories = []seededCategory{
	{"CAT-1", "Museums", "museums", []string{ProductOpen}},
	{"CAT-2", "Parks and towers", "parks-and-towers", []string{ProductTimeSlot, ProductTimeDate, ProductDeclined}},
	{"CAT-3", "Cruises", "cruises", []string{ProductSlow}},
}

type seededLocation struct {
	id, name string
	kind     generated.LocationType
	street   string
	products []string
}

var locations = []seededLocation{
	{"LOC-1", "Sandbox Museum", generated.LocationTypeVENUE, "Museumplein 1", []string{ProductOpen}},
	{"LOC-2", "Sandbox Tower", generated.LocationTypeENTRY, "Torenstraat 2", []string{ProductTimeSlot}},
	{"LOC-3", "Sandbox Park", generated.LocationTypeVENUE, "Parklaan 3", []string{ProductTimeDate, ProductDeclined}},
	{"LOC-4", "Sandbox Canal pier", generated.LocationTypeDEPARTURE, "Kade 4", []string{ProductSlow}},
}

type seededTax struct{ id, name, rate, region string }

var taxes = []seededTax{
	{"TAX-1", "VAT reduced", "9.00", "NL"},
	{"TAX-2", "VAT standard", "21.00", "NL"},
}

// eurRates are the sandbox's rates from EUR; other bases are derived.
var eurRates = map[string]float64{"EUR": 1, "USD": 1.08, "GBP": 0.85, "CHF": 0.95}

// stockTotal is the allocation of ProductOpen tickets its stock record
// counts down.
const stockTotal = 1000

func (h handlers) knownProduct(id *string) *apiError {
	if id != nil && *id != "" {
		if _, ok := productByID(*id); !ok {
			return errorf(http.StatusNotFound, "NOT_FOUND", "Product %s does not exist.", *id)
		}
	}
	return nil
}

// GetProductCategories lists the seeded categories, filtered by id, type
// and a search in their names.
func (h handlers) GetProductCategories(ctx context.Context, req apiserver.GetProductCategoriesRequestObject) (apiserver.GetProductCategoriesResponseObject, error) {
	p := req.Params
	if e := h.checkDistributor(p.DistributorId); e != nil {
		return nil, e
	}
	items := []generated.CategoryModel{}
	for _, c := range categories {
		if p.CategoryId != nil && len(*p.CategoryId) > 0 && !slices.Contains(*p.CategoryId, c.id) {
			continue
		}
		if p.CategoryType != nil && len(*p.CategoryType) > 0 && !slices.Contains(*p.CategoryType, string(generated.CategoryModelCategoryTypeSYSTEM)) {
			continue
		}
		if q := deref(p.CategorySearchQuery); q != "" && !strings.Contains(strings.ToLower(c.name), strings.ToLower(q)) {
			continue
		}
		items = append(items, generated.CategoryModel{
			CategoryId: ptr(c.id), CategoryName: c.name, CategorySlug: ptr(c.slug),
			CategoryType: generated.CategoryModelCategoryTypeSYSTEM, CategoryProducts: slices.Clone(c.products),
		})
	}
	setLastModified(ctx, h.s.epoch())
	return apiserver.GetProductCategories200JSONResponse{
		ApiVersion: ptr(apiVersion),
		Data:       generated.DistributorProductCategoriesResponseData{Kind: generated.KindCategory, Items: items, TotalItems: len(items)},
	}, nil
}

// GetProductDestinations lists the one seeded destination, the city of
// every seeded product.
func (h handlers) GetProductDestinations(ctx context.Context, req apiserver.GetProductDestinationsRequestObject) (apiserver.GetProductDestinationsResponseObject, error) {
	p := req.Params
	if e := h.checkDistributor(p.DistributorId); e != nil {
		return nil, e
	}
	all := []generated.DestinationModel{}
	if p.DestinationId == nil || len(*p.DestinationId) == 0 || slices.Contains(*p.DestinationId, "DST-1") {
		all = append(all, generated.DestinationModel{DestinationId: ptr("DST-1"), DestinationName: ptr("Sandbox City")})
	}
	pg, e := paginate(len(all), p.ItemsPerPage, p.StartIndex, p.Page)
	if e != nil {
		return nil, e
	}
	setLastModified(ctx, h.s.epoch())
	items := all[pg.from:pg.to]
	return apiserver.GetProductDestinations200JSONResponse{
		ApiVersion: ptr(apiVersion),
		Data: generated.ProductDestinationsResponseData{
			Kind: generated.KindDestination, Items: items,
			CurrentItemCount: ptr(len(items)), ItemsPerPage: ptr(pg.perPage), StartIndex: ptr(pg.start),
			TotalItems: ptr(pg.total), PageIndex: ptr(pg.pageIndex), TotalPages: ptr(pg.totalPages),
		},
	}, nil
}

// GetProductLocations lists the seeded locations, filtered by product and
// type.
func (h handlers) GetProductLocations(ctx context.Context, req apiserver.GetProductLocationsRequestObject) (apiserver.GetProductLocationsResponseObject, error) {
	p := req.Params
	if e := h.checkDistributor(p.DistributorId); e != nil {
		return nil, e
	}
	if e := h.knownProduct(p.ProductId); e != nil {
		return nil, e
	}
	var all []generated.LocationListModel
	for _, l := range locations {
		if id := deref(p.ProductId); id != "" && !slices.Contains(l.products, id) {
			continue
		}
		if p.LocationType != nil && len(*p.LocationType) > 0 && !slices.Contains(*p.LocationType, string(l.kind)) {
			continue
		}
		all = append(all, generated.LocationListModel{
			LocationId: ptr(l.id), LocationName: l.name, LocationType: l.kind,
			LocationProducts: ptr(slices.Clone(l.products)),
			LocationAddress: &generated.AddressModel{Id: ptr("ADR-" + l.id), Street: ptr(l.street), City: ptr("Sandbox City"),
				CountryCode: ptr("NL"), Country: ptr("Netherlands")},
		})
	}
	pg, e := paginate(len(all), p.ItemsPerPage, p.StartIndex, p.Page)
	if e != nil {
		return nil, e
	}
	setLastModified(ctx, h.s.epoch())
	items := all[pg.from:pg.to]
	return apiserver.GetProductLocations200JSONResponse{
		ApiVersion: ptr(apiVersion),
		Data: generated.LocationListResponseData{
			Kind: generated.KindLocation, Items: nonNil(items),
			CurrentItemCount: len(items), ItemsPerPage: pg.perPage, StartIndex: pg.start,
			TotalItems: pg.total, PageIndex: pg.pageIndex, TotalPages: pg.totalPages,
		},
	}, nil
}

// GetProductRoutes lists the seeded route: the canal loop of the cruise.
func (h handlers) GetProductRoutes(ctx context.Context, req apiserver.GetProductRoutesRequestObject) (apiserver.GetProductRoutesResponseObject, error) {
	p := req.Params
	if e := h.checkDistributor(p.DistributorId); e != nil {
		return nil, e
	}
	if e := h.knownProduct(p.ProductId); e != nil {
		return nil, e
	}
	var all []generated.RouteModel
	if id := deref(p.ProductId); id == "" || id == ProductSlow {
		all = append(all, generated.RouteModel{
			RouteId: "RTE-1", RouteName: "Canal loop", RouteActive: wire.NewBool(true), RouteType: ptr(generated.BOAT),
			RouteDuration: ptr(75), RouteFrequency: ptr(30), RouteStartTime: ptr("10:00"), RouteEndTime: ptr("17:00"),
			RouteProducts: ptr([]string{ProductSlow}), RouteLiveLanguages: ptr([]string{"en", "nl"}),
			RouteLocations: &[]generated.RouteLocation{
				{RouteLocationId: "LOC-4", RouteLocationName: "Sandbox Canal pier", RouteLocationActive: wire.NewBool(true)},
				{RouteLocationId: "LOC-1", RouteLocationName: "Sandbox Museum", RouteLocationActive: wire.NewBool(true)},
			},
		})
	}
	pg, e := paginate(len(all), p.ItemsPerPage, p.StartIndex, p.Page)
	if e != nil {
		return nil, e
	}
	setLastModified(ctx, h.s.epoch())
	items := all[pg.from:pg.to]
	return apiserver.GetProductRoutes200JSONResponse{
		ApiVersion: ptr(apiVersion),
		Data: generated.RoutesListResponseData{
			Kind: generated.KindRoute, Items: nonNil(items),
			CurrentItemCount: len(items), ItemsPerPage: pg.perPage, StartIndex: pg.start,
			TotalItems: pg.total, PageIndex: pg.pageIndex, TotalPages: pg.totalPages,
		},
	}, nil
}

// GetProductTaxes lists the seeded taxes, filtered by region; every seeded
// product carries both.
func (h handlers) GetProductTaxes(ctx context.Context, req apiserver.GetProductTaxesRequestObject) (apiserver.GetProductTaxesResponseObject, error) {
	p := req.Params
	if e := h.checkDistributor(p.DistributorId); e != nil {
		return nil, e
	}
	if e := h.knownProduct(p.ProductId); e != nil {
		return nil, e
	}
	var all []generated.ProductTaxDetail
	for _, t := range taxes {
		if r := deref(p.TaxRegion); r != "" && !strings.EqualFold(r, t.region) {
			continue
		}
		all = append(all, generated.ProductTaxDetail{TaxId: ptr(t.id), TaxName: ptr(t.name), TaxRate: ptr(wire.Decimal(t.rate)),
			TaxRegion: ptr(t.region), TaxType: ptr("PERCENTAGE")})
	}
	pg, e := paginate(len(all), p.ItemsPerPage, p.StartIndex, p.Page)
	if e != nil {
		return nil, e
	}
	setLastModified(ctx, h.s.epoch())
	items := nonNil(all[pg.from:pg.to])
	return apiserver.GetProductTaxes200JSONResponse{
		ApiVersion: ptr(apiVersion),
		Data: generated.DistributorProductTaxesResponseData{
			Kind: generated.KindTax, Items: &items,
			CurrentItemCount: len(items), ItemsPerPage: pg.perPage, StartIndex: pg.start,
			TotalItems: pg.total, PageIndex: pg.pageIndex, TotalPages: pg.totalPages,
		},
	}, nil
}

// GetCurrencyRates answers the sandbox's fixed rates for any day, from EUR
// or another currency it knows (USD, GBP, CHF); others get 422
// INVALID_CURRENCY.
func (h handlers) GetCurrencyRates(ctx context.Context, req apiserver.GetCurrencyRatesRequestObject) (apiserver.GetCurrencyRatesResponseObject, error) {
	base := strings.ToUpper(cmp.Or(deref(req.Params.CurrencyBase), "EUR"))
	from, ok := eurRates[base]
	if !ok {
		return nil, errorf(http.StatusUnprocessableEntity, "INVALID_CURRENCY", "The sandbox has no rates from %s.", base)
	}
	rates := map[string]wire.Decimal{}
	for code, r := range eurRates {
		if code != base {
			rates[code] = wire.Decimal(fmt.Sprintf("%.4f", r/from))
		}
	}
	setLastModified(ctx, h.s.epoch())
	return apiserver.GetCurrencyRates200JSONResponse{
		ApiVersion: ptr(apiVersion),
		Data: generated.DistributorCurrencyRatesResponseData{Kind: generated.KindCurrency, TotalItems: 1,
			Items: []generated.CurrencyConversion{{CurrencyBase: ptr(base), CurrencyDate: req.Params.CurrencyDate, CurrencyRates: rates}}},
	}, nil
}

// GetProductStock lists the stock records (v3.8): the ticket allocation of
// ProductOpen, counted down by its bookings and holds, and a retired record
// shown only with include_disabled.
func (h handlers) GetProductStock(ctx context.Context, req apiserver.GetProductStockRequestObject) (apiserver.GetProductStockResponseObject, error) {
	p := req.Params
	if e := h.checkDistributor(p.DistributorId); e != nil {
		return nil, e
	}
	s := h.s
	s.mu.Lock()
	now := s.now()
	events := s.st.settle(now, distributorName)
	booked, held := s.st.openTicketsUsed()
	epoch := s.st.epoch
	s.mu.Unlock()
	s.dispatch(events)
	records := []generated.StockModel{
		{StockId: ptr("STK-1"), StockLabel: ptr("Sandbox Museum open tickets"), StockProductId: ptr(ProductOpen),
			StockActive: ptr(wire.NewBool(true)), StockCreated: dtp(epoch), StockModified: dtp(now),
			StockSpots: &generated.StockSpots{StockItemsTotal: ptr(stockTotal), StockItemsBooked: ptr(booked),
				StockItemsReserved: ptr(held), StockItemsAvailable: ptr(max(stockTotal-booked-held, 0))}},
		{StockId: ptr("STK-2"), StockLabel: ptr("Sandbox guidebook (retired)"), StockProductId: ptr(ProductOpen),
			StockActive: ptr(wire.NewBool(false)), StockCreated: dtp(epoch), StockModified: dtp(epoch),
			StockSpots: &generated.StockSpots{StockItemsTotal: ptr(0), StockItemsBooked: ptr(0),
				StockItemsReserved: ptr(0), StockItemsAvailable: ptr(0)}},
	}
	disabled := p.IncludeDisabled != nil && p.IncludeDisabled.Bool()
	var all []generated.StockModel
	for _, r := range records {
		switch {
		case !r.StockActive.Bool() && !disabled,
			p.StockId != nil && len(*p.StockId) > 0 && !slices.Contains(*p.StockId, *r.StockId),
			p.StockProductId != nil && len(*p.StockProductId) > 0 && !slices.Contains(*p.StockProductId, *r.StockProductId),
			p.StockModified != nil && r.StockModified.Before(p.StockModified.Time):
			continue
		}
		all = append(all, r)
	}
	pg, e := paginate(len(all), p.ItemsPerPage, p.StartIndex, p.Page)
	if e != nil {
		return nil, e
	}
	items := nonNil(all[pg.from:pg.to])
	return apiserver.GetProductStock200JSONResponse{
		ApiVersion: ptr(apiVersion),
		Data:       generated.StockListResponseData{Kind: generated.KindProduct, Items: items, TotalItems: pg.total},
	}, nil
}

// openTicketsUsed counts the ProductOpen tickets booked (not cancelled) and
// held by reservations.
func (st *state) openTicketsUsed() (booked, held int) {
	for _, o := range st.orders {
		for _, b := range o.bookings {
			if b.line.product.id != ProductOpen {
				continue
			}
			for _, x := range b.pax {
				if x.status != generated.StatusTypesCANCELLED {
					booked++
				}
			}
		}
	}
	for _, r := range st.holding {
		for _, l := range r.lines {
			if l.status == generated.BOOKINGRESERVED && l.line.product.id == ProductOpen {
				held += l.line.pax()
			}
		}
	}
	return booked, held
}
