package upssim

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/upsproxy/upsproxy/internal/ups"
)

const maintenancePage = "<!DOCTYPE html><html><head><title>Service Unavailable</title></head><body><h1>UPS is down for maintenance</h1></body></html>"

func TestFaultsAnswerInsteadOfTheEndpoint(t *testing.T) {
	tests := []struct {
		name      string
		fault     Fault
		req       func(s *Server) *http.Request
		status    int
		ctype     string
		body      string // exact body, when set
		envelope  string // envelope code, when set
		untouched func(t *testing.T, s *Server)
	}{
		{
			name:  "api 503 with an HTML maintenance page",
			fault: Fault{Endpoint: EndpointAPI, Status: 503, Body: maintenancePage},
			req: func(s *Server) *http.Request {
				return apiRequest(http.MethodPost, "h", "/api/rating/v2409/Rate", login(t, s)["access_token"], rateBody("03", "US", "1"))
			},
			status: 503, ctype: "text/html; charset=utf-8", body: maintenancePage,
			untouched: func(t *testing.T, s *Server) {
				if len(s.Requests()) != 1 {
					t.Errorf("a faulted API request must still be recorded")
				}
			},
		},
		{
			name:  "token 429 gets UPS's 10429 envelope by default",
			fault: Fault{Endpoint: EndpointToken, Status: 429},
			req: func(s *Server) *http.Request {
				r := formRequest("h", ups.TokenPath, url.Values{"grant_type": {"client_credentials"}})
				r.SetBasicAuth(confID, confSecret)
				return r
			},
			status: 429, ctype: "application/json", envelope: ups.CodeTooManyRequests,
			untouched: func(t *testing.T, s *Server) {
				if s.Stats().ClientCredentialsGrants != 0 {
					t.Errorf("a faulted token request must not grant a token")
				}
			},
		},
		{
			name:  "refresh 500 leaves the refresh token unspent",
			fault: Fault{Endpoint: EndpointRefresh, Status: 500, Body: `{"response":{"errors":[{"code":"500","message":"boom"}]}}`},
			req: func(s *Server) *http.Request {
				return refreshRequest("h", login(t, s)["refresh_token"])
			},
			status: 500, ctype: "application/json", envelope: "500",
			untouched: func(t *testing.T, s *Server) {
				tok := s.OAuthRequests()
				form, _ := url.ParseQuery(string(tok[len(tok)-1].Body))
				s.ClearFaults()
				if res := serve(s, refreshRequest("h", form.Get("refresh_token"))); res.Status != 200 {
					t.Errorf("the refresh token should survive a faulted refresh: %d %s", res.Status, res.Body)
				}
			},
		},
		{
			name:  "authorize with a custom content type",
			fault: Fault{Endpoint: EndpointAuthorize, Status: 403, Body: "blocked", ContentType: "text/plain"},
			req: func(s *Server) *http.Request {
				return authorizeRequest(url.Values{"client_id": {confID}, "redirect_uri": {redirectURI}, "response_type": {"code"}})
			},
			status: 403, ctype: "text/plain", body: "blocked",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestServer(t)
			req := tt.req(s) // before the fault: it may need a login
			s.ResetRequests()
			s.SetFault(tt.fault)
			res := serve(s, req)
			if res.Status != tt.status || res.Header.Get("Content-Type") != tt.ctype {
				t.Errorf("got %d %q, want %d %q", res.Status, res.Header.Get("Content-Type"), tt.status, tt.ctype)
			}
			if tt.body != "" && string(res.Body) != tt.body {
				t.Errorf("body = %q, want %q", res.Body, tt.body)
			}
			if tt.envelope != "" {
				wantEnvelope(t, res, tt.status, tt.envelope, "")
			}
			if tt.untouched != nil {
				tt.untouched(t, s)
			}
		})
	}
}

func TestFaultTimesCountsDownThenNormalServiceResumes(t *testing.T) {
	s, _ := newTestServer(t)
	tok := login(t, s)["access_token"]
	s.SetFault(Fault{Endpoint: EndpointAPI, Status: 502, Times: 2})
	var got []int
	for range 4 {
		got = append(got, serve(s, apiRequest(http.MethodPost, "h", "/api/rating/v2409/Rate", tok, rateBody("03", "US", "1"))).Status)
	}
	if want := []int{502, 502, 200, 200}; !equalInts(got, want) {
		t.Errorf("statuses = %v, want %v", got, want)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestFaultWithoutTimesStaysUntilCleared(t *testing.T) {
	s, _ := newTestServer(t)
	s.SetFault(Fault{Endpoint: EndpointToken, Status: 503})
	req := func() *http.Request {
		r := formRequest("h", ups.TokenPath, url.Values{"grant_type": {"client_credentials"}})
		r.SetBasicAuth(confID, confSecret)
		return r
	}
	for range 3 {
		if res := serve(s, req()); res.Status != 503 {
			t.Fatalf("status %d, want the fault until cleared", res.Status)
		}
	}
	s.ClearFaults()
	if res := serve(s, req()); res.Status != 200 {
		t.Errorf("after ClearFaults: %d %s", res.Status, res.Body)
	}
}

func TestSetFaultReplacesTheEndpointsFaultAndIgnoresUnknownEndpoints(t *testing.T) {
	s, _ := newTestServer(t)
	tok := login(t, s)["access_token"]
	s.SetFault(Fault{Endpoint: EndpointAPI, Status: 500})
	s.SetFault(Fault{Endpoint: EndpointAPI, Status: 429})
	s.SetFault(Fault{Endpoint: "tokens", Status: 418})
	if res := serve(s, apiRequest(http.MethodPost, "h", "/api/rating/v2409/Rate", tok, rateBody("03", "US", "1"))); res.Status != 429 {
		t.Errorf("status %d, want the later fault's 429", res.Status)
	}
	if login(t, s)["access_token"] == "" {
		t.Errorf("a fault for an unknown endpoint name must not touch the token endpoint")
	}
}

func TestFaultDelayThenNormalHandling(t *testing.T) {
	s, _ := newTestServer(t)
	tok := login(t, s)["access_token"]
	s.SetFault(Fault{Endpoint: EndpointAPI, Delay: 60 * time.Millisecond, Times: 1})
	start := time.Now()
	res := serve(s, apiRequest(http.MethodPost, "h", "/api/rating/v2409/Rate", tok, rateBody("03", "US", "1")))
	if took := time.Since(start); res.Status != 200 || took < 60*time.Millisecond {
		t.Errorf("got %d after %s, want 200 after at least 60ms", res.Status, took)
	}
}

func TestFaultDelayEndsWhenTheClientGivesUp(t *testing.T) {
	s, _ := newTestServer(t)
	ts := httptest.NewServer(s)
	defer ts.Close()
	s.SetFault(Fault{Endpoint: EndpointToken, Status: 200, Delay: time.Minute})

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ts.URL+ups.TokenPath, strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	start := time.Now()
	res, err := ts.Client().Do(req)
	if err == nil {
		res.Body.Close()
		t.Fatalf("request answered %d despite a one-minute delay", res.StatusCode)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error = %v, want the client's deadline", err)
	}
	// Closing the test server waits for handlers: it would take a minute
	// if the delay ignored the cancelled request.
	done := make(chan struct{})
	go func() { ts.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("handler still sleeping %s after the client gave up", time.Since(start))
	}
}
