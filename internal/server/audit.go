package server

import (
	"encoding/json"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/zof-ai/zof-ci/internal/server/config"
)

// AuditEntry is one line of the audit log: one mutating call (create,
// replay, cancel, rerun), refused ones included, with who made it.
type AuditEntry struct {
	Time           time.Time `json:"time"`
	Principal      string    `json:"principal"`
	Tenant         string    `json:"tenant"`
	Role           string    `json:"role"`
	Action         string    `json:"action"` // create | replay | cancel | rerun
	RunID          string    `json:"run_id,omitempty"`
	IdempotencyKey string    `json:"idempotency_key,omitempty"`
	// Result says what happened ("created", "replayed", "cancel requested",
	// "rerun of RUN", or why it was refused); Status is the HTTP status answered.
	Result string `json:"result"`
	Status int    `json:"status"`
}

// auditLog writes entries as JSON lines, one Write per line so lines from
// concurrent requests never interleave.
type auditLog struct {
	mu  sync.Mutex
	w   io.Writer
	log *slog.Logger
	now func() time.Time
}

func newAuditLog(w io.Writer, log *slog.Logger, now func() time.Time) *auditLog {
	return &auditLog{w: w, log: log, now: now}
}

func (a *auditLog) record(p config.Principal, action, runID, key string, status int, result string) {
	e := AuditEntry{Time: a.now().UTC(), Principal: p.Name, Tenant: p.Tenant, Role: p.Role.String(), Action: action,
		RunID: runID, IdempotencyKey: key, Result: result, Status: status}
	if p.Agent() { // an endpoint agent (agents.go): its pool stands for a role
		e.Role = "agent of pool " + p.Pool
	}
	if a.w == nil {
		a.log.Info("audit", "principal", e.Principal, "tenant", e.Tenant, "role", e.Role, "action", e.Action,
			"run_id", e.RunID, "idempotency_key", e.IdempotencyKey, "result", e.Result, "status", e.Status)
		return
	}
	b, err := json.Marshal(e)
	if err != nil { // an AuditEntry always marshals
		a.log.Error("audit entry not encoded", "err", err)
		return
	}
	b = append(b, '\n')
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, err := a.w.Write(b); err != nil {
		// The mutation happened; losing its record must at least be loud.
		a.log.Error("writing the audit log failed", "err", err, "entry", string(b))
	}
}
