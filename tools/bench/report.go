package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"image/color"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// report prints one table of every result, each with its ratio to the
// anchor of its row, and writes it as Markdown and the WAN chart as PNG.
func report(args []string) error {
	fs := flag.NewFlagSet("report", flag.ExitOnError)
	in := fs.String("in", "", "results (JSON lines) of wan, mitm and scale")
	nginx := fs.String("nginx", "", "results of scripts/bench-vs-nginx.sh (RESULTS_OUT)")
	nginxLoad := fs.String("nginx-load", "", "load average during the throughput run")
	png := fs.String("png", "", "write the WAN latency chart here")
	md := fs.String("md", "", "write the table as Markdown here")
	_ = fs.Parse(args)

	var rs []result
	if *in != "" {
		f, err := os.Open(*in)
		if err != nil {
			return err
		}
		dec := json.NewDecoder(f)
		for {
			var r result
			if err := dec.Decode(&r); err == io.EOF {
				break
			} else if err != nil {
				f.Close()
				return fmt.Errorf("%s: %w", *in, err)
			}
			rs = append(rs, r)
		}
		f.Close()
	}
	if *nginx != "" {
		t, err := readNginx(*nginx, *nginxLoad)
		if err != nil {
			return err
		}
		rs = append(t, rs...)
	}
	rows := tableRows(rs)
	printText(os.Stdout, rows)
	if *md != "" {
		f, err := os.Create(*md)
		if err != nil {
			return err
		}
		printMarkdown(f, rows)
		if err := f.Close(); err != nil {
			return err
		}
	}
	if *png != "" {
		if err := wanChart(rs, *png); err != nil {
			return err
		}
	}
	return nil
}

// readNginx reads "name rps p50us p99us cpu-us calls" lines (several
// rounds: medians).
func readNginx(path, load string) ([]result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	type acc struct{ rps, p50, p99, cpu []float64 }
	by := map[string]*acc{}
	var order []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) < 5 {
			continue
		}
		a := by[fl[0]]
		if a == nil {
			a = &acc{}
			by[fl[0]] = a
			order = append(order, fl[0])
		}
		num := func(s string) float64 { v, _ := strconv.ParseFloat(s, 64); return v }
		a.rps = append(a.rps, num(fl[1]))
		a.p50 = append(a.p50, num(fl[2]))
		a.p99 = append(a.p99, num(fl[3]))
		a.cpu = append(a.cpu, num(fl[4]))
	}
	names := map[string]string{
		"upstream": "static upstream alone (ceiling)", "nginx": "nginx injecting a header",
		"goproxy-bare": "bare goproxy injecting a header", "upsproxy-warn": "upsproxy base-URL (log warn)",
		"upsproxy-info": "upsproxy base-URL (log info)", "upsproxy-abs": "upsproxy HTTP forward proxy",
	}
	var out []result
	for _, id := range order {
		a := by[id]
		name := names[id]
		if name == "" {
			name = id
		}
		out = append(out, result{Section: "throughput", ID: id, Name: name, Anchor: "nginx", PerSec: median(a.rps),
			P50ms: median(a.p50) / 1000, P99ms: median(a.p99) / 1000, CPUus: median(a.cpu), Unit: "req/s", Load: load,
			N: len(a.rps), Note: "keep-alive, small JSON POST"})
	}
	return out, sc.Err()
}

type row struct {
	section, name, figures, anchor, ratio, load string
}

func tableRows(rs []result) []row {
	byID := map[string]result{}
	for _, r := range rs {
		byID[r.Section+"/"+r.ID] = r
	}
	var rows []row
	for _, r := range rs {
		a, ok := byID[r.Section+"/"+r.Anchor]
		rw := row{section: r.Section, name: r.Name, load: r.Load}
		if ok {
			rw.anchor = a.Name
		}
		switch r.Section {
		case "wan":
			rw.figures = fmt.Sprintf("p50 %.1f ms, p99 %.1f ms", r.P50ms, r.P99ms)
			if ok && a.P50ms > 0 {
				rw.ratio = fmt.Sprintf("p50 %.2fx, p99 %.2fx", r.P50ms/a.P50ms, r.P99ms/a.P99ms)
			}
		case "mitm":
			rw.figures = fmt.Sprintf("%.0f conn/s, %.0f µs CPU/conn", r.PerSec, r.CPUus)
			if ok && a.PerSec > 0 {
				rw.ratio = fmt.Sprintf("%.2fx conn/s", r.PerSec/a.PerSec)
			}
		case "throughput":
			rw.figures = fmt.Sprintf("%.0f req/s, p50 %.2f ms, %.0f µs CPU/req", r.PerSec, r.P50ms, r.CPUus)
			if ok && a.PerSec > 0 {
				rw.ratio = fmt.Sprintf("%.2fx req/s", r.PerSec/a.PerSec)
			}
		default:
			rw.figures = fmt.Sprintf("%.4g %s", r.Value, r.Unit)
			rw.ratio = r.Note
		}
		if r.ID == r.Anchor {
			rw.ratio = "anchor"
			rw.anchor = ""
		}
		rows = append(rows, rw)
	}
	return rows
}

func printText(w io.Writer, rows []row) {
	widths := [5]int{}
	cells := func(r row) [5]string { return [5]string{r.section, r.name, r.figures, r.ratio, r.load} }
	head := row{section: "section", name: "target", figures: "figures", ratio: "ratio to anchor / note", load: "load avg"}
	all := append([]row{head}, rows...)
	for _, r := range all {
		for i, c := range cells(r) {
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	for i, r := range all {
		c := cells(r)
		for j := range c {
			fmt.Fprintf(w, "%-*s  ", widths[j], c[j])
		}
		fmt.Fprintln(w)
		if i == 0 {
			for j := range c {
				fmt.Fprintf(w, "%s  ", strings.Repeat("-", widths[j]))
			}
			fmt.Fprintln(w)
		}
	}
}

func printMarkdown(w io.Writer, rows []row) {
	fmt.Fprintln(w, "| section | target | figures | ratio to anchor | anchor | load avg |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", r.section, r.name, r.figures, r.ratio, r.anchor, r.load)
	}
}

// wanChart draws p50 and p99 of the WAN targets side by side.
func wanChart(rs []result, path string) error {
	var wan []result
	for _, r := range rs {
		if r.Section == "wan" {
			wan = append(wan, r)
		}
	}
	if len(wan) == 0 {
		return nil
	}
	short := map[string]string{
		"direct-newconn": "direct,\nnew conn", "proxy-base-newconn": "upsproxy base-URL,\nnew conn",
		"proxy-mitm-newconn": "upsproxy HTTPS proxy,\nnew CONNECT+TLS", "direct-keepalive": "direct,\nkeep-alive",
		"proxy-base-keepalive": "upsproxy base-URL,\nkeep-alive", "proxy-first-call": "upsproxy base-URL,\nfirst call after start",
	}
	p50, p99 := make(plotter.Values, len(wan)), make(plotter.Values, len(wan))
	labels := make([]string, len(wan))
	for i, r := range wan {
		p50[i], p99[i] = r.P50ms, r.P99ms
		labels[i] = short[r.ID]
		if labels[i] == "" {
			labels[i] = r.ID
		}
	}
	p := plot.New()
	p.Title.Text = "1 KB Rate call, " + wan[0].Note
	p.Y.Label.Text = "latency (ms)"
	w := vg.Points(18)
	b50, err := plotter.NewBarChart(p50, w)
	if err != nil {
		return err
	}
	b50.Color = color.RGBA{R: 66, G: 133, B: 244, A: 255}
	b50.Offset = -w / 2
	b99, err := plotter.NewBarChart(p99, w)
	if err != nil {
		return err
	}
	b99.Color = color.RGBA{R: 219, G: 68, B: 55, A: 255}
	b99.Offset = w / 2
	p.Add(b50, b99, plotter.NewGrid())
	p.Legend.Add("p50", b50)
	p.Legend.Add("p99", b99)
	p.Legend.Top = true
	p.NominalX(labels...)
	p.X.Tick.Label.Font.Size = vg.Points(8)
	return p.Save(9*vg.Inch, 4.5*vg.Inch, path)
}

var _ = sort.Strings
