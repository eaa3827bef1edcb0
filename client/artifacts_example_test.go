package client_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/client"
	"github.com/zof-ai/zof-ci/internal/clienttest"
)

// ExampleClient_ListArtifacts reads the evidence zof serve kept for a failed
// step: the list, then one artifact's content.
func ExampleClient_ListArtifacts() {
	srv, stop := exampleServer()
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
		Cases:       []api.Case{{ID: "smoke", Steps: []api.Step{{Name: "boom", Run: &api.Command{Command: "echo boom; exit 1"}}}}},
		Selection:   api.Selection{Scope: "all", Effective: "all"},
	}
	run, _, err := c.Create(ctx, req, "")
	if err != nil {
		log.Fatal(err)
	}
	for !run.Status.Terminal() {
		time.Sleep(20 * time.Millisecond) // Events follows a run live; polling keeps the example short
		if run, err = c.Get(ctx, run.ID); err != nil {
			log.Fatal(err)
		}
	}
	list, err := c.ListArtifacts(ctx, run.ID)
	if err != nil {
		log.Fatal(err)
	}
	for _, a := range list {
		fmt.Println(a.Name, a.Kind, a.ContentType)
	}
	content, err := c.GetArtifact(ctx, run.ID, list[0].Name)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%.25q\n", content.Data)
	// Output:
	// 1-smoke-a1-s1-output.txt output text/plain; charset=utf-8
	// "$ echo boom; exit 1\nboom\n"
}
