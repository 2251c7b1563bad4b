package extract

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/clipcap/clipcap/data/datasets"
	"github.com/clipcap/clipcap/data/featstore"
)

// fingerprint records what this run reads (all items, before sharding), so
// the store refuses to resume an extraction of other inputs.
func fingerprint(opt Options, all []datasets.Item) (*featstore.Inputs, error) {
	fp := &featstore.Inputs{Input: opt.Input, Split: opt.Split, Restval: opt.RestvalAsTrain, Limit: opt.Limit, Items: len(all)}
	root, err := filepath.Abs(imagesRoot(opt))
	if err != nil {
		return nil, err
	}
	fp.Images = root
	if st, err := os.Stat(opt.Input); err == nil && !st.IsDir() {
		f, err := os.Open(opt.Input)
		if err != nil {
			return nil, err
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", opt.Input, err)
		}
		fp.InputSHA256 = hex.EncodeToString(h.Sum(nil))
	}
	// The item list covers what a folder dataset's input hash cannot: which
	// images and captions there are.
	h := sha256.New()
	enc := json.NewEncoder(h)
	for _, it := range all {
		if err := enc.Encode(it); err != nil {
			return nil, err
		}
	}
	fp.ItemsSHA256 = hex.EncodeToString(h.Sum(nil))
	return fp, nil
}
