package arm

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// handler serves one matched route. It writes the response itself, or
// returns an *Error for writeError.
type handler func(c *call) *Error

// route is one URL pattern of the ARM grammar. Literal segments are stored
// lower-case and matched case-insensitively (clients send both
// "resourceGroups" and "resourcegroups"); "{name}" segments capture the
// caller's spelling.
type route struct {
	name     string
	segments []string
	methods  map[string]handler
	// versions lists the accepted api-versions; nil means the route takes
	// no api-version (token issuer, health).
	versions []string
	// public routes need no bearer token.
	public bool
	// dataPlane routes are the agents' own API, not ARM resources: their
	// writes are no ResourceChange.
	dataPlane bool
	// anyVersion routes require an api-version but accept any (hosted
	// providers that list none).
	anyVersion bool
}

func newRoute(name, pattern string, versions []string, methods map[string]handler) *route {
	segs := strings.Split(strings.Trim(pattern, "/"), "/")
	for i, s := range segs {
		if !strings.HasPrefix(s, "{") {
			segs[i] = strings.ToLower(s)
		}
	}
	if pattern == "/" {
		segs = nil
	}
	return &route{name: name, segments: segs, methods: methods, versions: versions}
}

// match reports whether path segments fit the route and returns the
// captured values.
func (r *route) match(segs []string) (map[string]string, bool) {
	if len(segs) != len(r.segments) {
		return nil, false
	}
	var vars map[string]string
	for i, p := range r.segments {
		if strings.HasPrefix(p, "{") {
			if segs[i] == "" {
				return nil, false
			}
			if vars == nil {
				vars = map[string]string{}
			}
			vars[strings.Trim(p, "{}")] = segs[i]
			continue
		}
		if !strings.EqualFold(p, segs[i]) {
			return nil, false
		}
	}
	return vars, true
}

// router finds the route for a request path.
type router struct {
	routes []*route
}

func (rt *router) add(r *route) { rt.routes = append(rt.routes, r) }

// splitPath turns an escaped URL path into unescaped segments, so that an
// encoded "/" stays inside its segment (and fails name validation) rather
// than adding one. Empty segments are dropped, as ARM drops them: a
// trailing slash is ignored, and so is the "//" that az resource show -g
// RG -n NAME --resource-type NS/TYPE sends for the empty parent path
// (.../providers/Microsoft.Kubernetes//connectedClusters/NAME).
func splitPath(escaped string) []string {
	var segs []string
	for s := range strings.SplitSeq(escaped, "/") {
		if s == "" {
			continue
		}
		if u, err := url.PathUnescape(s); err == nil {
			s = u
		}
		segs = append(segs, s)
	}
	return segs
}

// find returns the route that matches with the most literal segments,
// so that a hosted provider's literal path wins over a pattern that
// captures the same segment.
func (rt *router) find(segs []string) (*route, map[string]string) {
	var best *route
	var bestVars map[string]string
	bestLit := -1
	for _, r := range rt.routes {
		vars, ok := r.match(segs)
		if !ok {
			continue
		}
		if lit := len(r.segments) - len(vars); lit > bestLit {
			best, bestVars, bestLit = r, vars, lit
		}
	}
	return best, bestVars
}

// notFound explains an unmatched path the way ARM does: an unknown type
// under a provider namespace is InvalidResourceType, anything else is a
// plain 404.
func notFound(segs []string, apiVersion string) *Error {
	for i := len(segs) - 3; i >= 0; i-- {
		if strings.EqualFold(segs[i], "providers") {
			return badRequest(CodeInvalidResourceType,
				"The resource type '%s' could not be found in the namespace '%s' for api version '%s'.",
				segs[i+2], segs[i+1], apiVersion)
		}
	}
	return errorf(http.StatusNotFound, CodeNotFound, "The requested path '/%s' does not exist.", strings.Join(segs, "/"))
}

// methodNotAllowed lists what the route supports.
func methodNotAllowed(r *route, method string) *Error {
	var allowed []string
	for m := range r.methods {
		allowed = append(allowed, m)
	}
	slices.Sort(allowed)
	return errorf(http.StatusMethodNotAllowed, CodeMethodNotAllowed,
		"The requested resource does not support http method '%s'. Supported methods: %s.", method, strings.Join(allowed, ", "))
}

// checkAPIVersion validates the api-version query parameter of a route.
func checkAPIVersion(r *route, version string, present bool) *Error {
	if r.versions == nil && !r.anyVersion {
		return nil
	}
	if !present || version == "" {
		return badRequest(CodeMissingAPIVersion, "The api-version query parameter (?api-version=) is required for all requests.")
	}
	if r.anyVersion {
		return nil
	}
	if !slices.Contains(r.versions, strings.ToLower(version)) {
		return badRequest(CodeInvalidAPIVersion, "The api-version '%s' is invalid. The supported versions are '%s'.", version, strings.Join(r.versions, ","))
	}
	return nil
}

// queryValue reads a query parameter by case-insensitive name: the SDK
// sends "api-version" and replays "$skiptoken" from nextLink verbatim,
// other clients vary the case.
func queryValue(q map[string][]string, name string) (string, bool) {
	for k, v := range q {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return v[0], true
		}
	}
	return "", false
}
