package priotest

import (
	"fmt"
	"strings"
	"time"

	"github.com/priosdk/prio-go/generated"
	"github.com/priosdk/prio-go/wire"
)

// The seeded catalogue. Every seeded product sells both product types.
const (
	// ProductOpen is an open ticket: TIME_OPEN, no availability, no travel
	// date.
	ProductOpen = "30001"
	// ProductTimeSlot is a timed entry: TIME_SLOT, four two-hour slots a day
	// (10:00, 12:00, 14:00, 16:00 at +01:00), SlotCapacity spots each.
	ProductTimeSlot = "30002"
	// ProductTimeDate is a day ticket: TIME_DATE, one availability per day
	// with DayCapacity spots.
	ProductTimeDate = "30003"
	// ProductSlow is an open ticket whose supplier answers slowly: its
	// orders stay ORDER_PENDING (bookings BOOKING_PROCESSING_CONFIRMATION)
	// for the slow-supplier delay, then confirm.
	ProductSlow = "30004"
	// ProductDeclined is an open ticket whose supplier declines every
	// booking: Create Order answers 422 BOOKING_DECLINED.
	ProductDeclined = "30005"
)

// Product type ids, valid for every seeded product.
const (
	ProductTypeAdult = "101"
	ProductTypeChild = "102"
)

// Capacities of the products with managed availability.
const (
	SlotCapacity = 10
	DayCapacity  = 30
)

// sandboxZone is the supplier's time zone of every seeded product. A fixed
// offset keeps availability ids and times the same all year.
var sandboxZone = time.FixedZone("", 60*60)

// slotStarts are the daily start times (hour) of ProductTimeSlot.
var slotStarts = []int{10, 12, 14, 16}

// maxBookingHorizon is how far ahead availability exists.
const maxBookingHorizon = 365 * 24 * time.Hour

type product struct {
	id        string
	title     string
	admission generated.ProductAdmissionType
	capacity  int // spots per availability; 0 means no managed availability
	slow      bool
	declined  bool
	prices    map[string]int // product type id -> price in cents
}

type productType struct {
	id    string
	kind  generated.ProductType
	label string
	from  int
	to    int
}

var productTypes = []productType{
	{ProductTypeAdult, generated.ProductTypeADULT, "Adult", 18, 99},
	{ProductTypeChild, generated.ProductTypeCHILD, "Child", 4, 17},
}

func productTypeByID(id string) (productType, bool) {
	for _, t := range productTypes {
		if t.id == id {
			return t, true
		}
	}
	return productType{}, false
}

var catalogue = []product{
	{id: ProductOpen, title: "Sandbox Museum open ticket", admission: generated.TIMEOPEN,
		prices: map[string]int{ProductTypeAdult: 2500, ProductTypeChild: 1250}},
	{id: ProductTimeSlot, title: "Sandbox Tower timed entry", admission: generated.TIMESLOT, capacity: SlotCapacity,
		prices: map[string]int{ProductTypeAdult: 3000, ProductTypeChild: 1500}},
	{id: ProductTimeDate, title: "Sandbox Park day ticket", admission: generated.TIMEDATE, capacity: DayCapacity,
		prices: map[string]int{ProductTypeAdult: 2000, ProductTypeChild: 1000}},
	{id: ProductSlow, title: "Sandbox Canal cruise (slow supplier)", admission: generated.TIMEOPEN, slow: true,
		prices: map[string]int{ProductTypeAdult: 4000, ProductTypeChild: 2000}},
	{id: ProductDeclined, title: "Sandbox Zoo (declining supplier)", admission: generated.TIMEOPEN, declined: true,
		prices: map[string]int{ProductTypeAdult: 1000, ProductTypeChild: 500}},
}

func productByID(id string) (*product, bool) {
	for i := range catalogue {
		if catalogue[i].id == id {
			return &catalogue[i], true
		}
	}
	return nil, false
}

// slot is one bookable availability of a product.
type slot struct {
	id       string
	from, to time.Time
}

func (p *product) slotsOn(day time.Time) []slot {
	y, m, d := day.Date()
	date := fmt.Sprintf("%04d%02d%02d", y, m, d)
	switch {
	case p.capacity == 0:
		return nil
	case p.admission == generated.TIMESLOT:
		out := make([]slot, 0, len(slotStarts))
		for _, h := range slotStarts {
			from := time.Date(y, m, d, h, 0, 0, 0, sandboxZone)
			out = append(out, slot{id: fmt.Sprintf("%s-%s-%02d00", p.id, date, h), from: from, to: from.Add(2 * time.Hour)})
		}
		return out
	default:
		from := time.Date(y, m, d, 0, 0, 0, 0, sandboxZone)
		return []slot{{id: p.id + "-" + date, from: from, to: from.Add(24*time.Hour - time.Second)}}
	}
}

// slotByID parses an availability id back into its slot, if it belongs to p
// and exists.
func (p *product) slotByID(id string) (slot, bool) {
	rest, ok := strings.CutPrefix(id, p.id+"-")
	if !ok || len(rest) < 8 {
		return slot{}, false
	}
	day, err := time.ParseInLocation("20060102", rest[:8], sandboxZone)
	if err != nil {
		return slot{}, false
	}
	for _, s := range p.slotsOn(day) {
		if s.id == id {
			return s, true
		}
	}
	return slot{}, false
}

func money(cents int) wire.Decimal { return wire.Decimal(fmt.Sprintf("%d.%02d", cents/100, cents%100)) }

func ptr[T any](v T) *T { return &v }

func dt(t time.Time) wire.DateTime { return wire.NewDateTime(t.In(sandboxZone)) }

func dtp(t time.Time) *wire.DateTime {
	if t.IsZero() {
		return nil
	}
	v := dt(t)
	return &v
}

func pricing(cents int) generated.Pricing {
	return generated.Pricing{
		PriceCurrencyCode: ptr("EUR"),
		PriceSubtotal:     ptr(money(cents)),
		PriceTotal:        ptr(money(cents)),
		PriceType:         ptr(generated.PricingPriceTypeSALESGROSS),
	}
}

func codeSettings() generated.ProductCodeSettings {
	return generated.ProductCodeSettings{
		ProductCodeFormat:      generated.ProductCodeFormatQRCODE,
		ProductCodeSource:      generated.ProductCodeSourcePRIO,
		ProductVoucherSettings: generated.ProductVoucherSettingsPERPERSON,
	}
}

// model renders p as Prio's ProductModel; epoch is when the catalogue was
// (re)seeded.
func (p *product) model(epoch time.Time, distributorID string) generated.ProductModel {
	details := make([]generated.ProductTypeDetails, 0, len(productTypes))
	minPrice := 0
	for _, t := range productTypes {
		price := p.prices[t.id]
		if minPrice == 0 || price < minPrice {
			minPrice = price
		}
		details = append(details, generated.ProductTypeDetails{
			ProductType:            t.kind,
			ProductTypeId:          ptr(t.id),
			ProductTypeLabel:       ptr(t.label),
			ProductTypeAgeFrom:     ptr(t.from),
			ProductTypeAgeTo:       ptr(t.to),
			ProductTypePax:         ptr(1),
			ProductTypeCapacity:    ptr(1),
			ProductTypeQuantityMin: ptr(0),
			ProductTypeQuantityMax: ptr(100),
			ProductTypePricing: generated.ProductTypePricing{
				ProductTypeListPrice:    money(price),
				ProductTypeSalesPrice:   money(price),
				ProductTypeDisplayPrice: money(price),
			},
		})
	}
	start := time.Date(epoch.Year(), 1, 1, 0, 0, 0, 0, sandboxZone)
	capType := generated.CapacityTypeNOTSET
	if p.capacity > 0 {
		capType = generated.CapacityTypeOWN
	}
	return generated.ProductModel{
		ProductId:                     ptr(p.id),
		ProductStatus:                 ptr(generated.ProductStatusACTIVE),
		ProductAdmissionType:          p.admission,
		ProductAvailability:           wire.NewBool(p.capacity > 0),
		ProductAvailabilityAssigned:   wire.NewBool(p.capacity > 0),
		ProductCapacity:               wire.NewBool(p.capacity > 0),
		ProductCapacityType:           capType,
		ProductTraveldateRequired:     wire.NewBool(p.capacity > 0),
		ProductCancellationAllowed:    ptr(wire.NewBool(true)),
		ProductAddon:                  ptr(wire.NewBool(false)),
		ProductCluster:                ptr(wire.NewBool(false)),
		ProductCombi:                  ptr(wire.NewBool(false)),
		ProductDailyPricing:           ptr(wire.NewBool(false)),
		ProductDynamicPricing:         ptr(wire.NewBool(false)),
		ProductQuantityPricing:        ptr(wire.NewBool(false)),
		ProductSeasonalPricing:        ptr(wire.NewBool(false)),
		ProductOverbookingAllowed:     ptr(wire.NewBool(false)),
		ProductPastDateBookingAllowed: ptr(wire.NewBool(false)),
		ProductMarketAdminId:          ptr("500"),
		ProductMarketAdminName:        ptr("Sandbox Market"),
		ProductBookingStartDate:       dt(start),
		ProductStartDate:              dt(start),
		ProductCodeSettings:           codeSettings(),
		ProductContent: generated.ProductContent{
			ProductTitle:            p.title,
			ProductShortDescription: p.title + " in the Prio sandbox.",
			ProductLongDescription:  p.title + ": a seeded product of the priotest sandbox. It never takes money.",
			ProductSupplierName:     ptr("Sandbox Supplier"),
		},
		ProductContentLanguages:       []string{"en"},
		ProductDefaultLanguage:        "en",
		ProductCreated:                dtp(epoch),
		ProductModified:               dtp(epoch),
		ProductCreatedName:            "Prio Sandbox",
		ProductCreatedEmail:           "sandbox@example.invalid",
		ProductModifiedName:           "Prio Sandbox",
		ProductModifiedEmail:          "sandbox@example.invalid",
		ProductDistributorId:          ptr(distributorID),
		ProductSupplierId:             ptr("9001"),
		ProductFromPrice:              ptr(money(minPrice)),
		ProductCurrencies:             nil,
		ProductPickupPoint:            generated.ProductModelProductPickupPointNOTSET,
		ProductRedemptionRules:        generated.ProductRedemptionRules{RedemptionCountType: generated.UNLIMITED},
		ProductRelationDetailsVisible: wire.NewBool(false),
		ProductServiceType:            generated.ProductServiceTypeATTRACTION,
		ProductSourceId:               "9001",
		ProductSourceName:             "Sandbox Supplier",
		ProductThirdParty:             wire.NewBool(p.slow),
		ProductTypeSeasons: []generated.ProductTypeSeason{{
			ProductTypeSeasonLabel:     ptr("All year"),
			ProductTypeSeasonStartDate: dt(start),
			ProductTypeSeasonDetails:   details,
		}},
		ProductViewType: "DISTRIBUTOR",
	}
}
