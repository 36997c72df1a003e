//go:build !unix

package proxy

import "net"

// peeker cannot peek without blocking here (canPeek is false, and
// upstreamClient sends nothing itself).
type peeker struct{}

func newPeeker(net.Conn) *peeker { return &peeker{} }

func (*peeker) peek() peekResult { return peekData }
