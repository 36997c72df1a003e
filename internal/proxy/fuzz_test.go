package proxy

import (
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"testing"

	"github.com/upsproxy/upsproxy/internal/ups"
)

// isUPSHost: a UPS host name in any case, with or without the trailing
// dot of a fully qualified name.
func isUPSHost(h string) bool {
	h = strings.TrimSuffix(h, ".")
	return strings.EqualFold(h, ups.TestHost) || strings.EqualFold(h, ups.ProductionHost)
}

// FuzzConnectTarget: whatever a client writes after CONNECT, only a UPS
// host on port 443 is ever accepted.
func FuzzConnectTarget(f *testing.F) {
	for _, s := range []string{
		"onlinetools.ups.com:443", "wwwcie.ups.com:443", "ONLINETOOLS.UPS.COM:443", "onlinetools.ups.com:8443",
		"onlinetools.ups.com", "example.com:443", "127.0.0.1:443", "[::1]:443", "onlinetools.ups.com.:443",
		"onlinetools.ups.com.evil.example:443", "onlinetools.ups.com:443:443", ":443", "onlinetools.ups.com:0443",
		"user@onlinetools.ups.com:443", "onlinetools.ups.com%00:443",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, authority string) {
		tg := connectTarget(authority)
		if tg == nil {
			return
		}
		host, port, err := net.SplitHostPort(authority)
		if err != nil || port != "443" || !isUPSHost(host) {
			t.Fatalf("CONNECT %q accepted as %s", authority, tg.host)
		}
		if tg.env != ups.Test && tg.env != ups.Production {
			t.Fatalf("CONNECT %q accepted without an environment", authority)
		}
	})
}

// FuzzRequestTarget: an absolute-form URL is accepted only for a UPS host
// on its scheme's port, or as the base-URL marker with a path.
func FuzzRequestTarget(f *testing.F) {
	for _, s := range []string{
		"http://onlinetools.ups.com/api/rating/v2409/Rate", "https://wwwcie.ups.com/api/track/v1/details/1Z",
		"http://onlinetools.ups.com:80/x", "http://onlinetools.ups.com:443/x", "https://onlinetools.ups.com:443/x",
		"http://127.0.0.1:8080/", "http://example.com/", "ftp://onlinetools.ups.com/", "http://user:pw@onlinetools.ups.com/",
		"http://" + baseURLHost + "/api/x", "http://" + baseURLHost + "*", "https://" + baseURLHost + "/api/x",
		"http://onlinetools.ups.com.evil.example/", "http://[::1]/", "//onlinetools.ups.com/",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.Parse(raw)
		if err != nil {
			return
		}
		tg := requestTarget(u)
		switch {
		case tg == nil:
		case tg == baseURLTarget:
			if u.Host != baseURLHost || u.Scheme != "http" || !strings.HasPrefix(u.Path, "/") {
				t.Fatalf("%q accepted as base-URL mode", raw)
			}
		default:
			port := u.Port()
			okPort := (u.Scheme == "http" && (port == "" || port == "80")) || (u.Scheme == "https" && (port == "" || port == "443"))
			if !okPort || !isUPSHost(u.Hostname()) {
				t.Fatalf("%q accepted as %s", raw, tg.host)
			}
		}
	})
}

// FuzzStripRequestHeaders: whatever headers a client sends, none that must
// not reach UPS survive, and ordinary ones do.
func FuzzStripRequestHeaders(f *testing.F) {
	f.Add("Authorization", "Basic x", "")
	f.Add("proxy-authorization", "Basic x", "")
	f.Add("X-UPSPROXY-CARRIER", "main", "")
	f.Add("accesslicensenumber", "ALN", "")
	f.Add("X-Custom", "v", "X-Custom")
	f.Add("X-Custom", "v", "close, X-Custom , keep-alive")
	f.Add("Te", "trailers", "")
	f.Add("Content-Type", "application/json", ",,,")
	f.Fuzz(func(t *testing.T, name, value, connection string) {
		h := http.Header{}
		h[name] = []string{value}
		h["Username"] = []string{"u"}
		h["Password"] = []string{"p"}
		h["Proxy-Connection"] = []string{"keep-alive"}
		if connection != "" {
			h["Connection"] = []string{connection}
		}
		h["Content-Type"] = []string{"application/json"}
		listed := strings.EqualFold(name, "Content-Type") && value != "application/json"
		for _, v := range h["Connection"] {
			for n := range strings.SplitSeq(v, ",") {
				if strings.EqualFold(strings.TrimSpace(n), "Content-Type") {
					listed = true
				}
			}
		}
		stripRequestHeaders(h)
		for k := range h {
			if strippedRequestHeader(k) {
				t.Fatalf("header %q survived stripping", k)
			}
			for n := range strings.SplitSeq(connection, ",") {
				if n = textproto.TrimString(n); n != "" && strings.EqualFold(n, k) {
					t.Fatalf("header %q survived though Connection %q lists it", k, connection)
				}
			}
		}
		if !listed && h.Get("Content-Type") != "application/json" {
			t.Fatalf("ordinary header Content-Type was stripped (Connection %q)", connection)
		}
	})
}

// FuzzParseCAFiles: garbage in the CA files is an error, never a panic.
func FuzzParseCAFiles(f *testing.F) {
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n"))
	f.Add([]byte("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"))
	f.Add([]byte("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n"))
	f.Add([]byte("not pem at all"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if c, err := parseCertificatePEM(data); err == nil && c == nil {
			t.Fatal("nil certificate without error")
		}
		if k, err := parsePrivateKeyPEM(data); err == nil && k == nil {
			t.Fatal("nil key without error")
		}
	})
}

// FuzzUnknownCarrierError: a client-chosen carrier name always yields a
// valid UPS envelope, echoing a bounded amount of it.
func FuzzUnknownCarrierError(f *testing.F) {
	f.Add("main")
	f.Add(`"quoted" \ back`)
	f.Add("\xff\xfe invalid utf-8")
	f.Add(strings.Repeat("x", 10000))
	f.Fuzz(func(t *testing.T, name string) {
		e := unknownCarrierError(name)
		d, ok := ups.ParseEnvelope(e.body)
		if !ok || d.Code != CodeNoCarrier {
			t.Fatalf("body %q is not a NO_CARRIER envelope", e.body)
		}
		if len(e.body) > 600 {
			t.Fatalf("error body is %d bytes for a %d-byte name", len(e.body), len(name))
		}
	})
}

// FuzzStripQueryCredentials: whatever query a client sends, what UPS gets
// holds no access_token parameter and no upsproxy token, and every other
// parameter is kept as it was, in order.
func FuzzStripQueryCredentials(f *testing.F) {
	for _, s := range []string{
		"", "locale=en_US", "access_token=abc", "a=1&access_token=upsproxy1_x.y&b=2", "access%5Ftoken=x&b=2",
		"a=%75psproxy1_abc", "a=1;access_token=upsproxy1_x", "&&access_token=x&", "ACCESS_TOKEN=x", "a=%zz&b=upsproxy1_",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		out := stripQueryCredentials(q)
		var kept []string
		for _, seg := range strings.Split(q, "&") {
			if !credentialParam(seg) && seg != "" {
				kept = append(kept, seg)
			}
		}
		var got []string
		for _, seg := range strings.Split(out, "&") {
			if seg != "" {
				got = append(got, seg)
			}
		}
		if strings.Join(got, "&") != strings.Join(kept, "&") {
			t.Fatalf("stripQueryCredentials(%q) = %q, want the parameters %q", q, out, kept)
		}
		if dec, err := url.QueryUnescape(out); err == nil && strings.Contains(dec, "upsproxy1_") {
			t.Fatalf("stripQueryCredentials(%q) = %q still holds a token", q, out)
		}
	})
}
