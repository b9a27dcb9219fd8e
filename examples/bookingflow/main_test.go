package main

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestBookingFlow runs the whole flow on the sandbox, through an unknown
// outcome, and checks what it printed.
func TestBookingFlow(t *testing.T) {
	var out bytes.Buffer
	if err := run(t.Context(), &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"product 30002: Sandbox Tower timed entry (TIME_SLOT)",
		"held until set: true",
		"outcome unknown; reconciling shop-7001",
		"order: ORDER_CONFIRMED",
		"booking confirmed: 2 tickets",
		"voucher URL set: true",
		"confirmed orders for shop-7001: 1",
		"after cancel: ORDER_CANCELLED",
		"shop-7002 declined by the supplier; error_reference set: true",
		"orders the sandbox holds for shop-7001: 1",
	} {
		if !strings.Contains(out.String(), want+"\n") {
			t.Errorf("missing %q in:\n%s", want, out.String())
		}
	}
}

// TestWrittenAgainstPrioOnly keeps the program honest: it imports no
// generated package and takes no pointer with prio.Ptr.
func TestWrittenAgainstPrioOnly(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			if strings.Contains(imp.Path.Value, "/generated") {
				t.Errorf("%s imports %s", name, imp.Path.Value)
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok && sel.Sel.Name == "Ptr" {
				t.Errorf("%s: prio.Ptr at %s", name, fset.Position(sel.Pos()))
			}
			return true
		})
	}
}
