package proxy

import (
	"io"
	"net/http"
	"strings"
	"sync"
)

// Origin-form (base-URL mode) and absolute-form (HTTP forward proxy)
// requests are served by net/http's server: ServeHTTP runs forward and
// respond writes its answer. Requests inside CONNECT tunnels are written by
// the tunnel loop (tunnel.go).

// copyBufs holds the buffers response bodies are copied through, as
// httputil.ReverseProxy's BufferPool does (see copyBody).
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

var connectionClose = []string{"close"}

// respond writes resp, forward's answer, to the client: status, headers
// and body as they are (forward already removed what must not pass),
// streaming a body of unknown length with a flush after each write, and
// trailers. Closing resp's body ends the exchange and writes its access
// log line.
func respond(w http.ResponseWriter, resp *http.Response) {
	defer resp.Body.Close()
	x, _ := resp.Body.(*exchange) // nil for the proxy's own answers
	if x != nil && x.body.streaming() {
		// The transport may still be reading the client's body when UPS's
		// answer comes (a fast UPS answers once it has read the last
		// byte, before the transport has seen EOF). By default net/http
		// drains and closes a request body when the handler writes its
		// response; the transport's next read then fails, it closes the
		// upstream connection, and the response body is cut off. Full
		// duplex leaves the body to the transport.
		_ = http.NewResponseController(w).EnableFullDuplex()
	}
	h := w.Header()
	for k, v := range resp.Header {
		// No copy: resp is forward's own and used for nothing else
		// (the trailers below never append in place).
		h[k] = v
	}
	if resp.Close {
		// A refusal that left the request body unread (failClose): the
		// connection cannot carry another request.
		h["Connection"] = connectionClose
	}
	// Trailers UPS announced: declaring them before WriteHeader makes
	// net/http send the body chunked and the trailers after it.
	announced := len(resp.Trailer)
	if announced > 0 {
		keys := make([]string, 0, announced)
		for k := range resp.Trailer {
			keys = append(keys, k)
		}
		h["Trailer"] = []string{strings.Join(keys, ", ")}
	}
	w.WriteHeader(resp.StatusCode)

	flusher, _ := w.(http.Flusher)
	var perWrite http.Flusher
	if streamed(resp) {
		perWrite = flusher
	}
	buf := copyBufs.Get().(*[]byte)
	copyBody(w, resp.Body, *buf, perWrite)
	copyBufs.Put(buf)
	if x != nil && x.readErr {
		// UPS's body broke off. Ending the response normally would
		// hand the client a cut-off body (a label batch, say) that looks
		// complete when it is chunked; net/http's abort closes the
		// connection without the body's end instead, so the client sees
		// an error. The deferred Close still writes the access line.
		panic(http.ErrAbortHandler)
	}

	if len(resp.Trailer) > 0 {
		if flusher != nil {
			// Forces chunked framing even for a body short enough that
			// net/http would otherwise send it with a Content-Length and
			// drop the trailers.
			flusher.Flush()
		}
		for k, vs := range resp.Trailer {
			if announced == len(resp.Trailer) {
				old := h[k]
				h[k] = append(old[:len(old):len(old)], vs...)
				continue
			}
			// Trailers that were not announced (HTTP/2 upstreams, late
			// additions) are sent under net/http's TrailerPrefix.
			for _, v := range vs {
				h.Add(http.TrailerPrefix+k, v)
			}
		}
	}
}

// streamed reports whether resp's body must reach the client write by
// write: its length is unknown (UPS streams it), or it is an event stream.
func streamed(resp *http.Response) bool {
	if resp.ContentLength < 0 {
		return true
	}
	ct := resp.Header["Content-Type"]
	return len(ct) > 0 && strings.HasPrefix(ct[0], "text/event-stream")
}

// copyBody copies src to w through buf until src ends or w fails (the
// client went away), flushing after each write when flusher is set: a
// body of unknown length (or an event stream) is sent as it comes, not
// when the server's buffer fills. Not io.CopyBuffer: that would hand the
// copy to the ResponseWriter's ReadFrom, which takes a fresh 32 KiB buffer
// per body over 512 bytes, unless w were wrapped (one allocation).
func copyBody(w io.Writer, src io.Reader, buf []byte, flusher http.Flusher) {
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
		if rerr != nil {
			return
		}
	}
}
