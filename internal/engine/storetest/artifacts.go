package storetest

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
)

// RunArtifacts is the conformance suite of engine.ArtifactStore: open
// returns a new, empty store that implements both interfaces.
func RunArtifacts(t *testing.T, open func(t *testing.T) engine.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s engine.Store, as engine.ArtifactStore)
	}{
		{"PutListGet", testArtifactsPutListGet},
		{"PerRun", testArtifactsPerRun},
		{"CapPerRun", testArtifactsCap},
		{"PutIsIdempotent", testArtifactsIdempotent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			as, ok := s.(engine.ArtifactStore)
			if !ok {
				t.Fatalf("%T does not implement engine.ArtifactStore", s)
			}
			tt.fn(t, s, as)
		})
	}
}

// Artifact is an artifact of member b's step 2, content as given.
func Artifact(kind api.ArtifactKind, attempt int, content string) engine.Artifact {
	return engine.Artifact{Artifact: api.Artifact{
		Name:        api.ArtifactName(1, "b", attempt, 2, kind),
		Member:      "b",
		Step:        2,
		Attempt:     attempt,
		Kind:        kind,
		Size:        int64(len(content)),
		ContentType: "text/plain; charset=utf-8",
	}, Content: []byte(content)}
}

func put(t *testing.T, as engine.ArtifactStore, id string, arts ...engine.Artifact) {
	t.Helper()
	if err := as.PutArtifacts(context.Background(), id, arts); err != nil {
		t.Fatalf("PutArtifacts(%s): %v", id, err)
	}
}

// ListArtifacts is the run's list, failing the test on an error.
func ListArtifacts(t testing.TB, as engine.ArtifactStore, id string) []api.Artifact {
	t.Helper()
	list, err := as.Artifacts(context.Background(), id)
	if err != nil {
		t.Fatalf("Artifacts(%s): %v", id, err)
	}
	return list
}

func testArtifactsPutListGet(t *testing.T, s engine.Store, as engine.ArtifactStore) {
	ctx := context.Background()
	Create(t, s, "t1", "r1")
	if got := ListArtifacts(t, as, "r1"); len(got) != 0 {
		t.Fatalf("a new run lists artifacts: %+v", got)
	}
	req := Artifact(api.ArtifactRequest, 1, "GET /x HTTP/1.1\nAuthorization: ***\n")
	resp := Artifact(api.ArtifactResponse, 1, "HTTP/1.1 500 Internal Server Error\n\n<h1>boom</h1>\n")
	resp.Truncated = true
	out := Artifact(api.ArtifactOutput, 2, "$ false\nexit code 1\n")
	put(t, as, "r1", req, resp)
	put(t, as, "r1", out)
	want := []api.Artifact{req.Artifact, resp.Artifact, out.Artifact}
	if diff := cmp.Diff(want, ListArtifacts(t, as, "r1")); diff != "" {
		t.Fatalf("list (-want +got):\n%s", diff)
	}
	got, err := as.Artifact(ctx, "r1", resp.Name)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(resp, *got); diff != "" {
		t.Fatalf("Artifact (-want +got):\n%s", diff)
	}
	got.Content[0] = 'X' // a copy: the store's is unchanged
	if again, _ := as.Artifact(ctx, "r1", resp.Name); again == nil || again.Content[0] != 'H' {
		t.Fatal("changing a returned artifact changed the stored one")
	}
	if _, err := as.Artifact(ctx, "r1", "no-such.txt"); !errors.Is(err, engine.ErrArtifactNotFound) {
		t.Fatalf("an unknown name: %v, want ErrArtifactNotFound", err)
	}
	if err := as.PutArtifacts(ctx, "nope", []engine.Artifact{req}); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("a put to a missing run: %v, want ErrNotFound", err)
	}
}

func testArtifactsPerRun(t *testing.T, s engine.Store, as engine.ArtifactStore) {
	ctx := context.Background()
	Create(t, s, "t1", "r1")
	Create(t, s, "t2", "r2")
	a := Artifact(api.ArtifactOutput, 1, "one")
	b := Artifact(api.ArtifactOutput, 1, "two") // the same name in another run
	put(t, as, "r1", a)
	put(t, as, "r2", b)
	for id, want := range map[string]string{"r1": "one", "r2": "two"} {
		got, err := as.Artifact(ctx, id, a.Name)
		if err != nil || string(got.Content) != want {
			t.Fatalf("run %s's artifact: %v %v, want %q", id, got, err, want)
		}
		if n := len(ListArtifacts(t, as, id)); n != 1 {
			t.Fatalf("run %s lists %d artifacts, want 1", id, n)
		}
	}
}

func testArtifactsCap(t *testing.T, s engine.Store, as engine.ArtifactStore) {
	ctx := context.Background()
	Create(t, s, "t1", "r1")
	big := strings.Repeat("a", engine.MaxRunArtifactBytes-100)
	first := Artifact(api.ArtifactResponse, 1, big)
	put(t, as, "r1", first)
	// 100 bytes left: the next keeps them and is cut; the one after keeps only the marker.
	second := Artifact(api.ArtifactOutput, 2, strings.Repeat("b", 300))
	third := Artifact(api.ArtifactOutput, 3, "c")
	put(t, as, "r1", second, third)
	list := ListArtifacts(t, as, "r1")
	if len(list) != 3 {
		t.Fatalf("%d artifacts listed, want 3 (a cut one is still listed): %+v", len(list), list)
	}
	if list[0].Truncated || list[0].Size != int64(len(big)) {
		t.Fatalf("the first artifact, within the cap, was changed: %+v", list[0])
	}
	var total int64
	for i, want := range []string{strings.Repeat("b", 100) + engine.ArtifactCapMarker, engine.ArtifactCapMarker} {
		a := list[i+1]
		got, err := as.Artifact(ctx, "r1", a.Name)
		if err != nil {
			t.Fatal(err)
		}
		if !a.Truncated || a.Size != int64(len(want)) || !bytes.Equal(got.Content, []byte(want)) {
			t.Fatalf("artifact %d: %+v with %d bytes, want truncated with %d bytes ending in the cap marker", i+2, a, len(got.Content), len(want))
		}
		total += engine.ContentBytes(a, got.Content)
	}
	if total+int64(len(big)) != engine.MaxRunArtifactBytes {
		t.Fatalf("the run holds %d content bytes, want exactly the cap %d", total+int64(len(big)), engine.MaxRunArtifactBytes)
	}
}

func testArtifactsIdempotent(t *testing.T, s engine.Store, as engine.ArtifactStore) {
	Create(t, s, "t1", "r1")
	a := Artifact(api.ArtifactOutput, 1, "first")
	put(t, as, "r1", a)
	again := a
	again.Content = []byte("second")
	put(t, as, "r1", again)
	list := ListArtifacts(t, as, "r1")
	if len(list) != 1 || list[0].Size != int64(len("first")) {
		t.Fatalf("after putting the same name twice: %+v, want the first kept", list)
	}
}

// ArtifactsKept checks that what RunArtifacts stored in a store is there
// after reopen (a restart): put before, then reopen and read.
func ArtifactsKept(t *testing.T, s engine.Store, reopen func() engine.Store) {
	t.Helper()
	Create(t, s, "t1", "r1")
	a := Artifact(api.ArtifactResponse, 1, "HTTP/1.1 502 Bad Gateway\n\nkept\n")
	put(t, s.(engine.ArtifactStore), "r1", a)
	as := reopen().(engine.ArtifactStore)
	if diff := cmp.Diff([]api.Artifact{a.Artifact}, ListArtifacts(t, as, "r1")); diff != "" {
		t.Fatalf("after a restart (-want +got):\n%s", diff)
	}
	got, err := as.Artifact(context.Background(), "r1", a.Name)
	if err != nil || !bytes.Equal(got.Content, a.Content) {
		t.Fatalf("after a restart: %v %v", got, err)
	}
}

// ArtifactsGoWithRun checks that deleting a run's row (deleteRun, as a
// store's DeleteRun does) deletes its artifacts too, and only its own.
func ArtifactsGoWithRun(t *testing.T, s engine.Store, deleteRun func(id string) error) {
	t.Helper()
	as := s.(engine.ArtifactStore)
	Create(t, s, "t1", "gone")
	Create(t, s, "t1", "kept")
	a := Artifact(api.ArtifactOutput, 1, "evidence")
	put(t, as, "gone", a)
	put(t, as, "kept", a)
	if err := deleteRun("gone"); err != nil {
		t.Fatalf("deleting run gone: %v", err)
	}
	if list, err := as.Artifacts(context.Background(), "gone"); err != nil || len(list) != 0 {
		t.Fatalf("the deleted run's artifacts: %+v %v, want none", list, err)
	}
	if _, err := as.Artifact(context.Background(), "gone", a.Name); !errors.Is(err, engine.ErrArtifactNotFound) {
		t.Fatalf("the deleted run's artifact: %v, want ErrArtifactNotFound", err)
	}
	if n := len(ListArtifacts(t, as, "kept")); n != 1 {
		t.Fatalf("the other run lists %d artifacts, want 1", n)
	}
}
