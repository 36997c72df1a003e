//go:build !unix

package proxy

import "net"

// canPeek: no socket can be looked at without blocking here, so
// upstreamClient leaves every request to http.Transport.
const canPeek = false

// peekIdle cannot peek without blocking here; the caller then reads
// through TLS for a moment instead.
func peekIdle(net.Conn) peekResult { return peekData }

// peeker cannot peek without blocking here (canPeek is false, and
// upstreamClient sends nothing itself).
type peeker struct{}

func newPeeker(net.Conn) *peeker { return &peeker{} }

func (*peeker) peek() peekResult { return peekData }
