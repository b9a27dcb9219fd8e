package api_test

// The coverage check compares api/openapi.yaml with Prio's published v3.5
// inventory (/work/shared/prio-reference/v35-operations.json and
// v35-models.json) and with api/exceptions.yaml, the list of deliberate
// differences. It fails when an operation is missing, when field coverage
// drops under 98%, when a difference is not listed (unexplained), or when a
// listed difference no longer exists (stale).
//
// Inventory types map to OpenAPI as follows, for fields and parameters alike:
//
//	string                 type: string
//	int                    type: integer
//	double                 type: number
//	datetime               type: string with the inventory's format (date-time
//	                       or date); a parameter without a format is read as
//	                       date-time, and one typed date is a listed difference
//	object                 type: object
//	array<string,string>   type: object whose additionalProperties are strings
//	T[]                    type: array whose items map from T
//	Model (enum or object) $ref to #/components/schemas/Model, directly or as
//	                       the only element of an allOf (which exists to carry
//	                       readOnly or default next to the reference)
//
// Defaults are compared as text after removing the single quotes the v3.5
// generator put around string defaults ('true' and true are the same default);
// formats are compared case-insensitively (URI equals uri). An enum schema
// may have more values than the inventory, but the extra values must be
// listed.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v4"

	"github.com/priosdk/prio-go/api"
)

// referenceDir is where the inventory lives, relative to this package.
const referenceDir = "../../shared/prio-reference"

// requireInventory stops a test that needs the reference inventory when it
// is absent: under CI=true the test fails, since a landing check that
// silently compares nothing would pass a spec that lost operations;
// elsewhere it is skipped with the path it looked for.
func requireInventory(t *testing.T) {
	t.Helper()
	_, err := os.Stat(referenceDir)
	if err == nil {
		return
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("reference inventory: %v", err)
	}
	abs, _ := filepath.Abs(referenceDir)
	if os.Getenv("CI") == "true" {
		t.Fatalf("reference inventory %s is missing; CI=true requires it (check out the shared directory beside the module)", abs)
	}
	t.Skipf("skipped: reference inventory %s is missing (with CI=true this fails)", abs)
}

const (
	wantOperations    = 38
	minFieldCoverage  = 98.0
	exceptionsFile    = "exceptions.yaml"
	schemaRefPrefix   = "#/components/schemas/"
	boolGoType        = "wire.Bool"
	extGoType         = "x-go-type"
	extDiscriminator  = "x-prio-discriminator"
	inventoryOpsFile  = "v35-operations.json"
	inventoryModsFile = "v35-models.json"
)

// Kinds of difference. Field kinds are the names of the compared attributes.
const (
	kindMissingField      = "missing-field"
	kindType              = "type"
	kindFormat            = "format"
	kindRequired          = "required"
	kindReadOnly          = "readOnly"
	kindDefault           = "default"
	kindEnum              = "enum"
	kindMinLength         = "minLength"
	kindMaxLength         = "maxLength"
	kindMinimum           = "minimum"
	kindMaximum           = "maximum"
	kindMinItems          = "minItems"
	kindMaxItems          = "maxItems"
	kindAddedField        = "added-field"
	kindMissingSchema     = "missing-schema"
	kindSchemaType        = "schema-type"
	kindAddedSchema       = "added-schema"
	kindEnumValuesAdded   = "enum-values-added"
	kindEnumValuesMissing = "enum-values-missing"
	kindDiscriminator     = "discriminator"
	kindMissingOperation  = "missing-operation"
	kindOperationID       = "operation-id"
	kindAddedOperation    = "added-operation"
	kindRequestBody       = "request-body"
	kindResponse          = "response"
	kindParamMissing      = "param-missing"
	kindParamType         = "param-type"
	kindParamFormat       = "param-format"
	kindParamRequired     = "param-required"
	kindParamDefault      = "param-default"
	kindAddedParameter    = "added-parameter"
)

var knownKinds = []string{
	kindMissingField, kindType, kindFormat, kindRequired, kindReadOnly, kindDefault, kindEnum,
	kindMinLength, kindMaxLength, kindMinimum, kindMaximum, kindMinItems, kindMaxItems,
	kindAddedField, kindMissingSchema, kindSchemaType, kindAddedSchema, kindEnumValuesAdded,
	kindEnumValuesMissing, kindDiscriminator, kindMissingOperation, kindOperationID,
	kindAddedOperation, kindRequestBody, kindResponse, kindParamMissing, kindParamType,
	kindParamFormat, kindParamRequired, kindParamDefault, kindAddedParameter,
}

type inventoryOperation struct {
	Tag         string           `json:"tag"`
	OperationID string           `json:"operationId"`
	Method      string           `json:"method"`
	Path        string           `json:"path"`
	Title       string           `json:"title"`
	Params      []inventoryParam `json:"params"`
	Returns     *string          `json:"returns"`
}

type inventoryParam struct {
	Name     string  `json:"name"`
	In       string  `json:"in"`
	Type     string  `json:"type"`
	Required bool    `json:"required"`
	Default  *string `json:"default"`
}

type inventoryModel struct {
	Fields        []inventoryField `json:"fields"`
	Enum          []string         `json:"enum"`
	Discriminator string           `json:"discriminator"`
}

type inventoryField struct {
	Name      string   `json:"name"`
	Type      string   `json:"type"`
	Format    string   `json:"format"`
	Required  bool     `json:"required"`
	ReadOnly  bool     `json:"readOnly"`
	Default   *string  `json:"default"`
	Enum      []string `json:"enum"`
	MinLength *float64 `json:"minLength"`
	MaxLength *float64 `json:"maxLength"`
	Minimum   *float64 `json:"minimum"`
	Maximum   *float64 `json:"maximum"`
	MinItems  *float64 `json:"minItems"`
	MaxItems  *float64 `json:"maxItems"`
}

// exceptionList is the shape of api/exceptions.yaml.
type exceptionList struct {
	BooleanRule   booleanRule       `yaml:"boolean_rule"`
	MoneyRule     moneyRule         `yaml:"money_rule"`
	GuessedTypes  guessedTypes      `yaml:"guessed_types"`
	UnknownFields unknownFieldsRule `yaml:"unknown_fields"`
	Exceptions    []exception       `yaml:"exceptions"`
}

// booleanRule covers the one systematic difference: flags the v3.5 generator
// typed as strings are JSON booleans (wire.Bool) in our spec.
type booleanRule struct {
	Reason string `yaml:"reason"`
	// Also names the flags covered although their v3.5 default is not
	// 'true' or 'false'.
	Also []string `yaml:"also"`
	// Fields lists every covered field as Schema.field.
	Fields []string `yaml:"fields"`
}

type exception struct {
	Schema    string   `yaml:"schema"`
	Field     string   `yaml:"field"`
	Operation string   `yaml:"operation"`
	Parameter string   `yaml:"parameter"`
	Kind      string   `yaml:"kind"`
	Values    []string `yaml:"values"`
	Reason    string   `yaml:"reason"`
}

func (e exception) key() string {
	return diffKey(e.Schema, e.Field, e.Operation, e.Parameter, e.Kind)
}

// difference is one way our spec departs from the inventory.
type difference struct {
	Schema, Field, Operation, Parameter, Kind string
	// Detail says what each side has, for the report.
	Detail string
	// Values are the enum values concerned, for the enum kinds.
	Values []string
	// BoolFlag marks a type difference where an inventory string is a
	// wire.Bool boolean in the spec, the change the boolean rule covers.
	BoolFlag bool
}

func (d difference) key() string {
	return diffKey(d.Schema, d.Field, d.Operation, d.Parameter, d.Kind)
}

func diffKey(schema, field, op, param, kind string) string {
	if op != "" {
		return "op:" + op + "/" + param + "/" + kind
	}
	return "schema:" + schema + "/" + field + "/" + kind
}

// yamlLine renders d as an exceptions.yaml entry, so an unexplained
// difference can be reviewed and, if deliberate, pasted in with a reason.
func (d difference) yamlLine() string {
	var b strings.Builder
	b.WriteString("- {")
	if d.Operation != "" {
		fmt.Fprintf(&b, "operation: %s", d.Operation)
		if d.Parameter != "" {
			fmt.Fprintf(&b, ", parameter: %s", d.Parameter)
		}
	} else {
		fmt.Fprintf(&b, "schema: %s", d.Schema)
		if d.Field != "" {
			fmt.Fprintf(&b, ", field: %s", d.Field)
		}
	}
	fmt.Fprintf(&b, ", kind: %s", d.Kind)
	if len(d.Values) > 0 {
		fmt.Fprintf(&b, ", values: [%s]", strings.Join(d.Values, ", "))
	}
	fmt.Fprintf(&b, ", reason: ...}  # %s", d.Detail)
	return b.String()
}

// report is what the coverage check found.
type report struct {
	opsTotal, opsCovered int
	fieldsTotal          int
	fieldsIdentical      int
	fieldsBoolean        int
	fieldsListed         int
	fieldsUnexplained    int
	enumSchemas          int
	schemasTotal         int
	schemasMissing       int
	additions            map[string]int
	unexplained          []difference
	stale                []string
	// ruleErrors are fields the boolean rule covers but does not list, or
	// lists but does not cover.
	ruleErrors []string
}

func (r report) fieldCoverage() float64 {
	if r.fieldsTotal == 0 {
		return 0
	}
	return 100 * float64(r.fieldsIdentical+r.fieldsBoolean) / float64(r.fieldsTotal)
}

func (r report) opCoverage() float64 {
	if r.opsTotal == 0 {
		return 0
	}
	return 100 * float64(r.opsCovered) / float64(r.opsTotal)
}

func (r report) summary() string {
	var b strings.Builder
	b.WriteString("spec coverage against the v3.5 inventory\n")
	fmt.Fprintf(&b, "  operations: %d/%d covered (%.1f%%)\n", r.opsCovered, r.opsTotal, r.opCoverage())
	fmt.Fprintf(&b, "  fields: %d total, %d identical, %d by the boolean rule, %d listed exceptions, %d unexplained\n",
		r.fieldsTotal, r.fieldsIdentical, r.fieldsBoolean, r.fieldsListed, r.fieldsUnexplained)
	fmt.Fprintf(&b, "  field coverage: %.1f%% = (identical + boolean rule) / total (minimum %.0f%%)\n",
		r.fieldCoverage(), minFieldCoverage)
	fmt.Fprintf(&b, "  schemas: %d/%d present, of which %d enums compared value by value\n",
		r.schemasTotal-r.schemasMissing, r.schemasTotal, r.enumSchemas)
	kinds := make([]string, 0, len(r.additions))
	for k := range r.additions {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	parts := make([]string, 0, len(kinds))
	for _, k := range kinds {
		parts = append(parts, fmt.Sprintf("%s %d", k, r.additions[k]))
	}
	fmt.Fprintf(&b, "  listed additions: %s\n", strings.Join(parts, ", "))
	fmt.Fprintf(&b, "  unexplained differences: %d, stale exceptions: %d, boolean rule list errors: %d\n",
		len(r.unexplained), len(r.stale), len(r.ruleErrors))
	return b.String()
}

// TestCoverageV38Additions checks the v3.8 additions that the inventory
// cannot know about; it needs no reference files.
func TestCoverageV38Additions(t *testing.T) {
	doc := loadSpec(t)

	ops := map[string]struct{ method, path string }{
		"getProductStock": {"GET", "/products/stock"},
		"getAvailability": {"GET", "/availability"},
	}
	for id, want := range ops {
		op := doc.Paths.Value(want.path)
		require.NotNil(t, op, "path %s", want.path)
		got := op.GetOperation(want.method)
		require.NotNil(t, got, "%s %s", want.method, want.path)
		require.Equal(t, id, got.OperationID)
	}

	avail := doc.Paths.Value("/availability").Get
	from := avail.Parameters.GetByInAndName("query", "from_date")
	require.NotNil(t, from, "getAvailability from_date")
	require.True(t, from.Required, "from_date is required")
	require.Equal(t, "date", from.Schema.Value.Format)
	pid := avail.Parameters.GetByInAndName("query", "product_id")
	require.NotNil(t, pid, "getAvailability product_id")
	require.True(t, pid.Schema.Value.Type.Is("array"), "product_id is a list")

	voucher := doc.Paths.Value("/orders/{order_reference}/voucher").Get
	fr := voucher.Parameters.GetByInAndName("query", "force_release")
	require.NotNil(t, fr, "getVoucher force_release")
	require.True(t, fr.Schema.Value.Type.Is("boolean"), "force_release is a boolean")

	for _, s := range []string{"BookingOption", "DirectBookingOption", "ReservationDetail"} {
		p := doc.Components.Schemas[s].Value.Properties["booking_addon_reference"]
		require.NotNil(t, p, "%s.booking_addon_reference", s)
		require.True(t, p.Value.Type.Is("string"))
	}

	enums := map[string][]string{
		"ContactType":        {"MANAGER", "SUPPORT", "INSTRUCTOR"},
		"PaymentGatewayType": {"MOKA", "PAYONEER", "SMARTPAY"},
	}
	for name, want := range enums {
		got := enumStrings(doc.Components.Schemas[name].Value.Enum)
		for _, v := range want {
			require.Contains(t, got, v, "%s lacks %s", name, v)
		}
	}
}

// TestCoverageSpecValidates checks the document against the OpenAPI 3.0
// rules kin-openapi knows, beyond what redocly lints.
func TestCoverageSpecValidates(t *testing.T) {
	doc := loadSpec(t)
	require.NoError(t, doc.Validate(t.Context()))
}

// TestCoverageExceptionsWellFormed checks the exceptions file itself, so a
// typo in a kind or a missing reason is reported even without the inventory.
func TestCoverageExceptionsWellFormed(t *testing.T) {
	ex := loadExceptions(t)
	require.NotEmpty(t, strings.TrimSpace(ex.BooleanRule.Reason), "boolean_rule needs a reason")
	require.NotEmpty(t, ex.BooleanRule.Fields, "boolean_rule lists no fields")
	seen := map[string]bool{}
	for i, e := range ex.Exceptions {
		require.Contains(t, knownKinds, e.Kind, "entry %d: unknown kind", i)
		require.NotEmpty(t, strings.TrimSpace(e.Reason), "entry %d (%s) has no reason", i, e.key())
		require.True(t, (e.Schema == "") != (e.Operation == ""), "entry %d names neither or both of schema and operation", i)
		require.False(t, seen[e.key()], "entry %d repeats %s", i, e.key())
		seen[e.key()] = true
	}
	for _, f := range ex.BooleanRule.Fields {
		require.Len(t, strings.Split(f, "."), 2, "boolean_rule field %q is not Schema.field", f)
	}
	require.NotEmpty(t, strings.TrimSpace(ex.MoneyRule.Reason), "money_rule needs a reason")
	require.NotEmpty(t, ex.MoneyRule.Words, "money_rule names no words")
	for _, f := range ex.MoneyRule.Fields {
		require.Len(t, strings.Split(f, "."), 2, "money_rule field %q is not Schema.field", f)
	}
	require.NotEmpty(t, strings.TrimSpace(ex.GuessedTypes.Reason), "guessed_types needs a reason")
	require.NotEmpty(t, ex.GuessedTypes.Schemas, "guessed_types lists no schemas")
	require.NotEmpty(t, strings.TrimSpace(ex.UnknownFields.Reason), "unknown_fields needs a reason")
	require.NotEmpty(t, ex.UnknownFields.Roots, "unknown_fields names no roots")
}

// TestCoverageAgainstInventory is the coverage check proper. It runs after
// the other Coverage tests so that its summary ends the verbose output.
func TestCoverageAgainstInventory(t *testing.T) {
	requireInventory(t)
	doc := loadSpec(t)
	ops, models := loadInventory(t)
	ex := loadExceptions(t)

	diffs, fieldDiffs := compareSchemas(doc, models)
	opDiffs := compareOperations(doc, ops)
	diffs = append(diffs, opDiffs...)

	r := classify(diffs, fieldDiffs, ops, models, ex)
	summary := r.summary()
	t.Logf("\n%s", summary)
	fmt.Print(summary)

	for _, d := range r.unexplained {
		t.Errorf("unexplained difference: %s", d.yamlLine())
	}
	for _, s := range r.stale {
		t.Errorf("stale exception: %s", s)
	}
	for _, s := range r.ruleErrors {
		t.Errorf("boolean rule: %s", s)
	}
	if r.opsCovered < r.opsTotal || r.opsTotal != wantOperations {
		t.Errorf("operations covered %d/%d, want %d/%d", r.opsCovered, r.opsTotal, wantOperations, wantOperations)
	}
	if cov := r.fieldCoverage(); cov < minFieldCoverage {
		t.Errorf("field coverage %.1f%% under %.0f%%", cov, minFieldCoverage)
	}
}

func loadSpec(t testing.TB) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(api.Spec)
	require.NoError(t, err)
	return doc
}

func loadInventory(t *testing.T) ([]inventoryOperation, map[string]inventoryModel) {
	t.Helper()
	var ops []inventoryOperation
	readJSON(t, filepath.Join(referenceDir, inventoryOpsFile), &ops)
	var models map[string]inventoryModel
	readJSON(t, filepath.Join(referenceDir, inventoryModsFile), &models)
	require.NotEmpty(t, ops)
	require.NotEmpty(t, models)
	return ops, models
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(v), "decoding %s", path)
}

func loadExceptions(t testing.TB) exceptionList {
	t.Helper()
	b, err := os.ReadFile(exceptionsFile)
	require.NoError(t, err)
	var ex exceptionList
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(&ex), "decoding %s", exceptionsFile)
	return ex
}

// fieldID names a field of the inventory.
type fieldID struct{ schema, field string }

// compareSchemas returns every schema-level difference, and, per inventory
// field, the differences of that field.
func compareSchemas(doc *openapi3.T, models map[string]inventoryModel) ([]difference, map[fieldID][]difference) {
	var diffs []difference
	perField := map[fieldID][]difference{}
	schemas := doc.Components.Schemas

	for _, name := range sortedKeys(models) {
		m := models[name]
		ref, ok := schemas[name]
		if !ok || ref.Value == nil {
			diffs = append(diffs, difference{Schema: name, Kind: kindMissingSchema, Detail: "not in the spec"})
			for _, f := range m.Fields {
				id := fieldID{name, f.Name}
				perField[id] = append(perField[id], difference{Schema: name, Field: f.Name, Kind: kindMissingField, Detail: "schema missing"})
			}
			continue
		}
		s := ref.Value

		if m.Enum != nil {
			diffs = append(diffs, compareEnumSchema(name, s, m.Enum)...)
			continue
		}
		if !s.Type.Is("object") {
			diffs = append(diffs, difference{Schema: name, Kind: kindSchemaType, Detail: fmt.Sprintf("inventory object, spec %v", s.Type.Slice())})
		}
		if got, _ := s.Extensions[extDiscriminator].(string); got != m.Discriminator {
			diffs = append(diffs, difference{Schema: name, Kind: kindDiscriminator, Detail: fmt.Sprintf("inventory %q, spec %q", m.Discriminator, got)})
		}

		inInventory := map[string]bool{}
		for _, f := range m.Fields {
			inInventory[f.Name] = true
			id := fieldID{name, f.Name}
			perField[id] = compareField(name, s, f)
		}
		for _, p := range sortedKeys(s.Properties) {
			if !inInventory[p] {
				diffs = append(diffs, difference{Schema: name, Field: p, Kind: kindAddedField, Detail: "not in the inventory"})
			}
		}
	}
	for _, name := range sortedKeys(schemas) {
		if _, ok := models[name]; !ok {
			diffs = append(diffs, difference{Schema: name, Kind: kindAddedSchema, Detail: "not in the inventory"})
		}
	}
	return diffs, perField
}

func compareEnumSchema(name string, s *openapi3.Schema, want []string) []difference {
	var diffs []difference
	if !s.Type.Is("string") {
		diffs = append(diffs, difference{Schema: name, Kind: kindSchemaType, Detail: fmt.Sprintf("inventory string enum, spec %v", s.Type.Slice())})
	}
	got := enumStrings(s.Enum)
	if missing := minus(want, got); len(missing) > 0 {
		diffs = append(diffs, difference{Schema: name, Kind: kindEnumValuesMissing, Values: missing, Detail: "values the spec lacks"})
	}
	if added := minus(got, want); len(added) > 0 {
		diffs = append(diffs, difference{Schema: name, Kind: kindEnumValuesAdded, Values: added, Detail: "values the inventory lacks"})
	}
	return diffs
}

// compareField compares one inventory field with the spec's property.
func compareField(schema string, s *openapi3.Schema, f inventoryField) []difference {
	mk := func(kind, detail string) difference {
		return difference{Schema: schema, Field: f.Name, Kind: kind, Detail: detail}
	}
	prop, ok := s.Properties[f.Name]
	if !ok {
		return []difference{mk(kindMissingField, "not in the spec")}
	}
	var diffs []difference
	target, outer := unwrapAllOf(prop)

	if !typeMatches(f.Type, target) {
		d := mk(kindType, fmt.Sprintf("inventory %s, spec %s", f.Type, describe(prop)))
		d.BoolFlag = f.Type == "string" && isWireBool(target)
		diffs = append(diffs, d)
	}
	// Formats of list fields describe their items.
	fmtSchema := target
	if strings.HasSuffix(f.Type, "[]") && target.Value != nil && target.Value.Items != nil {
		fmtSchema = target.Value.Items
	}
	if got := schemaFormat(fmtSchema); !strings.EqualFold(got, f.Format) {
		diffs = append(diffs, mk(kindFormat, fmt.Sprintf("inventory %q, spec %q", f.Format, got)))
	}
	if got := slices.Contains(s.Required, f.Name); got != f.Required {
		diffs = append(diffs, mk(kindRequired, fmt.Sprintf("inventory %t, spec %t", f.Required, got)))
	}
	if got := readOnly(target, outer); got != f.ReadOnly {
		diffs = append(diffs, mk(kindReadOnly, fmt.Sprintf("inventory %t, spec %t", f.ReadOnly, got)))
	}
	if want, got, ok := defaultsMatch(f.Default, defaultOf(target, outer)); !ok {
		diffs = append(diffs, mk(kindDefault, fmt.Sprintf("inventory %q, spec %q", want, got)))
	}
	var v *openapi3.Schema
	if target.Ref == "" && target.Value != nil {
		v = target.Value
	}
	if f.Enum != nil || (v != nil && v.Enum != nil) {
		var got []string
		if v != nil {
			got = enumStrings(v.Enum)
		}
		if !sameSet(f.Enum, got) {
			diffs = append(diffs, mk(kindEnum, fmt.Sprintf("inventory %v, spec %v", f.Enum, got)))
		}
	}
	checks := []struct {
		kind string
		want *float64
		got  *float64
	}{
		{kindMinLength, f.MinLength, nonZero(v, func(s *openapi3.Schema) uint64 { return s.MinLength })},
		{kindMaxLength, f.MaxLength, optional(v, func(s *openapi3.Schema) *uint64 { return s.MaxLength })},
		{kindMinimum, f.Minimum, optionalFloat(v, func(s *openapi3.Schema) *float64 { return s.Min })},
		{kindMaximum, f.Maximum, optionalFloat(v, func(s *openapi3.Schema) *float64 { return s.Max })},
		{kindMinItems, f.MinItems, nonZero(v, func(s *openapi3.Schema) uint64 { return s.MinItems })},
		{kindMaxItems, f.MaxItems, optional(v, func(s *openapi3.Schema) *uint64 { return s.MaxItems })},
	}
	for _, c := range checks {
		if !sameBound(c.want, c.got) {
			diffs = append(diffs, mk(c.kind, fmt.Sprintf("inventory %s, spec %s", boundText(c.want), boundText(c.got))))
		}
	}
	return diffs
}

// unwrapAllOf returns the schema a property stands for and, when it is a
// single-element allOf, the wrapper that may carry readOnly or default.
func unwrapAllOf(prop *openapi3.SchemaRef) (target, outer *openapi3.SchemaRef) {
	if prop.Ref == "" && prop.Value != nil && len(prop.Value.AllOf) == 1 {
		return prop.Value.AllOf[0], prop
	}
	return prop, nil
}

// typeMatches applies the inventory-to-OpenAPI mapping of the file comment.
func typeMatches(invType string, s *openapi3.SchemaRef) bool {
	if s == nil {
		return false
	}
	if elem, ok := strings.CutSuffix(invType, "[]"); ok {
		return s.Ref == "" && s.Value != nil && s.Value.Type.Is("array") && typeMatches(elem, s.Value.Items)
	}
	switch invType {
	case "string", "datetime":
		return s.Ref == "" && s.Value.Type.Is("string")
	case "int":
		return s.Ref == "" && s.Value.Type.Is("integer")
	case "double":
		return s.Ref == "" && s.Value.Type.Is("number")
	case "object":
		return s.Ref == "" && s.Value.Type.Is("object")
	case "array<string,string>":
		if s.Ref != "" || !s.Value.Type.Is("object") {
			return false
		}
		ap := s.Value.AdditionalProperties.Schema
		return ap != nil && ap.Value != nil && ap.Value.Type.Is("string")
	default:
		return s.Ref == schemaRefPrefix+invType
	}
}

func schemaFormat(s *openapi3.SchemaRef) string {
	if s == nil || s.Ref != "" || s.Value == nil {
		return ""
	}
	return s.Value.Format
}

func readOnly(target, outer *openapi3.SchemaRef) bool {
	if outer != nil && outer.Value.ReadOnly {
		return true
	}
	return target.Ref == "" && target.Value != nil && target.Value.ReadOnly
}

func defaultOf(target, outer *openapi3.SchemaRef) any {
	if outer != nil && outer.Value.Default != nil {
		return outer.Value.Default
	}
	if target.Ref == "" && target.Value != nil {
		return target.Value.Default
	}
	return nil
}

// defaultsMatch compares an inventory default with a spec default as text.
func defaultsMatch(inv *string, spec any) (want, got string, ok bool) {
	if inv != nil {
		want = unquote(*inv)
	}
	if spec != nil {
		got = defaultText(spec)
	}
	return want, got, (inv == nil) == (spec == nil) && want == got
}

// unquote removes the single quotes the v3.5 generator put around string
// defaults ('true', 'DESC').
func unquote(s string) string {
	if len(s) >= 2 && s[0] == '\'' && s[len(s)-1] == '\'' {
		return s[1 : len(s)-1]
	}
	return s
}

func defaultText(v any) string {
	switch x := v.(type) {
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case string:
		return x
	default:
		return fmt.Sprint(x)
	}
}

func nonZero(s *openapi3.Schema, get func(*openapi3.Schema) uint64) *float64 {
	if s == nil || get(s) == 0 {
		return nil
	}
	v := float64(get(s))
	return &v
}

func optional(s *openapi3.Schema, get func(*openapi3.Schema) *uint64) *float64 {
	if s == nil || get(s) == nil {
		return nil
	}
	v := float64(*get(s))
	return &v
}

func optionalFloat(s *openapi3.Schema, get func(*openapi3.Schema) *float64) *float64 {
	if s == nil {
		return nil
	}
	return get(s)
}

func sameBound(a, b *float64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return math.Abs(*a-*b) < 1e-9
}

func boundText(v *float64) string {
	if v == nil {
		return "none"
	}
	return strconv.FormatFloat(*v, 'f', -1, 64)
}

func describe(s *openapi3.SchemaRef) string {
	if s.Ref != "" {
		return "$ref " + strings.TrimPrefix(s.Ref, schemaRefPrefix)
	}
	v := s.Value
	out := strings.Join(v.Type.Slice(), "|")
	if v.Format != "" {
		out += "(" + v.Format + ")"
	}
	if g, ok := v.Extensions[extGoType].(string); ok {
		out += " as " + g
	}
	if v.Items != nil {
		out += " of " + describe(v.Items)
	}
	if len(v.AllOf) > 0 {
		out += " allOf"
	}
	return out
}

// compareOperations compares every inventory operation with the spec and
// reports the spec's operations the inventory lacks.
func compareOperations(doc *openapi3.T, ops []inventoryOperation) []difference {
	var diffs []difference
	known := map[string]bool{}
	for _, o := range ops {
		known[strings.ToUpper(o.Method)+" "+o.Path] = true
		mk := func(param, kind, detail string) difference {
			return difference{Operation: o.OperationID, Parameter: param, Kind: kind, Detail: detail}
		}
		item := doc.Paths.Value(o.Path)
		var op *openapi3.Operation
		if item != nil {
			op = item.GetOperation(strings.ToUpper(o.Method))
		}
		if op == nil {
			diffs = append(diffs, mk("", kindMissingOperation, o.Method+" "+o.Path))
			continue
		}
		if op.OperationID != o.OperationID {
			diffs = append(diffs, mk("", kindOperationID, fmt.Sprintf("inventory %s, spec %s", o.OperationID, op.OperationID)))
		}
		if d, ok := compareResponse(o, op); !ok {
			diffs = append(diffs, mk("", kindResponse, d))
		}

		inInventory := map[string]bool{}
		for _, p := range o.Params {
			if p.In == "body" {
				if d, ok := compareBody(p, op); !ok {
					diffs = append(diffs, mk(p.Name, kindRequestBody, d))
				}
				continue
			}
			inInventory[p.In+" "+p.Name] = true
			sp := op.Parameters.GetByInAndName(p.In, p.Name)
			if sp == nil {
				diffs = append(diffs, mk(p.Name, kindParamMissing, "not in the spec"))
				continue
			}
			diffs = append(diffs, compareParam(o.OperationID, p, sp)...)
		}
		for _, sp := range op.Parameters {
			if !inInventory[sp.Value.In+" "+sp.Value.Name] {
				diffs = append(diffs, mk(sp.Value.Name, kindAddedParameter, "not in the inventory"))
			}
		}
	}
	for _, path := range doc.Paths.InMatchingOrder() {
		for method, op := range doc.Paths.Value(path).Operations() {
			if !known[method+" "+path] {
				diffs = append(diffs, difference{Operation: op.OperationID, Kind: kindAddedOperation, Detail: method + " " + path})
			}
		}
	}
	return diffs
}

func compareParam(opID string, p inventoryParam, sp *openapi3.Parameter) []difference {
	mk := func(kind, detail string) difference {
		return difference{Operation: opID, Parameter: p.Name, Kind: kind, Detail: detail}
	}
	var diffs []difference
	s := sp.Schema
	if !paramTypeMatches(p.Type, s) {
		diffs = append(diffs, mk(kindParamType, fmt.Sprintf("inventory %s, spec %s", p.Type, describe(s))))
	}
	// A datetime parameter is a date-time unless listed otherwise.
	if p.Type == "datetime" && s.Ref == "" && s.Value.Format != "date-time" {
		diffs = append(diffs, mk(kindParamFormat, fmt.Sprintf("inventory datetime, spec format %q", s.Value.Format)))
	}
	if sp.Required != p.Required {
		diffs = append(diffs, mk(kindParamRequired, fmt.Sprintf("inventory %t, spec %t", p.Required, sp.Required)))
	}
	var def any
	if s.Ref == "" {
		def = s.Value.Default
	}
	if want, got, ok := defaultsMatch(p.Default, def); !ok {
		diffs = append(diffs, mk(kindParamDefault, fmt.Sprintf("inventory %q, spec %q", want, got)))
	}
	return diffs
}

// paramTypeMatches maps parameter types: a datetime parameter may be a
// date-time or a date (the format is checked separately), everything else
// as for fields.
func paramTypeMatches(invType string, s *openapi3.SchemaRef) bool {
	if invType == "datetime" {
		f := schemaFormat(s)
		return s.Ref == "" && s.Value.Type.Is("string") && (f == "date-time" || f == "date")
	}
	return typeMatches(invType, s)
}

func compareBody(p inventoryParam, op *openapi3.Operation) (string, bool) {
	if op.RequestBody == nil || op.RequestBody.Value == nil {
		return "no request body", false
	}
	rb := op.RequestBody.Value
	mt := rb.Content.Get("application/json")
	if mt == nil || mt.Schema == nil {
		return "no application/json body", false
	}
	if !typeMatches(p.Type, mt.Schema) {
		return fmt.Sprintf("inventory %s, spec %s", p.Type, describe(mt.Schema)), false
	}
	if rb.Required != p.Required {
		return fmt.Sprintf("required: inventory %t, spec %t", p.Required, rb.Required), false
	}
	return "", true
}

// compareResponse checks that the success response carries the inventory's
// return model as JSON.
func compareResponse(o inventoryOperation, op *openapi3.Operation) (string, bool) {
	var found []string
	for code, r := range op.Responses.Map() {
		if !strings.HasPrefix(code, "2") || r.Value == nil {
			continue
		}
		if mt := r.Value.Content.Get("application/json"); mt != nil && mt.Schema != nil {
			found = append(found, describe(mt.Schema))
			if o.Returns != nil && typeMatches(*o.Returns, mt.Schema) {
				return "", true
			}
		}
	}
	if o.Returns == nil {
		return fmt.Sprintf("inventory has no return model, spec %v", found), len(found) == 0
	}
	return fmt.Sprintf("inventory %s, spec %v", *o.Returns, found), false
}

// classify sorts differences into explained and unexplained ones, counts
// fields, and finds stale exceptions.
func classify(schemaAndOpDiffs []difference, fieldDiffs map[fieldID][]difference, ops []inventoryOperation,
	models map[string]inventoryModel, ex exceptionList) report {
	r := report{additions: map[string]int{}}

	listed := map[string]exception{}
	for _, e := range ex.Exceptions {
		listed[e.key()] = e
	}
	used := map[string]bool{}
	explained := func(d difference) bool {
		e, ok := listed[d.key()]
		if !ok {
			return false
		}
		if len(e.Values) > 0 || len(d.Values) > 0 {
			if !sameSet(e.Values, d.Values) {
				return false
			}
		}
		used[d.key()] = true
		return true
	}

	ruleFields := map[string]bool{}
	for _, f := range ex.BooleanRule.Fields {
		ruleFields[f] = true
	}
	ruleUsed := map[string]bool{}

	// The rule's list must be exactly what the rule says it covers: string
	// flags with a 'true'/'false' default, plus the flags named in also.
	expected := map[string]bool{}
	for name, m := range models {
		for _, f := range m.Fields {
			def := ""
			if f.Default != nil {
				def = unquote(*f.Default)
			}
			if f.Type == "string" && (def == "true" || def == "false") || slices.Contains(ex.BooleanRule.Also, f.Name) {
				expected[name+"."+f.Name] = true
			}
		}
	}
	for f := range expected {
		if !ruleFields[f] {
			r.ruleErrors = append(r.ruleErrors, fmt.Sprintf("%s falls under the rule but is not listed in its fields", f))
		}
	}
	for f := range ruleFields {
		if !expected[f] {
			r.ruleErrors = append(r.ruleErrors, fmt.Sprintf("%s is listed but does not fall under the rule", f))
		}
	}

	// Fields.
	r.schemasTotal = len(models)
	for name, m := range models {
		if m.Enum != nil {
			r.enumSchemas++
		}
		for _, f := range m.Fields {
			r.fieldsTotal++
			id := fieldID{name, f.Name}
			ds := fieldDiffs[id]
			if len(ds) == 0 {
				r.fieldsIdentical++
				continue
			}
			onlyRule, allExplained := true, true
			for _, d := range ds {
				if d.BoolFlag && ruleFields[name+"."+f.Name] {
					ruleUsed[name+"."+f.Name] = true
					continue
				}
				onlyRule = false
				if !explained(d) {
					allExplained = false
					r.unexplained = append(r.unexplained, d)
				}
			}
			switch {
			case onlyRule:
				r.fieldsBoolean++
			case allExplained:
				r.fieldsListed++
			default:
				r.fieldsUnexplained++
			}
		}
	}
	for f := range ruleFields {
		if expected[f] && !ruleUsed[f] {
			r.stale = append(r.stale, fmt.Sprintf("boolean_rule: %s is not a string-to-boolean difference (any more)", f))
		}
	}

	// Schemas and operations.
	opBad := map[string]bool{}
	for _, d := range schemaAndOpDiffs {
		// A missing operation is never covered, listed or not.
		switch d.Kind {
		case kindMissingOperation:
			opBad[d.Operation] = true
		case kindMissingSchema:
			r.schemasMissing++
		}
		if !explained(d) {
			r.unexplained = append(r.unexplained, d)
			if d.Operation != "" {
				opBad[d.Operation] = true
			}
			continue
		}
		switch d.Kind {
		case kindAddedSchema, kindAddedField, kindAddedOperation, kindAddedParameter, kindEnumValuesAdded:
			r.additions[d.Kind]++
		}
	}
	r.opsTotal = len(ops)
	for _, o := range ops {
		if !opBad[o.OperationID] {
			r.opsCovered++
		}
	}

	for _, e := range ex.Exceptions {
		if !used[e.key()] {
			r.stale = append(r.stale, fmt.Sprintf("%s: no such difference (any more)", e.key()))
		}
	}
	sort.Strings(r.stale)
	sort.Strings(r.ruleErrors)
	sort.Slice(r.unexplained, func(i, j int) bool { return r.unexplained[i].key() < r.unexplained[j].key() })
	return r
}

// isWireBool reports whether s is a boolean decoded through wire.Bool, which
// accepts both JSON booleans and the strings v3.5 sent.
func isWireBool(s *openapi3.SchemaRef) bool {
	if s.Ref != "" || s.Value == nil || !s.Value.Type.Is("boolean") {
		return false
	}
	g, _ := s.Value.Extensions[extGoType].(string)
	return g == boolGoType
}

func enumStrings(vs []any) []string {
	out := make([]string, 0, len(vs))
	for _, v := range vs {
		out = append(out, fmt.Sprint(v))
	}
	return out
}

// minus returns the values of a that b lacks, in a's order.
func minus(a, b []string) []string {
	var out []string
	for _, v := range a {
		if !slices.Contains(b, v) {
			out = append(out, v)
		}
	}
	return out
}

func sameSet(a, b []string) bool {
	return len(minus(a, b)) == 0 && len(minus(b, a)) == 0
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
