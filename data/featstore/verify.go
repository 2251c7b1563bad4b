package featstore

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/clipcap/clipcap/internal/tensorfile"
)

// VerifiedFile caches the last full check of each shard.
const VerifiedFile = "verified.json"

// verified is one shard's entry: the file's size and mtime when its bytes
// were last found to hash to SHA256.
type verified struct {
	Size    int64  `json:"size"`
	MtimeNS int64  `json:"mtime_ns"`
	SHA256  string `json:"sha256"`
}

// checkShards compares every shard with the sha256 its manifest records.
// Hashing a large store on every open would cost seconds per training run,
// so a shard whose size and mtime still match its last successful check is
// trusted (full forces the hash). A replaced or rewritten file changes its
// mtime; a bit flip in place does not, which is what full is for.
func checkShards(dir string, shards []Shard, full bool) error {
	cachePath := filepath.Join(dir, VerifiedFile)
	cache := map[string]verified{}
	if data, err := os.ReadFile(cachePath); err == nil {
		json.Unmarshal(data, &cache) // a damaged cache only means hashing again
	}
	changed := false
	for _, sh := range shards {
		p := filepath.Join(dir, sh.File)
		st, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("feature store %s: %w", dir, err)
		}
		now := verified{Size: st.Size(), MtimeNS: st.ModTime().UnixNano(), SHA256: sh.SHA256}
		if c, ok := cache[sh.File]; ok && !full && c == now {
			continue
		}
		sum, err := fileSHA256(p)
		if err != nil {
			return err
		}
		if sum != sh.SHA256 {
			return fmt.Errorf("%s: sha256 %s, the manifest records %s (corrupted or replaced; re-extract the store)", p, sum, sh.SHA256)
		}
		cache[sh.File] = now
		changed = true
	}
	if changed {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetIndent("", "  ")
		enc.Encode(cache)
		// Best effort: a read-only store is checked in full every time.
		tensorfile.WriteBytesAtomic(cachePath, buf.Bytes())
	}
	return nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
