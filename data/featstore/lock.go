package featstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// LockFile is the lock a writer holds on its store for its whole life, so
// two extractions on one directory (a retried pod, a second terminal) cannot
// delete or overwrite each other's files. The file stays; only the flock on
// it matters, and it dies with its process, so a killed writer leaves no
// stale lock behind.
const LockFile = "lock"

// ErrLocked is wrapped by the error of a writer that found its store in use.
var ErrLocked = errors.New("feature store is in use")

type storeLock struct{ f *os.File }

// lockStore takes the store's exclusive lock without waiting, and records
// who holds it in the lock file so a refused writer can name the holder.
func lockStore(dir string) (*storeLock, error) {
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("feature store %s: lock: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		who := strings.TrimSpace(string(holder))
		if who == "" {
			who = "another process"
		}
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s holds %s (another extract or merge writing %s; wait for it or choose another --out)", ErrLocked, who, path, dir)
		}
		return nil, fmt.Errorf("feature store %s: lock %s: %w", dir, path, err)
	}
	host, _ := os.Hostname()
	// Best effort: the holder line is for the message above only.
	if f.Truncate(0) == nil {
		fmt.Fprintf(f, "pid %d on %s since %s\n", os.Getpid(), host, time.Now().UTC().Format(time.RFC3339))
	}
	return &storeLock{f: f}, nil
}

// release empties the holder line (so finished stores look alike) and
// drops the lock. It is safe to call more than once.
func (l *storeLock) release() {
	if l == nil || l.f == nil {
		return
	}
	l.f.Truncate(0)
	l.f.Close() // closing the descriptor drops the flock
	l.f = nil
}

// removeTemps deletes the temporaries of writes a killed writer left
// behind (".<name>.tmp-*"); only the lock holder may, as a live writer's
// temporaries look the same.
func removeTemps(dir string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if n := e.Name(); strings.HasPrefix(n, ".") && strings.Contains(n, ".tmp-") {
			os.Remove(filepath.Join(dir, n))
		}
	}
}
