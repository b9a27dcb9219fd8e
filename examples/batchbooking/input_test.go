package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	prio "github.com/priosdk/prio-go"
	"github.com/priosdk/prio-go/batch"
)

// readAll collects the rows and errors of an input.
func readAll(t *testing.T, input string, f format) (rows []batch.Row, errs []error) {
	t.Helper()
	for row, err := range readRows(strings.NewReader(input), f) {
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rows = append(rows, row)
	}
	return rows, errs
}

// body renders a request as it is sent, to compare whole requests.
func body(t *testing.T, req *prio.OrderRequest) string {
	t.Helper()
	b, err := json.Marshal(req)
	require.NoError(t, err)
	return string(b)
}

func TestRecordToRequest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		rec     record
		want    string // JSON of the request
		wantErr string
	}{
		{
			name: "minimal direct booking",
			rec:  record{"external_reference": "R1", "product_id": "30001", "product_type_id": "101"},
			want: `{"order_bookings":[{"booking_option_type":"DIRECT_BOOKING","product_id":"30001","product_type_details":[{"product_type_count":1,"product_type_id":"101"}]}],"order_distributor_id":"","order_external_reference":"R1","order_language":"en"}`,
		},
		{
			name: "every column",
			rec: record{"external_reference": "R2", "product_id": "30002", "product_type_id": "102", "product_type": "child",
				"product_type_count": "3", "availability_id": "30002-20260701-1000", "travel_date": "2026-07-01T10:00:00+01:00",
				"contact_email": "ana@example.com"},
			want: `{"order_bookings":[{"booking_option_type":"DIRECT_BOOKING","booking_travel_date":"2026-07-01T10:00:00+01:00","product_availability_id":"30002-20260701-1000","product_id":"30002","product_type_details":[{"product_type":"CHILD","product_type_count":3,"product_type_id":"102"}]}],"order_contacts":[{"contact_email":"ana@example.com","contact_type":"BOOKER"}],"order_distributor_id":"","order_external_reference":"R2","order_language":"en"}`,
		},
		{
			name: "custom product type",
			rec:  record{"external_reference": "R5", "product_id": "30001", "product_type_id": "103", "product_type": "Family_Plus"},
			want: `{"order_bookings":[{"booking_option_type":"DIRECT_BOOKING","product_id":"30001","product_type_details":[{"product_type":"FAMILY_PLUS","product_type_count":1,"product_type_id":"103"}]}],"order_distributor_id":"","order_external_reference":"R5","order_language":"en"}`,
		},
		{
			name: "date only travel date",
			rec:  record{"external_reference": "R3", "product_id": "30003", "product_type_id": "101", "travel_date": "2026-07-01"},
			want: `{"order_bookings":[{"booking_option_type":"DIRECT_BOOKING","booking_travel_date":"2026-07-01T00:00:00+00:00","product_id":"30003","product_type_details":[{"product_type_count":1,"product_type_id":"101"}]}],"order_distributor_id":"","order_external_reference":"R3","order_language":"en"}`,
		},
		{
			name: "confirm a reservation",
			rec:  record{"external_reference": "R4", "reservation_reference": "RES12345"},
			want: `{"order_bookings":[{"booking_option_type":"CONFIRM_RESERVATION","reservation_reference":"RES12345"}],"order_distributor_id":"","order_external_reference":"R4","order_language":"en"}`,
		},
		{name: "no reference", rec: record{"product_id": "1", "product_type_id": "2"}, wantErr: "external_reference is empty"},
		{name: "no product", rec: record{"external_reference": "R", "product_type_id": "2"}, wantErr: "product_id and product_type_id are required"},
		{name: "count not a number", rec: record{"external_reference": "R", "product_id": "1", "product_type_id": "2", "product_type_count": "two"}, wantErr: "product_type_count"},
		{name: "count too big", rec: record{"external_reference": "R", "product_id": "1", "product_type_id": "2", "product_type_count": "101"}, wantErr: "1 to 100"},
		{name: "count zero", rec: record{"external_reference": "R", "product_id": "1", "product_type_id": "2", "product_type_count": "0"}, wantErr: "1 to 100"},
		{name: "bad travel date", rec: record{"external_reference": "R", "product_id": "1", "product_type_id": "2", "travel_date": "01/07/2026"}, wantErr: "travel_date"},
		{name: "travel date without offset", rec: record{"external_reference": "R", "product_id": "1", "product_type_id": "2", "travel_date": "2026-07-01T10:00:00"}, wantErr: "travel_date"},
		{name: "bad email", rec: record{"external_reference": "R", "product_id": "1", "product_type_id": "2", "contact_email": "not-an-address"}, wantErr: "e-mail"},
		{name: "email with a name", rec: record{"external_reference": "R", "product_id": "1", "product_type_id": "2", "contact_email": "Ana <ana@example.com>"}, wantErr: "e-mail"},
		{name: "reference too long", rec: record{"external_reference": strings.Repeat("x", 256), "product_id": "1", "product_type_id": "2"}, wantErr: "255"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req, err := tt.rec.request()
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.JSONEq(t, tt.want, body(t, req))
		})
	}
}

func TestReadCSV(t *testing.T) {
	t.Parallel()
	input := "\ufeffExternal_Reference, product_id,product_type_id,product_type_count,contact_email\n" +
		"A1,30001,101,2,ana@example.com\n" +
		"\n" +
		",,,,\n" +
		"A2,30001,101,x,\n" +
		"\"A3\",\"30001\",\"101\",\"1\",\"\"\n"
	rows, errs := readAll(t, input, formatCSV)
	require.Len(t, rows, 2)
	assert.Equal(t, "A1", rows[0].Request.OrderExternalReference)
	assert.Equal(t, 2, rows[0].Line)
	assert.Equal(t, 2, (*rows[0].Request.OrderBookings[0].ProductTypeDetails)[0].ProductTypeCount)
	assert.Equal(t, "A3", rows[1].Request.OrderExternalReference)
	assert.Equal(t, 6, rows[1].Line)
	require.Len(t, errs, 1)
	var re *batch.RowError
	require.ErrorAs(t, errs[0], &re)
	assert.Equal(t, 5, re.Line)
	assert.Equal(t, "A2", re.ExternalReference)
}

func TestReadCSVBrokenFiles(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, input, want string
		rowsFirst         int
	}{
		{name: "empty", input: "", want: "header line is required"},
		{name: "unknown column", input: "external_reference,colour\nA,red\n", want: `unknown column "colour"`},
		{name: "column twice", input: "external_reference,product_id,product_id\n", want: "twice"},
		{name: "no reference column", input: "product_id,product_type_id\n1,2\n", want: "external_reference"},
		{name: "wrong field count", input: "external_reference,product_id,product_type_id\nA,1,2\nB,1\n", want: "wrong number of fields", rowsFirst: 1},
		{name: "bad quoting", input: "external_reference,product_id,product_type_id\nA,1,2\nB,\"1,2\n", want: "CSV", rowsFirst: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rows, errs := readAll(t, tt.input, formatCSV)
			assert.Len(t, rows, tt.rowsFirst)
			require.Len(t, errs, 1, "a broken file ends the input")
			var re *batch.RowError
			assert.False(t, errors.As(errs[0], &re), "not a row error: the run must stop")
			assert.Contains(t, errs[0].Error(), tt.want)
		})
	}
}

func TestReadJSONL(t *testing.T) {
	t.Parallel()
	input := `{"external_reference":"J1","product_id":30001,"product_type_id":"101","product_type_count":3}` + "\n" +
		"\n" +
		`{"external_reference":"J2","product_id":"30001","product_type_id":"101","contact_email":null}` + "\n" +
		`not json` + "\n" +
		`{"external_reference":"J3","colour":"red"}` + "\n" +
		`{"external_reference":"J4","product_id":"30001","product_type_id":"101","product_type_count":true}` + "\n" +
		`{"external_reference":"J5","reservation_reference":"RES99999"}`
	rows, errs := readAll(t, input, formatJSONL)
	require.Len(t, rows, 3)
	assert.Equal(t, []string{"J1", "J2", "J5"}, []string{rows[0].Request.OrderExternalReference, rows[1].Request.OrderExternalReference, rows[2].Request.OrderExternalReference})
	assert.Equal(t, "30001", *rows[0].Request.OrderBookings[0].ProductId)
	assert.Equal(t, 3, (*rows[0].Request.OrderBookings[0].ProductTypeDetails)[0].ProductTypeCount)
	assert.Equal(t, []int{1, 3, 7}, []int{rows[0].Line, rows[1].Line, rows[2].Line})
	require.Len(t, errs, 3)
	lines := []int{}
	for _, err := range errs {
		var re *batch.RowError
		require.ErrorAs(t, err, &re, "bad lines are row errors: %v", err)
		lines = append(lines, re.Line)
	}
	assert.Equal(t, []int{4, 5, 6}, lines)
}

func TestReadJSONLLineTooLong(t *testing.T) {
	t.Parallel()
	input := `{"external_reference":"J1","product_id":"1","product_type_id":"2"}` + "\n" +
		`{"external_reference":"` + strings.Repeat("x", maxLine) + `"}` + "\n"
	rows, errs := readAll(t, input, formatJSONL)
	assert.Len(t, rows, 1)
	require.Len(t, errs, 1)
	var re *batch.RowError
	assert.False(t, errors.As(errs[0], &re))
	assert.Contains(t, errs[0].Error(), "line 2")
}

func TestDetectFormat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		head string
		want format
	}{
		{"orders.csv", `{"a":1}`, formatCSV},
		{"orders.JSONL", "external_reference", formatJSONL},
		{"orders.ndjson", "", formatJSONL},
		{"orders.txt", "  \n{\"external_reference\":\"x\"}", formatJSONL},
		{"orders", "external_reference,product_id", formatCSV},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, detectFormat(tt.name, []byte(tt.head)), tt.name)
	}
}

func TestCountRows(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("external_reference,product_id,product_type_id\n")
	for i := range 1234 {
		fmt.Fprintf(&b, "R%d,1,2\n", i)
	}
	b.WriteString("\n")
	n, err := countRows(strings.NewReader(b.String()), formatCSV)
	require.NoError(t, err)
	assert.Equal(t, 1234, n)

	n, err = countRows(strings.NewReader("{\"external_reference\":\"a\"}\nbad\n\n{}\n"), formatJSONL)
	require.NoError(t, err)
	assert.Equal(t, 3, n, "row errors count as rows: each gets a result")

	_, err = countRows(strings.NewReader("external_reference,x\n"), formatCSV)
	assert.Error(t, err)
}
