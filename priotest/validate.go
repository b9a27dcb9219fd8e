package priotest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	prioapi "github.com/priosdk/prio-go/api"
)

// basePath is where the sandbox serves the API, as Prio does.
const basePath = "/v3.8/distributor"

// spec is the parsed api/openapi.yaml with a path-only router. It is read
// only after loading, so one copy serves every Server of the process.
type spec struct {
	doc    *openapi3.T
	router routers.Router
}

var loadSpec = sync.OnceValues(func() (*spec, error) {
	doc, err := openapi3.NewLoader().LoadFromData(prioapi.Spec)
	if err != nil {
		return nil, fmt.Errorf("priotest: loading the OpenAPI spec: %w", err)
	}
	// The servers are Prio's https hosts; the sandbox strips basePath itself
	// and routes on the rest of the path.
	doc.Servers = nil
	r, err := legacy.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("priotest: routing the OpenAPI spec: %w", err)
	}
	return &spec{doc: doc, router: r}, nil
})

// offsetDateTime is RFC 3339 with a numeric offset: Prio rejects the Z
// suffix, so the sandbox does too.
var offsetDateTime = regexp.MustCompile(`^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?[+-]([01][0-9]|2[0-3]):[0-5][0-9]$`)

var errZuluDateTime = errors.New("date-times need a numeric UTC offset such as +00:00; the Z suffix is not supported")

type dateTimeFormat struct{}

func (dateTimeFormat) Validate(v string) error {
	if offsetDateTime.MatchString(v) {
		return nil
	}
	if strings.HasSuffix(v, "Z") || strings.HasSuffix(v, "z") {
		return errZuluDateTime
	}
	return errors.New("not an RFC 3339 date-time with a UTC offset")
}

var validationOptions = &openapi3filter.Options{
	MultiError:          true,
	AuthenticationFunc:  openapi3filter.NoopAuthenticationFunc,
	SkipSettingDefaults: true,
	// Prio ignores read-only fields echoed back in requests.
	ExcludeReadOnlyValidations: true,
	SchemaValidationOptions: []openapi3.SchemaValidationOption{
		openapi3.WithStringFormatValidator("date-time", dateTimeFormat{}),
	},
}

// route finds the operation for a path below basePath. The error is an
// *apiError: 404 for an unknown path, 405 for a known path and another
// method.
func (sp *spec) route(r *http.Request, rest string) (*routers.Route, map[string]string, error) {
	probe := r.WithContext(r.Context()) // shallow: only the URL is replaced
	u := *r.URL
	u.Path, u.RawPath = rest, ""
	probe.URL = &u
	route, params, err := sp.router.FindRoute(probe)
	if err == nil {
		return route, params, nil
	}
	var re *routers.RouteError
	if errors.As(err, &re) && re.Reason == routers.ErrMethodNotAllowed.Error() {
		return nil, nil, errorf(http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "%s is not allowed on %s", r.Method, rest)
	}
	return nil, nil, errorf(http.StatusNotFound, "NOT_FOUND", "no API operation at %s%s", basePath, rest)
}

// validate checks parameters and body against the operation; r's body must
// be replayable (it is replaced by the caller after reading). The request
// it validates is a shallow copy with its own URL: it shares r's headers,
// which validation only reads (validationOptions.SkipSettingDefaults).
func (sp *spec) validate(ctx context.Context, r *http.Request, rest string, route *routers.Route, params map[string]string) error {
	probe := r.WithContext(ctx)
	u := *r.URL
	u.Path, u.RawPath = rest, ""
	probe.URL = &u
	in := &openapi3filter.RequestValidationInput{
		Request:    probe,
		PathParams: params,
		Route:      route,
		Options:    validationOptions,
	}
	err := openapi3filter.ValidateRequest(ctx, in)
	if err == nil {
		return nil
	}
	details := validationDetails(err)
	e := errorf(http.StatusBadRequest, "INVALID_REQUEST", "The request does not match the API specification.")
	e.details = details
	if len(details) > 0 {
		e.description = details[0]
	}
	if slices.ContainsFunc(details, func(d string) bool { return strings.Contains(d, errZuluDateTime.Error()) }) {
		e.message = "Date-times must be sent with a numeric UTC offset (e.g. +00:00), not Z."
	}
	return e
}

// validationDetails flattens kin-openapi's errors into one line each, as
// Prio lists them in errors[].
func validationDetails(err error) []string {
	var out []string
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case openapi3.MultiError:
			for _, x := range e {
				walk(x)
			}
		case *openapi3filter.RequestError:
			where := "body"
			if e.Parameter != nil {
				where = e.Parameter.In + " parameter " + e.Parameter.Name
			}
			if inner, ok := e.Err.(openapi3.MultiError); ok {
				for _, x := range inner {
					out = append(out, where+": "+schemaMessage(x))
				}
				return
			}
			msg := e.Reason
			if e.Err != nil {
				msg = schemaMessage(e.Err)
			}
			out = append(out, where+": "+msg)
		default:
			out = append(out, schemaMessage(err))
		}
	}
	walk(err)
	return out
}

func schemaMessage(err error) string {
	var se *openapi3.SchemaError
	if errors.As(err, &se) {
		path := "/" + strings.Join(se.JSONPointer(), "/")
		reason := se.Reason
		if se.Origin != nil && errors.Is(se.Origin, errZuluDateTime) {
			reason = errZuluDateTime.Error()
		}
		if path == "/" {
			return reason
		}
		return path + ": " + reason
	}
	var me openapi3.MultiError
	if errors.As(err, &me) {
		parts := make([]string, 0, len(me))
		for _, e := range me {
			parts = append(parts, schemaMessage(e))
		}
		return strings.Join(parts, "; ")
	}
	return err.Error()
}
