package api_test

// The rules of api/exceptions.yaml that are not differences from the
// inventory but properties of the spec: the money rule (every amount is a
// wire.Decimal), the guessed types (every schema the inventory leaves
// undefined is a wire.Raw) and the unknown-fields rule (every model a caller
// sends back keeps the fields the spec does not know). Each check recomputes
// its set and fails on drift in either direction.

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/stretchr/testify/require"
)

const (
	decimalGoType = "wire.Decimal"
	rawGoType     = "wire.Raw"
	rawJSONGoType = "json.RawMessage"
)

// moneyRule: every amount, price, fee, tax, rate and percentage is decimal
// text (wire.Decimal).
type moneyRule struct {
	Reason string `yaml:"reason"`
	// Words are the last words of a money field's name.
	Words []string `yaml:"words"`
	// MapWords are the last words of the name of a string map whose values
	// are decimals.
	MapWords []string `yaml:"map_words"`
	// Fields lists every inventory field the rule covers, as Schema.field.
	Fields []string `yaml:"fields"`
}

// guessedTypes lists the schemas whose JSON type is a guess (wire.Raw).
type guessedTypes struct {
	Reason  string   `yaml:"reason"`
	Schemas []string `yaml:"schemas"`
}

// unknownFieldsRule names the models whose closure keeps unknown fields.
type unknownFieldsRule struct {
	Reason string   `yaml:"reason"`
	Roots  []string `yaml:"roots"`
}

// lastWord returns what follows the last underscore of a field name.
func lastWord(name string) string {
	return name[strings.LastIndex(name, "_")+1:]
}

// moneyInInventory applies the money rule to the inventory.
func moneyInInventory(models map[string]inventoryModel, r moneyRule) []string {
	var out []string
	for name, m := range models {
		for _, f := range m.Fields {
			w := lastWord(f.Name)
			if (f.Type == "string" || f.Type == "double") && slices.Contains(r.Words, w) ||
				f.Type == "array<string,string>" && slices.Contains(r.MapWords, w) {
				out = append(out, name+"."+f.Name)
			}
		}
	}
	sort.Strings(out)
	return out
}

func goType(s *openapi3.SchemaRef) string {
	if s == nil || s.Value == nil || s.Ref != "" {
		return ""
	}
	g, _ := s.Value.Extensions[extGoType].(string)
	return g
}

// moneyRuleErrors applies the money rule to every property of the spec:
// a money-named string must be a wire.Decimal, a money-named string map must
// have wire.Decimal values, and nothing else may be a wire.Decimal.
func moneyRuleErrors(doc *openapi3.T, r moneyRule) []string {
	var errs []string
	var visit func(path string, s *openapi3.Schema)
	visit = func(path string, s *openapi3.Schema) {
		for _, name := range sortedKeys(s.Properties) {
			p := s.Properties[name]
			if p.Value == nil || p.Ref != "" {
				continue
			}
			where := path + "." + name
			w := lastWord(name)
			isString := p.Value.Type.Is("string")
			isMap := p.Value.Type.Is("object") && p.Value.AdditionalProperties.Schema != nil
			switch {
			case isString && slices.Contains(r.Words, w):
				if goType(p) != decimalGoType {
					errs = append(errs, fmt.Sprintf("%s is money by its name but not %s", where, decimalGoType))
				}
			case isMap && slices.Contains(r.MapWords, w):
				if goType(p.Value.AdditionalProperties.Schema) != decimalGoType {
					errs = append(errs, fmt.Sprintf("%s is a map of money by its name but its values are not %s", where, decimalGoType))
				}
			default:
				if goType(p) == decimalGoType || isMap && goType(p.Value.AdditionalProperties.Schema) == decimalGoType {
					errs = append(errs, fmt.Sprintf("%s is %s but the money rule does not cover it", where, decimalGoType))
				}
			}
			visit(where, p.Value)
			if p.Value.Items != nil && p.Value.Items.Ref == "" && p.Value.Items.Value != nil {
				visit(where+"[]", p.Value.Items.Value)
			}
		}
	}
	for _, name := range sortedKeys(doc.Components.Schemas) {
		if s := doc.Components.Schemas[name].Value; s != nil {
			visit(name, s)
		}
	}
	return errs
}

// TestMoneyRule: the money rule's list is what the rule computes from the
// inventory, and no money field of the spec escapes wire.Decimal.
func TestMoneyRule(t *testing.T) {
	doc := loadSpec(t)
	ex := loadExceptions(t)
	for _, e := range moneyRuleErrors(doc, ex.MoneyRule) {
		t.Error(e)
	}
	requireInventory(t)
	_, models := loadInventory(t)
	want := moneyInInventory(models, ex.MoneyRule)
	got := slices.Sorted(slices.Values(ex.MoneyRule.Fields))
	for _, f := range minus(want, got) {
		t.Errorf("money_rule: %s falls under the rule but is not listed in its fields", f)
	}
	for _, f := range minus(got, want) {
		t.Errorf("money_rule: %s is listed but does not fall under the rule", f)
	}
	// Every listed field is a decimal in the spec too (moneyRuleErrors
	// checks properties by name; this checks the inventory's list lands).
	for _, f := range got {
		schema, field, _ := strings.Cut(f, ".")
		s := doc.Components.Schemas[schema]
		require.NotNil(t, s, "money_rule: schema %s not in the spec", schema)
		p := s.Value.Properties[field]
		require.NotNil(t, p, "money_rule: %s not in the spec", f)
		if goType(p) != decimalGoType && (p.Value.AdditionalProperties.Schema == nil || goType(p.Value.AdditionalProperties.Schema) != decimalGoType) {
			t.Errorf("money_rule: %s is not %s in the spec", f, decimalGoType)
		}
	}
	t.Logf("money rule: %d inventory fields, every money-named property of the spec is %s", len(got), decimalGoType)
}

// guessedTypeErrors: exactly the listed schemas are wire.Raw.
func guessedTypeErrors(doc *openapi3.T, g guessedTypes) []string {
	var errs []string
	for _, name := range sortedKeys(doc.Components.Schemas) {
		s := doc.Components.Schemas[name]
		raw := goType(s) == rawGoType
		listed := slices.Contains(g.Schemas, name)
		switch {
		case listed && !raw:
			errs = append(errs, fmt.Sprintf("guessed_types: %s is listed but is not %s", name, rawGoType))
		case raw && !listed:
			errs = append(errs, fmt.Sprintf("guessed_types: %s is %s but not listed", name, rawGoType))
		}
	}
	for _, name := range g.Schemas {
		if _, ok := doc.Components.Schemas[name]; !ok {
			errs = append(errs, fmt.Sprintf("guessed_types: %s is not a schema of the spec", name))
		}
	}
	return errs
}

// TestGuessedTypesRule: the guessed schemas are wire.Raw, and each is one
// the inventory refers to without defining.
func TestGuessedTypesRule(t *testing.T) {
	doc := loadSpec(t)
	ex := loadExceptions(t)
	for _, e := range guessedTypeErrors(doc, ex.GuessedTypes) {
		t.Error(e)
	}
	for _, name := range ex.GuessedTypes.Schemas {
		found := false
		for _, e := range ex.Exceptions {
			found = found || e.Schema == name && e.Kind == kindAddedSchema
		}
		if !found {
			t.Errorf("guessed_types: %s is not an added-schema exception (the inventory defines it)", name)
		}
	}
}

// closure returns the names of the schemas reachable from roots through
// properties, items, compositions and map values.
func closure(doc *openapi3.T, roots []string) map[string]bool {
	seen := map[string]bool{}
	var walk func(s *openapi3.SchemaRef)
	walk = func(s *openapi3.SchemaRef) {
		if s == nil {
			return
		}
		if s.Ref != "" {
			name := strings.TrimPrefix(s.Ref, schemaRefPrefix)
			if seen[name] {
				return
			}
			seen[name] = true
		}
		v := s.Value
		if v == nil {
			return
		}
		for _, p := range v.Properties {
			walk(p)
		}
		walk(v.Items)
		for _, group := range [][]*openapi3.SchemaRef{v.AllOf, v.OneOf, v.AnyOf} {
			for _, a := range group {
				walk(a)
			}
		}
		walk(v.AdditionalProperties.Schema)
	}
	for _, r := range roots {
		walk(&openapi3.SchemaRef{Ref: schemaRefPrefix + r, Value: doc.Components.Schemas[r].Value})
	}
	return seen
}

// keepsUnknown reports whether s keeps unknown fields as raw JSON.
func keepsUnknown(s *openapi3.Schema) bool {
	return s.AdditionalProperties.Schema != nil && goType(s.AdditionalProperties.Schema) == rawJSONGoType
}

// unknownFieldsErrors: every object model reachable from the roots keeps
// unknown fields, and no schema decodes unknown values as interface{}.
func unknownFieldsErrors(doc *openapi3.T, r unknownFieldsRule) []string {
	var errs []string
	for _, root := range r.Roots {
		if _, ok := doc.Components.Schemas[root]; !ok {
			errs = append(errs, fmt.Sprintf("unknown_fields: root %s is not a schema of the spec", root))
			return errs
		}
	}
	reach := closure(doc, r.Roots)
	for _, name := range sortedKeys(reach) {
		s := doc.Components.Schemas[name]
		if !s.Value.Type.Is("object") || goType(s) != "" {
			continue
		}
		if !keepsUnknown(s.Value) {
			errs = append(errs, fmt.Sprintf("unknown_fields: %s is reachable from the roots but does not keep unknown fields (additionalProperties with %s %s)", name, extGoType, rawJSONGoType))
		}
	}
	var open func(path string, s *openapi3.Schema)
	open = func(path string, s *openapi3.Schema) {
		if s.AdditionalProperties.Has != nil && *s.AdditionalProperties.Has && s.AdditionalProperties.Schema == nil && goType(&openapi3.SchemaRef{Value: s}) == "" {
			errs = append(errs, fmt.Sprintf("%s has additionalProperties true, which decodes numbers as float64; give it a schema with %s %s", path, extGoType, rawJSONGoType))
		}
		for _, name := range sortedKeys(s.Properties) {
			if p := s.Properties[name]; p.Ref == "" && p.Value != nil {
				open(path+"."+name, p.Value)
			}
		}
	}
	for _, name := range sortedKeys(doc.Components.Schemas) {
		open(name, doc.Components.Schemas[name].Value)
	}
	return errs
}

// TestUnknownFieldsRule: the models a caller reads and sends back keep the
// fields the spec does not know.
func TestUnknownFieldsRule(t *testing.T) {
	doc := loadSpec(t)
	ex := loadExceptions(t)
	for _, e := range unknownFieldsErrors(doc, ex.UnknownFields) {
		t.Error(e)
	}
	n := 0
	for name := range closure(doc, ex.UnknownFields.Roots) {
		if keepsUnknown(doc.Components.Schemas[name].Value) {
			n++
		}
	}
	t.Logf("unknown fields: %d models keep them", n)
}

// TestRulesNoticeDrift shows each rule check failing on a spec that breaks
// it, so that a passing check means something.
func TestRulesNoticeDrift(t *testing.T) {
	t.Parallel()
	const spec = `
openapi: 3.0.3
info: {title: self-test, version: '1'}
paths: {}
components:
  schemas:
    Order:
      type: object
      additionalProperties: {x-go-type: json.RawMessage}
      properties:
        fee_amount: {type: string}
        note: {type: string, x-go-type: wire.Decimal}
        rates: {type: object, additionalProperties: {type: string}}
        credit: {$ref: '#/components/schemas/Credit'}
        lines: {type: array, items: {$ref: '#/components/schemas/Line'}}
    Line:
      type: object
      properties:
        extra: {type: object, additionalProperties: true}
    Credit: {type: object, additionalProperties: true}
`
	doc, err := openapi3.NewLoader().LoadFromData([]byte(spec))
	require.NoError(t, err)
	money := moneyRuleErrors(doc, moneyRule{Words: []string{"amount"}, MapWords: []string{"rates"}})
	require.Len(t, money, 3, "%v", money)
	require.Contains(t, money[0], "Order.fee_amount is money")
	require.Contains(t, money[1], "Order.note is wire.Decimal but")
	require.Contains(t, money[2], "Order.rates is a map of money")

	guessed := guessedTypeErrors(doc, guessedTypes{Schemas: []string{"Credit", "Nowhere"}})
	require.Equal(t, []string{
		"guessed_types: Credit is listed but is not wire.Raw",
		"guessed_types: Nowhere is not a schema of the spec",
	}, guessed)

	unknown := unknownFieldsErrors(doc, unknownFieldsRule{Roots: []string{"Order"}})
	require.Len(t, unknown, 4, "%v", unknown)
	require.Contains(t, unknown[0], "Credit is reachable")
	require.Contains(t, unknown[1], "Line is reachable")
	require.Contains(t, unknown[2], "Credit has additionalProperties true")
	require.Contains(t, unknown[3], "Line.extra has additionalProperties true")
}
