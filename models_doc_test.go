package prio

import (
	"go/ast"
	"go/parser"
	"go/token"
	"reflect"
	"strings"
	"testing"
)

// go doc on a booking model shows its fields: the alias's doc comment in
// models.gen.go names every exported field of the model.
func TestModelDocsListFields(t *testing.T) {
	t.Parallel()
	f, err := parser.ParseFile(token.NewFileSet(), "models.gen.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]string{}
	for _, d := range f.Decls {
		if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.TYPE && g.Doc != nil {
			docs[g.Specs[0].(*ast.TypeSpec).Name.Name] = g.Doc.Text()
		}
	}
	for name, typ := range map[string]reflect.Type{
		"Order": reflect.TypeFor[Order](), "OrderBooking": reflect.TypeFor[OrderBooking](),
		"OrderRequest": reflect.TypeFor[OrderRequest](), "BookingOption": reflect.TypeFor[BookingOption](),
		"Reservation": reflect.TypeFor[Reservation](), "ReservationLine": reflect.TypeFor[ReservationLine](),
		"ProductTypeDetail": reflect.TypeFor[ProductTypeDetail](), "Contact": reflect.TypeFor[Contact](),
		"Product": reflect.TypeFor[Product](), "Availability": reflect.TypeFor[Availability](),
	} {
		doc, ok := docs[name]
		if !ok {
			t.Errorf("%s has no doc comment in models.gen.go", name)
			continue
		}
		for i := range typ.NumField() {
			fld := typ.Field(i)
			if fld.IsExported() && fld.Name != "AdditionalProperties" && !strings.Contains(doc, "\t"+fld.Name+" ") {
				t.Errorf("the doc of %s does not list %s", name, fld.Name)
			}
		}
	}
}
