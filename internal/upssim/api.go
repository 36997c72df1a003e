package upssim

import (
	"net/http"
	"strings"

	"github.com/upsproxy/upsproxy/internal/ups"
)

// apiError is a failed API request, answered in the UPS envelope.
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) write(w http.ResponseWriter) { writeEnvelope(w, e.status, e.code, e.message) }

func invalid(message string) *apiError {
	return &apiError{http.StatusBadRequest, codeNotValid, message}
}

// apiHandler answers one matched API request. params are the variable path
// segments after the version, body the whole request body.
type apiHandler func(w http.ResponseWriter, r *http.Request, body []byte, params []string)

// matchAPI finds the handler for method and path. When the path is known
// but the method is not, allow lists the method that would have matched.
func (s *Server) matchAPI(method, path string) (h apiHandler, params []string, allow string) {
	seg := strings.Split(strings.TrimPrefix(path, "/api/"), "/")
	if len(seg) < 3 || !isVersion(seg[1]) {
		return nil, nil, ""
	}
	var want string
	switch {
	case seg[0] == "rating" && len(seg) == 3 && seg[2] != "":
		want, h, params = http.MethodPost, s.handleRate, seg[2:]
	case seg[0] == "shipments" && len(seg) == 3 && seg[2] == "ship":
		want, h = http.MethodPost, s.handleShip
	case seg[0] == "shipments" && len(seg) == 5 && seg[2] == "void" && seg[3] == "cancel" && seg[4] != "":
		want, h, params = http.MethodDelete, s.handleVoid, seg[4:]
	case seg[0] == "track" && len(seg) == 4 && seg[2] == "details" && seg[3] != "":
		want, h, params = http.MethodGet, s.handleTrack, seg[3:]
	case seg[0] == "labels" && len(seg) == 3 && seg[2] == "recovery":
		want, h = http.MethodPost, s.handleLabelRecovery
	case seg[0] == "addressvalidation" && len(seg) == 3 && seg[2] != "":
		want, h, params = http.MethodPost, s.handleAddressValidation, seg[2:]
	default:
		return nil, nil, ""
	}
	if method != want {
		return nil, nil, want
	}
	return h, params, ""
}

// isVersion matches UPS's version segment: v1, v2409, ... UPS also routes
// bare numbers (UPS-API/api-documentation issue 42 used /rating/2205/...)
// and a capital V (legacy clients sent /ship/V1903/...).
func isVersion(v string) bool {
	v = strings.TrimPrefix(strings.TrimPrefix(v, "v"), "V")
	if v == "" {
		return false
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// handleAPI records the request, applies the "api" fault, routes, checks
// the bearer token, then hands over to the endpoint.
func (s *Server) handleAPI(w http.ResponseWriter, r *http.Request) {
	body, tooLarge, readErr := readBody(r, apiBodyLimit)
	rec := record(r, body)
	s.mu.Lock()
	s.apiRequests = appendRecord(s.apiRequests, rec)
	s.stats.APICalls++
	s.mu.Unlock()

	if s.applyFault(w, r, EndpointAPI) {
		return
	}
	h, params, allow := s.matchAPI(r.Method, r.URL.Path)
	if h == nil {
		if allow != "" {
			w.Header().Set("Allow", allow)
			writeEnvelope(w, http.StatusMethodNotAllowed, "405", "Method not allowed")
			return
		}
		writeEnvelope(w, http.StatusNotFound, "404", "Resource not found: "+r.Method+" "+r.URL.Path)
		return
	}
	if !s.validAccess(bearer(r), hostEnvironment(r.Host)) {
		s.mu.Lock()
		s.stats.APIUnauthorized++
		s.mu.Unlock()
		writeEnvelope(w, http.StatusUnauthorized, ups.CodeInvalidAuth, ups.MsgInvalidAuth)
		return
	}
	switch {
	case readErr != nil:
		invalid("Unreadable request body").write(w)
		return
	case tooLarge:
		writeEnvelope(w, http.StatusRequestEntityTooLarge, "413", "Request body too large")
		return
	}
	h(w, r, body, params)
}

// bearer returns the token of an Authorization: Bearer header, or "".
func bearer(r *http.Request) string {
	scheme, token, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// Shared pieces of UPS API responses.

type responseStatus struct {
	Code        string `json:"Code"`
	Description string `json:"Description"`
}

type codeDesc struct {
	Code        string `json:"Code"`
	Description string `json:"Description,omitempty"`
}

type transactionReference struct {
	CustomerContext string `json:"CustomerContext,omitempty"`
}

type responseHeader struct {
	ResponseStatus       responseStatus        `json:"ResponseStatus"`
	Alert                oneOrMany[codeDesc]   `json:"Alert,omitzero"`
	TransactionReference *transactionReference `json:"TransactionReference,omitempty"`
}

var success = responseStatus{Code: "1", Description: "Success"}

// requestHeader is the Request element of UPS API bodies.
type requestHeader struct {
	RequestOption        many[text] `json:"RequestOption"`
	TransactionReference struct {
		CustomerContext text `json:"CustomerContext"`
	} `json:"TransactionReference"`
}

// echo returns the TransactionReference to answer with: UPS echoes the
// caller's CustomerContext.
func (h requestHeader) echo() *transactionReference {
	cc := strings.TrimSpace(h.TransactionReference.CustomerContext.String())
	if cc == "" {
		return nil
	}
	return &transactionReference{CustomerContext: clip(cc, 512)}
}
