// The Workload API benchmarks' latency client: open-loop calls at a fixed rate over gRPC on a Unix socket,
// with grpc-go (the transport go-spiffe, Envoy's and most workloads' SPIFFE clients are measured against
// here is grpc-go's) and raw bytes in and out, so the client costs the same for the agent and for the echo
// baseline. A Go client keeps its own garbage collection out of the measured tail: grpc-js clients pause for
// 3-10 ms scavenges under this load, which an open-loop measurement counts as server latency.
//
// Usage: latency-client -socket PATH -method /Service/Method [-kind stream|unary] [-req HEX] -rate N
//
//	[-duration 3s] [-clients 100] [-new-connection]
//
// or, closed loop, -concurrency N instead of -rate: N callers, each calling again as soon as its call ends,
// each on its own connection (or a new connection per call with -new-connection), for -duration.
//
// Prints one JSON object: latency percentiles in ms, counted from each call's scheduled start
// (no coordinated omission; in the closed loop from the call's start), the number of failed calls, and in
// the closed loop the calls per second.
package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

// rawCodec passes message bytes through: requests are given encoded, responses are only counted.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error)   { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(b []byte, v any) error { *(v.(*[]byte)) = b; return nil }
func (rawCodec) Name() string                    { return "raw" }

type result struct {
	Calls  int     `json:"calls"`
	Errors int64   `json:"errors"`
	P50    float64 `json:"p50"`
	P90    float64 `json:"p90"`
	P99    float64 `json:"p99"`
	Max    float64 `json:"max"`
	// FirstError describes one failed call, if any
	FirstError string `json:"firstError,omitempty"`
	// PerSecond is the closed loop's rate: completed calls per second
	PerSecond float64 `json:"perSecond,omitempty"`
}

func main() {
	socket := flag.String("socket", "", "Unix socket path")
	method := flag.String("method", "", "full method name, e.g. /SpiffeWorkloadAPI/FetchX509SVID")
	kind := flag.String("kind", "stream", "stream: first message of a server stream; unary: the response")
	reqHex := flag.String("req", "", "the request message, hex-encoded protobuf")
	rate := flag.Float64("rate", 0, "calls per second")
	duration := flag.Duration("duration", 3*time.Second, "how long to send calls")
	clients := flag.Int("clients", 100, "connected clients the calls go round-robin over")
	newConnection := flag.Bool("new-connection", false, "each call opens and closes its own connection")
	concurrency := flag.Int("concurrency", 0, "closed loop: this many callers instead of a fixed rate")
	flag.Parse()
	req, err := hex.DecodeString(*reqHex)
	if *socket == "" || *method == "" || (*rate <= 0) == (*concurrency <= 0) || err != nil || (*kind != "stream" && *kind != "unary") {
		fmt.Fprintln(os.Stderr, "usage: latency-client -socket PATH -method /Service/Method [-kind stream|unary] [-req HEX] -rate N | -concurrency N")
		os.Exit(2)
	}
	dial := func() *grpc.ClientConn {
		c, err := grpc.NewClient("unix://"+*socket, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return c
	}
	// the Workload API's required header (the echo server ignores it)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "workload.spiffe.io", "true")
	streamDesc := &grpc.StreamDesc{ServerStreams: true}
	call := func(c *grpc.ClientConn) error {
		var out []byte
		if *kind == "unary" {
			return c.Invoke(ctx, *method, &req, &out)
		}
		// the first message of the stream, then cancel (as the grpc-js load generator does)
		streamCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		s, err := c.NewStream(streamCtx, streamDesc, *method)
		if err == nil {
			err = s.SendMsg(&req)
		}
		if err == nil {
			err = s.CloseSend()
		}
		if err == nil {
			err = s.RecvMsg(&out)
		}
		return err
	}

	if *concurrency > 0 {
		closedLoop(dial, call, *concurrency, *duration, *newConnection)
		return
	}

	var conns []*grpc.ClientConn
	if !*newConnection {
		conns = make([]*grpc.ClientConn, *clients)
		for i := range conns {
			conns[i] = dial()
		}
		// warm-up: each connection established and used once
		var wg sync.WaitGroup
		for _, c := range conns {
			wg.Add(1)
			go func() { defer wg.Done(); _ = call(c) }()
		}
		wg.Wait()
	}

	total := int(*rate * duration.Seconds())
	if total < 1 {
		total = 1
	}
	interval := time.Duration(float64(time.Second) / *rate)
	latencies := make([]float64, total)
	var errors atomic.Int64
	var firstError atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < total; i++ {
		due := start.Add(time.Duration(i) * interval)
		if wait := time.Until(due); wait > 0 {
			time.Sleep(wait)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if *newConnection {
				c := dial()
				err = call(c)
				c.Close()
			} else {
				err = call(conns[i%len(conns)])
			}
			latencies[i] = float64(time.Since(due).Nanoseconds()) / 1e6
			if err != nil {
				errors.Add(1)
				firstError.CompareAndSwap(nil, err.Error())
			}
		}()
	}
	wg.Wait()
	for _, c := range conns {
		c.Close()
	}
	r := summarize(latencies, errors.Load())
	if e, ok := firstError.Load().(string); ok {
		r.FirstError = e
	}
	_ = json.NewEncoder(os.Stdout).Encode(r)
}

// summarize sorts the latencies and takes nearest-rank percentiles, as bench/stats.ts.
func summarize(latencies []float64, errors int64) result {
	total := len(latencies)
	if total == 0 {
		return result{Errors: errors}
	}
	sort.Float64s(latencies)
	percentile := func(p float64) float64 {
		rank := int(math.Ceil(p/100*float64(total))) - 1
		return latencies[max(0, min(total-1, rank))]
	}
	return result{Calls: total, Errors: errors, P50: percentile(50), P90: percentile(90), P99: percentile(99), Max: latencies[total-1]}
}

// closedLoop runs n callers for d, each on its own connection (or a new one per call), after one warm-up
// call each, and prints the rate and the latencies of the calls.
func closedLoop(dial func() *grpc.ClientConn, call func(*grpc.ClientConn) error, n int, d time.Duration, newConnection bool) {
	conns := make([]*grpc.ClientConn, n)
	if !newConnection {
		var wg sync.WaitGroup
		for i := range conns {
			conns[i] = dial()
			wg.Add(1)
			go func() { defer wg.Done(); _ = call(conns[i]) }()
		}
		wg.Wait()
	}
	perCaller := make([][]float64, n)
	var errors atomic.Int64
	var firstError atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(d)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]float64, 0, 4096)
			for time.Now().Before(end) {
				t0 := time.Now()
				var err error
				if newConnection {
					c := dial()
					err = call(c)
					c.Close()
				} else {
					err = call(conns[i])
				}
				lat = append(lat, float64(time.Since(t0).Nanoseconds())/1e6)
				if err != nil {
					errors.Add(1)
					firstError.CompareAndSwap(nil, err.Error())
				}
			}
			perCaller[i] = lat
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
	var all []float64
	for _, l := range perCaller {
		all = append(all, l...)
	}
	r := summarize(all, errors.Load())
	r.PerSecond = float64(len(all)) / elapsed.Seconds()
	if e, ok := firstError.Load().(string); ok {
		r.FirstError = e
	}
	_ = json.NewEncoder(os.Stdout).Encode(r)
}
