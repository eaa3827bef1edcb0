package engine

import (
	"encoding/json"
	"fmt"

	"github.com/zof-ai/zof-ci/api"
)

// The JSON forms of a run that the SQL stores keep (docs/design-postgres.md,
// "What is stored"): the head (the run without its members and selection,
// rewritten by every append), and the selection and request (written once).
// One definition, so SQLite and PostgreSQL store and read runs alike.

// EncodeHead is the stored head of run: every field but Members and Selection.
func EncodeHead(run *api.Run) ([]byte, error) {
	head := *run
	head.Members, head.Selection = nil, api.Selection{}
	return json.Marshal(&head)
}

// DecodeHead reads a stored head and selection back into a run without its
// members; ord names the run in errors when the head cannot be read.
func DecodeHead(ord int64, head, selection string) (*api.Run, error) {
	r := &api.Run{}
	if err := json.Unmarshal([]byte(head), r); err != nil {
		return nil, fmt.Errorf("decoding the stored snapshot of the run at order %d: %w", ord, err)
	}
	if err := json.Unmarshal([]byte(selection), &r.Selection); err != nil {
		return nil, fmt.Errorf("decoding the stored selection of run %s: %w", r.ID, err)
	}
	return r, nil
}

// DecodeRecord reads a stored head, request and selection back into a record
// whose run has no members yet (the store adds them).
func DecodeRecord(ord int64, head, request, selection string) (*RunRecord, error) {
	run, err := DecodeHead(ord, head, selection)
	if err != nil {
		return nil, err
	}
	rec := &RunRecord{Order: ord, Run: run, Request: &api.RunRequest{}}
	if err := json.Unmarshal([]byte(request), rec.Request); err != nil {
		return nil, fmt.Errorf("decoding the stored request of run %s: %w", rec.Run.ID, err)
	}
	return rec, nil
}
