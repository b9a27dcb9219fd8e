package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/priosdk/prio-go/generated"
)

// memberPaths lists the path of every member and array item of tree.
func memberPaths(tree any, at []any) [][]any {
	var out [][]any
	switch x := tree.(type) {
	case map[string]any:
		for _, k := range sortedKeys(x) {
			p := append(slices.Clone(at), k)
			out = append(out, p)
			out = append(out, memberPaths(x[k], p)...)
		}
	case []any:
		for i := range x {
			p := append(slices.Clone(at), i)
			out = append(out, p)
			out = append(out, memberPaths(x[i], p)...)
		}
	}
	return out
}

func pathKey(p []any) string { return fmt.Sprint(p...) }

// FuzzOrderFieldTypes puts a value of another JSON type into one field of a
// fully populated Order response. Decoding may reject a field whose type is
// known, but never one whose type is a guess; whatever decodes encodes again
// without Z, and encoding is stable (decode, encode, decode, encode gives the
// same bytes).
func FuzzOrderFieldTypes(f *testing.F) {
	b := newBuilder(f)
	tree, slots := b.instance("OrderDetailResponse")
	paths := memberPaths(tree, nil)
	guessed := map[string]bool{}
	for _, s := range slots {
		guessed[pathKey(s.path)] = true
	}
	for i, p := range paths {
		if guessed[pathKey(p)] {
			f.Add(uint16(i), uint8(i), "yes")
		}
	}
	f.Add(uint16(0), uint8(1), "12.50")
	f.Add(uint16(3), uint8(6), "")
	f.Fuzz(func(t *testing.T, pick uint16, kind uint8, text string) {
		p := paths[int(pick)%len(paths)]
		var v any
		switch kind % 7 {
		case 0:
			v = text
		case 1:
			if n := json.Number(strings.TrimSpace(text)); json.Valid([]byte(n)) && n.String() != "" && strings.ContainsAny(n.String()[:1], "-0123456789") {
				v = n
			} else {
				v = json.Number("0.10")
			}
		case 2:
			v = len(text)%2 == 0
		case 3:
			v = map[string]any{"k": text}
		case 4:
			v = []any{text, json.Number("1")}
		case 5:
			v = nil
		case 6:
			v = map[string]any{}
		}
		in := deepCopy(tree)
		setAt(in, p, v, false)
		raw, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		var out generated.OrderDetailResponse
		if err := json.Unmarshal(raw, &out); err != nil {
			if guessed[pathKey(p)] {
				t.Fatalf("guessed field %v = %s: decoding fails: %v", p, mustJSON(v), err)
			}
			return
		}
		enc, err := json.Marshal(out)
		if err != nil {
			t.Fatalf("%v = %s: re-encoding: %v", p, mustJSON(v), err)
		}
		// A date-time never leaves with Z; the fuzzer's own text may hold
		// one, kept as received in a field whose type is a guess.
		if !strings.ContainsAny(text, "Zz") && bytes.Contains(enc, []byte(`Z"`)) {
			t.Fatalf("%v = %s: re-encoded with Z", p, mustJSON(v))
		}
		var again generated.OrderDetailResponse
		if err := json.Unmarshal(enc, &again); err != nil {
			t.Fatalf("%v = %s: the re-encoded order does not decode: %v", p, mustJSON(v), err)
		}
		enc2, err := json.Marshal(again)
		if err != nil || !bytes.Equal(withoutNulls(t, enc), withoutNulls(t, enc2)) {
			t.Fatalf("%v = %s: encoding is not stable (%v)", p, mustJSON(v), err)
		}
	})
}

// withoutNulls re-encodes a JSON document without its null members. An
// optional date-time received as "" decodes to no date, which encodes as
// null, and null decodes to an absent field: the three say the same, and
// the stability check must not tell them apart. Everything else must stay
// byte for byte.
func withoutNulls(t *testing.T, doc []byte) []byte {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		t.Fatalf("re-reading %s: %v", doc, err)
	}
	var drop func(v any) any
	drop = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			for k, m := range x {
				if m == nil {
					delete(x, k)
					continue
				}
				x[k] = drop(m)
			}
		case []any:
			for i := range x {
				x[i] = drop(x[i])
			}
		}
		return v
	}
	out, err := json.Marshal(drop(tree))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
