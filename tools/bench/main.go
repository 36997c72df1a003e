// Command bench is what `make bench` runs (through scripts/bench.sh):
// latency direct vs through upsproxy with a WAN injected by toxiproxy,
// MITM connections per second against a bare goproxy, and the report
// (one table, and a PNG chart) of those and the throughput figures of
// scripts/bench-vs-nginx.sh.
//
//	bench wan    [-latency 20ms] [-requests 100] [-workers 4] -out results.jsonl
//	bench mitm   [-duration 5s] [-workers 16] -out results.jsonl
//	bench report -in results.jsonl [-nginx results.txt] [-png chart.png] [-md table.md]
//
// It is its own Go module so that toxiproxy and gonum/plot stay out of
// upsproxy's go.mod.
package main

import (
	"encoding/json"
	"fmt"
	"os"
)

// result is one target's figures; Anchor names the result of the same
// section it is compared with.
type result struct {
	Section string  `json:"section"`
	ID      string  `json:"id"`
	Name    string  `json:"name"`
	Anchor  string  `json:"anchor"`
	P50ms   float64 `json:"p50_ms,omitempty"`
	P99ms   float64 `json:"p99_ms,omitempty"`
	PerSec  float64 `json:"per_sec,omitempty"`
	CPUus   float64 `json:"cpu_us,omitempty"`
	Value   float64 `json:"value,omitempty"`
	Unit    string  `json:"unit,omitempty"`
	N       int     `json:"n,omitempty"`
	Load    string  `json:"load,omitempty"`
	Note    string  `json:"note,omitempty"`
}

func appendResults(path string, rs []result) error {
	if path == "" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	enc := json.NewEncoder(f)
	for _, r := range rs {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return nil
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: bench wan|mitm|scale|report|bare-goproxy [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "wan":
		err = wanBench(os.Args[2:])
	case "mitm":
		err = mitmBench(os.Args[2:])
	case "scale":
		err = scaleBench(os.Args[2:])
	case "bare-goproxy":
		err = bareGoproxy(os.Args[2:])
	case "report":
		err = report(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
