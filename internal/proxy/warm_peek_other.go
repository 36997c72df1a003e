//go:build !unix

package proxy

import "net"

// canPeek: peekIdle cannot tell an idle socket from a closed one here,
// so upstreamClient leaves every request to http.Transport.
const canPeek = false

// peekIdle cannot peek without blocking here; the caller then reads
// through TLS for a moment instead.
func peekIdle(net.Conn) peekResult { return peekData }
