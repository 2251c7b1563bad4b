package download

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/clipcap/clipcap/internal/tensorfile"
)

// NewClient is the downloads' HTTP client: bounded connect, TLS handshake
// and idle-connection times, and no overall timeout (a multi-GB file may
// take hours; a stalled one is caught by Options.StallTimeout instead).
func NewClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     true,
	}}
}

// rewind passes reads through, pushing the stall watchdog back on each
// read that brought bytes.
type rewind struct {
	r io.Reader
	t *time.Timer
	d time.Duration
}

func (w *rewind) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	if n > 0 {
		w.t.Reset(w.d)
	}
	return n, err
}

// lockPartial opens and exclusively locks the partial file. A holder that
// gave up may unlink the path between our open and our lock, leaving us a
// locked file nobody else can see; so after locking, the path must still
// name the file we hold, or we start over.
func lockPartial(path string) (*os.File, error) {
	for try := 0; try < 5; try++ {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, err
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			return nil, fmt.Errorf("another download of %s is in progress (lock: %v)", path, err)
		}
		held, err1 := f.Stat()
		now, err2 := os.Stat(path)
		if err1 == nil && err2 == nil && os.SameFile(held, now) {
			return f, nil
		}
		f.Close()
	}
	return nil, fmt.Errorf("%s keeps being replaced by another download", path)
}

// removeIfSame unlinks path if it still names the file st describes.
func removeIfSame(path string, st os.FileInfo) {
	if now, err := os.Stat(path); err == nil && os.SameFile(st, now) {
		os.Remove(path)
	}
}

// SumsFile, in a model directory, records each file's size, mtime and
// sha256 as first downloaded, for files without a pinned hash (a mirror
// that sends no ETag leaves nothing else to check them against).
const SumsFile = "checksums.json"

type recordedSum struct {
	Record
	MtimeNS int64 `json:"mtime_ns"` // when Record was taken: unchanged means not rewritten
}

func readSums(dir string) map[string]recordedSum {
	sums := map[string]recordedSum{}
	if data, err := os.ReadFile(filepath.Join(dir, SumsFile)); err == nil {
		json.Unmarshal(data, &sums) // a damaged record is rebuilt from the files
	}
	return sums
}

// recordSum notes dest's size, mtime and sha256 in its directory's record.
func recordSum(dest, sum string) error {
	st, err := os.Stat(dest)
	if err != nil {
		return err
	}
	dir := filepath.Dir(dest)
	sums := readSums(dir)
	sums[filepath.Base(dest)] = recordedSum{Record{Size: st.Size(), SHA256: sum}, st.ModTime().UnixNano()}
	data, err := json.MarshalIndent(sums, "", "  ")
	if err != nil {
		return err
	}
	return tensorfile.WriteBytesAtomic(filepath.Join(dir, SumsFile), append(data, '\n'))
}

// checkRecorded decides whether an existing file without a pinned hash is
// good: its size must match the record; its sha256 too, unless its mtime
// is unchanged since the record was made (hashing a multi-GB file on every
// start would cost seconds). A file from before records existed is
// hashed and recorded now. A file that fails is removed and fetched again.
func checkRecorded(f File, dest string, fh *os.File) (bool, error) {
	st, err := fh.Stat()
	if err != nil {
		return false, fmt.Errorf("%s: %w", f.Name, err)
	}
	rec, ok := readSums(filepath.Dir(dest))[filepath.Base(dest)]
	if ok && rec.Size == st.Size() && rec.MtimeNS == st.ModTime().UnixNano() {
		return true, nil
	}
	if ok && rec.Size != st.Size() {
		return false, removeBad(dest, fmt.Sprintf("%d bytes, %d recorded at download", st.Size(), rec.Size))
	}
	sum, err := hashFile(fh, sha256.New())
	if err != nil {
		return false, fmt.Errorf("%s: %w", f.Name, err)
	}
	if ok && sum != rec.SHA256 {
		return false, removeBad(dest, fmt.Sprintf("sha256 %s, %s recorded at download", sum, rec.SHA256))
	}
	return true, recordSum(dest, sum)
}

var errChanged = errors.New("changed since it was downloaded")

func removeBad(dest, why string) error {
	if err := os.Remove(dest); err != nil {
		return fmt.Errorf("%s %w (%s) and cannot be removed: %v", dest, errChanged, why, err)
	}
	return nil
}
