package api_test

import (
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A small spec and inventory with known differences, to show that the
// coverage check notices each kind of problem rather than passing whatever
// it is given.
const selfTestSpec = `
openapi: 3.0.3
info: {title: self-test, version: '1'}
paths:
  /things:
    get:
      operationId: getThings
      parameters:
        - {name: from_date, in: query, required: true, schema: {type: string, format: date}}
        - {name: page, in: query, schema: {type: integer, default: 1}}
        - {name: extra, in: query, schema: {type: string}}
      responses:
        '200':
          description: ok
          content: {application/json: {schema: {$ref: '#/components/schemas/Thing'}}}
components:
  schemas:
    Thing:
      type: object
      required: [id]
      properties:
        id: {type: string, readOnly: true}
        active: {type: boolean, default: true, x-go-type: wire.Bool}
        amount: {type: string, x-go-type: wire.Decimal}
        status:
          allOf: [{$ref: '#/components/schemas/Status'}]
          readOnly: true
        tags: {type: array, items: {type: string}, minItems: 1}
        added: {type: string}
    Status: {type: string, enum: [A, B, C]}
`

func selfTestInventory() ([]inventoryOperation, map[string]inventoryModel) {
	str := func(s string) *string { return &s }
	one := 1.0
	ops := []inventoryOperation{{
		OperationID: "getThings", Method: "GET", Path: "/things", Returns: str("Thing"),
		Params: []inventoryParam{
			{Name: "from_date", In: "query", Type: "datetime", Required: true},
			{Name: "page", In: "query", Type: "int", Default: str("1")},
		},
	}}
	models := map[string]inventoryModel{
		"Thing": {Fields: []inventoryField{
			{Name: "id", Type: "string", Required: true, ReadOnly: true},
			{Name: "active", Type: "string", Default: str("'true'")},
			{Name: "amount", Type: "double"},
			{Name: "status", Type: "Status", ReadOnly: true},
			{Name: "tags", Type: "string[]", MinItems: &one},
			{Name: "gone", Type: "string"},
		}},
		"Status": {Enum: []string{"A", "B"}},
	}
	return ops, models
}

func TestCheckerFindsProblems(t *testing.T) {
	t.Parallel()
	doc, err := openapi3.NewLoader().LoadFromData([]byte(selfTestSpec))
	require.NoError(t, err)
	ops, models := selfTestInventory()

	full := exceptionList{
		BooleanRule: booleanRule{Reason: "r", Fields: []string{"Thing.active"}},
		Exceptions: []exception{
			{Schema: "Thing", Field: "amount", Kind: kindType, Reason: "r"},
			{Schema: "Thing", Field: "gone", Kind: kindMissingField, Reason: "r"},
			{Schema: "Thing", Field: "added", Kind: kindAddedField, Reason: "r"},
			{Schema: "Status", Kind: kindEnumValuesAdded, Values: []string{"C"}, Reason: "r"},
			{Operation: "getThings", Parameter: "from_date", Kind: kindParamFormat, Reason: "r"},
			{Operation: "getThings", Parameter: "extra", Kind: kindAddedParameter, Reason: "r"},
		},
	}
	without := func(i int) exceptionList {
		e := full
		e.Exceptions = append(append([]exception(nil), full.Exceptions[:i]...), full.Exceptions[i+1:]...)
		return e
	}

	cases := []struct {
		name            string
		ex              exceptionList
		wantUnexplained []string
		wantStale       int
		wantRuleErrors  int
		wantOps         int
		wantIdentical   int
		wantBoolean     int
		// wantBadFields is how many fields count as unexplained.
		wantBadFields int
	}{
		{name: "all listed", ex: full, wantOps: 1, wantIdentical: 3, wantBoolean: 1},
		{name: "field type not listed", ex: without(0), wantOps: 1, wantIdentical: 3, wantBoolean: 1,
			wantUnexplained: []string{"schema:Thing/amount/type"}, wantBadFields: 1},
		{name: "missing field not listed", ex: without(1), wantOps: 1, wantIdentical: 3, wantBoolean: 1,
			wantUnexplained: []string{"schema:Thing/gone/missing-field"}, wantBadFields: 1},
		{name: "enum addition not listed", ex: without(3), wantOps: 1, wantIdentical: 3, wantBoolean: 1,
			wantUnexplained: []string{"schema:Status//enum-values-added"}},
		{name: "date parameter not listed", ex: without(4), wantOps: 0, wantIdentical: 3, wantBoolean: 1,
			wantUnexplained: []string{"op:getThings/from_date/param-format"}},
		{name: "stale entry", ex: func() exceptionList {
			e := full
			e.Exceptions = append(append([]exception(nil), full.Exceptions...),
				exception{Schema: "Thing", Field: "id", Kind: kindRequired, Reason: "r"})
			return e
		}(), wantOps: 1, wantIdentical: 3, wantBoolean: 1, wantStale: 1},
		{name: "enum values differ from the listed ones", ex: func() exceptionList {
			e := full
			e.Exceptions = append([]exception(nil), full.Exceptions...)
			e.Exceptions[3].Values = []string{"D"}
			return e
		}(), wantOps: 1, wantIdentical: 3, wantBoolean: 1, wantStale: 1,
			wantUnexplained: []string{"schema:Status//enum-values-added"}},
		{name: "boolean flag missing from the rule", ex: func() exceptionList {
			e := full
			e.BooleanRule.Fields = nil
			return e
		}(), wantOps: 1, wantIdentical: 3, wantRuleErrors: 1,
			wantUnexplained: []string{"schema:Thing/active/type"}, wantBadFields: 1},
		{name: "rule lists a field it does not cover", ex: func() exceptionList {
			e := full
			e.BooleanRule.Fields = []string{"Thing.active", "Thing.id"}
			return e
		}(), wantOps: 1, wantIdentical: 3, wantBoolean: 1, wantRuleErrors: 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			diffs, fieldDiffs := compareSchemas(doc, models)
			diffs = append(diffs, compareOperations(doc, ops)...)
			r := classify(diffs, fieldDiffs, ops, models, c.ex)

			var got []string
			for _, d := range r.unexplained {
				got = append(got, d.key())
			}
			assert.ElementsMatch(t, c.wantUnexplained, got, "unexplained")
			assert.Len(t, r.stale, c.wantStale, "stale: %v", r.stale)
			assert.Len(t, r.ruleErrors, c.wantRuleErrors, "rule errors: %v", r.ruleErrors)
			assert.Equal(t, c.wantOps, r.opsCovered, "operations covered")
			assert.Equal(t, 1, r.opsTotal)
			assert.Equal(t, 6, r.fieldsTotal)
			assert.Equal(t, c.wantIdentical, r.fieldsIdentical, "identical fields")
			assert.Equal(t, c.wantBoolean, r.fieldsBoolean, "boolean-rule fields")
			assert.Equal(t, c.wantBadFields, r.fieldsUnexplained, "unexplained fields")
			assert.Equal(t, 6-c.wantIdentical-c.wantBoolean-c.wantBadFields, r.fieldsListed, "listed fields")
		})
	}
}

// TestCheckerComparesAttributes changes one attribute at a time and
// expects exactly that difference.
func TestCheckerComparesAttributes(t *testing.T) {
	t.Parallel()
	str := func(s string) *string { return &s }
	two := 2.0
	base := inventoryField{Name: "f", Type: "string"}
	cases := []struct {
		name string
		prop string
		inv  inventoryField
		want []string
	}{
		{"identical string", `{type: string}`, base, nil},
		{"int is integer", `{type: integer}`, inventoryField{Name: "f", Type: "int"}, nil},
		{"string map", `{type: object, additionalProperties: {type: string}}`, inventoryField{Name: "f", Type: "array<string,string>"}, nil},
		{"datetime with format", `{type: string, format: date-time}`, inventoryField{Name: "f", Type: "datetime", Format: "date-time"}, nil},
		{"format case", `{type: string, format: uri}`, inventoryField{Name: "f", Type: "string", Format: "URI"}, nil},
		{"quoted default", `{type: string, default: en}`, inventoryField{Name: "f", Type: "string", Default: str("'en'")}, nil},
		{"wrong type", `{type: integer}`, base, []string{kindType}},
		{"array of wrong items", `{type: array, items: {type: integer}}`, inventoryField{Name: "f", Type: "string[]"}, []string{kindType}},
		{"lost format", `{type: string}`, inventoryField{Name: "f", Type: "datetime", Format: "date"}, []string{kindFormat}},
		{"extra format", `{type: string, format: uuid}`, base, []string{kindFormat}},
		{"readOnly", `{type: string, readOnly: true}`, base, []string{kindReadOnly}},
		{"default", `{type: string, default: x}`, inventoryField{Name: "f", Type: "string", Default: str("'y'")}, []string{kindDefault}},
		{"inline enum", `{type: string, enum: [A]}`, inventoryField{Name: "f", Type: "string", Enum: []string{"A", "B"}}, []string{kindEnum}},
		{"maxLength", `{type: string, maxLength: 3}`, base, []string{kindMaxLength}},
		{"minimum", `{type: integer, minimum: 1}`, inventoryField{Name: "f", Type: "int", Minimum: &two}, []string{kindMinimum}},
		{"ref", `{$ref: '#/components/schemas/Other'}`, inventoryField{Name: "f", Type: "Other"}, nil},
		{"wrong ref", `{$ref: '#/components/schemas/Other'}`, inventoryField{Name: "f", Type: "Another"}, []string{kindType}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			spec := `
openapi: 3.0.3
info: {title: t, version: '1'}
paths: {}
components:
  schemas:
    Other: {type: string}
    Another: {type: string}
    S:
      type: object
      properties:
        f: ` + c.prop + `
`
			doc, err := openapi3.NewLoader().LoadFromData([]byte(spec))
			require.NoError(t, err)
			var kinds []string
			for _, d := range compareField("S", doc.Components.Schemas["S"].Value, c.inv) {
				kinds = append(kinds, d.Kind)
			}
			assert.ElementsMatch(t, c.want, kinds)
		})
	}
}
