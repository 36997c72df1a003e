package upssim

import (
	"bytes"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/upsproxy/upsproxy/internal/ups"
)

// Endpoint names a Fault can target.
const (
	EndpointAuthorize = "authorize" // GET /security/v1/oauth/authorize
	EndpointToken     = "token"     // POST /security/v1/oauth/token (both grants)
	EndpointRefresh   = "refresh"   // POST /security/v1/oauth/refresh
	EndpointAPI       = "api"       // every /api/... request
)

// Fault makes an endpoint misbehave, before its normal handling.
type Fault struct {
	// Endpoint is one of "token", "refresh", "api", "authorize".
	Endpoint string
	// Status, when non-zero, is answered instead of the normal response.
	// Zero means only Delay applies and the request is then handled
	// normally.
	Status int
	// Body is the response body. Empty: a UPS envelope whose code is 10429
	// for 429 and the status number otherwise.
	Body string
	// ContentType of Body. Empty: application/json for a body that looks
	// like JSON, otherwise sniffed (an HTML page gets text/html).
	ContentType string
	// Delay holds the request this long (wall-clock) before answering. A
	// client that gives up cancels the wait.
	Delay time.Duration
	// Times is how many requests the fault applies to; 0 means until
	// ClearFaults or another SetFault for the same endpoint.
	Times int
}

type activeFault struct {
	Fault
	left int // remaining uses when Times > 0
}

// SetFault installs f for its endpoint, replacing any fault already set for
// that endpoint. An unknown endpoint name is logged and ignored.
func (s *Server) SetFault(f Fault) {
	switch f.Endpoint {
	case EndpointAuthorize, EndpointToken, EndpointRefresh, EndpointAPI:
	default:
		s.log.Warn("upssim: fault for unknown endpoint ignored", zap.String("endpoint", f.Endpoint))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[f.Endpoint] = &activeFault{Fault: f, left: f.Times}
}

// ClearFaults removes every fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.faults)
}

// takeFault returns the fault for endpoint, counting one use.
func (s *Server) takeFault(endpoint string) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.faults[endpoint]
	if !ok {
		return Fault{}, false
	}
	if f.Times > 0 {
		f.left--
		if f.left <= 0 {
			delete(s.faults, endpoint)
		}
	}
	return f.Fault, true
}

// applyFault runs endpoint's fault, if any. handled reports that the
// response was written (or the client went away) and normal handling must
// not run.
func (s *Server) applyFault(w http.ResponseWriter, r *http.Request, endpoint string) (handled bool) {
	f, ok := s.takeFault(endpoint)
	if !ok {
		return false
	}
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			// Nobody is listening any more; writing would only race the
			// server's own cleanup.
			return true
		}
	}
	if f.Status == 0 {
		return false
	}
	body := []byte(f.Body)
	ctype := f.ContentType
	if len(body) == 0 {
		code := strconv.Itoa(f.Status)
		if f.Status == http.StatusTooManyRequests {
			code = ups.CodeTooManyRequests
		}
		body = ups.EncodeEnvelope(code, http.StatusText(f.Status))
	}
	if ctype == "" {
		trimmed := bytes.TrimSpace(body)
		if len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') {
			ctype = "application/json"
		} else {
			ctype = http.DetectContentType(body)
		}
	}
	w.Header().Set("Content-Type", ctype)
	w.WriteHeader(f.Status)
	_, _ = w.Write(body)
	return true
}
