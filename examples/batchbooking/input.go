package main

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/mail"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	prio "github.com/priosdk/prio-go"
	"github.com/priosdk/prio-go/batch"
	"github.com/priosdk/prio-go/wire"
)

// The input columns (CSV header names, JSON Lines keys).
const (
	colExternalReference = "external_reference"
	colProductID         = "product_id"
	colProductType       = "product_type"
	colProductTypeID     = "product_type_id"
	colProductTypeCount  = "product_type_count"
	colAvailabilityID    = "availability_id"
	colTravelDate        = "travel_date"
	colReservation       = "reservation_reference"
	colContactEmail      = "contact_email"
)

var knownColumns = []string{
	colExternalReference, colProductID, colProductType, colProductTypeID, colProductTypeCount,
	colAvailabilityID, colTravelDate, colReservation, colContactEmail,
}

// maxLine bounds one JSON Lines record (and one CSV field, through the
// reader's buffering), so a corrupt file cannot make memory grow.
const maxLine = 1 << 20

// format is how an input file is written.
type format string

const (
	formatCSV   format = "csv"
	formatJSONL format = "jsonl"
)

// detectFormat goes by the file name, then by the first byte that is not
// white space: JSON Lines start with '{'.
func detectFormat(name string, head []byte) format {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".csv":
		return formatCSV
	case ".jsonl", ".ndjson":
		return formatJSONL
	}
	if t := bytes.TrimLeft(head, " \t\r\n\ufeff"); len(t) > 0 && t[0] == '{' {
		return formatJSONL
	}
	return formatCSV
}

// record is one input row as strings, before it becomes a request.
type record map[string]string

// numbered is a record with the line it starts on.
type numbered struct {
	line int
	rec  record
}

// readRows streams r as rows. A row that cannot be used is yielded as a
// *batch.RowError (the run goes on); a broken file (bad CSV quoting, a
// line too long, a read error) is yielded as a plain error (the run stops).
func readRows(r io.Reader, f format) iter.Seq2[batch.Row, error] {
	return func(yield func(batch.Row, error) bool) {
		for nr, err := range readRecords(r, f) {
			line, rec := nr.line, nr.rec
			if err != nil {
				var re *batch.RowError
				if !yield(batch.Row{}, err) || !errors.As(err, &re) {
					return
				}
				continue
			}
			req, err := rec.request()
			if err != nil {
				if !yield(batch.Row{}, &batch.RowError{Line: line, ExternalReference: rec[colExternalReference], Err: err}) {
					return
				}
				continue
			}
			if !yield(batch.Row{Line: line, Request: req}, nil) {
				return
			}
		}
	}
}

// readRecords yields each record with its line number (the first line of a
// CSV record).
func readRecords(r io.Reader, f format) iter.Seq2[numbered, error] {
	if f == formatJSONL {
		return readJSONL(r)
	}
	return readCSV(r)
}

func readCSV(r io.Reader) iter.Seq2[numbered, error] {
	return func(yield func(numbered, error) bool) {
		cr := csv.NewReader(bufio.NewReaderSize(r, 64<<10))
		cr.ReuseRecord = true
		cr.TrimLeadingSpace = true
		header, err := cr.Read()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("empty input: a header line is required")
			}
			yield(numbered{}, fmt.Errorf("CSV header: %w", err))
			return
		}
		cols := make([]string, len(header))
		for i, h := range header {
			h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
			if !slices.Contains(knownColumns, h) {
				yield(numbered{}, fmt.Errorf("CSV header: unknown column %q (known: %s)", h, strings.Join(knownColumns, ", ")))
				return
			}
			if slices.Contains(cols[:i], h) {
				yield(numbered{}, fmt.Errorf("CSV header: column %q twice", h))
				return
			}
			cols[i] = h
		}
		if !slices.Contains(cols, colExternalReference) {
			yield(numbered{}, fmt.Errorf("CSV header: column %q is required", colExternalReference))
			return
		}
		for {
			fields, err := cr.Read()
			if errors.Is(err, io.EOF) {
				return
			}
			line, _ := cr.FieldPos(0)
			if err != nil {
				yield(numbered{line: line}, fmt.Errorf("CSV: %w", err))
				return
			}
			rec := make(record, len(cols))
			blank := true
			for i, v := range fields {
				if v = strings.TrimSpace(v); v != "" {
					rec[cols[i]] = v
					blank = false
				}
			}
			if blank {
				continue
			}
			if !yield(numbered{line, rec}, nil) {
				return
			}
		}
	}
}

func readJSONL(r io.Reader) iter.Seq2[numbered, error] {
	return func(yield func(numbered, error) bool) {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 0, 64<<10), maxLine)
		line := 0
		for sc.Scan() {
			line++
			b := bytes.TrimSpace(sc.Bytes())
			if len(b) == 0 {
				continue
			}
			rec, err := decodeJSONRecord(b)
			if err != nil {
				if !yield(numbered{line: line}, &batch.RowError{Line: line, Err: err}) {
					return
				}
				continue
			}
			if !yield(numbered{line, rec}, nil) {
				return
			}
		}
		if err := sc.Err(); err != nil {
			yield(numbered{line: line + 1}, fmt.Errorf("JSON Lines, line %d: %w", line+1, err))
		}
	}
}

// decodeJSONRecord reads one object whose values are strings or numbers.
func decodeJSONRecord(b []byte) (record, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	rec := make(record, len(raw))
	for k, v := range raw {
		if !slices.Contains(knownColumns, k) {
			return nil, fmt.Errorf("unknown key %q (known: %s)", k, strings.Join(knownColumns, ", "))
		}
		var s string
		switch {
		case bytes.Equal(v, []byte("null")):
			continue
		case len(v) > 0 && v[0] == '"':
			if err := json.Unmarshal(v, &s); err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
		default:
			var n json.Number
			if err := json.Unmarshal(v, &n); err != nil {
				return nil, fmt.Errorf("%s: want a string or a number", k)
			}
			s = n.String()
		}
		if s = strings.TrimSpace(s); s != "" {
			rec[k] = s
		}
	}
	return rec, nil
}

// request turns a record into a Create Order body: one booking, either a
// direct booking of one product type or the confirmation of a reservation.
func (rec record) request() (*prio.OrderRequest, error) {
	ref := rec[colExternalReference]
	if ref == "" {
		return nil, fmt.Errorf("%s is empty", colExternalReference)
	}
	if len(ref) > 255 {
		return nil, fmt.Errorf("%s is longer than 255 characters", colExternalReference)
	}
	req := &prio.OrderRequest{
		OrderExternalReference: ref,
		OrderLanguage:          "en",
	}
	var b prio.BookingOption
	if res := rec[colReservation]; res != "" {
		b.BookingOptionType = prio.ConfirmReservation
		b.ReservationReference = &res
	} else {
		b.BookingOptionType = prio.DirectBooking
		pid, tid := rec[colProductID], rec[colProductTypeID]
		if pid == "" || tid == "" {
			return nil, fmt.Errorf("%s and %s are required unless %s is given", colProductID, colProductTypeID, colReservation)
		}
		count := 1
		if c := rec[colProductTypeCount]; c != "" {
			n, err := strconv.Atoi(c)
			if err != nil || n < 1 || n > 100 {
				return nil, fmt.Errorf("%s %q: want a whole number from 1 to 100", colProductTypeCount, c)
			}
			count = n
		}
		item := prio.Tickets(tid, count)
		if k := rec[colProductType]; k != "" {
			// Open values: suppliers' custom types come under their own names.
			kind := prio.ProductType(strings.ToUpper(k))
			item.ProductType = &kind
		}
		b.ProductId = &pid
		b.ProductTypeDetails = &[]prio.ProductTypeDetail{item}
		if a := rec[colAvailabilityID]; a != "" {
			b.ProductAvailabilityId = &a
		}
	}
	if d := rec[colTravelDate]; d != "" {
		t, err := parseTravelDate(d)
		if err != nil {
			return nil, err
		}
		b.BookingTravelDate = &t
	}
	req.OrderBookings = []prio.BookingOption{b}
	if e := rec[colContactEmail]; e != "" {
		addr, err := mail.ParseAddress(e)
		if err != nil || addr.Name != "" {
			return nil, fmt.Errorf("%s %q is not an e-mail address", colContactEmail, e)
		}
		req.OrderContacts = prio.Contacts(prio.Person{Type: prio.ContactBooker, Email: addr.Address})
	}
	return req, nil
}

// parseTravelDate accepts a date (2026-07-01, taken as midnight UTC) or a
// date-time with an offset (2026-07-01T10:00:00+02:00).
func parseTravelDate(s string) (wire.DateTime, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return wire.NewDateTime(t), nil
	}
	// A date-time must carry its offset: without one, the day could be
	// another in the supplier's time zone.
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return wire.DateTime{}, fmt.Errorf("%s %q: want YYYY-MM-DD or an RFC 3339 date-time with an offset", colTravelDate, s)
	}
	return wire.NewDateTime(t), nil
}

// countRows counts the records of the input for the progress bar. It
// reads the file once more, streaming, so memory stays flat.
func countRows(r io.Reader, f format) (int, error) {
	n := 0
	for _, err := range readRecords(r, f) {
		var re *batch.RowError
		if err != nil && !errors.As(err, &re) {
			return n, err
		}
		n++
	}
	return n, nil
}
