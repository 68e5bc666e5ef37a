// Command benchchart draws BenchmarkThroughput results as a chart: MiB/s
// by write size, one line per implementation, from the medians of `go test
// -bench` output. It lives in a module of its own so that wsplex does not
// depend on gonum/plot, and outside the repository's go.work, hence
// GOWORK=off:
//
//	cd cmd/benchchart && GOWORK=off go run . -o ../../docs/benchmarks/throughput.png ../../docs/benchmarks/2026-11-25-run2.txt
package main

import (
	"bufio"
	"flag"
	"fmt"
	"image/color"
	"io"
	"log"
	"math"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// line matches "BenchmarkThroughput/<impl>/<size>-<procs> <n> <ns> ns/op <mbs> MB/s".
var line = regexp.MustCompile(`^BenchmarkThroughput/([^/\s]+)/(\d+)(KiB|MiB)(?:-\d+)?\s+\d+\s+[\d.]+ ns/op\s+([\d.]+) MB/s`)

func main() {
	out := flag.String("o", "throughput.png", "PNG file to write")
	flag.Parse()
	var in io.Reader = os.Stdin
	if flag.NArg() > 0 {
		f, err := os.Open(flag.Arg(0))
		if err != nil {
			log.Fatal(err)
		}
		defer f.Close()
		in = f
	}
	series, err := parse(in)
	if err != nil {
		log.Fatal(err)
	}
	if len(series) == 0 {
		log.Fatal("no BenchmarkThroughput results in the input")
	}
	if err := draw1(series, *out); err != nil {
		log.Fatal(err)
	}
	fmt.Println("wrote", *out)
}

// parse returns, per implementation, the MB/s samples for each size in bytes.
func parse(r io.Reader) (map[string]map[int][]float64, error) {
	series := map[string]map[int][]float64{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[2])
		size := n << 10
		if m[3] == "MiB" {
			size = n << 20
		}
		mbs, err := strconv.ParseFloat(m[4], 64)
		if err != nil {
			return nil, err
		}
		if series[m[1]] == nil {
			series[m[1]] = map[int][]float64{}
		}
		// go test's MB/s is 1e6 bytes per second; the chart says MiB/s.
		series[m[1]][size] = append(series[m[1]][size], mbs*1e6/(1<<20))
	}
	return series, sc.Err()
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func draw1(series map[string]map[int][]float64, path string) error {
	p := plot.New()
	p.Title.Text = "One stream, bulk writes (median MiB/s)"
	p.X.Label.Text = "write size (bytes, log2)"
	p.Y.Label.Text = "MiB/s"
	p.Legend.Top = true
	p.Legend.Left = true
	impls := make([]string, 0, len(series))
	for impl := range series {
		impls = append(impls, impl)
	}
	sort.Strings(impls)
	for i, impl := range impls {
		sizes := make([]int, 0, len(series[impl]))
		for s := range series[impl] {
			sizes = append(sizes, s)
		}
		sort.Ints(sizes)
		pts := make(plotter.XYs, len(sizes))
		for j, s := range sizes {
			pts[j] = plotter.XY{X: math.Log2(float64(s)), Y: median(series[impl][s])}
		}
		l, sc, err := plotter.NewLinePoints(pts)
		if err != nil {
			return err
		}
		c := palette[i%len(palette)]
		l.Color, sc.Color = c, c
		l.Width = vg.Points(1.5)
		sc.Shape = draw.CircleGlyph{}
		p.Add(l, sc)
		p.Legend.Add(impl, l, sc)
	}
	return p.Save(8*vg.Inch, 5*vg.Inch, path)
}

var palette = []color.Color{
	color.RGBA{0x1f, 0x77, 0xb4, 0xff}, color.RGBA{0xff, 0x7f, 0x0e, 0xff},
	color.RGBA{0x2c, 0xa0, 0x2c, 0xff}, color.RGBA{0xd6, 0x27, 0x28, 0xff},
	color.RGBA{0x94, 0x67, 0xbd, 0xff}, color.RGBA{0x8c, 0x56, 0x4b, 0xff},
	color.RGBA{0xe3, 0x77, 0xc2, 0xff}, color.RGBA{0x7f, 0x7f, 0x7f, 0xff},
}
