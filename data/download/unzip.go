package download

import (
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// UnzipOptions tunes Unzip.
type UnzipOptions struct {
	// Create opens a file for writing; tests substitute writers that fail
	// (a full disk). Default: os.Create.
	Create func(path string) (io.WriteCloser, error)
	// FreeBytes reports the free space under a directory; default statfs.
	// Returning an error skips the up-front check.
	FreeBytes func(dir string) (uint64, error)
	Logf      func(string, ...any)
}

// Unzip unpacks the archive into dest. Every entry is checked before
// anything is written: names that would land outside dest (absolute
// paths, "..": zip-slip) and symbolic links refuse the whole archive. The
// entries are unpacked into a staging directory inside dest and moved into
// place only when all of them were written and passed their CRC check, so
// a failure (truncated archive, full disk, interruption) leaves dest as it
// was and the staging directory removed.
func Unzip(ctx context.Context, archive, dest string, opt UnzipOptions) (err error) {
	if opt.Create == nil {
		opt.Create = func(p string) (io.WriteCloser, error) { return os.Create(p) }
	}
	if opt.FreeBytes == nil {
		opt.FreeBytes = freeBytes
	}
	zr, err := zip.OpenReader(archive)
	if err != nil {
		size := int64(-1)
		if st, serr := os.Stat(archive); serr == nil {
			size = st.Size()
		}
		return fmt.Errorf("%s (%d bytes) is truncated or not a zip archive: %w", archive, size, err)
	}
	defer zr.Close()
	var need uint64
	for _, f := range zr.File {
		if err := checkEntry(f); err != nil {
			return fmt.Errorf("%s: %w; nothing was unpacked", archive, err)
		}
		need += f.UncompressedSize64
	}
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return err
	}
	if free, ferr := opt.FreeBytes(dest); ferr == nil && free < need {
		return fmt.Errorf("%s unpacks to %s but %s has only %s free; free some space and run again",
			filepath.Base(archive), HumanBytes(int64(need)), dest, HumanBytes(int64(free)))
	}
	staging := filepath.Join(dest, ".unzip-"+filepath.Base(archive))
	if err := os.RemoveAll(staging); err != nil { // a killed earlier run's
		return err
	}
	defer func() {
		if rerr := os.RemoveAll(staging); err == nil && rerr != nil {
			err = rerr
		}
	}()
	if opt.Logf != nil {
		opt.Logf("unpacking %s (%d entries, %s) into %s", filepath.Base(archive), len(zr.File), HumanBytes(int64(need)), dest)
	}
	for _, f := range zr.File {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := unpackEntry(f, staging, opt.Create); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return fmt.Errorf("unpacking %s: %w: it needs %s in %s; free some space and run again", archive, err, HumanBytes(int64(need)), dest)
			}
			return fmt.Errorf("unpacking %s: %w", archive, err)
		}
	}
	entries, err := os.ReadDir(staging)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for _, e := range entries {
		if err := moveInto(filepath.Join(staging, e.Name()), filepath.Join(dest, e.Name())); err != nil {
			return fmt.Errorf("unpacking %s: %w", archive, err)
		}
	}
	return nil
}

// checkEntry refuses entries that could write outside the destination.
func checkEntry(f *zip.File) error {
	name := f.Name
	if strings.ContainsRune(name, 0) || name == "" {
		return fmt.Errorf("entry %q has an invalid name", name)
	}
	if strings.HasPrefix(name, "/") || strings.HasPrefix(name, `\`) || filepath.IsAbs(name) || filepath.VolumeName(name) != "" {
		return fmt.Errorf("entry %q has an absolute path (zip-slip): refusing the archive", name)
	}
	for _, part := range strings.FieldsFunc(name, func(r rune) bool { return r == '/' || r == '\\' }) {
		if part == ".." {
			return fmt.Errorf("entry %q climbs out of the destination with \"..\" (zip-slip): refusing the archive", name)
		}
	}
	if f.Mode()&os.ModeSymlink != 0 {
		return fmt.Errorf("entry %q is a symbolic link: refusing the archive", name)
	}
	if !f.Mode().IsRegular() && !f.Mode().IsDir() {
		return fmt.Errorf("entry %q is not a regular file or directory (%v): refusing the archive", name, f.Mode().Type())
	}
	return nil
}

func unpackEntry(f *zip.File, root string, create func(string) (io.WriteCloser, error)) error {
	path := filepath.Join(root, filepath.FromSlash(strings.ReplaceAll(f.Name, `\`, "/")))
	if f.Mode().IsDir() || strings.HasSuffix(f.Name, "/") {
		return os.MkdirAll(path, 0o755)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	rc, err := f.Open()
	if err != nil {
		return fmt.Errorf("entry %s: %w", f.Name, err)
	}
	defer rc.Close()
	w, err := create(path)
	if err != nil {
		return fmt.Errorf("writing %s: %w", f.Name, err)
	}
	// archive/zip checks the size and CRC-32 when the entry's data ends,
	// so a damaged archive fails here rather than leaving a bad file.
	_, err = io.Copy(w, rc)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", f.Name, err)
	}
	return nil
}

// moveInto renames src to dst, merging into an existing directory rather
// than replacing it (the destination may hold the user's other files).
func moveInto(src, dst string) error {
	sst, err := os.Lstat(src)
	if err != nil {
		return err
	}
	dstat, err := os.Lstat(dst)
	if errors.Is(err, os.ErrNotExist) || (err == nil && !sst.IsDir() && !dstat.IsDir()) {
		return os.Rename(src, dst)
	}
	if err != nil {
		return err
	}
	if sst.IsDir() != dstat.IsDir() {
		return fmt.Errorf("%s exists and is not a %s", dst, map[bool]string{true: "directory", false: "file"}[sst.IsDir()])
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := moveInto(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func freeBytes(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// HumanBytes formats a size as 1.5 GB / 300 MB / 12 kB (powers of 1000).
func HumanBytes(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.1f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.0f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.0f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d B", n)
}
