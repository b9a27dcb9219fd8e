// Command modelgen writes the code that makes the generated models pleasant
// to use from package prio. It reads generated/prio.gen.go (oapi-codegen's
// output) and writes:
//
//   - with -enums FILE: the enums of the booking flow as aliases in package
//     prio, with Go names for their values (prio.OrderConfirmed rather than
//     generated.ORDERCONFIRMED);
//   - with -getters FILE: nil-safe getters for the pointer fields of every
//     model of package generated (order.GetOrderReference() returns "" on a
//     nil order or an absent field).
//
// go generate runs it (see types.go and generated/generate.go); .ci/run
// fails when its output differs from the committed files.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/printer"
	"go/token"
	"log"
	"os"
	"slices"
	"strconv"
	"strings"
)

// enum is one generated enum re-exported in package prio.
type enum struct {
	gen    string // the generated type
	name   string // its name in package prio
	prefix string // put before each value's Go name
	doc    string // the alias's doc comment, after its name
}

// enums are the enums a booking program meets. The prefixes keep value
// names apart where two enums share a value (CANCELLED, EXPIRED, ...).
var enums = []enum{
	{"OrderStatusTypes", "OrderStatus", "", "is an order's state (Order.OrderStatus). An order is final once it is\n// no longer pending, in review or processing."},
	{"BookingStatusTypes", "BookingStatus", "", "is the state of one booking of an order or one line of a reservation."},
	{"ContactType", "ContactType", "Contact", "is the role of a contact on an order or a reservation (Contact.ContactType)."},
	{"ProductAdmissionType", "AdmissionType", "Admission", "says how a product is admitted: at any time (AdmissionTimeOpen), in a\n// time slot, on a date, ... Slot and date products are booked with an availability id."},
	{"ProductType", "ProductType", "ProductType", "is the kind of a product type: adult, child, group, ..."},
	{"ProductStatus", "ProductStatus", "Product", "is a product's state in the catalogue."},
	{"PaymentStatus", "PaymentStatus", "Payment", "is the state of a payment of an order or a reservation."},
}

// alias is a model of package generated that package prio names. Its
// doc comment lists the model's fields, so that go doc on the alias shows
// them instead of a single line pointing into package generated.
type alias struct {
	name, gen, doc string
}

var aliases = []alias{
	{"Order", "ConfirmedOrderModel", "is a booked order as Prio returns it."},
	{"OrderBooking", "ConfirmedBooking", "is one booking of an Order (Order.OrderBookings)."},
	{"OrderRequest", "CreateOrderModel", "is the body of Create Order: one or more bookings, either\n// direct bookings (see Bookings) or the confirmation of one reservation\n// (see ReservationsService.Confirm)."},
	{"OrderUpdate", "UpdateOrderModel", "is the body of Update Order."},
	{"BookingOption", "BookingOption", "is one entry of OrderRequest.OrderBookings; Item.Booking makes\n// a direct booking."},
	{"ListOrdersParams", "GetOrdersParams", "filters List Orders."},
	{"Reservation", "ReservationModel", "is a hold on capacity (a cart) as Prio returns it, and also\n// the body of Create and Update Reservation: read-only fields are ignored\n// on the way in."},
	{"ReservationLine", "ReservationDetail", "is one line of a reservation (a cart item); Item.ReservationLine\n// makes one."},
	{"ProductTypeDetail", "RegularBookingItem", "is one line of a booking: a product type (ADULT,\n// CHILD, ...) and how many; Tickets makes one. Prio answers with one line\n// per ticket."},
	{"Contact", "ContactDetails", "is a booker or guest contact; Person.Contact makes one."},
	{"Pricing", "Pricing", "is the price breakdown of an order, a booking, a reservation or a\n// ticket."},
	{"Product", "ProductModel", "is a product's content and configuration."},
	{"Availability", "AvailabilityModel", "is one slot (or date) with its capacity and prices."},
	{"ListProductsParams", "GetProductsParams", "filters List Products."},
	{"AvailabilityParams", "GetProductAvailabilityParams", "selects one product's availability; FromDate is\n// required and a request spans at most 90 days."},
	{"MultiAvailabilityParams", "GetAvailabilityParams", "selects the availability of several products."},
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("modelgen: ")
	src := flag.String("src", "generated/prio.gen.go", "oapi-codegen's output")
	enumsOut := flag.String("enums", "", "write the prio enums to this file")
	gettersOut := flag.String("getters", "", "write the getters of package generated to this file")
	modelsOut := flag.String("models", "", "write the prio aliases of the booking models to this file")
	flag.Parse()

	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, *src, nil, parser.SkipObjectResolution|parser.ParseComments)
	if err != nil {
		log.Fatal(err)
	}
	if *enumsOut != "" {
		write(*enumsOut, genEnums(f))
	}
	if *gettersOut != "" {
		write(*gettersOut, genGetters(fset, f))
	}
	if *modelsOut != "" {
		write(*modelsOut, genModels(fset, f))
	}
}

const header = "// Code generated by internal/cmd/modelgen from generated/prio.gen.go. DO NOT EDIT.\n\n"

func write(path string, src []byte) {
	out, err := format.Source(src)
	if err != nil {
		log.Fatalf("%s: %v\n%s", path, err, src)
	}
	if err := os.WriteFile(path, out, 0o644); err != nil {
		log.Fatal(err)
	}
}

// enumValues returns the constants of each named string type: the
// generated name and the value, in source order.
func enumValues(f *ast.File) map[string][][2]string {
	vals := map[string][][2]string{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			id, ok := vs.Type.(*ast.Ident)
			if !ok || len(vs.Values) != 1 {
				continue
			}
			lit, ok := vs.Values[0].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				continue
			}
			v, _ := strconv.Unquote(lit.Value)
			vals[id.Name] = append(vals[id.Name], [2]string{vs.Names[0].Name, v})
		}
	}
	return vals
}

// goName turns an enum value (TIME_OPEN) into a Go name (TimeOpen).
func goName(v string) string {
	var b strings.Builder
	for _, w := range strings.FieldsFunc(v, func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9')
	}) {
		b.WriteString(strings.ToUpper(w[:1]) + strings.ToLower(w[1:]))
	}
	return b.String()
}

func genEnums(f *ast.File) []byte {
	vals := enumValues(f)
	var b bytes.Buffer
	b.WriteString(header + "package prio\n\nimport \"github.com/priosdk/prio-go/generated\"\n")
	seen := map[string]string{}
	for _, e := range enums {
		vs := vals[e.gen]
		if len(vs) == 0 {
			log.Fatalf("no values for generated.%s", e.gen)
		}
		fmt.Fprintf(&b, "\n// %s %s\n// Prio may add values: compare with the constants, and keep a default.\ntype %s = generated.%s\n", e.name, e.doc, e.name, e.gen)
		fmt.Fprintf(&b, "\n// The values of %s the spec lists.\nconst (\n", e.name)
		for _, v := range vs {
			n := e.prefix + goName(v[1])
			if prev, dup := seen[n]; dup {
				log.Fatalf("%s names both %s and %s.%s", n, prev, e.gen, v[1])
			}
			seen[n] = e.gen + "." + v[1]
			fmt.Fprintf(&b, "\t%s %s = generated.%s // %s\n", n, e.name, v[0], v[1])
		}
		b.WriteString(")\n")
	}
	return b.Bytes()
}

// genGetters writes a Get<Field> method for each pointer field of each
// model: a struct type whose fields carry json tags.
func genGetters(fset *token.FileSet, f *ast.File) []byte {
	var b bytes.Buffer
	used := map[string]bool{} // package names the getters' types name
	methods := map[string]bool{}
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv != nil {
			methods[recvName(fd.Recv.List[0].Type)+"."+fd.Name.Name] = true
		}
	}
	type model struct {
		name string
		st   *ast.StructType
	}
	var models []model
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.TYPE {
			continue
		}
		for _, s := range g.Specs {
			ts := s.(*ast.TypeSpec)
			st, ok := ts.Type.(*ast.StructType)
			// The strict server's request objects are not models.
			if !ok || ts.Assign != 0 || ts.TypeParams != nil || !ts.Name.IsExported() || !hasJSONTags(st) ||
				strings.HasSuffix(ts.Name.Name, "RequestObject") {
				continue
			}
			models = append(models, model{ts.Name.Name, st})
		}
	}
	slices.SortFunc(models, func(a, b model) int { return strings.Compare(a.name, b.name) })
	isModel := map[string]bool{}
	for _, m := range models {
		isModel[m.name] = true
	}
	for _, m := range models {
		for _, fld := range m.st.Fields.List {
			star, ok := fld.Type.(*ast.StarExpr)
			if !ok || len(fld.Names) == 0 {
				continue
			}
			var t bytes.Buffer
			if err := printer.Fprint(&t, fset, star.X); err != nil {
				log.Fatal(err)
			}
			ast.Inspect(star.X, func(n ast.Node) bool {
				if sel, ok := n.(*ast.SelectorExpr); ok {
					if id, ok := sel.X.(*ast.Ident); ok {
						used[id.Name] = true
					}
				}
				return true
			})
			for _, n := range fld.Names {
				get := "Get" + n.Name
				if !n.IsExported() || methods[m.name+"."+get] || fieldNamed(m.st, get) {
					continue
				}
				if id, ok := star.X.(*ast.Ident); ok && isModel[id.Name] {
					// A nested model stays a pointer, so getters chain:
					// order.GetOrderPricing().GetPriceTotal() is nil-safe.
					fmt.Fprintf(&b, "\n// %s returns the %s field; nil when x or the field is nil, and\n// its getters accept nil.\n", get, n.Name)
					fmt.Fprintf(&b, "func (x *%s) %s() *%s {\n\tif x == nil {\n\t\treturn nil\n\t}\n\treturn x.%s\n}\n",
						m.name, get, t.String(), n.Name)
					continue
				}
				fmt.Fprintf(&b, "\n// %s returns the %s field, or its zero value when x or the field is nil.\n", get, n.Name)
				fmt.Fprintf(&b, "func (x *%s) %s() %s {\n\tif x == nil || x.%s == nil {\n\t\tvar zero %s\n\t\treturn zero\n\t}\n\treturn *x.%s\n}\n",
					m.name, get, t.String(), n.Name, t.String(), n.Name)
			}
		}
	}
	var out bytes.Buffer
	out.WriteString(header + "package generated\n\nimport (\n")
	for _, imp := range f.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		name := path[strings.LastIndex(path, "/")+1:]
		if imp.Name != nil {
			name = imp.Name.Name
		}
		if used[name] {
			if imp.Name != nil {
				fmt.Fprintf(&out, "%s %q\n", name, path)
			} else {
				fmt.Fprintf(&out, "%q\n", path)
			}
		}
	}
	out.WriteString(")\n")
	out.Write(b.Bytes())
	return out.Bytes()
}

func recvName(t ast.Expr) string {
	if s, ok := t.(*ast.StarExpr); ok {
		t = s.X
	}
	if id, ok := t.(*ast.Ident); ok {
		return id.Name
	}
	return ""
}

func hasJSONTags(st *ast.StructType) bool {
	for _, f := range st.Fields.List {
		if f.Tag != nil && strings.Contains(f.Tag.Value, `json:"`) {
			return true
		}
	}
	return false
}

func fieldNamed(st *ast.StructType, name string) bool {
	for _, f := range st.Fields.List {
		for _, n := range f.Names {
			if n.Name == name {
				return true
			}
		}
	}
	return false
}

// genModels writes the aliases with their fields in the doc comment: name,
// type, and the first sentence of the field's own comment.
func genModels(fset *token.FileSet, f *ast.File) []byte {
	structs := map[string]*ast.StructType{}
	for _, d := range f.Decls {
		if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.TYPE {
			for _, sp := range g.Specs {
				ts := sp.(*ast.TypeSpec)
				if st, ok := ts.Type.(*ast.StructType); ok {
					structs[ts.Name.Name] = st
				}
			}
		}
	}
	var b bytes.Buffer
	b.WriteString(header + "package prio\n\nimport \"github.com/priosdk/prio-go/generated\"\n")
	for _, a := range aliases {
		st, ok := structs[a.gen]
		if !ok {
			log.Fatalf("no struct generated.%s", a.gen)
		}
		fmt.Fprintf(&b, "\n// %s %s\n//\n// Its fields (types of package generated; a pointer is optional and has a\n// nil-safe Get method):\n//\n", a.name, a.doc)
		var rows [][3]string
		width := [2]int{}
		for _, fld := range st.Fields.List {
			var t bytes.Buffer
			if err := printer.Fprint(&t, fset, fld.Type); err != nil {
				log.Fatal(err)
			}
			for _, n := range fld.Names {
				if !n.IsExported() || n.Name == "AdditionalProperties" {
					continue
				}
				rows = append(rows, [3]string{n.Name, t.String(), summary(fld.Doc, n.Name)})
				width[0], width[1] = max(width[0], len(n.Name)), max(width[1], len(t.String()))
			}
		}
		for _, r := range rows {
			line := fmt.Sprintf("%-*s %-*s %s", width[0], r[0], width[1], r[1], r[2])
			fmt.Fprintf(&b, "//\t%s\n", strings.TrimRight(line, " "))
		}
		if fieldNamed(st, "AdditionalProperties") {
			b.WriteString("//\n// AdditionalProperties keeps the fields this version does not know, and\n// sends them back.\n")
		}
		fmt.Fprintf(&b, "type %s = generated.%s\n", a.name, a.gen)
	}
	return b.Bytes()
}

// summary is the first sentence of a field's comment, without the field's
// name that oapi-codegen puts first, cut to a line.
func summary(doc *ast.CommentGroup, name string) string {
	if doc == nil {
		return ""
	}
	t := strings.Join(strings.Fields(doc.Text()), " ")
	t = strings.TrimPrefix(t, name+" ")
	if i := strings.Index(t, ". "); i >= 0 {
		t = t[:i+1]
	}
	if len(t) > 60 {
		cut := strings.LastIndex(t[:60], " ")
		if cut < 30 {
			cut = 60
		}
		t = t[:cut] + " ..."
	}
	return t
}
