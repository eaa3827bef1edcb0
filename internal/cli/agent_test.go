package cli

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/zof-ai/zof-ci/internal/exitcode"
)

// TestAgentOptions: flags win over the environment (ZOF_SERVER,
// ZOF_AGENT_TOKEN, ZOF_AGENT_NAME, ZOF_AGENT_LABELS), which wins over the
// defaults; ZOF_TOKEN, a user's token, is never taken for the agent token.
func TestAgentOptions(t *testing.T) {
	env := Env{"ZOF_SERVER": "http://env:8080", "ZOF_AGENT_TOKEN": "env-token", "ZOF_AGENT_NAME": "env-name", "ZOF_AGENT_LABELS": "zone=a", "ZOF_AGENT_STATE": "/var/lib/env"}
	tests := []struct {
		name string
		env  Env
		args []string
		want agentOptions
	}{
		{"environment", env, nil, agentOptions{Server: "http://env:8080", Token: "env-token", Name: "env-name", Labels: map[string]string{"zone": "a"}, Concurrency: 1, DrainGrace: time.Minute, Dir: ".", State: "/var/lib/env"}},
		{"flags win", env, []string{"--server", "https://flag", "--token", "flag-token", "--name", "n1", "--labels", "region=eu, zone=b", "--concurrency", "4", "--drain-grace", "5s", "--dir", "/tmp", "--state", "/var/lib/flag"},
			agentOptions{Server: "https://flag", Token: "flag-token", Name: "n1", Labels: map[string]string{"region": "eu", "zone": "b"}, Concurrency: 4, DrainGrace: 5 * time.Second, Dir: "/tmp", State: "/var/lib/flag"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := capture(t, newCmdAgent, tt.env, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, *got, ignoreStreams); d != "" {
				t.Errorf("options (-want +got):\n%s", d)
			}
		})
	}
}

// TestAgentOptionErrors: every bad option is a usage error (64) saying what to give.
func TestAgentOptionErrors(t *testing.T) {
	base := Env{"ZOF_SERVER": "http://s", "ZOF_AGENT_TOKEN": "t"}
	tests := []struct {
		name string
		env  Env
		args []string
		want string
	}{
		{"no server", Env{"ZOF_AGENT_TOKEN": "t"}, nil, "no server: give --server URL or set ZOF_SERVER"},
		{"user token is not the agent's", Env{"ZOF_SERVER": "http://s", "ZOF_TOKEN": "user"}, nil, "no agent token: give --token or set ZOF_AGENT_TOKEN"},
		{"server with credentials", base, []string{"--server", "http://u:p@s"}, "without credentials or query"},
		{"server not http", base, []string{"--server", "ftp://s"}, "give the zof serve URL"},
		{"concurrency", base, []string{"--concurrency", "0"}, "--concurrency 0: give at least 1"},
		{"drain grace", base, []string{"--drain-grace", "0s"}, "--drain-grace 0s"},
		{"labels", base, []string{"--labels", "region"}, `--labels: "region" is not k=v`},
		{"labels twice", base, []string{"--labels", "a=1,a=2"}, "--labels: a given twice"},
		{"argument", base, []string{"extra"}, "takes only flags"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := capture(t, newCmdAgent, tt.env, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) || exitcode.Of(err) != exitcode.Usage {
				t.Errorf("err = %v (code %d), want usage error with %q", err, exitcode.Of(err), tt.want)
			}
		})
	}
}

// TestAgentProxy: the requests to the server honour HTTPS_PROXY, HTTP_PROXY
// and NO_PROXY from the environment zof was given, not the process's.
func TestAgentProxy(t *testing.T) {
	env := Env{"HTTPS_PROXY": "http://proxy.corp:3128", "http_proxy": "http://plain.corp:3128", "NO_PROXY": "direct.example.com"}
	tests := []struct{ url, want string }{
		{"https://zof.example.com/v1/agent/poll", "http://proxy.corp:3128"},
		{"http://zof.example.com/v1/agent/poll", "http://plain.corp:3128"},
		{"https://direct.example.com/v1/agent/poll", ""},
	}
	pf := proxyFunc(env)
	for _, tt := range tests {
		req, _ := http.NewRequest(http.MethodPost, tt.url, nil)
		u, err := pf(req)
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if u != nil {
			got = u.String()
		}
		if got != tt.want {
			t.Errorf("proxy for %s = %q, want %q", tt.url, got, tt.want)
		}
	}
}
