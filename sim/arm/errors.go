package arm

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// ARM error codes used by this package. They are the codes real ARM and
// its resource providers return in the same situations.
const (
	CodeInvalidAuthenticationToken = "InvalidAuthenticationToken"
	CodeAuthenticationFailed       = "AuthenticationFailed"
	CodeAuthorizationFailed        = "AuthorizationFailed"
	CodeMissingAPIVersion          = "MissingApiVersionParameter"
	CodeInvalidAPIVersion          = "InvalidApiVersionParameter"
	CodeSubscriptionNotFound       = "SubscriptionNotFound"
	CodeResourceGroupNotFound      = "ResourceGroupNotFound"
	CodeResourceNotFound           = "ResourceNotFound"
	CodeInvalidResourceType        = "InvalidResourceType"
	CodeInvalidResourceName        = "InvalidResourceName"
	CodeInvalidResourceGroup       = "InvalidResourceGroup"
	CodeInvalidRequestContent      = "InvalidRequestContent"
	CodeInvalidParameter           = "InvalidParameter"
	CodeLocationRequired           = "LocationRequired"
	CodeMethodNotAllowed           = "MethodNotAllowed"
	CodeNotFound                   = "NotFound"
	CodeConflict                   = "Conflict"
	CodeInternalServerError        = "InternalServerError"
	CodeServiceUnavailable         = "ServiceUnavailable"
	CodeUnsupportedMediaType       = "UnsupportedMediaType"
	CodeRequestEntityTooLarge      = "RequestEntityTooLarge"
	CodeInjectedFault              = "InjectedFault"
	CodeInvalidClient              = "invalid_client" // token endpoint (OAuth), not ARM
	CodeOperationNotFound          = "OperationNotFound"
	CodeUnsupportedGrantType       = "unsupported_grant_type"
	CodeInvalidRequestOAuth        = "invalid_request"
	// CodeInvalidFilter answers a $filter that ARM cannot evaluate.
	CodeInvalidFilter = "InvalidFilterInQueryString"
)

// Error is an ARM error: an HTTP status and the body's code and message.
type Error struct {
	Status  int
	Code    string
	Message string
	// Target names the offending field, as ARM's error.target does.
	Target string
	// oauth marks token-endpoint errors, which use the OAuth 2.0 shape.
	oauth bool
	// local marks a resource provider's error in its swagger's own
	// ErrorResponse, {error: {code, message}}, which api-versions older
	// than common-types v2 declare.
	local bool
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

func errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func badRequest(code, format string, args ...any) *Error {
	return errorf(http.StatusBadRequest, code, format, args...)
}

func invalidParam(target, format string, args ...any) *Error {
	e := badRequest(CodeInvalidParameter, format, args...)
	e.Target = target
	return e
}

// envelope is ARM's common-types v2 ErrorResponse; the 2021-03-01 shape
// ({code, message}) is a subset of it.
type envelope struct {
	Error envelopeError `json:"error"`
}

type envelopeError struct {
	Code           string          `json:"code"`
	Message        string          `json:"message"`
	Target         string          `json:"target,omitempty"`
	Details        []envelopeError `json:"details"`
	AdditionalInfo []any           `json:"additionalInfo"`
}

// writeError is the one door through which errors leave the server.
func writeError(w http.ResponseWriter, e *Error) {
	if e.oauth {
		writeJSON(w, e.Status, map[string]any{"error": e.Code, "error_description": e.Message})
		return
	}
	w.Header().Set("x-ms-error-code", e.Code)
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer authorization_uri="https://login.microsoftonline.com/common", error="invalid_token", error_description="`+e.Code+`"`)
	}
	if e.local {
		writeJSON(w, e.Status, map[string]any{"error": map[string]string{"code": e.Code, "message": e.Message}})
		return
	}
	writeJSON(w, e.Status, envelope{Error: envelopeError{
		Code: e.Code, Message: e.Message, Target: e.Target,
		Details: []envelopeError{}, AdditionalInfo: []any{},
	}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Our own types always marshal; this is a bug, reported as ARM would.
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"InternalServerError","message":"encode response"}}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
