package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/Shopify/toxiproxy/v2/toxics"
	"github.com/rs/zerolog"
)

// handshakeToxic holds the first bytes a new connection sends for one
// round trip. toxiproxy delays data, but the TCP handshake to it completes
// at once on loopback; over a real WAN the client's first bytes reach the
// server one round trip (SYN, SYN-ACK) plus one one-way delay after it
// starts connecting. Holding the first chunk for one round trip before the
// latency toxic adds the one-way delay gives the server exactly that
// timing, for every new connection: the direct clients' and upsproxy's own
// dials to UPS alike.
type handshakeToxic struct {
	// RTT in milliseconds.
	RTT int64 `json:"rtt"`
}

type handshakeState struct{ done bool }

func (t *handshakeToxic) NewState() any { return new(handshakeState) }

func (t *handshakeToxic) Pipe(stub *toxics.ToxicStub) {
	st, _ := stub.State.(*handshakeState)
	for {
		select {
		case <-stub.Interrupt:
			return
		case c := <-stub.Input:
			if c == nil {
				stub.Close()
				return
			}
			if st != nil && !st.done {
				st.done = true
				d := time.Duration(t.RTT)*time.Millisecond - time.Since(c.Timestamp)
				select {
				case <-time.After(d):
				case <-stub.Interrupt:
					stub.Output <- c
					return
				}
				// The next toxic (latency) counts from here.
				c.Timestamp = c.Timestamp.Add(d)
			}
			stub.Output <- c
		}
	}
}

func init() { toxics.Register("tcp_handshake", new(handshakeToxic)) }

// wan is a toxiproxy between the clients and the proxy on one side and
// UPS on the other.
type wan struct {
	proxy *toxiproxy.Proxy
	addr  string
}

// startWAN listens on a loopback port and forwards to upstream with
// oneWay latency in each direction plus the TCP handshake round trip.
func startWAN(upstream string, oneWay time.Duration) (*wan, error) {
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	p := toxiproxy.NewProxy(srv, "ups", "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		return nil, fmt.Errorf("toxiproxy: %w", err)
	}
	ms := oneWay.Milliseconds()
	add := func(js string) error {
		_, err := p.Toxics.AddToxicJson(strings.NewReader(js))
		return err
	}
	// Order matters: the handshake toxic runs before the latency toxic of
	// the upstream direction.
	toxicsJSON := []string{
		mustJSON(map[string]any{"name": "syn", "type": "tcp_handshake", "stream": "upstream", "toxicity": 1, "attributes": map[string]any{"rtt": 2 * ms}}),
		mustJSON(map[string]any{"name": "lat-up", "type": "latency", "stream": "upstream", "toxicity": 1, "attributes": map[string]any{"latency": ms}}),
		mustJSON(map[string]any{"name": "lat-down", "type": "latency", "stream": "downstream", "toxicity": 1, "attributes": map[string]any{"latency": ms}}),
	}
	for _, js := range toxicsJSON {
		if err := add(js); err != nil {
			p.Stop()
			return nil, fmt.Errorf("toxiproxy toxic %s: %w", js, err)
		}
	}
	return &wan{proxy: p, addr: p.Listen}, nil
}

func (w *wan) close() { w.proxy.Stop() }

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
