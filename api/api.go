// Package api embeds api/openapi.yaml, the OpenAPI 3.0 description of the
// Prio Distributor API v3.8 that the generated client, the sandbox's request
// validation and the coverage check all read.
package api

import _ "embed"

// Spec is the raw OpenAPI document.
//
//go:embed openapi.yaml
var Spec []byte
