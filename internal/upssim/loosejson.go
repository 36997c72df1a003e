package upssim

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"unicode/utf8"
)

// UPS API error codes for request bodies, from UPS's XML heritage which its
// JSON APIs kept.
const (
	codeNotWellFormed = "10001" // the body is not JSON at all
	codeNotValid      = "10002" // well formed but not a valid request
)

// many is a UPS list. UPS's specs declare arrays, but UPS grew out of XML
// and accepts a lone object for a one-element list, which is what most
// legacy clients (and the specs' own examples) send.
type many[T any] []T

// UnmarshalJSON accepts an array, a single element, or null.
func (m *many[T]) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*m = nil
		return nil
	case len(b) > 0 && b[0] == '[':
		var list []T
		if err := json.Unmarshal(b, &list); err != nil {
			return err
		}
		*m = list
		return nil
	}
	var one T
	if err := json.Unmarshal(b, &one); err != nil {
		return err
	}
	*m = many[T]{one}
	return nil
}

// text is a UPS string field. UPS types every value as a string, but
// clients written against the XML API often send numbers and booleans
// bare; UPS takes those too.
type text string

// UnmarshalJSON accepts a string, number, boolean or null.
func (t *text) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return errors.New("empty value")
	}
	switch b[0] {
	case '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*t = text(s)
	case '{', '[':
		return &json.UnmarshalTypeError{Value: "object or array", Type: reflect.TypeFor[string]()}
	default:
		if bytes.Equal(b, []byte("null")) {
			*t = ""
			return nil
		}
		// Numbers, true and false: keep their literal spelling.
		*t = text(b)
	}
	return nil
}

// String returns the value as sent.
func (t text) String() string { return string(t) }

// decodeUPS decodes a UPS request body into v. The error, if any, is the
// UPS envelope to answer with.
func decodeUPS(body []byte, v any) *apiError {
	if len(bytes.TrimSpace(body)) == 0 {
		return &apiError{http.StatusBadRequest, codeNotWellFormed, "The request body is empty"}
	}
	if !utf8.Valid(body) {
		return &apiError{http.StatusBadRequest, codeNotWellFormed, "The request body is not valid UTF-8"}
	}
	if err := json.Unmarshal(body, v); err != nil {
		var syntax *json.SyntaxError
		if errors.As(err, &syntax) {
			return &apiError{http.StatusBadRequest, codeNotWellFormed, "The request is not well formed JSON"}
		}
		return &apiError{http.StatusBadRequest, codeNotValid, "The request is well formed but the request is not valid"}
	}
	return nil
}

// clip shortens s to at most n bytes, on a rune boundary, so echoed input
// stays within the spec's maxLength.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
