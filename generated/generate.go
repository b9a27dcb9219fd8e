// Package generated holds the code oapi-codegen produces from api/openapi.yaml:
// the models, with a nil-safe getter for each optional field, and the typed
// client (ClientWithResponses). The server side, which only the sandbox
// needs, is generated into an internal package. Nothing in this package is
// edited by hand; change the spec and run `go generate ./...` instead.
//
// Most callers use the root package prio, which wires this client to
// authentication, idempotency keys and retries. Client.API returns it.
package generated

//go:generate go tool -modfile=../tools/go.mod oapi-codegen -config oapi-codegen.yaml ../api/openapi.yaml
// The nil-safe getters of the models (getters.gen.go), and the enums and
// the booking models' aliases of package prio (../enums.gen.go,
// ../models.gen.go) are made from this package's output, so
// they are written right after it.
//go:generate go run ../internal/cmd/modelgen -src prio.gen.go -getters getters.gen.go -enums ../enums.gen.go -models ../models.gen.go
