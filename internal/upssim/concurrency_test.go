package upssim

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/upsproxy/upsproxy/internal/ups"
)

// A refresh token is single-use: of 200 simultaneous attempts to spend it,
// exactly one may win, or two replicas could each walk away with a pair.
func TestRefreshStormSpendsTheRefreshTokenExactlyOnce(t *testing.T) {
	s, _ := newTestServer(t)
	ts := httptest.NewServer(s)
	defer ts.Close()
	tok := login(t, s)

	const n = 200
	statuses := make(chan int, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			body := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"]}}.Encode()
			req, _ := http.NewRequest(http.MethodPost, ts.URL+ups.RefreshPath, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(confID, confSecret)
			res, err := ts.Client().Do(req)
			if err != nil {
				t.Errorf("refresh: %v", err)
				return
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			statuses <- res.StatusCode
		}()
	}
	close(start)
	wg.Wait()
	close(statuses)
	counts := map[int]int{}
	for st := range statuses {
		counts[st]++
	}
	if counts[200] != 1 || counts[401] != n-1 {
		t.Errorf("statuses = %v, want exactly one 200 and %d 401", counts, n-1)
	}
	if st := s.Stats(); st.Refreshes != 1 || st.RefreshRejected != n-1 {
		t.Errorf("stats = %+v, want Refreshes 1 and RefreshRejected %d", st, n-1)
	}
}

// Everything at once, for the race detector: grants, API calls, recording,
// stats, faults and revocation.
func TestConcurrentUseIsSafe(t *testing.T) {
	s, _ := newTestServer(t)
	ts := httptest.NewServer(s)
	defer ts.Close()
	access := login(t, s)["access_token"]

	const n = 240
	var wg sync.WaitGroup
	var mu sync.Mutex
	apiStatus := map[int]int{}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var req *http.Request
			switch i % 6 {
			case 0, 1, 2:
				req, _ = http.NewRequest(http.MethodPost, ts.URL+"/api/rating/v2409/Shop", bytes.NewReader(rateBody("03", "US", "4")))
				req.Header.Set("Authorization", "Bearer "+access)
			case 3:
				req, _ = http.NewRequest(http.MethodPost, ts.URL+ups.TokenPath, strings.NewReader("grant_type=client_credentials"))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth(confID, confSecret)
			case 4:
				_ = s.Requests()
				_ = s.Stats()
				_ = s.IssueCode(confID, redirectURI, "")
				return
			case 5:
				s.SetFault(Fault{Endpoint: EndpointAuthorize, Status: 503, Times: 1})
				s.ClearFaults()
				s.RejectRefreshTokens()
				return
			}
			res, err := ts.Client().Do(req)
			if err != nil {
				t.Errorf("request: %v", err)
				return
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if strings.HasPrefix(req.URL.Path, "/api/") {
				mu.Lock()
				apiStatus[res.StatusCode]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	calls := n / 6 * 3
	if apiStatus[200] != calls {
		t.Errorf("API statuses = %v, want %d × 200", apiStatus, calls)
	}
	if st := s.Stats(); st.APICalls != calls || st.ClientCredentialsGrants != n/6 || len(s.Requests()) != calls {
		t.Errorf("stats = %+v with %d recorded, want %d API calls recorded and %d grants", st, len(s.Requests()), calls, n/6)
	}
}
