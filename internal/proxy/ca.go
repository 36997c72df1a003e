package proxy

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"

	"github.com/upsproxy/upsproxy/internal/fileperm"
	"github.com/upsproxy/upsproxy/internal/ups"
)

// Leaf certificate lifetime. Short, because a leaf is minted in a
// millisecond whenever needed; NotBefore is back-dated for client clock skew.
const (
	leafValidity     = 7 * 24 * time.Hour
	leafBackdate     = time.Hour
	leafRenewBefore  = 24 * time.Hour // re-mint a cached leaf this long before it expires
	defaultLeafCache = 64
)

// CA file names written by InitCA, matching the example configuration.
const (
	caCertFile = "ca.pem"
	caKeyFile  = "ca-key.pem"
	caName     = "upsproxy MITM CA"
	caValidity = 10 * 365 * 24 * time.Hour
)

// CA is the MITM certificate authority: its certificate and key, and a
// bounded cache of the leaf certificates it minted.
type CA struct {
	cert  *x509.Certificate
	key   crypto.Signer
	now   func() time.Time
	cache *lru.Cache[string, *tls.Certificate]
	// mint collapses concurrent misses for one host into one signature.
	mint   singleflight.Group
	minted atomic.Int64
}

// LoadCA loads the CA certificate and key (PEM) for MITM. It refuses a key
// file others can read (fileperm.CheckPrivate), a certificate that is not a CA, and a
// key that does not match the certificate. cacheSize bounds the leaf cache
// (<= 0: 64).
func LoadCA(certFile, keyFile string, cacheSize int) (*CA, error) {
	// Unix: no group or other mode bits; Windows: no access for Everyone,
	// Users or Authenticated Users in the file's ACL (see fileperm).
	if err := fileperm.CheckPrivate(keyFile); err != nil {
		return nil, fmt.Errorf("MITM CA key: %w", err)
	}
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("MITM CA certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("MITM CA key: %w", err)
	}
	cert, err := parseCertificatePEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("MITM CA certificate %s: %w", certFile, err)
	}
	if !cert.BasicConstraintsValid || !cert.IsCA {
		return nil, fmt.Errorf("MITM CA certificate %s is not a CA certificate (basic constraints CA:TRUE missing)", certFile)
	}
	key, err := parsePrivateKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("MITM CA key %s: %w", keyFile, err)
	}
	pub, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(key.Public()) {
		return nil, fmt.Errorf("MITM CA key %s does not belong to certificate %s", keyFile, certFile)
	}
	if cacheSize <= 0 {
		cacheSize = defaultLeafCache
	}
	cache, err := lru.New[string, *tls.Certificate](cacheSize)
	if err != nil {
		return nil, fmt.Errorf("MITM leaf cache: %w", err)
	}
	return &CA{cert: cert, key: key, now: time.Now, cache: cache}, nil
}

// Certificate returns the CA certificate (for clients to trust).
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

func parseCertificatePEM(data []byte) (*x509.Certificate, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, errors.New("no PEM CERTIFICATE block found")
		}
		if block.Type == "CERTIFICATE" {
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("parse certificate: %w", err)
			}
			return cert, nil
		}
	}
}

// parsePrivateKeyPEM reads the first private key of data: PKCS #8
// ("PRIVATE KEY", what InitCA writes), SEC 1 ("EC PRIVATE KEY") or PKCS #1
// ("RSA PRIVATE KEY").
func parsePrivateKeyPEM(data []byte) (crypto.Signer, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, errors.New("no PEM private key block found")
		}
		var (
			key any
			err error
		)
		switch block.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, errors.New("encrypted private keys are not supported: store it unencrypted with mode 0600")
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", block.Type, err)
		}
		switch k := key.(type) {
		case *ecdsa.PrivateKey:
			return k, nil
		case *rsa.PrivateKey:
			return k, nil
		case ed25519.PrivateKey:
			return k, nil
		}
		return nil, fmt.Errorf("unsupported private key type %T", key)
	}
}

// LeafFor returns a certificate for host signed by the CA: an ECDSA P-256
// key, SAN = host, valid for 7 days from an hour ago. Leaves are cached
// (least recently used out) and re-minted a day before they expire;
// concurrent callers for one host share one minting.
func (ca *CA) LeafFor(host string) (*tls.Certificate, error) {
	host = strings.ToLower(hostname(host))
	if host == "" {
		return nil, errors.New("mint leaf certificate: empty host name")
	}
	if leaf, ok := ca.cached(host); ok {
		return leaf, nil
	}
	v, err, _ := ca.mint.Do(host, func() (any, error) {
		// A caller that missed just before another finished minting.
		if leaf, ok := ca.cached(host); ok {
			return leaf, nil
		}
		leaf, err := ca.newLeaf(host)
		if err != nil {
			return nil, err
		}
		ca.cache.Add(host, leaf)
		return leaf, nil
	})
	if err != nil {
		return nil, fmt.Errorf("mint leaf certificate for %s: %w", host, err)
	}
	return v.(*tls.Certificate), nil
}

func (ca *CA) cached(host string) (*tls.Certificate, bool) {
	leaf, ok := ca.cache.Get(host)
	if !ok || !ca.now().Before(leaf.Leaf.NotAfter.Add(-leafRenewBefore)) {
		return nil, false
	}
	return leaf, true
}

func (ca *CA) newLeaf(host string) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	now := ca.now()
	notAfter := now.Add(leafValidity)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: host},
		NotBefore:             now.Add(-leafBackdate),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	if ip := net.ParseIP(host); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{host}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse minted certificate: %w", err)
	}
	ca.minted.Add(1)
	return &tls.Certificate{
		Certificate: [][]byte{der, ca.cert.Raw},
		PrivateKey:  key,
		Leaf:        leaf,
	}, nil
}

func randomSerial() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	return serial, nil
}

// InitCA creates the MITM CA in dir for `upsproxy ca init`: an ECDSA P-256
// key (PKCS #8 PEM, mode 0600) and a self-signed certificate "upsproxy MITM
// CA" valid for 10 years (mode 0644). It refuses to overwrite either file.
//
// The certificate is name-constrained to the UPS API hosts (non-critical,
// so old clients that do not know the extension still accept it): clients
// that trust it risk nothing for other sites should its key leak.
func InitCA(dir string, now time.Time) (certPath, keyPath string, err error) {
	certPath = filepath.Join(dir, caCertFile)
	keyPath = filepath.Join(dir, caKeyFile)
	for _, p := range []string{certPath, keyPath} {
		if _, err := os.Lstat(p); err == nil {
			return "", "", fmt.Errorf("%s already exists: refusing to overwrite a CA (clients may trust it); remove it first or choose another directory", p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", "", fmt.Errorf("check %s: %w", p, err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", fmt.Errorf("create %s: %w", dir, err)
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("generate CA key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return "", "", err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return "", "", fmt.Errorf("marshal CA public key: %w", err)
	}
	ski := sha1.Sum(pubDER) // RFC 5280 4.2.1.2 method (1), an identifier, not a security function
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: caName, Organization: []string{"upsproxy"}},
		NotBefore:             now.Add(-leafBackdate),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		SubjectKeyId:          ski[:],
		PermittedDNSDomains:   []string{ups.TestHost, ups.ProductionHost},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", fmt.Errorf("self-sign CA certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", fmt.Errorf("marshal CA key: %w", err)
	}

	if err := writeNew(keyPath, 0o600, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})); err != nil {
		return "", "", err
	}
	if err := writeNew(certPath, 0o644, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})); err != nil {
		// Leave no key without its certificate behind.
		_ = os.Remove(keyPath)
		return "", "", err
	}
	return certPath, keyPath, nil
}

// writeNew creates path (failing if it exists, even if created since the
// caller checked) with mode and writes data durably.
func writeNew(path string, mode os.FileMode, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	// The umask can only remove bits; make the mode exact anyway.
	if err := f.Chmod(mode); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return fmt.Errorf("chmod %s: %w", path, err)
	}
	// On Windows the mode is not access control: a file in
	// %ProgramData% inherits read access for Users. Restrict replaces the
	// inherited ACL while the file is still empty.
	if mode&0o077 == 0 {
		if err := fileperm.Restrict(path); err != nil {
			_ = f.Close()
			_ = os.Remove(path)
			return err
		}
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return fmt.Errorf("sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("close %s: %w", path, err)
	}
	return nil
}
