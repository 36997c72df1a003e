package proxy

import (
	"bytes"
	"io"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/upsproxy/upsproxy/internal/ups"
)

// Safe replay. UPS can refuse a token the proxy believed valid (revoked
// early, or a newer pair minted elsewhere): 401 with code 250002. For
// operations that change nothing at UPS the proxy then tells the token
// source, gets a fresh token (the broker coordinates the refresh across
// replicas) and sends the request once more. Anything that creates or
// cancels something (Ship, Void, Pickup) or is unknown is never replayed:
// a 401 there may have come after UPS acted, and the client gets UPS's
// answer unchanged.

// replayable reports whether method and path (today's /api/ path) name an
// idempotent operation: Rating (Rate, Shop, Ratetimeintransit,
// Shoptimeintransit), Tracking, Address Validation, Time in Transit
// (Shipping API's /shipments/{version}/transittimes, TimeInTransit.yaml)
// and Locator (/locations/{version}/search/availabilities/{option},
// Locator.yaml).
func replayable(method, path string) bool {
	if method != http.MethodPost && method != http.MethodGet && method != http.MethodHead {
		return false
	}
	rest, ok := strings.CutPrefix(path, "/api/")
	if !ok {
		return false
	}
	api, rest, _ := strings.Cut(rest, "/")
	switch api {
	case "rating", "track", "addressvalidation":
		return rest != ""
	case "locations":
		_, op, _ := strings.Cut(rest, "/")
		return strings.HasPrefix(op, "search/availabilities/")
	case "shipments":
		version, op, _ := strings.Cut(rest, "/")
		return version != "" && op == "transittimes"
	}
	return false
}

// maxPeek bounds the 401 body read to find UPS's error code; UPS's
// envelope is about a hundred bytes.
const maxPeek = 4 << 10

// replay handles UPS's 401 to a replayable request: it returns the
// response the client gets, UPS's 401 itself unless a replay was made.
// body is the whole request body (nil when there was none).
func (p *Proxy) replay(x *exchange, r *route, token string, resp *http.Response, body []byte) (*http.Response, error) {
	peek, err := io.ReadAll(io.LimitReader(resp.Body, maxPeek+1))
	if err != nil || len(peek) > maxPeek {
		return unread(resp, peek), nil
	}
	if d, ok := ups.ParseEnvelope(peek); !ok || d.Code != ups.CodeInvalidAuth {
		return unread(resp, peek), nil
	}
	// The whole 401 body is in peek: the response can be rebuilt from it.
	_ = resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(peek))

	if p.invalidator != nil {
		p.invalidator.Invalidate(r.name, r.env, token)
	}
	fresh, err := p.tokens.Token(x.out.Context(), r.name, r.env)
	if err != nil {
		// Say why no token can be had (an expired refresh token names the
		// login to run), rather than pass on UPS's bare 401.
		return nil, &tokenError{route: r, err: err}
	}
	if fresh == token {
		return resp, nil // nothing newer to try: UPS's answer stands
	}

	again := x.out // a copy: the first request may still be read by the transport
	again.Header = x.out.Header.Clone()
	again.Header[authorizationHeader] = r.authorization(fresh)
	again.Body = http.NoBody
	if len(body) > 0 {
		again.Body = io.NopCloser(bytes.NewReader(body))
	}
	again.ContentLength = int64(len(body))
	resp2, err := p.transport.RoundTrip(&again)
	if err != nil {
		return nil, &upstreamError{route: r, err: err}
	}
	x.replayed = true
	if ce := p.log.Check(zap.InfoLevel, "UPS refused the access token: refreshed it and replayed the request once"); ce != nil {
		ce.Write(zap.String("carrier", r.name), zap.String("environment", string(r.env)),
			zap.String("path", x.path), zap.String("trans_id", x.transID), zap.Int("status", resp2.StatusCode))
	}
	return resp2, nil
}

// unread puts the bytes read from resp's body back in front of the rest.
func unread(resp *http.Response, peek []byte) *http.Response {
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(peek), resp.Body), resp.Body}
	return resp
}

// clientBodyError is a failure to read the client's request body (it hung
// up, or sent a broken chunked body) before anything was sent to UPS.
type clientBodyError struct{ err error }

func (e *clientBodyError) Error() string { return "read request body: " + e.err.Error() }
func (e *clientBodyError) Unwrap() error { return e.err }
