package tensorfile

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"math/big"
	"os"
	"path"
	"strings"
	"syscall"
)

// TorchFile holds the tensors of a torch.save (.pt/.bin/.pth) file or a
// TorchScript archive, under dotted names. Tensor data of uncompressed zip
// entries are views into a read-only memory map, valid until Close.
type TorchFile struct {
	path    string
	script  bool
	names   []string
	tensors map[string]RawTensor
	values  map[string]any
	mapping []byte
}

// OpenTorch reads a file written by torch.save, either the zip format
// (PyTorch >= 1.6) or the legacy pickle stream, or a torch.jit.save
// TorchScript archive. Nested dicts become dotted names
// ({'state_dict': {'w': t}} gives "state_dict.w").
func OpenTorch(path string) (*TorchFile, error) { return openTorch(path, false) }

// OpenTorchScript reads a torch.jit.save archive (e.g. OpenAI's CLIP .pt
// files) and returns the module tree's tensors (parameters, buffers and
// tensor attributes) by dotted name, like module.state_dict() keys.
func OpenTorchScript(path string) (*TorchFile, error) { return openTorch(path, true) }

func openTorch(p string, wantScript bool) (*TorchFile, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("torch: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("torch: %w", err)
	}
	if st.Size() < 4 {
		return nil, fmt.Errorf("torch %s: file is %d bytes, too short", p, st.Size())
	}
	data, err := syscall.Mmap(int(f.Fd()), 0, int(st.Size()), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("torch %s: mmap: %w", p, err)
	}
	tf, err := parseTorch(p, data, wantScript)
	if err != nil {
		syscall.Munmap(data)
		return nil, err
	}
	tf.mapping = data
	return tf, nil
}

// parseTorch reads a torch file's image in memory; the result refers to
// data.
func parseTorch(p string, data []byte, wantScript bool) (*TorchFile, error) {
	tf := &TorchFile{path: p}
	var err error
	switch {
	case bytes.HasPrefix(data, []byte("PK\x03\x04")):
		err = tf.readZip(data, wantScript)
	case wantScript:
		err = fmt.Errorf("not a zip archive, so not a TorchScript file")
	case len(data) > 0 && data[0] == 0x80:
		err = tf.readLegacy(data)
	default:
		err = fmt.Errorf("neither a zip archive nor a pickle stream (tar-based pre-0.4 checkpoints are not supported)")
	}
	if err != nil {
		return nil, fmt.Errorf("torch %s: %w", p, err)
	}
	return tf, nil
}

// readZip reads <root>/data.pkl and resolves storages to <root>/data/<key>.
func (tf *TorchFile) readZip(data []byte, wantScript bool) error {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return fmt.Errorf("zip: %w (truncated or corrupt?)", err)
	}
	if len(zr.File) == 0 {
		return fmt.Errorf("empty zip archive")
	}
	// All records share one top directory, named after the file torch
	// saved to ("archive", or e.g. "ViT-B-32" in CLIP's releases).
	root, _, _ := strings.Cut(zr.File[0].Name, "/")
	files := map[string]*zip.File{}
	for _, zf := range zr.File {
		rest, ok := strings.CutPrefix(zf.Name, root+"/")
		if !ok {
			return fmt.Errorf("zip entry %q is outside the archive directory %q", zf.Name, root)
		}
		files[rest] = zf
	}
	_, hasConst := files["constants.pkl"]
	tf.script = hasConst
	if wantScript && !tf.script {
		return fmt.Errorf("a torch.save archive, not TorchScript (no constants.pkl); use OpenTorch")
	}
	pkl, ok := files["data.pkl"]
	if !ok {
		return fmt.Errorf("no %s/data.pkl in the archive", root)
	}
	pklBytes, err := zipEntryBytes(data, pkl)
	if err != nil {
		return err
	}
	cache := map[string]*storageRef{}
	u := &unpickler{
		name:    root + "/data.pkl",
		data:    pklBytes,
		resolve: torchResolve(tf.script),
		call:    torchCall,
		persistentLoad: func(pid any) (any, error) {
			s, err := storageFromPid(pid, cache)
			if err != nil {
				return nil, err
			}
			if s.data != nil || s.numel == 0 {
				return s, nil
			}
			zf, ok := files[path.Join("data", s.key)]
			if !ok {
				return nil, fmt.Errorf("storage %s: no %s/data/%s in the archive", s.key, root, s.key)
			}
			b, err := zipEntryBytes(data, zf)
			if err != nil {
				return nil, err
			}
			if need := s.numel * int64(s.dtype.Size()); int64(len(b)) < need {
				return nil, fmt.Errorf("storage %s: %d bytes, need %d for %d %s elements", s.key, len(b), need, s.numel, s.dtype)
			}
			s.data = b
			return s, nil
		},
	}
	obj, err := u.load()
	if err != nil {
		return err
	}
	return tf.collect(obj, cache, len(pklBytes))
}

// zipEntryBytes returns a stored (uncompressed) entry's contents as a view
// into the mapping. torch writes every record stored; a compressed one is
// refused rather than inflated, since a few kilobytes of deflate can expand
// to gigabytes.
func zipEntryBytes(data []byte, zf *zip.File) ([]byte, error) {
	if zf.Method != zip.Store {
		return nil, fmt.Errorf("zip entry %s is compressed (method %d); torch.save stores entries uncompressed, so the archive was repacked: unzip it and re-zip with -0 (store)", zf.Name, zf.Method)
	}
	off, err := zf.DataOffset()
	if err != nil {
		return nil, fmt.Errorf("zip entry %s: %w", zf.Name, err)
	}
	n := int64(zf.UncompressedSize64)
	if off < 0 || n < 0 || off > int64(len(data))-n {
		return nil, fmt.Errorf("zip entry %s: %d bytes at offset %d run past the end of the file (truncated?)", zf.Name, n, off)
	}
	return data[off : off+n : off+n], nil
}

// legacyMagic is the first object of a pre-1.6 torch.save stream.
var legacyMagic = func() *big.Int { b, _ := new(big.Int).SetString("1950a86a20f9469cfc6c", 16); return b }()

// readLegacy reads the non-zip torch.save format: pickled magic number,
// protocol version and sys_info, the object pickle (storages as persistent
// ids), a pickled list of storage keys, then each storage's raw bytes
// prefixed by its int64 element count, in key-list order.
func (tf *TorchFile) readLegacy(data []byte) error {
	pos := 0
	next := func(what string, resolve func(string, string) (any, error), pl func(any) (any, error)) (any, error) {
		u := &unpickler{name: what, data: data, pos: pos, resolve: resolve, call: torchCall, persistentLoad: pl}
		v, err := u.load()
		pos = u.pos
		return v, err
	}
	noGlobals := func(m, n string) (any, error) {
		return nil, fmt.Errorf("refusing to load global %s.%s in a legacy header", m, n)
	}
	magic, err := next("legacy magic", noGlobals, nil)
	if err != nil {
		return err
	}
	if bi, ok := magic.(*big.Int); !ok || bi.Cmp(legacyMagic) != 0 {
		return fmt.Errorf("not a torch.save file (bad legacy magic number %v)", magic)
	}
	proto, err := next("legacy protocol", noGlobals, nil)
	if err != nil {
		return err
	}
	if proto != int64(1001) {
		return fmt.Errorf("unsupported legacy protocol version %v", proto)
	}
	sysInfo, err := next("legacy sys_info", noGlobals, nil)
	if err != nil {
		return err
	}
	if d, ok := sysInfo.(*pyDict); ok {
		if le, ok := d.get("little_endian"); ok && le != true {
			return fmt.Errorf("big-endian checkpoints are not supported")
		}
	}
	cache := map[string]*storageRef{}
	obj, err := next("legacy data", torchResolve(false), func(pid any) (any, error) {
		return storageFromPid(pid, cache)
	})
	if err != nil {
		return err
	}
	keysV, err := next("legacy storage keys", noGlobals, nil)
	if err != nil {
		return err
	}
	keys, ok := keysV.(*pyList)
	if !ok {
		return fmt.Errorf("legacy storage key list is a %T", keysV)
	}
	for _, kv := range keys.items {
		key, err := keyString(kv)
		if err != nil {
			return fmt.Errorf("legacy storage key: %w", err)
		}
		s, ok := cache[key]
		if !ok {
			return fmt.Errorf("legacy storage %s is not referenced by any tensor", key)
		}
		if len(data)-pos < 8 {
			return fmt.Errorf("legacy storage %s: truncated before its size", key)
		}
		n := int64(binary.LittleEndian.Uint64(data[pos:]))
		pos += 8
		es := int64(s.dtype.Size())
		if n < 0 || n > int64(len(data)-pos)/es {
			return fmt.Errorf("legacy storage %s: %d elements of %s run past the end of the file (truncated?)", key, n, s.dtype)
		}
		s.data = data[pos : pos+int(n*es) : pos+int(n*es)]
		pos += int(n * es)
	}
	return tf.collect(obj, cache, len(data))
}

// collect flattens the loaded object and materializes every tensor.
func (tf *TorchFile) collect(obj any, storages map[string]*storageRef, pklLen int) error {
	out := &flatOut{tensors: map[string]*tensorRef{}, values: map[string]any{}}
	if err := newFlattener(out, pklLen).walk(obj, ""); err != nil {
		return err
	}
	budget := newGatherBudget(storages)
	tf.names = out.names
	tf.values = out.values
	tf.tensors = make(map[string]RawTensor, len(out.tensors))
	for _, name := range out.names {
		t, err := out.tensors[name].materialize(budget)
		if err != nil {
			return fmt.Errorf("tensor %q: %w", name, err)
		}
		tf.tensors[name] = t
	}
	return nil
}

// Path returns the file name the reader was opened with.
func (tf *TorchFile) Path() string { return tf.path }

// IsScript reports whether the file is a TorchScript archive.
func (tf *TorchFile) IsScript() bool { return tf.script }

// Names returns the tensor names in file order.
func (tf *TorchFile) Names() []string { return append([]string(nil), tf.names...) }

// Tensor returns the named tensor.
func (tf *TorchFile) Tensor(name string) (RawTensor, error) {
	t, ok := tf.tensors[name]
	if !ok {
		return RawTensor{}, fmt.Errorf("torch %s: no tensor %q", tf.path, name)
	}
	return t, nil
}

// Tensors returns all tensors by name.
func (tf *TorchFile) Tensors() map[string]RawTensor {
	m := make(map[string]RawTensor, len(tf.tensors))
	for k, v := range tf.tensors {
		m[k] = v
	}
	return m
}

// Values returns the non-tensor leaves (ints as int64, floats as float64,
// strings, bools, None as nil) by dotted name, e.g. "epoch".
func (tf *TorchFile) Values() map[string]any {
	m := make(map[string]any, len(tf.values))
	for k, v := range tf.values {
		m[k] = v
	}
	return m
}

// Close releases the memory map; tensors returned earlier become invalid.
func (tf *TorchFile) Close() error {
	if tf.mapping == nil {
		return nil
	}
	err := syscall.Munmap(tf.mapping)
	tf.mapping = nil
	if err != nil {
		return fmt.Errorf("torch %s: munmap: %w", tf.path, err)
	}
	return nil
}
