package vaultstore

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// kubeLogin is one login request the stand-in received.
type kubeLogin struct {
	path, role, jwt string
}

// kubeLoginRecorder stands in for Vault's auth/<mount>/login of the
// Kubernetes auth method, ONLY to see which service-account token each
// login presents. vaultdev does not enable the Kubernetes auth method (it
// would need a Kubernetes API server to review the token), so this is the
// one place where an httptest server replaces Vault; it refuses every login
// with Vault's own 403 answer and is never used for storage.
func kubeLoginRecorder(t *testing.T) (addr string, logins func() []kubeLogin) {
	t.Helper()
	var (
		mu  sync.Mutex
		got []kubeLogin
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			JWT  string `json:"jwt"`
			Role string `json:"role"`
		}
		if r.Method != http.MethodPut && r.Method != http.MethodPost {
			http.Error(w, `{"errors":["unexpected method"]}`, http.StatusMethodNotAllowed)
			return
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, `{"errors":["bad json"]}`, http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, kubeLogin{path: r.URL.Path, role: body.Role, jwt: body.JWT})
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"errors":["permission denied"]}`))
	}))
	t.Cleanup(srv.Close)
	return srv.URL, func() []kubeLogin {
		mu.Lock()
		defer mu.Unlock()
		return append([]kubeLogin(nil), got...)
	}
}

func TestKubernetesAuthReadsTheRotatedServiceAccountTokenAtEveryLogin(t *testing.T) {
	addr, logins := kubeLoginRecorder(t)
	client, err := newBaseClient(ClientOptions{Address: addr, Getenv: envMap(nil)})
	if err != nil {
		t.Fatal(err)
	}
	client.SetMaxRetries(0)
	file := filepath.Join(t.TempDir(), "token")
	auth := KubernetesAuth{Role: "upsproxy", TokenFile: file}

	// The kubelet rotates projected tokens in place; each login must send
	// the one in the file at that moment.
	jwts := []string{"eyJhbGciOiJSUzI1NiJ9.first-service-account-token.sig", "eyJhbGciOiJSUzI1NiJ9.rotated-service-account-token.sig"}
	for _, jwt := range jwts {
		writeFile(t, file, jwt+"\n")
		_, err := auth.Login(ctxT(t), client)
		if err == nil {
			t.Fatal("login against the refusing stand-in succeeded")
		}
		for _, want := range []string{"vault kubernetes login failed", "auth/kubernetes/login", `"upsproxy"`, file, "403", "is the Kubernetes auth method enabled at auth/kubernetes/?"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %q", err, want)
			}
		}
		if !errors.Is(err, ErrPermissionDenied) {
			t.Errorf("error %q is not ErrPermissionDenied", err)
		}
		assertNoSecrets(t, err.Error(), jwt)
	}
	got := logins()
	if len(got) != len(jwts) {
		t.Fatalf("the stand-in saw %d logins, want %d", len(got), len(jwts))
	}
	for i, l := range got {
		if l.jwt != jwts[i] {
			t.Errorf("login %d presented the token %.30q..., want the one in the file then, %.30q...", i+1, l.jwt, jwts[i])
		}
		if l.role != "upsproxy" || l.path != "/v1/auth/kubernetes/login" {
			t.Errorf("login %d went to %s as role %q, want /v1/auth/kubernetes/login as \"upsproxy\"", i+1, l.path, l.role)
		}
	}
}

func TestKubernetesAuthLogsInAtItsMountPathAndNewSessionReportsTheFailure(t *testing.T) {
	addr, logins := kubeLoginRecorder(t)
	file := filepath.Join(t.TempDir(), "token")
	const jwt = "eyJhbGciOiJSUzI1NiJ9.service-account-token.sig"
	writeFile(t, file, jwt)
	_, err := NewSession(ctxT(t), SessionOptions{
		Client: ClientOptions{Address: addr, Getenv: envMap(nil)},
		// Written the way Vault Agent configurations write it.
		Auth: KubernetesAuth{Role: "proxy", TokenFile: file, MountPath: "auth/k8s-prod/"},
	})
	if err == nil || !strings.Contains(err.Error(), "vault kubernetes login failed") {
		t.Fatalf("NewSession error = %v, want a kubernetes login failure", err)
	}
	assertNoSecrets(t, err.Error(), jwt)
	got := logins()
	if len(got) == 0 || got[0].path != "/v1/auth/k8s-prod/login" || got[0].role != "proxy" {
		t.Fatalf("logins = %+v, want one at /v1/auth/k8s-prod/login as role proxy", got)
	}
}

func TestKubernetesAuthWithoutTokenFileNamesTheDefaultPath(t *testing.T) {
	if got := (KubernetesAuth{Role: "r"}).tokenFile(); got != DefaultKubernetesTokenFile {
		t.Fatalf("default token file = %q, want %q", got, DefaultKubernetesTokenFile)
	}
	client, err := newBaseClient(ClientOptions{Address: "http://127.0.0.1:1", Getenv: envMap(nil)})
	if err != nil {
		t.Fatal(err)
	}
	// Outside a pod the default file is missing; the error must say which
	// file was looked for rather than fail at Vault.
	_, err = KubernetesAuth{Role: "r", TokenFile: filepath.Join(t.TempDir(), "absent")}.Login(ctxT(t), client)
	if err == nil || !strings.Contains(err.Error(), "absent") || errors.Is(err, ErrUnavailable) {
		t.Fatalf("login with a missing token file: %v, want an error naming the file, before any request", err)
	}
	_, err = KubernetesAuth{TokenFile: "x"}.Login(ctxT(t), client)
	if err == nil || !strings.Contains(err.Error(), "no role") {
		t.Fatalf("login without role: %v, want an error asking for the role", err)
	}
}
