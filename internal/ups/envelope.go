package ups

import "encoding/json"

// ErrorDetail is one entry of UPS's error envelope.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Envelope is UPS's error body, shared by its OAuth and API endpoints:
// {"response":{"errors":[{"code":"250002","message":"..."}]}}.
type Envelope struct {
	Response struct {
		Errors []ErrorDetail `json:"errors"`
	} `json:"response"`
}

// Well-known UPS error codes.
const (
	CodeInvalidRequest  = "10400"  // invalid/missing Authorization header, redirect URL or refresh token
	CodeInvalidClient   = "10401"  // ClientId is invalid
	CodeTooManyRequests = "10429"  // rate limited (HTTP 429)
	CodeInvalidAuth     = "250002" // bad/expired bearer token on an API call
)

// Messages UPS answers its OAuth and API errors with (the simulator and the
// proxy's own OAuth endpoint answer with the same).
const (
	MsgMissingAuthHeader   = "Invalid/Missing Authorization Header" // with CodeInvalidRequest
	MsgInvalidClient       = "ClientId is Invalid"                  // with CodeInvalidClient
	MsgInvalidRefreshToken = "Invalid Refresh Token"                // with CodeInvalidRequest
	MsgInvalidCode         = "Invalid Authorization Code"           // with CodeInvalidRequest
	MsgInvalidRedirect     = "Invalid Redirect URL"                 // with CodeInvalidRequest
	MsgInvalidAuth         = "Invalid Authentication Information."  // with CodeInvalidAuth
)

// EncodeEnvelope returns the JSON body of a UPS error envelope with one error.
func EncodeEnvelope(code, message string) []byte {
	var e Envelope
	e.Response.Errors = []ErrorDetail{{Code: code, Message: message}}
	// Marshalling two strings cannot fail (invalid UTF-8 is replaced).
	b, _ := json.Marshal(e)
	return b
}

// ParseEnvelope extracts the first error of a UPS error envelope. ok is false
// when body is not such an envelope (HTML error pages happen).
func ParseEnvelope(body []byte) (ErrorDetail, bool) {
	var e Envelope
	if err := json.Unmarshal(body, &e); err != nil || len(e.Response.Errors) == 0 {
		return ErrorDetail{}, false
	}
	return e.Response.Errors[0], true
}
