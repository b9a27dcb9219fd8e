package prio

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"time"

	"github.com/priosdk/prio-go/generated"
)

// ProductsService reads the catalogue and availability.
type ProductsService struct{ c *Client }

// ProductPage is one page of List Products.
type ProductPage struct {
	Products     []Product
	Page         int
	TotalPages   int
	TotalItems   int
	ItemsPerPage int
}

// Conditional is the result of a conditional GET (If-Modified-Since). When
// NotModified is true, Value is nil and the copy you hold is current.
type Conditional[T any] struct {
	Value        *T
	NotModified  bool
	LastModified time.Time // from Last-Modified; zero when absent
}

// Get returns a product.
func (s *ProductsService) Get(ctx context.Context, productID string, opts ...CallOption) (*Product, error) {
	r, err := s.GetIfModified(ctx, productID, time.Time{}, opts...)
	if err != nil {
		return nil, err
	}
	return r.Value, nil
}

// GetIfModified returns a product only if it changed since the given time
// (usually the LastModified of your cached copy); otherwise NotModified is
// set. A zero since makes it an ordinary Get.
func (s *ProductsService) GetIfModified(ctx context.Context, productID string, since time.Time, opts ...CallOption) (Conditional[Product], error) {
	if productID == "" {
		return Conditional[Product]{}, fmt.Errorf("%w: empty product id", ErrInvalidArgument)
	}
	var out generated.ProductDetailResponse
	lm, err := s.c.conditional(ctx, "getProduct", opts, since, &out, func(ctx context.Context, eds ...generated.RequestEditorFn) (*http.Response, error) {
		return s.c.raw.GetProduct(ctx, productID, nil, eds...)
	})
	if errors.Is(err, errNotModified) {
		return Conditional[Product]{NotModified: true, LastModified: lm}, nil
	}
	if err != nil {
		return Conditional[Product]{}, err
	}
	return Conditional[Product]{Value: &out.Data.Product, LastModified: lm}, nil
}

// ListPage returns one page of products.
func (s *ProductsService) ListPage(ctx context.Context, params *ListProductsParams, opts ...CallOption) (*ProductPage, error) {
	r, err := s.ListPageIfModified(ctx, params, time.Time{}, opts...)
	if err != nil {
		return nil, err
	}
	return r.Value, nil
}

// ListPageIfModified returns one page of products only if any product
// matching params changed since the given time. Prio then returns every
// matching product, not only the changed ones.
func (s *ProductsService) ListPageIfModified(ctx context.Context, params *ListProductsParams, since time.Time, opts ...CallOption) (Conditional[ProductPage], error) {
	var out generated.ProductListResponse
	lm, err := s.c.conditional(ctx, "getProducts", opts, since, &out, func(ctx context.Context, eds ...generated.RequestEditorFn) (*http.Response, error) {
		return s.c.raw.GetProducts(ctx, params, eds...)
	})
	if errors.Is(err, errNotModified) {
		return Conditional[ProductPage]{NotModified: true, LastModified: lm}, nil
	}
	if err != nil {
		return Conditional[ProductPage]{}, err
	}
	d := out.Data
	return Conditional[ProductPage]{LastModified: lm, Value: &ProductPage{Products: d.Items, Page: d.PageIndex,
		TotalPages: d.TotalPages, TotalItems: d.TotalItems, ItemsPerPage: d.ItemsPerPage}}, nil
}

// List iterates over every product matching params, page after page.
func (s *ProductsService) List(ctx context.Context, params *ListProductsParams, opts ...CallOption) iter.Seq2[*Product, error] {
	p := ListProductsParams{}
	if params != nil {
		p = *params
	}
	p.StartIndex = nil
	return paginate(func(n int) ([]Product, int, error) {
		p.Page = &n
		page, err := s.ListPage(ctx, &p, opts...)
		if err != nil {
			return nil, 0, err
		}
		return page.Products, page.TotalPages, nil
	})
}

// Availability returns a product's slots between params.FromDate and
// ToDate, with open spots and calculated prices. Check it right before
// booking; do not cache it for long.
func (s *ProductsService) Availability(ctx context.Context, productID string, params *AvailabilityParams, opts ...CallOption) ([]Availability, error) {
	if productID == "" || params == nil || params.FromDate.IsZero() {
		return nil, fmt.Errorf("%w: product id and params.FromDate are required", ErrInvalidArgument)
	}
	var out generated.AvailabilitiesListResponse
	err := s.c.simple(ctx, "getProductAvailability", opts, &out, func(ctx context.Context, eds ...generated.RequestEditorFn) (*http.Response, error) {
		return s.c.raw.GetProductAvailability(ctx, productID, params, eds...)
	})
	if err != nil {
		return nil, err
	}
	return out.Data.Items, nil
}

// MultiAvailability returns the availability and pricing variations of
// several products at once (v3.8).
func (s *ProductsService) MultiAvailability(ctx context.Context, params *MultiAvailabilityParams, opts ...CallOption) ([]Availability, error) {
	if params == nil || params.FromDate.IsZero() {
		return nil, fmt.Errorf("%w: params.FromDate is required", ErrInvalidArgument)
	}
	var out generated.AvailabilitiesListResponse
	err := s.c.simple(ctx, "getAvailability", opts, &out, func(ctx context.Context, eds ...generated.RequestEditorFn) (*http.Response, error) {
		return s.c.raw.GetAvailability(ctx, params, eds...)
	})
	if err != nil {
		return nil, err
	}
	return out.Data.Items, nil
}
