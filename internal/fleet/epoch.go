package fleet

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// EpochStore keeps the high-water mark of lease epochs across restarts, so
// every lease a server ever grants has an epoch above every earlier one and
// a write under a lease of a previous process can never match a new one.
type EpochStore interface {
	// Reserve records that epochs up to hi may be handed out and returns
	// the previous high-water mark: the caller may use (prev, hi].
	Reserve(hi func(prev int64) int64) (prev int64, err error)
}

// epochBlock is how many epochs one Reserve makes available: one durable
// write per block keeps a grant off the disk (2,000 grants/s cost one fsync
// every half second at most).
const epochBlock = 1024

// FileEpochs keeps the high-water mark in a file (zof serve: DATA/lease-epoch),
// written to a temporary file, synced and renamed into place.
type FileEpochs struct {
	mu   sync.Mutex
	path string
}

var _ EpochStore = (*FileEpochs)(nil)

// NewFileEpochs keeps the mark in path.
func NewFileEpochs(path string) *FileEpochs { return &FileEpochs{path: path} }

// Reserve implements EpochStore.
func (f *FileEpochs) Reserve(hi func(prev int64) int64) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var prev int64
	b, err := os.ReadFile(f.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return 0, fmt.Errorf("reading the lease epoch mark %s: %w", f.path, err)
	default:
		prev, err = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil || prev < 0 {
			return 0, fmt.Errorf("the lease epoch mark %s is corrupt (%q); it must hold one non-negative integer: restore it, or write a number above every epoch ever granted", f.path, b)
		}
	}
	next := hi(prev)
	tmp, err := os.CreateTemp(filepath.Dir(f.path), ".lease-epoch-*")
	if err != nil {
		return 0, fmt.Errorf("writing the lease epoch mark: %w; check the data directory is writable", err)
	}
	defer os.Remove(tmp.Name())
	if _, err = fmt.Fprintf(tmp, "%d\n", next); err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), f.path)
	}
	if err != nil {
		return 0, fmt.Errorf("writing the lease epoch mark %s: %w; check the data directory is writable", f.path, err)
	}
	return prev, nil
}

// MemEpochs keeps the mark in memory (tests, and a fleet that lives as long
// as its process).
type MemEpochs struct {
	mu sync.Mutex
	hi int64
}

var _ EpochStore = (*MemEpochs)(nil)

// Reserve implements EpochStore.
func (m *MemEpochs) Reserve(hi func(prev int64) int64) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	prev := m.hi
	m.hi = hi(prev)
	return prev, nil
}
