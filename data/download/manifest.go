package download

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// Record is a file's size and sha256, taken when it was first written.
type Record struct {
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Manifest records what a download produced: the source file it came
// from and the files it left in its directory. Its presence marks the
// directory complete: it is written last, atomically.
type Manifest struct {
	Name   string            `json:"name"`
	Source string            `json:"source,omitempty"` // URL the source file came from
	File   string            `json:"file,omitempty"`   // the source file's name
	Origin *Record           `json:"origin,omitempty"` // the source file as downloaded
	Files  map[string]Record `json:"files"`            // relative to the directory
}

// RecordFile measures a file.
func RecordFile(path string) (Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return Record{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Record{}, err
	}
	sum, err := hashFile(f, sha256.New())
	if err != nil {
		return Record{}, fmt.Errorf("%s: %w", path, err)
	}
	return Record{Size: st.Size(), SHA256: sum}, nil
}

// ErrCorrupt is wrapped by Verify's errors for files that changed.
var ErrCorrupt = errors.New("does not match its recorded size and sha256")

// Verify checks every recorded file of dir: sizes first (cheap, and what a
// truncation changes), then contents.
func (m Manifest) Verify(dir string) error {
	names := make([]string, 0, len(m.Files))
	for n := range m.Files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		st, err := os.Stat(filepath.Join(dir, n))
		if err != nil {
			return fmt.Errorf("%s: %w", n, err)
		}
		if st.Size() != m.Files[n].Size {
			return fmt.Errorf("%s is %d bytes, recorded %d: %w", filepath.Join(dir, n), st.Size(), m.Files[n].Size, ErrCorrupt)
		}
	}
	for _, n := range names {
		r, err := RecordFile(filepath.Join(dir, n))
		if err != nil {
			return err
		}
		if r.SHA256 != m.Files[n].SHA256 {
			return fmt.Errorf("%s has sha256 %s, recorded %s: %w", filepath.Join(dir, n), r.SHA256, m.Files[n].SHA256, ErrCorrupt)
		}
	}
	return nil
}

// ReadManifest reads a manifest file.
func ReadManifest(path string) (Manifest, error) {
	var m Manifest
	data, err := os.ReadFile(path)
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return m, fmt.Errorf("%s: %w", path, err)
	}
	if len(m.Files) == 0 && m.Origin == nil {
		return m, fmt.Errorf("%s: records no files", path)
	}
	return m, nil
}

// WriteManifest writes m to path atomically (temp file, fsync, rename).
func WriteManifest(path string, m Manifest) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}
