package server_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/api"
)

// watcher is one benchmark client: a real HTTP connection reading the stream.
type watcher struct {
	seqs      []int64
	latencies []time.Duration // receive time − event At, for events after the start mark
	ended     bool
	err       error
}

// watch reads a stream with as little client-side work as possible (the
// clients share the process with the server): only seq and at are decoded.
func watch(res *http.Response, after int64, ready chan<- struct{}, w *watcher) {
	defer res.Body.Close()
	rd := bufio.NewReaderSize(res.Body, 16<<10)
	first := true
	for {
		line, err := rd.ReadSlice('\n')
		if err != nil {
			if !w.ended {
				w.err = fmt.Errorf("stream ended without end: %w", err)
			}
			return
		}
		switch {
		case bytes.HasPrefix(line, []byte("event: end")):
			w.ended = true
		case bytes.HasPrefix(line, []byte("data: ")) && !w.ended:
			now := time.Now()
			seq, at, perr := seqAndAt(line)
			if perr != nil {
				w.err = perr
				return
			}
			w.seqs = append(w.seqs, seq)
			if seq > after {
				w.latencies = append(w.latencies, now.Sub(at))
			}
			if first {
				first = false
				ready <- struct{}{}
			}
		}
	}
}

// seqAndAt reads "seq" and "at" from an event's JSON, which always start it:
// {"seq":N,"at":"RFC3339",...}.
func seqAndAt(line []byte) (int64, time.Time, error) {
	i := bytes.Index(line, []byte(`"seq":`))
	j := bytes.Index(line, []byte(`,"at":"`))
	if i < 0 || j < 0 {
		return 0, time.Time{}, fmt.Errorf("unexpected data line %.80q", line)
	}
	var seq int64
	for _, c := range line[i+6 : j] {
		seq = seq*10 + int64(c-'0')
	}
	rest := line[j+7:]
	k := bytes.IndexByte(rest, '"')
	at, err := time.Parse(time.RFC3339Nano, string(rest[:k]))
	return seq, at, err
}

// vmRSS is the process's resident set in bytes (Linux).
func vmRSS() float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb * 1024
		}
	}
	return 0
}

// BenchmarkWatchers1000: one server on loopback, 1,000 concurrent event
// streams (real connections) on one run of 25 steps. Every client must
// receive every event exactly once, in order, then end. Reported: per-event
// delivery latency (event At → client read) p50/p99/max over the events after
// all clients are attached, and the process's RSS and heap at the peak
// (clients and server share the process and its 2 cores here: the server
// alone uses less). Sub-benchmarks set how long each step takes: 10ms is
// about 200 events/s, i.e. 200,000 deliveries/s; 50ms about 40,000/s.
func BenchmarkWatchers1000(b *testing.B) {
	for _, d := range []time.Duration{50 * time.Millisecond, 10 * time.Millisecond} {
		b.Run("step="+d.String(), func(b *testing.B) { benchWatchers(b, 1000, d) })
	}
}

// benchSubscriberBuffer is the engine's SubscriberBuffer in the benchmark:
// what zof serve should set. The engine's default (1024 events per
// subscriber, allocated up front) costs ~300 KB per watcher, ~300 MB of heap
// for 1,000 watchers; 256 still lets a client lag 256 events.
var benchSubscriberBuffer = 256

func benchWatchers(b *testing.B, watchers int, stepTime time.Duration) {
	const steps = 25
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < uint64(4*watchers) {
		lim.Cur = min(lim.Max, uint64(4*watchers+256))
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	h := newHarness(b, harnessOpts{subBuffer: benchSubscriberBuffer})
	h.client.Transport.(*http.Transport).MaxIdleConnsPerHost = watchers
	var all []time.Duration
	var peakRSS, peakHeap float64
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		gate := fmt.Sprintf("go%d", n)
		names := []string{"wait:" + gate}
		for range steps {
			names = append(names, "sleep:"+stepTime.String())
		}
		run := h.create(tokAlphaRunner, manySteps(len(names), names...))
		// Attach every watcher before the run moves.
		ws := make([]*watcher, watchers)
		ready := make(chan struct{}, watchers)
		var wg sync.WaitGroup
		h.waitStatus(tokAlphaRunner, run.ID, api.StatusRunning)
		snap := h.do("GET", "/v1/runs/"+run.ID, tokAlphaRunner, nil).run(b)
		mark := snap.LastSeq + 1 // the step.status running of the gated step may still land
		for i := range ws {
			ws[i] = &watcher{}
			req, _ := http.NewRequest("GET", h.url+"/v1/runs/"+run.ID+"/events", nil)
			req.Header.Set("Authorization", "Bearer "+tokAlphaViewer)
			res, err := h.client.Do(req)
			if err != nil {
				b.Fatalf("watcher %d: %v", i, err)
			}
			if res.StatusCode != http.StatusOK {
				b.Fatalf("watcher %d: status %d", i, res.StatusCode)
			}
			wg.Add(1)
			go func() { defer wg.Done(); watch(res, mark, ready, ws[i]) }()
		}
		for range watchers {
			<-ready
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		peakHeap = max(peakHeap, float64(ms.HeapInuse))
		peakRSS = max(peakRSS, vmRSS())
		h.steps.open(gate)
		wg.Wait()
		peakRSS = max(peakRSS, vmRSS())
		events, err := h.eng.Events(context.Background(), "alpha", run.ID, 0)
		if err != nil {
			b.Fatal(err)
		}
		want := seqs(events)
		for i, w := range ws {
			if w.err != nil || !w.ended || !slices.Equal(w.seqs, want) {
				b.Fatalf("watcher %d: err %v ended %v, got %d events, want %d", i, w.err, w.ended, len(w.seqs), len(want))
			}
			all = append(all, w.latencies...)
		}
	}
	b.StopTimer()
	slices.Sort(all)
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[min(len(all)-1, int(float64(len(all))*p))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(pct(1), "max-ms")
	b.ReportMetric(float64(len(all))/float64(b.N), "deliveries/op")
	b.ReportMetric(peakRSS/(1<<20), "RSS-MB")
	b.ReportMetric(peakHeap/(1<<20), "heap-MB")
}
