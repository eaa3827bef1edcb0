package report

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// WriteFileAtomic writes a report file so a reader (a CI step uploading test
// results) never sees half a file: write to a temporary file beside path,
// sync, then rename over path. Parent directories are created.
func WriteFileAtomic(path string, write func(io.Writer) error) (err error) {
	if path == "" {
		return errors.New("no report path given: pass a file name, e.g. --junit reports/zof.xml")
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create report directory %s: %w (is the path writable?)", dir, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("create report file in %s: %w (is the directory writable?)", dir, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	w := bufio.NewWriter(f)
	if err := write(w); err != nil {
		return fmt.Errorf("write report %s: %w", path, err)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write report %s: %w (disk full?)", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write report %s: %w (disk full?)", path, err)
	}
	// CreateTemp makes the file 0600; a report is meant to be read by other steps.
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("write report %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write report %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("move report into place at %s: %w (is it a directory?)", path, err)
	}
	return nil
}
