package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/upsproxy/upsproxy/internal/ups"
)

func loadTestCA(t *testing.T, cacheSize int) *CA {
	t.Helper()
	certPath, keyPath, err := InitCA(t.TempDir(), time.Now())
	if err != nil {
		t.Fatalf("InitCA: %v", err)
	}
	ca, err := LoadCA(certPath, keyPath, cacheSize)
	if err != nil {
		t.Fatalf("LoadCA: %v", err)
	}
	return ca
}

func TestLeafForMintsAShortLivedP256LeafThatClientsTrustingTheCAAccept(t *testing.T) {
	ca := loadTestCA(t, 4)
	// Certificates carry whole seconds; the CA was made just now.
	now := time.Now().UTC().Truncate(time.Second).Add(time.Hour)
	ca.now = func() time.Time { return now }

	leaf, err := ca.LeafFor(ups.ProductionHost)
	if err != nil {
		t.Fatal(err)
	}
	cert := leaf.Leaf
	key, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || key.Curve != elliptic.P256() {
		t.Errorf("leaf key is %T, want ECDSA P-256", cert.PublicKey)
	}
	if len(cert.DNSNames) != 1 || cert.DNSNames[0] != ups.ProductionHost {
		t.Errorf("leaf SANs = %v, want [%s]", cert.DNSNames, ups.ProductionHost)
	}
	if !cert.NotBefore.Equal(now.Add(-time.Hour)) || !cert.NotAfter.Equal(now.Add(7*24*time.Hour)) {
		t.Errorf("leaf valid %s..%s, want an hour back to 7 days ahead of %s", cert.NotBefore, cert.NotAfter, now)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Certificate())
	if _, err := cert.Verify(x509.VerifyOptions{DNSName: ups.ProductionHost, Roots: roots, CurrentTime: now}); err != nil {
		t.Errorf("a client trusting the CA rejects the leaf: %v", err)
	}
}

func TestInitCAIsNameConstrainedSoItsLeavesAreUselessForOtherSites(t *testing.T) {
	ca := loadTestCA(t, 4)
	leaf, err := ca.LeafFor("bank.example")
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Certificate())
	_, err = leaf.Leaf.Verify(x509.VerifyOptions{DNSName: "bank.example", Roots: roots})
	if err == nil {
		t.Error("a leaf for bank.example from the upsproxy CA verifies: the CA is not constrained to UPS hosts")
	}
}

func TestLeafCacheIsBoundedAndEvictsTheLeastRecentlyUsedHost(t *testing.T) {
	const size = 3
	ca := loadTestCA(t, size)
	hosts := []string{"h0.example", "h1.example", "h2.example", "h3.example"}
	first := map[string]any{}
	for _, h := range hosts {
		leaf, err := ca.LeafFor(h)
		if err != nil {
			t.Fatal(err)
		}
		first[h] = leaf
	}
	if got := ca.cache.Len(); got != size {
		t.Errorf("cache holds %d leaves after %d hosts, want its bound %d", got, len(hosts), size)
	}
	if ca.cache.Contains(hosts[0]) {
		t.Errorf("%s, the least recently used host, is still cached", hosts[0])
	}
	mintedBefore := ca.minted.Load()
	again, _ := ca.LeafFor(hosts[3])
	if again != first[hosts[3]] || ca.minted.Load() != mintedBefore {
		t.Error("a cached host was minted again")
	}
	evicted, _ := ca.LeafFor(hosts[0])
	if evicted == first[hosts[0]] || ca.minted.Load() != mintedBefore+1 {
		t.Error("the evicted host was not minted again")
	}
}

func TestConcurrentLeafForOneHostMintsOnce(t *testing.T) {
	ca := loadTestCA(t, 4)
	const n = 32
	leaves := make([]any, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			leaf, err := ca.LeafFor(ups.ProductionHost + ":443")
			if err != nil {
				t.Error(err)
			}
			leaves[i] = leaf
		})
	}
	close(start)
	wg.Wait()
	if got := ca.minted.Load(); got != 1 {
		t.Errorf("%d concurrent LeafFor calls minted %d certificates, want 1", n, got)
	}
	for i := range leaves {
		if leaves[i] != leaves[0] {
			t.Fatalf("caller %d got a different certificate", i)
		}
	}
}

func TestCachedLeafIsReplacedBeforeItExpires(t *testing.T) {
	ca := loadTestCA(t, 4)
	now := time.Now()
	ca.now = func() time.Time { return now }
	old, _ := ca.LeafFor(ups.TestHost)

	now = now.Add(5 * 24 * time.Hour)
	if same, _ := ca.LeafFor(ups.TestHost); same != old {
		t.Error("a leaf with two days left was replaced")
	}
	now = now.Add(36 * time.Hour)
	fresh, _ := ca.LeafFor(ups.TestHost)
	if fresh == old || !fresh.Leaf.NotAfter.After(now.Add(6*24*time.Hour)) {
		t.Error("a leaf with 12 hours left was served instead of a fresh one")
	}
}

func TestInitCAWritesAPrivateP256KeyAndATenYearCA(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new-dir")
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	certPath, keyPath, err := InitCA(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{keyPath: 0o600, certPath: 0o644} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s has mode %04o, want %04o", filepath.Base(path), fi.Mode().Perm(), want)
		}
	}
	keyPEM, _ := os.ReadFile(keyPath)
	block, _ := pem.Decode(keyPEM)
	if block == nil || block.Type != "PRIVATE KEY" {
		t.Fatalf("key file is not a PKCS #8 PEM block: %q", keyPEM)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if k, ok := key.(*ecdsa.PrivateKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("CA key is %T, want ECDSA P-256", key)
	}
	ca, err := LoadCA(certPath, keyPath, 0)
	if err != nil {
		t.Fatalf("LoadCA of a fresh CA: %v", err)
	}
	cert := ca.Certificate()
	if cert.Subject.CommonName != "upsproxy MITM CA" || !cert.IsCA {
		t.Errorf("CA subject %q IsCA=%v", cert.Subject.CommonName, cert.IsCA)
	}
	if years := cert.NotAfter.Sub(now).Hours() / 24 / 365; years < 9.9 || years > 10.1 {
		t.Errorf("CA valid for %.1f years, want 10", years)
	}
}

func TestInitCARefusesToOverwriteAnExistingCA(t *testing.T) {
	for _, existing := range []string{"ca.pem", "ca-key.pem"} {
		t.Run(existing+" exists", func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, existing)
			if err := os.WriteFile(path, []byte("precious"), 0o600); err != nil {
				t.Fatal(err)
			}
			_, _, err := InitCA(dir, time.Now())
			if err == nil || !strings.Contains(err.Error(), "refusing to overwrite") {
				t.Fatalf("InitCA over an existing %s: err = %v, want a refusal", existing, err)
			}
			if b, _ := os.ReadFile(path); string(b) != "precious" {
				t.Errorf("existing %s was changed", existing)
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 1 {
				t.Errorf("InitCA left %d files behind, want only the existing one", len(entries))
			}
		})
	}
}

func TestLoadCARefusesUnsafeOrBrokenFilesWithClearErrors(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath, err := InitCA(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	otherCert, otherKey, err := InitCA(filepath.Join(dir, "other"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	_ = otherCert
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	keyPEM, _ := os.ReadFile(keyPath)
	certPEM, _ := os.ReadFile(certPath)
	leaf, err := loadTestCA(t, 1).LeafFor("leaf.example")
	if err != nil {
		t.Fatal(err)
	}
	leafPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Certificate[0]}))

	cases := []struct {
		name, cert, key, want string
	}{
		{"key file readable by everyone (0644)", certPath, write("open-key.pem", string(keyPEM), 0o644), "chmod 600"},
		{"key file readable by its group (0640)", certPath, write("group-key.pem", string(keyPEM), 0o640), "readable by group or others"},
		{"key file is not PEM", certPath, write("garbage-key.pem", "not a key", 0o600), "no PEM private key"},
		{"key PEM block is corrupt", certPath, write("corrupt-key.pem", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", 0o600), "parse PRIVATE KEY"},
		{"encrypted key", certPath, write("enc-key.pem", "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n", 0o600), "encrypted"},
		{"certificate file is not PEM", write("garbage.pem", "hello", 0o644), keyPath, "no PEM CERTIFICATE"},
		{"certificate is a leaf, not a CA", write("leaf.pem", leafPEM, 0o644), keyPath, "not a CA"},
		{"key belongs to another CA", certPath, otherKey, "does not belong"},
		{"key file missing", certPath, filepath.Join(dir, "nope.pem"), "no such file"},
		{"certificate and key concatenated the wrong way round", write("swapped.pem", string(keyPEM), 0o644), write("swapped-key.pem", string(certPEM), 0o600), "no PEM CERTIFICATE"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := LoadCA(c.cert, c.key, 4)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("LoadCA: err = %v, want one containing %q", err, c.want)
			}
		})
	}
}
