package config

import (
	"strings"
	"testing"
)

func TestUPSWarmConnectionsAndHTTP2(t *testing.T) {
	cases := []struct {
		src      string
		wantWarm int
		wantH2   bool
		wantErr  string
	}{
		{`ups { warm_connections = 0 }`, 0, false, ""},
		{"ups {\n  warm_connections = 8\n  http2 = true\n}", 8, true, ""},
		{`ups { warm_connections = -1 }`, 0, false, "between 0 (off) and 64, not -1"},
		{`ups { warm_connections = 65 }`, 0, false, "between 0 (off) and 64, not 65"},
		{`ups { http2 = "yes please" }`, 0, false, "a bool is required"},
	}
	for _, c := range cases {
		cfg, _, diags := LoadBytes([]byte(c.src), "c.hcl")
		if c.wantErr != "" {
			if !diags.HasErrors() || !strings.Contains(describe(diags), c.wantErr) {
				t.Errorf("%s: want an error saying %q, got:%s", c.src, c.wantErr, describe(diags))
			}
			continue
		}
		if diags.HasErrors() {
			t.Errorf("%s: unexpected diagnostics:%s", c.src, describe(diags))
			continue
		}
		if cfg.UPS.WarmConnections != c.wantWarm || cfg.UPS.HTTP2 != c.wantH2 {
			t.Errorf("%s: warm_connections=%d http2=%v, want %d %v", c.src, cfg.UPS.WarmConnections, cfg.UPS.HTTP2, c.wantWarm, c.wantH2)
		}
	}
}
