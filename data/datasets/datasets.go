// Package datasets reads captioning datasets into one deterministic, ordered
// list of images with their captions: COCO Karpathy splits, the original
// ClipCap train_caption.json, COCO-format annotations, nocaps, Conceptual
// Captions TSV, a folder of images and JSONL. It also downloads the images
// of URL-based datasets (Conceptual Captions) politely and resumably.
//
// The order is a contract: `clipcap extract --shard K/N` takes the items
// whose index i has i % N == K, and a merge restores the same order, so the
// same file must always give the same list.
package datasets

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Item is one image and its captions.
type Item struct {
	ImageID  string
	Path     string // local image file ("" when only a URL is known)
	URL      string // remote image, for datasets that name URLs
	Captions []string
	Split    string
	Domain   string // nocaps: in-domain, near-domain or out-domain
}

// Options adjust how a dataset is read.
type Options struct {
	// Images is the root that relative image paths resolve against and
	// where URL images are (or will be) downloaded. Default: the input's
	// directory (for train_caption.json, its parent's parent, as the
	// original parse_coco.py expects annotations/train_caption.json next
	// to train2014/ and val2014/).
	Images string
	// Split keeps only the items of that split. Items whose file names no
	// split are labelled with it first, so for those formats it names the
	// split of everything read. "" keeps all items.
	Split string
	// RestvalAsTrain maps Karpathy's "restval" split to "train" (the usual
	// 113k-image training set).
	RestvalAsTrain bool
	// NoAddPeriod keeps Conceptual Captions captions as written. By default
	// they get the trailing period the original's parse_conceptual.py adds
	// (AddPeriod), so a model learns to end captions with the "." stop token.
	NoAddPeriod bool
}

// Formats lists the names Read accepts.
var Formats = []string{"coco", "clipcap", "coco-format", "nocaps", "conceptual", "folder", "jsonl"}

// Read reads input in the named format:
//
//	coco         Karpathy dataset_coco.json, or ClipCap's train_caption.json (a JSON array)
//	clipcap      ClipCap's train_caption.json
//	coco-format  {"images":[{id,file_name}], "annotations":[{image_id,caption}]}
//	nocaps       COCO format with images[].domain; captions optional (test split)
//	conceptual   Conceptual Captions TSV: caption<TAB>url per line, no header
//	folder       a directory of images (recursive), optional sidecar .txt captions
//	jsonl        one {"image", "caption" | "captions"} object per line
func Read(format, input string, opt Options) ([]Item, error) {
	var items []Item
	var err error
	switch format {
	case "coco":
		var clipcap bool
		clipcap, err = isJSONArray(input)
		if err != nil {
			return nil, err
		}
		if clipcap {
			items, err = readClipCap(input, opt)
		} else {
			items, err = readKarpathy(input, opt)
		}
	case "clipcap":
		items, err = readClipCap(input, opt)
	case "coco-format":
		items, err = readCOCOFormat(input, opt, false)
	case "nocaps":
		items, err = readCOCOFormat(input, opt, true)
	case "conceptual":
		items, err = readConceptual(input, opt)
	case "folder":
		items, err = readFolder(input, opt)
	case "jsonl":
		items, err = readJSONL(input, opt)
	default:
		return nil, fmt.Errorf("unknown dataset format %q; known: %s", format, strings.Join(Formats, ", "))
	}
	if err != nil {
		return nil, err
	}
	return filterSplit(items, opt.Split), nil
}

// filterSplit labels split-less items with split, then keeps that split.
func filterSplit(items []Item, split string) []Item {
	if split == "" {
		return items
	}
	out := items[:0]
	for _, it := range items {
		if it.Split == "" {
			it.Split = split
		}
		if it.Split == split {
			out = append(out, it)
		}
	}
	return out
}

// Splits counts items per split, sorted by name, for summaries.
func Splits(items []Item) []string {
	n := map[string]int{}
	for _, it := range items {
		n[it.Split]++
	}
	var out []string
	for s, c := range n {
		if s == "" {
			s = "(none)"
		}
		out = append(out, fmt.Sprintf("%s=%d", s, c))
	}
	sort.Strings(out)
	return out
}

// ImageFile is where a URL image with the given numeric id is cached under
// dir: 10,000 files per subdirectory, so millions of images stay listable.
func ImageFile(dir string, id int) string {
	return filepath.Join(dir, fmt.Sprintf("%04d", id/10000), fmt.Sprintf("%09d", id))
}

func isJSONArray(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	buf := make([]byte, 512)
	n, _ := f.Read(buf)
	b := bytes.TrimLeft(buf[:n], " \t\r\n\xef\xbb\xbf")
	if len(b) == 0 {
		return false, fmt.Errorf("%s: empty file", path)
	}
	return b[0] == '[', nil
}

// decodeJSON unmarshals a whole file, turning decoder offsets into
// line:column so a malformed file is easy to fix.
func decodeJSON(path string, data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	err := dec.Decode(v)
	if err == nil {
		return nil
	}
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		l, c := lineCol(data, se.Offset)
		return fmt.Errorf("%s:%d:%d: invalid JSON: %v", path, l, c, se)
	case errors.As(err, &te):
		l, c := lineCol(data, te.Offset)
		return fmt.Errorf("%s:%d:%d: field %q is a JSON %s, want %v", path, l, c, te.Field, te.Value, te.Type)
	}
	return fmt.Errorf("%s: %w", path, err)
}

func lineCol(data []byte, off int64) (int, int) {
	off = min(max(off, 0), int64(len(data)))
	before := data[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := int(off) - bytes.LastIndexByte(before, '\n')
	return line, col
}

// idString turns a JSON id (number or string) into its text.
func idString(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", false
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil || s == "" {
			return "", false
		}
		return s, true
	}
	var n json.Number
	if json.Unmarshal(raw, &n) != nil {
		return "", false
	}
	return n.String(), true
}

func resolve(root, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(root, filepath.FromSlash(p))
}

func imagesRoot(opt Options, input string) string {
	if opt.Images != "" {
		return opt.Images
	}
	return filepath.Dir(input)
}
