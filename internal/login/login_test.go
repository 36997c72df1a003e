package login_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/upsproxy/upsproxy/internal/login"
	"github.com/upsproxy/upsproxy/internal/testutil/vaultdevtest"
	"github.com/upsproxy/upsproxy/internal/ups"
	"github.com/upsproxy/upsproxy/internal/upssim"
	"github.com/upsproxy/upsproxy/internal/vaultstore"
)

const redirect = "https://127.0.0.1/upscallback"

func setup(t *testing.T) (*vaultstore.Store, *upssim.Server, func(id, secret string) *ups.Client) {
	t.Helper()
	v := vaultdevtest.Start(t)
	store, err := vaultstore.New(vaultstore.Options{Client: v.Client(t), Prefix: "login-test"})
	if err != nil {
		t.Fatal(err)
	}
	sim := upssim.New(upssim.Options{Clients: map[string]string{"app": "app-secret", "public": ""}})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	base, _ := url.Parse(srv.URL)
	return store, sim, func(id, secret string) *ups.Client {
		oc, err := ups.NewClient(ups.Config{BaseURL: base, ClientID: id, ClientSecret: secret, RedirectURI: redirect,
			HTTPClient: &http.Client{Timeout: 10 * time.Second}})
		if err != nil {
			t.Fatal(err)
		}
		return oc
	}
}

func TestLogin_AuthorizeCompleteReplaceAndDelete(t *testing.T) {
	store, sim, client := setup(t)
	svc, err := login.New(login.Options{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	target := login.Target{Carrier: "main", Environment: ups.Test, Grant: ups.GrantAuthorizationCode}
	for i, tc := range []struct {
		id, secret string
		pkce       bool
	}{{"app", "app-secret", false}, {"public", "", true}} {
		oc := client(tc.id, tc.secret)
		a, err := login.Authorize(oc, nil)
		if err != nil {
			t.Fatal(err)
		}
		u, _ := url.Parse(a.URL)
		if u.Query().Get("state") != a.State || a.State == "" || (a.Verifier != "") != tc.pkce ||
			(u.Query().Get("code_challenge") == ups.PKCEChallenge(a.Verifier)) != tc.pkce {
			t.Fatalf("%s: authorization %q does not carry its state and PKCE challenge", tc.id, a.URL)
		}
		if err := svc.CheckStore(ctx, target); err != nil {
			t.Fatal(err)
		}
		code := sim.IssueCode(tc.id, redirect, u.Query().Get("code_challenge"))
		tok, err := svc.Complete(ctx, oc, target, code, a.Verifier, "test")
		if err != nil {
			t.Fatalf("%s: %v", tc.id, err)
		}
		rec, err := store.Get(ctx, "main", ups.Test)
		if err != nil || rec.Token.RefreshToken != tok.RefreshToken || rec.UpdatedBy != "test" || rec.Version != i+1 {
			t.Fatalf("%s: stored %v, %v", tc.id, rec, err)
		}
	}
	// A custom state (the console's sealed one) gets the verifier.
	var got string
	a, err := login.Authorize(client("public", ""), func(v string) (string, error) { got = v; return "sealed-" + v[:4], nil })
	if err != nil || got == "" || a.State != "sealed-"+got[:4] || a.Verifier != got {
		t.Fatalf("state func: %+v %v", a, err)
	}
	// A spent code stores nothing.
	if _, err := svc.Complete(ctx, client("app", "app-secret"), target, "spent", "", "test"); err == nil || !strings.Contains(err.Error(), "exchanging the authorization code") {
		t.Fatalf("bad code: %v", err)
	}
	old, err := svc.Delete(ctx, "main", ups.Test)
	if err != nil || old == nil || old.Carrier != "main" {
		t.Fatalf("delete: %v %v", old, err)
	}
	if _, err := svc.Delete(ctx, "main", ups.Test); !errors.Is(err, login.ErrNothingStored) {
		t.Fatalf("second delete: %v", err)
	}
}

// failingStore answers every write with a conflict.
type failingStore struct {
	login.Store
	puts int
}

func (f *failingStore) Put(context.Context, vaultstore.Record) (int, error) {
	f.puts++
	return 0, vaultstore.ErrConflict
}

func TestLogin_SaveRetriesThenSaysTheCodeIsSpent(t *testing.T) {
	store, _, _ := setup(t)
	fs := &failingStore{Store: store}
	var slept []time.Duration
	svc, _ := login.New(login.Options{Store: fs, Sleep: func(_ context.Context, d time.Duration) { slept = append(slept, d) }})
	err := svc.Save(context.Background(), login.Target{Carrier: "main", Environment: ups.Test}, ups.Token{AccessToken: "a", RefreshToken: "r"}, "test")
	if err == nil || !strings.Contains(err.Error(), "the authorization code is spent") || !errors.Is(err, vaultstore.ErrConflict) {
		t.Fatalf("err = %v", err)
	}
	if fs.puts != 5 || len(slept) != 4 || slept[3] != 2*time.Second {
		t.Fatalf("%d writes, waits %v", fs.puts, slept)
	}
}
