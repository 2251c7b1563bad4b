package datasets

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// readConceptual reads a Conceptual Captions TSV (caption<TAB>url, no
// header). The image id is the 0-based row number, which also names the
// downloaded file (ImageFile), so ids survive filtering and sharding.
func readConceptual(path string, opt Options) ([]Item, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	root := imagesRoot(opt, path)
	split := defaultSplit(opt, "train")
	var items []Item
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	blank := 0
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimRight(sc.Text(), "\r")
		if text == "" {
			blank = line
			continue
		}
		if blank != 0 {
			return nil, fmt.Errorf("%s:%d: empty line (rows are numbered by line, so gaps would shift image ids)", path, blank)
		}
		fields := strings.Split(text, "\t")
		if len(fields) != 2 {
			return nil, fmt.Errorf("%s:%d: %d tab-separated fields, want 2 (caption<TAB>url)", path, line, len(fields))
		}
		caption, url := fields[0], strings.TrimSpace(fields[1])
		if strings.TrimSpace(caption) == "" {
			return nil, fmt.Errorf("%s:%d: empty caption", path, line)
		}
		if !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") {
			return nil, fmt.Errorf("%s:%d: %q is not an http(s) URL", path, line, url)
		}
		if !opt.NoAddPeriod {
			caption = AddPeriod(caption)
		}
		row := line - 1
		items = append(items, Item{ImageID: strconv.Itoa(row), URL: url, Path: ImageFile(root, row),
			Captions: []string{caption}, Split: split})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return items, nil
}

// AddPeriod is parse_conceptual.py's add_period: trim surrounding white
// space, then end the caption with "." — appended when missing, and a
// final " ." (a period the captioners spaced off) closed up.
func AddPeriod(caption string) string {
	c := strings.TrimSpace(caption)
	switch {
	case c == "":
		return c
	case !strings.HasSuffix(c, "."):
		return c + "."
	case strings.HasSuffix(c, " ."):
		return c[:len(c)-2] + "."
	}
	return c
}

var imageExts = map[string]bool{".jpg": true, ".jpeg": true, ".png": true, ".gif": true, ".bmp": true, ".webp": true}

// readFolder lists the images under dir (recursively, in lexical order,
// hidden entries skipped). A sidecar file with the same stem and a .txt
// extension holds the image's captions, one per non-empty line. The image id
// is the slash-separated path relative to dir.
func readFolder(dir string, opt Options) ([]Item, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	var items []Item
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() || !imageExts[strings.ToLower(filepath.Ext(p))] {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		it := Item{ImageID: filepath.ToSlash(rel), Path: p, Split: opt.Split}
		side := strings.TrimSuffix(p, filepath.Ext(p)) + ".txt"
		if data, err := os.ReadFile(side); err == nil {
			for _, l := range strings.Split(string(data), "\n") {
				if l = strings.TrimSpace(l); l != "" {
					it.Captions = append(it.Captions, l)
				}
			}
		} else if !os.IsNotExist(err) {
			return err
		}
		items = append(items, it)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("%s: no images (.jpg, .jpeg, .png, .gif, .bmp, .webp)", dir)
	}
	return items, nil
}

// readJSONL reads one object per line: "image" (a path, relative to the
// images root, or an http(s) URL), and "caption" or "captions"; optional
// "image_id", "split" and "domain". Lines naming the same image add captions
// to one item, placed at the image's first appearance.
func readJSONL(path string, opt Options) ([]Item, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	root := imagesRoot(opt, path)
	var items []Item
	index := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var e struct {
			Image    string          `json:"image"`
			Caption  *string         `json:"caption"`
			Captions []string        `json:"captions"`
			ImageID  json.RawMessage `json:"image_id"`
			Split    string          `json:"split"`
			Domain   string          `json:"domain"`
		}
		if err := json.Unmarshal(b, &e); err != nil {
			return nil, fmt.Errorf("%s:%d: %v", path, line, err)
		}
		if e.Image == "" {
			return nil, fmt.Errorf("%s:%d: missing \"image\"", path, line)
		}
		caps := e.Captions
		if e.Caption != nil {
			caps = append([]string{*e.Caption}, caps...)
		}
		id, hasID := idString(e.ImageID)
		k, seen := index[e.Image]
		if !seen {
			if !hasID {
				id = e.Image
			}
			it := Item{ImageID: id, Split: e.Split, Domain: e.Domain}
			if strings.HasPrefix(e.Image, "http://") || strings.HasPrefix(e.Image, "https://") {
				it.URL = e.Image
				it.Path = ImageFile(root, len(items))
			} else {
				it.Path = resolve(root, e.Image)
			}
			k = len(items)
			index[e.Image] = k
			items = append(items, it)
		} else if (hasID && id != items[k].ImageID) || (e.Split != "" && e.Split != items[k].Split) {
			return nil, fmt.Errorf("%s:%d: image %s was given another image_id or split on an earlier line", path, line, e.Image)
		}
		items[k].Captions = append(items[k].Captions, caps...)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("%s: no lines", path)
	}
	return items, nil
}
