package upssim

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/upsproxy/upsproxy/internal/ups"
)

// The simulator runs inside demos whose logs get pasted into issues:
// secrets, codes and tokens must never appear in them, at any level.
func TestLogsNeverContainSecretsCodesOrTokens(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	s, _ := newTestServer(t, func(o *Options) { o.Logger = zap.New(core) })
	var secrets []string
	keep := func(v ...string) {
		for _, x := range v {
			if x != "" {
				secrets = append(secrets, x)
			}
		}
	}
	keep(confSecret, otherSecret, testVerifier, base64.StdEncoding.EncodeToString([]byte(confID+":"+confSecret)))

	res := serve(s, authorizeRequest(url.Values{"client_id": {publicID}, "redirect_uri": {redirectURI}, "response_type": {"code"},
		"state": {"state-secret-1"}, "code_challenge": {challengeFor(testVerifier)}}))
	loc, _ := url.Parse(res.Header.Get("Location"))
	code := loc.Query().Get("code")
	keep(code, "state-secret-1")
	pkce := stringFields(t, serve(s, formRequest("h", ups.TokenPath, pkceForm(code, publicID, testVerifier))).Body)
	keep(pkce["access_token"], pkce["refresh_token"])

	tok := login(t, s)
	keep(tok["access_token"], tok["refresh_token"])
	refreshed := stringFields(t, serve(s, refreshRequest("h", tok["refresh_token"])).Body)
	keep(refreshed["access_token"], refreshed["refresh_token"])
	serve(s, refreshRequest("h", tok["refresh_token"])) // refused: spent

	cc := formRequest("h", ups.TokenPath, url.Values{"grant_type": {"client_credentials"}})
	cc.SetBasicAuth(confID, confSecret)
	ccTok := stringFields(t, serve(s, cc).Body)
	keep(ccTok["access_token"])
	bad := formRequest("h", ups.TokenPath, url.Values{"grant_type": {"client_credentials"}})
	bad.SetBasicAuth(confID, "wrong-secret-guess")
	keep("wrong-secret-guess")
	serve(s, bad)

	serve(s, apiRequest(http.MethodPost, "h", "/api/rating/v2409/Rate", refreshed["access_token"], rateBody("03", "US", "1")))
	serve(s, apiRequest(http.MethodPost, "h", "/api/rating/v2409/Rate", "forged-token-value", rateBody("03", "US", "1")))
	keep("forged-token-value")
	s.SetFault(Fault{Endpoint: "bogus"})

	if logs.Len() == 0 {
		t.Fatal("nothing was logged: the test would prove nothing")
	}
	for _, e := range logs.All() {
		line := fmt.Sprintf("%s %v", e.Message, e.ContextMap())
		for _, secret := range secrets {
			if strings.Contains(line, secret) {
				t.Errorf("log line %q contains a secret value", line)
			}
		}
	}
}
