package client_test

import (
	"context"
	"testing"

	"github.com/zof-ai/zof-ci/client"
	"github.com/zof-ai/zof-ci/internal/clienttest"
)

// Against a server without pools: the list is empty, an unknown pool is not found.
func TestListAgentsAgainstServer(t *testing.T) {
	srv := clienttest.Start(t, clienttest.Options{})
	c := newClient(t, srv.URL, clienttest.Token)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	list, err := c.ListAgents(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if list.Agents == nil || len(list.Agents) != 0 {
		t.Errorf("agents = %#v, want an empty list", list.Agents)
	}
	if _, err := c.ListAgents(ctx, "nope"); clientKind(err) != client.KindInvalid {
		t.Errorf("unknown pool: %v (kind %s), want invalid (404)", err, clientKind(err))
	}
}
