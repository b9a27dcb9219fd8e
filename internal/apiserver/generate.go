// Package apiserver holds the net/http server side of the API that
// oapi-codegen produces from api/openapi.yaml: the strict server interface
// and its handler, on the models of package generated. Only priotest
// serves it; it is internal so that the public generated package stays the
// models and the typed client. Nothing here is edited by hand.
package apiserver

//go:generate go tool -modfile=../../tools/go.mod oapi-codegen -config oapi-codegen.yaml ../../api/openapi.yaml
