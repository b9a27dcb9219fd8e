package api_test

// The property test: for every schema the spec uses as a response (and as a
// request body, which the sandbox decodes), build a fully populated instance
// from the spec itself, decode it into the generated model and encode it
// again; nothing may be lost or changed. Then, for each field whose type is a
// guess (the boolean rule's flags and the fields of a guessed_types schema,
// both read from exceptions.yaml, never from the Go types), put a value of
// every JSON type in its place: decoding must still succeed, the guessed
// field must come back as received (a flag as a JSON boolean) and every
// other field must round-trip unchanged.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/stretchr/testify/require"

	"github.com/priosdk/prio-go/generated"
)

// models maps the schemas used as bodies to their generated types.
// TestPropertyCoversEveryBodySchema fails when a body schema is missing.
var models = map[string]func() any{
	"AvailabilitiesListResponse":           func() any { return new(generated.AvailabilitiesListResponse) },
	"ClientCredentialsGrantResponse":       func() any { return new(generated.ClientCredentialsGrantResponse) },
	"ContactDetailResponse":                func() any { return new(generated.ContactDetailResponse) },
	"ContactListResponse":                  func() any { return new(generated.ContactListResponse) },
	"CreatePaymentResponse":                func() any { return new(generated.CreatePaymentResponse) },
	"CreateWebhookResponse":                func() any { return new(generated.CreateWebhookResponse) },
	"DistributorCurrencyRatesResponse":     func() any { return new(generated.DistributorCurrencyRatesResponse) },
	"DistributorProductCategoriesResponse": func() any { return new(generated.DistributorProductCategoriesResponse) },
	"DistributorProductTaxesResponse":      func() any { return new(generated.DistributorProductTaxesResponse) },
	"ErrorModel":                           func() any { return new(generated.ErrorModel) },
	"GetVoucherResponseJSON":               func() any { return new(generated.GetVoucherResponseJSON) },
	"LocationListResponse":                 func() any { return new(generated.LocationListResponse) },
	"NotificationListResponse":             func() any { return new(generated.NotificationListResponse) },
	"OrderDetailResponse":                  func() any { return new(generated.OrderDetailResponse) },
	"OrderListResponse":                    func() any { return new(generated.OrderListResponse) },
	"PaymentConfig":                        func() any { return new(generated.PaymentConfig) },
	"PaymentDetailsResponse":               func() any { return new(generated.PaymentDetailsResponse) },
	"PaymentListResponse":                  func() any { return new(generated.PaymentListResponse) },
	"ProductDestinationsResponse":          func() any { return new(generated.ProductDestinationsResponse) },
	"ProductDetailResponse":                func() any { return new(generated.ProductDetailResponse) },
	"ProductListResponse":                  func() any { return new(generated.ProductListResponse) },
	"ReservationDetailResponse":            func() any { return new(generated.ReservationDetailResponse) },
	"RoutesListResponse":                   func() any { return new(generated.RoutesListResponse) },
	"StockListResponse":                    func() any { return new(generated.StockListResponse) },
	"SubmitPaymentDetailsResponse":         func() any { return new(generated.SubmitPaymentDetailsResponse) },
	"WebhookListResponse":                  func() any { return new(generated.WebhookListResponse) },
	// Request bodies.
	"AdyenSetPaymentDetailsRequest": func() any { return new(generated.AdyenSetPaymentDetailsRequest) },
	"ClientCredentialsGrantRequest": func() any { return new(generated.ClientCredentialsGrantRequest) },
	"CreateNotificationRequest":     func() any { return new(generated.CreateNotificationRequest) },
	"CreateOrderRequest":            func() any { return new(generated.CreateOrderRequest) },
	"CreatePaymentRequest":          func() any { return new(generated.CreatePaymentRequest) },
	"CreateReservationRequest":      func() any { return new(generated.CreateReservationRequest) },
	"CreateWebhookRequest":          func() any { return new(generated.CreateWebhookRequest) },
	"UpdateContactRequest":          func() any { return new(generated.UpdateContactRequest) },
	"UpdateOrderRequest":            func() any { return new(generated.UpdateOrderRequest) },
}

// bodySchemas returns the named schemas of every JSON response and request
// body of the spec, responses first.
func bodySchemas(doc *openapi3.T) (responses, requests []string) {
	add := func(set map[string]bool, mt *openapi3.MediaType) {
		if mt != nil && mt.Schema != nil && mt.Schema.Ref != "" {
			set[strings.TrimPrefix(mt.Schema.Ref, schemaRefPrefix)] = true
		}
	}
	resp, req := map[string]bool{}, map[string]bool{}
	for _, path := range doc.Paths.InMatchingOrder() {
		for _, op := range doc.Paths.Value(path).Operations() {
			for _, r := range op.Responses.Map() {
				if r.Value != nil {
					add(resp, r.Value.Content.Get("application/json"))
				}
			}
			if op.RequestBody != nil && op.RequestBody.Value != nil {
				add(req, op.RequestBody.Value.Content.Get("application/json"))
			}
		}
	}
	return slices.Sorted(maps.Keys(resp)), slices.Sorted(maps.Keys(req))
}

// slotKind says how a guessed field decodes.
type slotKind int

const (
	slotFlag slotKind = iota // a wire.Bool by the boolean rule
	slotRaw                  // a field of a guessed_types schema
)

// slot is a guessed field of an instance: where it is, and what it is.
type slot struct {
	path []any // keys (string) and indices (int) from the root
	kind slotKind
	// optional is set for a property that may be absent (a pointer in Go,
	// so JSON null leaves it unset); array items and required fields keep
	// null.
	optional bool
	what     string // Schema.field, for messages
	guess    string // the guessed_types schema of a raw slot
}

// builder makes fully populated instances of the spec's schemas.
type builder struct {
	doc     *openapi3.T
	flags   map[string]bool // Schema.field of the boolean rule
	guessed map[string]bool // schemas of guessed_types
	// unknownEnums puts a value no enum of the spec has in every enum field.
	unknownEnums bool
}

func newBuilder(t testing.TB) *builder {
	doc := loadSpec(t)
	ex := loadExceptions(t)
	b := &builder{doc: doc, flags: map[string]bool{}, guessed: map[string]bool{}}
	for _, f := range ex.BooleanRule.Fields {
		b.flags[f] = true
	}
	for _, s := range ex.GuessedTypes.Schemas {
		b.guessed[s] = true
	}
	return b
}

// unknownField is what the instance puts in every model that keeps unknown
// fields; its number has digits a float64 would not keep as written.
const unknownField = "x_added_by_prio"

var unknownValue = map[string]any{"n": json.Number("10.10"), "big": json.Number("12345678901234567890.123456789"), "list": []any{"a", true}}

// instance returns a fully populated value of the named schema and the
// guessed fields in it.
func (b *builder) instance(name string) (any, []slot) {
	var slots []slot
	v := b.value(b.doc.Components.Schemas[name], name, nil, map[string]bool{}, &slots)
	return v, slots
}

// value builds a value of s. owner is the schema whose property s is (for
// the boolean rule), path where it sits, stack the schemas being built (to
// stop on a cycle).
func (b *builder) value(s *openapi3.SchemaRef, owner string, path []any, stack map[string]bool, slots *[]slot) any {
	if s.Ref != "" {
		name := strings.TrimPrefix(s.Ref, schemaRefPrefix)
		if stack[name] {
			return nil
		}
		stack[name] = true
		defer delete(stack, name)
		owner = name
		if b.guessed[name] {
			return guessFor(s.Value)
		}
	}
	v := s.Value
	if len(v.AllOf) == 1 && len(v.Properties) == 0 {
		return b.value(v.AllOf[0], owner, path, stack, slots)
	}
	if len(v.OneOf) > 0 {
		return b.value(v.OneOf[0], owner, path, stack, slots)
	}
	if len(v.AnyOf) > 0 {
		return b.value(v.AnyOf[0], owner, path, stack, slots)
	}
	switch {
	case v.Enum != nil:
		if b.unknownEnums {
			return "NOT_IN_THIS_SPEC_" + strconv.Itoa(len(path))
		}
		return v.Enum[0]
	case v.Type.Is("string"):
		return stringFor(v)
	case v.Type.Is("integer"):
		return json.Number("7")
	case v.Type.Is("number"):
		return json.Number("1.25")
	case v.Type.Is("boolean"):
		return true
	case v.Type.Is("array"):
		item := b.value(v.Items, owner, append(slices.Clone(path), 0), stack, slots)
		if item == nil {
			return []any{}
		}
		if ref := v.Items.Ref; ref != "" && b.guessed[strings.TrimPrefix(ref, schemaRefPrefix)] {
			*slots = append(*slots, slot{path: append(slices.Clone(path), 0), kind: slotRaw, what: owner + "[]",
				guess: strings.TrimPrefix(ref, schemaRefPrefix)})
		}
		return []any{item}
	}
	// An object: every property, an unknown field where the model keeps
	// them, a member where it is a map.
	obj := map[string]any{}
	props := map[string]*openapi3.SchemaRef{}
	required := map[string]bool{}
	for _, part := range append([]*openapi3.SchemaRef{{Value: v}}, v.AllOf...) {
		maps.Copy(props, part.Value.Properties)
		for _, r := range part.Value.Required {
			required[r] = true
		}
	}
	for _, name := range sortedKeys(props) {
		p := props[name]
		at := append(slices.Clone(path), name)
		val := b.value(p, owner, at, stack, slots)
		if val == nil {
			continue
		}
		obj[name] = val
		target, _ := unwrapAllOf(p)
		switch {
		case b.flags[owner+"."+name]:
			*slots = append(*slots, slot{path: at, kind: slotFlag, optional: !required[name], what: owner + "." + name})
		case target.Ref != "" && b.guessed[strings.TrimPrefix(target.Ref, schemaRefPrefix)]:
			*slots = append(*slots, slot{path: at, kind: slotRaw, optional: !required[name], what: owner + "." + name,
				guess: strings.TrimPrefix(target.Ref, schemaRefPrefix)})
		}
	}
	if ap := v.AdditionalProperties.Schema; ap != nil {
		if goType(ap) == rawJSONGoType {
			obj[unknownField] = unknownValue
		} else {
			obj["KEY"] = b.value(ap, owner, append(slices.Clone(path), "KEY"), stack, slots)
		}
	}
	return obj
}

// guessFor is a value of a guessed schema of the guessed JSON type.
func guessFor(s *openapi3.Schema) any {
	if s.Type.Is("string") {
		return "AS_GUESSED"
	}
	return map[string]any{"date": "2026-12-25", "price": json.Number("10.10")}
}

func stringFor(s *openapi3.Schema) any {
	switch strings.ToLower(s.Format) {
	case "date-time":
		return "2026-05-12T14:00:00.5+04:00"
	case "date":
		return "2026-05-12"
	case "uuid":
		return "0d6e4a1b-7c2f-4e90-8b3a-5f1e2d3c4b5a"
	case "email":
		return "guest@example.org"
	case "uri", "url":
		return "https://example.org/x"
	}
	if goType(&openapi3.SchemaRef{Value: s}) == decimalGoType {
		return "12.50"
	}
	return "text"
}

// substitutes are the values of every JSON type put into guessed fields.
var substitutes = []struct {
	name string
	json string
}{
	{"string", `"not what was guessed"`},
	{"number", `12.50`},
	{"bool", `true`},
	{"object", `{"k":[1.10,"x"]}`},
	{"array", `[1.10,"x",{}]`},
	{"null", `null`},
}

// decodeTree parses JSON keeping numbers as their text.
func decodeTree(t testing.TB, raw []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	require.NoError(t, dec.Decode(&v))
	return v
}

// deepCopy copies a tree of maps and slices.
func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = deepCopy(e)
		}
		return out
	}
	return v
}

// setAt replaces the value at path; with remove, it deletes the member.
func setAt(tree any, path []any, v any, remove bool) {
	for i, step := range path {
		last := i == len(path)-1
		switch k := step.(type) {
		case string:
			m := tree.(map[string]any)
			if last {
				if remove {
					delete(m, k)
				} else {
					m[k] = v
				}
				return
			}
			tree = m[k]
		case int:
			s := tree.([]any)
			if last {
				s[k] = v
				return
			}
			tree = s[k]
		}
	}
}

// hasAt reports whether the member at path exists.
func hasAt(tree any, path []any) bool {
	for _, step := range path {
		switch k := step.(type) {
		case string:
			m, ok := tree.(map[string]any)
			if !ok {
				return false
			}
			if tree, ok = m[k]; !ok {
				return false
			}
		case int:
			s, ok := tree.([]any)
			if !ok || k >= len(s) {
				return false
			}
			tree = s[k]
		}
	}
	return true
}

// roundTripModel decodes raw into a fresh model of the named schema and
// returns the re-encoded tree.
func roundTripModel(t testing.TB, name string, raw []byte) (any, error) {
	v := models[name]()
	if err := json.Unmarshal(raw, v); err != nil {
		return nil, err
	}
	out, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("re-encoding: %w", err)
	}
	if bytes.Contains(out, []byte(`Z"`)) {
		return nil, fmt.Errorf("re-encoded with a Z date-time: %s", out)
	}
	return decodeTree(t, out), nil
}

// diffTrees describes where two trees differ ("" if they do not).
func diffTrees(want, got any, at string) string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Sprintf("%s: want an object, got %v", at, got)
		}
		for _, k := range slices.Sorted(maps.Keys(w)) {
			if _, ok := g[k]; !ok {
				return fmt.Sprintf("%s.%s: lost", at, k)
			}
			if d := diffTrees(w[k], g[k], at+"."+k); d != "" {
				return d
			}
		}
		for k := range g {
			if _, ok := w[k]; !ok {
				return fmt.Sprintf("%s.%s: added (%v)", at, k, g[k])
			}
		}
		return ""
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Sprintf("%s: want %v, got %v", at, want, got)
		}
		for i := range w {
			if d := diffTrees(w[i], g[i], fmt.Sprintf("%s[%d]", at, i)); d != "" {
				return d
			}
		}
		return ""
	}
	if !reflect.DeepEqual(want, got) {
		return fmt.Sprintf("%s: want %#v, got %#v", at, want, got)
	}
	return ""
}

// TestPropertyCoversEveryBodySchema: the property test knows the generated
// type of every response and request body schema of the spec.
func TestPropertyCoversEveryBodySchema(t *testing.T) {
	t.Parallel()
	responses, requests := bodySchemas(loadSpec(t))
	require.NotEmpty(t, responses)
	for _, name := range append(responses, requests...) {
		require.Contains(t, models, name, "add the generated type of %s to models in property_test.go", name)
	}
}

// TestPropertyFullInstancesRoundTrip: a fully populated instance of every
// body schema, with an unknown field in each model that keeps them, decodes
// and encodes back unchanged; so does one where every enum holds a value the
// spec does not list.
func TestPropertyFullInstancesRoundTrip(t *testing.T) {
	t.Parallel()
	b := newBuilder(t)
	responses, requests := bodySchemas(b.doc)
	for _, unknownEnums := range []bool{false, true} {
		b := *b
		b.unknownEnums = unknownEnums
		for _, name := range append(responses, requests...) {
			tree, _ := b.instance(name)
			raw, err := json.Marshal(tree)
			require.NoError(t, err)
			got, err := roundTripModel(t, name, raw)
			require.NoError(t, err, "%s (unknown enums %t)", name, unknownEnums)
			if d := diffTrees(decodeTree(t, raw), got, name); d != "" {
				t.Errorf("%s (unknown enums %t) does not round-trip: %s", name, unknownEnums, d)
			}
		}
	}
}

// TestPropertyGuessedFieldsTakeAnyJSONType is the property test proper.
func TestPropertyGuessedFieldsTakeAnyJSONType(t *testing.T) {
	t.Parallel()
	b := newBuilder(t)
	responses, requests := bodySchemas(b.doc)
	covered := map[string]bool{}
	var cases int
	for _, name := range append(responses, requests...) {
		tree, slots := b.instance(name)
		for _, s := range slots {
			covered[s.what] = true
			covered[s.guess] = true
			for _, sub := range substitutes {
				cases++
				in := deepCopy(tree)
				subVal := decodeTree(t, []byte(sub.json))
				setAt(in, s.path, subVal, false)
				raw, err := json.Marshal(in)
				require.NoError(t, err)

				got, err := roundTripModel(t, name, raw)
				if err != nil {
					t.Errorf("%s: %s = %s (%s): decoding fails: %v", name, s.what, sub.json, sub.name, err)
					continue
				}
				want := deepCopy(in)
				if sub.json == "null" && (s.optional || !hasAt(got, s.path)) {
					// null leaves a field unset where Go holds it in a
					// pointer (optional fields, and required read-only
					// ones), so it is not encoded again.
					setAt(want, s.path, nil, true)
				}
				if d := diffTrees(want, got, name); d != "" {
					t.Errorf("%s: %s = %s (%s): %s", name, s.what, sub.json, sub.name, d)
				}
			}
		}
	}
	// Every guessed field of the rules is reached by some body.
	var missed []string
	for f := range b.flags {
		if !covered[f] && b.doc.Components.Schemas[strings.Split(f, ".")[0]] != nil && reachableFlag(b, f) {
			missed = append(missed, f)
		}
	}
	for g := range b.guessed {
		if !covered[g] {
			missed = append(missed, g)
		}
	}
	sort.Strings(missed)
	require.Empty(t, missed, "guessed fields reachable from a body but never substituted")
	t.Logf("%d body schemas (%d responses), %d substitutions", len(responses)+len(requests), len(responses), cases)
}

// reachableFlag reports whether the schema of the boolean-rule field f is
// reachable from a body schema (some inventory schemas, such as the AllOf
// halves, are not used by any body).
func reachableFlag(b *builder, f string) bool {
	responses, requests := bodySchemas(b.doc)
	return closure(b.doc, append(responses, requests...))[strings.Split(f, ".")[0]]
}
