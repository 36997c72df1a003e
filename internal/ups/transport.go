package ups

import (
	"bytes"
	"io"
	"net/http"
)

// authTransport adds UPS's client authentication to token requests the way
// UPS's own SDK does: req.SetBasicAuth(id, secret) with raw values (x/oauth2
// would URL-escape them first, golang/oauth2 issue 783). With an empty
// secret (PKCE) it adds no Authorization header.
type authTransport struct {
	base       http.RoundTripper
	id, secret string
	merchantID string
}

// RoundTrip implements http.RoundTripper.
func (t *authTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	// A RoundTripper must not modify the caller's request.
	r := req.Clone(req.Context())
	r.Header.Del("Authorization")
	if t.secret != "" {
		r.SetBasicAuth(t.id, t.secret)
	}
	if t.merchantID != "" {
		r.Header.Set("x-merchant-id", t.merchantID)
	}
	r.Header.Set("Accept", "application/json")
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	if c, ok := req.Context().Value(captureKey{}).(*capture); ok {
		c.status = resp.StatusCode
		resp.Body = &captureBody{ReadCloser: resp.Body, c: c}
	}
	return resp, nil
}

// maxCapture bounds the copy of a token response; x/oauth2 reads at most
// 1 MiB and a UPS token response is under 4 KiB.
const maxCapture = 1 << 20

// captureKey is the context key under which Client.retrieve hands the
// transport a capture for the one response of its request.
type captureKey struct{}

// capture keeps the status and the bytes of a token response as x/oauth2
// reads them, so that our own parser (not x/oauth2's) judges UPS's format.
type capture struct {
	status    int
	buf       bytes.Buffer
	truncated bool
}

type captureBody struct {
	io.ReadCloser
	c *capture
}

func (b *captureBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		room := maxCapture - b.c.buf.Len()
		switch {
		case room >= n:
			b.c.buf.Write(p[:n])
		default:
			b.c.buf.Write(p[:max(room, 0)])
			b.c.truncated = true
		}
	}
	return n, err
}
