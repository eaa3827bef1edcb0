package client_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/client"
	"github.com/zof-ai/zof-ci/internal/clienttest"
)

// Example submits a run to zof serve, follows its live event stream to the
// end, and reads the verdict: what `zof run --server` does, in a few calls.
// A retried create with the same idempotency key returns the same run.
func Example() {
	srv, stop := exampleServer() // a real zof serve on loopback
	defer stop()

	c, err := client.New(srv.URL, clienttest.Token, client.Options{})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	req := &api.RunRequest{
		Project:     "checkout",
		Environment: api.Environment{Name: "local", URL: srv.URL},
		Cases:       []api.Case{{ID: "smoke", Steps: []api.Step{{Name: "true", Run: &api.Command{Command: "true"}}}}},
		Selection:   api.Selection{Scope: "all", Effective: "all"},
	}
	run, _, err := c.Create(ctx, req, "ci-run-42-attempt-1")
	if err != nil {
		log.Fatal(err) // an *client.Error: its Kind says unavailable, unauthorized or invalid
	}
	_, replayed, err := c.Create(ctx, req, "ci-run-42-attempt-1")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("retry replayed the same run:", replayed)

	stream, err := c.Events(ctx, run.ID, 0)
	if err != nil {
		log.Fatal(err)
	}
	defer stream.Close()
	for {
		e, err := stream.Next()
		if err == io.EOF {
			break // the run's terminal event was delivered, then `end`
		}
		if err != nil {
			log.Fatal(err) // a dropped stream: reconnect with c.Events(ctx, id, stream.Last())
		}
		if e.Type == api.EventMemberStatus && e.Status.Terminal() {
			fmt.Println(e.Member, e.Status.Display())
		}
	}
	final, err := c.Get(ctx, run.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("run:", final.Status.Display())
	// Output:
	// retry replayed the same run: true
	// smoke Passed
	// run: Passed
}

// exampleTB lets the example start the test server outside a test.
type exampleTB struct{ cleanups []func() }

func (*exampleTB) Helper()                        {}
func (*exampleTB) Fatalf(format string, a ...any) { log.Fatalf(format, a...) }
func (*exampleTB) Errorf(format string, a ...any) { log.Printf(format, a...) }
func (t *exampleTB) Cleanup(f func())             { t.cleanups = append(t.cleanups, f) }

func exampleServer() (*clienttest.Server, func()) {
	tb := &exampleTB{}
	srv := clienttest.Start(tb, clienttest.Options{RealSteps: true})
	return srv, func() {
		for i := len(tb.cleanups) - 1; i >= 0; i-- {
			tb.cleanups[i]()
		}
	}
}
