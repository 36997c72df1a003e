// This program is a client recipe: it rates a shipment through upsproxy the
// way a Go program written for UPS's API would, once pointed at the proxy.
//
//	go run ./examples/clients/go -mode forward -ca ca.pem
//	go run ./examples/clients/go -mode base
//
// In forward mode the program keeps addressing https://wwwcie.ups.com (or
// onlinetools.ups.com); its http.Transport sends everything through the
// proxy (Transport.Proxy) and trusts upsproxy's CA (TLSClientConfig.RootCAs).
// In base-URL mode it addresses upsproxy itself, as software that only lets
// you change the UPS URL does.
//
// Proxy credentials (when upsproxy.hcl has client blocks) come from the
// UPSPROXY_USER and UPSPROXY_PASSWORD environment variables, never from a
// flag, where `ps` would show them.
//
// With UPS_CLIENT_ID and UPS_CLIENT_SECRET set, the program is OAuth-aware
// software: golang.org/x/oauth2/clientcredentials fetches its token from
// UPS's token URL (under the same base) and adds it to the call, exactly as
// against UPS. upsproxy answers the token request itself.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// ratePath is UPS's Rating API; any other UPS API path works the same way.
const ratePath = "/api/rating/v2409/Rate"

// tokenPath is UPS's OAuth token endpoint.
const tokenPath = "/security/v1/oauth/token"

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// options are the command line and environment, parsed.
type options struct {
	mode     string
	proxy    *url.URL
	caFile   string
	upsURL   string
	carrier  string
	bodyFile string
	timeout  time.Duration
	user     string
	password string
	// clientID and clientSecret, when set, are the program's own UPS OAuth
	// client credentials.
	clientID     string
	clientSecret string
}

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	opts, err := parseOptions(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "upsproxy client:", err)
		return 2
	}
	client, target, err := newClient(opts)
	if err != nil {
		fmt.Fprintln(stderr, "upsproxy client:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), opts.timeout)
	defer cancel()
	if opts.clientID != "" {
		// UPS's client-credentials flow, unchanged: the library fetches
		// the token through the same HTTP client and adds it as bearer.
		base := strings.TrimSuffix(target, ratePath)
		cc := &clientcredentials.Config{
			ClientID:     opts.clientID,
			ClientSecret: opts.clientSecret,
			TokenURL:     base + tokenPath,
			AuthStyle:    oauth2.AuthStyleInHeader,
		}
		client = cc.Client(context.WithValue(ctx, oauth2.HTTPClient, client))
	}
	status, err := rate(ctx, client, target, opts, stdout, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "upsproxy client:", err)
		return 1
	}
	if status >= 300 {
		return 1
	}
	return 0
}

func parseOptions(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("upsproxy-client", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	proxy := fs.String("proxy", envOr(getenv, "UPSPROXY_URL", "http://127.0.0.1:8080"), "upsproxy's address (env UPSPROXY_URL)")
	fs.StringVar(&o.mode, "mode", "forward", "forward: HTTPS through the proxy; base: the proxy as the UPS base URL")
	fs.StringVar(&o.caFile, "ca", envOr(getenv, "UPSPROXY_CA", "ca.pem"), "upsproxy's CA certificate, forward mode (env UPSPROXY_CA)")
	fs.StringVar(&o.upsURL, "ups", "https://wwwcie.ups.com", "the UPS host the program addresses in forward mode")
	fs.StringVar(&o.carrier, "carrier", getenv("UPSPROXY_CARRIER"), "sent as X-Upsproxy-Carrier; empty: upsproxy decides (env UPSPROXY_CARRIER)")
	fs.StringVar(&o.bodyFile, "body", "examples/rate-request.json", "the Rate request (JSON)")
	fs.DurationVar(&o.timeout, "timeout", 60*time.Second, "give up after this long")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Rates a shipment through upsproxy.\n\nUsage: upsproxy-client [flags]\n\nProxy credentials: env UPSPROXY_USER and UPSPROXY_PASSWORD.\nOAuth client credentials (optional): env UPS_CLIENT_ID and UPS_CLIENT_SECRET.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if fs.NArg() > 0 {
		return options{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.mode != "forward" && o.mode != "base" {
		return options{}, fmt.Errorf("-mode must be forward or base, not %q", o.mode)
	}
	u, err := url.Parse(*proxy)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return options{}, fmt.Errorf("-proxy must be like http://127.0.0.1:8080, not %q", *proxy)
	}
	if u.User != nil {
		// Credentials in a flag would show in `ps`.
		return options{}, errors.New("-proxy must not contain credentials: set UPSPROXY_USER and UPSPROXY_PASSWORD")
	}
	o.proxy = u
	o.user, o.password = getenv("UPSPROXY_USER"), getenv("UPSPROXY_PASSWORD")
	o.clientID, o.clientSecret = getenv("UPS_CLIENT_ID"), getenv("UPS_CLIENT_SECRET")
	return o, nil
}

// newClient returns the HTTP client and the URL to post to for o.mode.
func newClient(o options) (*http.Client, string, error) {
	if o.mode == "base" {
		// upsproxy is the server here. The Transport has no Proxy func, so
		// an HTTP_PROXY in the environment cannot send the call elsewhere.
		return &http.Client{Transport: &http.Transport{}}, strings.TrimSuffix(o.proxy.String(), "/") + ratePath, nil
	}

	pem, err := os.ReadFile(o.caFile)
	if err != nil {
		return nil, "", fmt.Errorf("read upsproxy's CA certificate: %w (create it with `upsproxy ca init`, or pass -ca)", err)
	}
	// Only upsproxy's CA, not the system roots: a call that somehow
	// bypassed the proxy fails on the certificate instead of reaching UPS
	// without a token.
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, "", fmt.Errorf("%s holds no PEM certificate", o.caFile)
	}
	proxy := *o.proxy
	if o.user != "" {
		// net/http sends the URL's user info as Proxy-Authorization (Basic),
		// on the CONNECT of an https:// request too.
		proxy.User = url.UserPassword(o.user, o.password)
	}
	tr := &http.Transport{
		Proxy:           http.ProxyURL(&proxy),
		TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
	}
	return &http.Client{Transport: tr}, strings.TrimSuffix(o.upsURL, "/") + ratePath, nil
}

// rate posts the request and copies the answer to stdout. It returns the
// HTTP status; a refusal by upsproxy is reported with its error code.
func rate(ctx context.Context, client *http.Client, target string, o options, stdout, stderr io.Writer) (int, error) {
	body, err := os.Open(o.bodyFile)
	if err != nil {
		return 0, fmt.Errorf("read the request body: %w", err)
	}
	defer body.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, body)
	if err != nil {
		return 0, fmt.Errorf("build the request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if o.carrier != "" {
		req.Header.Set("X-Upsproxy-Carrier", o.carrier)
	}
	if o.mode == "base" && o.user != "" {
		// net/http sends Proxy-Authorization only to a proxy; in base-URL
		// mode upsproxy is the server, so the header is set by hand.
		cred := base64.StdEncoding.EncodeToString([]byte(o.user + ":" + o.password))
		req.Header.Set("Proxy-Authorization", "Basic "+cred)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("POST %s: %w", target, err)
	}
	defer resp.Body.Close()
	if code := resp.Header.Get("X-Upsproxy-Error"); code != "" {
		fmt.Fprintf(stderr, "upsproxy refused the call: %s (HTTP %d)\n", code, resp.StatusCode)
	} else if resp.StatusCode >= 300 {
		fmt.Fprintf(stderr, "UPS answered HTTP %d\n", resp.StatusCode)
	}
	if _, err := io.Copy(stdout, resp.Body); err != nil {
		return resp.StatusCode, fmt.Errorf("read the answer: %w", err)
	}
	fmt.Fprintln(stdout)
	return resp.StatusCode, nil
}

// envOr returns the environment variable name, or def when it is empty.
func envOr(getenv func(string) string, name, def string) string {
	if v := getenv(name); v != "" {
		return v
	}
	return def
}
