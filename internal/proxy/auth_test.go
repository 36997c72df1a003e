package proxy

import (
	"context"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func TestProxyAuthRunsBcryptOncePerCredentialNotOncePerRequest(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret-proxy-pw"), bcrypt.DefaultCost)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := buildRouting(Config{Clients: []Client{{Name: "wh1", PasswordHash: string(hash)}}})
	if err != nil {
		t.Fatal(err)
	}
	header := "Basic d2gxOnMzY3JldC1wcm94eS1wdw==" // wh1:s3cret-proxy-pw
	ctx := context.Background()

	start := time.Now()
	cl, err := rt.authenticate(ctx, header)
	if err != nil || cl == nil || cl.name != "wh1" {
		t.Fatalf("authenticate = %v, %v", cl, err)
	}
	oneBcrypt := time.Since(start)

	start = time.Now()
	const n = 200
	for range n {
		if _, err := rt.authenticate(ctx, header); err != nil {
			t.Fatal(err)
		}
	}
	if took := time.Since(start); took > oneBcrypt {
		t.Errorf("%d cached verifications took %s, more than one bcrypt comparison (%s)", n, took, oneBcrypt)
	}

	for _, bad := range []string{
		"Basic d2gxOndyb25n",         // wh1:wrong
		"Basic bm9ib2R5OnMzY3JldA==", // nobody:s3cret
		"Bearer abc", "Basic !!!", "",
	} {
		if _, err := rt.authenticate(ctx, bad); err == nil {
			t.Errorf("credentials %q accepted", bad)
		}
	}
	if len(rt.auth.ok) != 1 {
		t.Errorf("cache holds %d entries, want only the one that passed", len(rt.auth.ok))
	}
}

func TestProxyAuthCacheStaysBounded(t *testing.T) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	rt, err := buildRouting(Config{Clients: []Client{{Name: "u", PasswordHash: string(hash)}}})
	if err != nil {
		t.Fatal(err)
	}
	// Equivalent spellings of one credential are distinct header values:
	// a client cannot grow the cache without bound by varying them.
	for i := range authCacheSize + 50 {
		if _, err := rt.authenticate(context.Background(), "Basic dTpwdw=="+strings.Repeat(" ", i)); err != nil {
			t.Fatal(err)
		}
	}
	if len(rt.auth.ok) > authCacheSize {
		t.Errorf("cache grew to %d entries, bound is %d", len(rt.auth.ok), authCacheSize)
	}
}

func TestProxyAuthRemembersAFailedHeaderSoALoopingClientCostsNoBcrypt(t *testing.T) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	rt, err := buildRouting(Config{Clients: []Client{{Name: "u", PasswordHash: string(hash)}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const wrong = "Basic dTp3cm9uZw==" // u:wrong
	if _, err := rt.authenticate(ctx, wrong); err == nil {
		t.Fatal("wrong password accepted")
	}
	// Every comparison slot taken: a second bcrypt for the same header
	// would wait for one; the remembered failure answers at once.
	for range cap(rt.auth.sem) {
		rt.auth.sem <- struct{}{}
	}
	for range 100 {
		if _, err := rt.authenticate(ctx, wrong); err != errProxyAuthFailed {
			t.Fatalf("repeated wrong credentials: %v", err)
		}
	}
	for range cap(rt.auth.sem) {
		<-rt.auth.sem
	}
	for i := range authCacheSize + 10 {
		_, _ = rt.authenticate(ctx, wrong+strings.Repeat(" ", i+1))
	}
	if len(rt.auth.bad) > authCacheSize {
		t.Fatalf("failure cache grew to %d, bound %d", len(rt.auth.bad), authCacheSize)
	}
	if cl, err := rt.authenticate(ctx, "Basic dTpwdw=="); err != nil || cl.name != "u" {
		t.Fatalf("right password after wrong ones: %v", err)
	}
}
