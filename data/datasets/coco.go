package datasets

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// readKarpathy reads Karpathy's dataset_coco.json (also his Flickr files,
// which lack cocoid and filepath).
func readKarpathy(path string, opt Options) ([]Item, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f struct {
		Images *[]struct {
			Filepath  string          `json:"filepath"`
			Filename  string          `json:"filename"`
			Split     string          `json:"split"`
			CocoID    json.RawMessage `json:"cocoid"`
			Sentences []struct {
				Raw *string `json:"raw"`
			} `json:"sentences"`
		} `json:"images"`
	}
	if err := decodeJSON(path, data, &f); err != nil {
		return nil, err
	}
	if f.Images == nil {
		return nil, fmt.Errorf("%s: no \"images\" array (is this Karpathy's dataset_coco.json?)", path)
	}
	root := imagesRoot(opt, path)
	items := make([]Item, 0, len(*f.Images))
	for i, im := range *f.Images {
		where := fmt.Sprintf("%s: images[%d]", path, i)
		if im.Filename == "" {
			return nil, fmt.Errorf("%s: missing \"filename\"", where)
		}
		split := im.Split
		switch split {
		case "train", "val", "test":
		case "restval":
			if opt.RestvalAsTrain {
				split = "train"
			}
		default:
			return nil, fmt.Errorf("%s (%s): split %q is not train, restval, val or test", where, im.Filename, im.Split)
		}
		id, ok := idString(im.CocoID)
		if !ok {
			id = strings.TrimSuffix(im.Filename, filepath.Ext(im.Filename))
		}
		it := Item{ImageID: id, Path: resolve(root, filepath.Join(im.Filepath, im.Filename)), Split: split}
		for j, s := range im.Sentences {
			if s.Raw == nil {
				return nil, fmt.Errorf("%s.sentences[%d]: missing \"raw\"", where, j)
			}
			it.Captions = append(it.Captions, *s.Raw)
		}
		items = append(items, it)
	}
	return items, nil
}

// readClipCap reads the original repository's train_caption.json: a list of
// {image_id, caption}, several entries per image. Items follow the first
// appearance of each image; images live where parse_coco.py looks for them,
// train2014/COCO_train2014_%012d.jpg, else val2014/COCO_val2014_%012d.jpg.
func readClipCap(path string, opt Options) ([]Item, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var list []struct {
		ImageID json.RawMessage `json:"image_id"`
		Caption *string         `json:"caption"`
	}
	if err := decodeJSON(path, data, &list); err != nil {
		return nil, err
	}
	root := opt.Images
	if root == "" {
		root = filepath.Dir(filepath.Dir(path))
	}
	var items []Item
	index := map[int64]int{}
	for i, e := range list {
		where := fmt.Sprintf("%s: element %d", path, i)
		s, ok := idString(e.ImageID)
		if !ok {
			return nil, fmt.Errorf("%s: missing \"image_id\"", where)
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%s: image_id %s is not a non-negative integer (parse_coco.py formats it with %%012d)", where, s)
		}
		if e.Caption == nil {
			return nil, fmt.Errorf("%s: missing \"caption\"", where)
		}
		k, seen := index[n]
		if !seen {
			p := filepath.Join(root, "train2014", fmt.Sprintf("COCO_train2014_%012d.jpg", n))
			if _, err := os.Stat(p); err != nil {
				p = filepath.Join(root, "val2014", fmt.Sprintf("COCO_val2014_%012d.jpg", n))
			}
			k = len(items)
			index[n] = k
			items = append(items, Item{ImageID: strconv.FormatInt(n, 10), Path: p, Split: defaultSplit(opt, "train")})
		}
		items[k].Captions = append(items[k].Captions, *e.Caption)
	}
	return items, nil
}

func defaultSplit(opt Options, def string) string {
	if opt.Split != "" {
		return opt.Split
	}
	return def
}

var nocapsDomains = map[string]bool{"in-domain": true, "near-domain": true, "out-domain": true}

// readCOCOFormat reads COCO caption annotations (captions_train2014.json and
// the like) or, with nocaps set, nocaps' files, whose images carry a domain
// and whose test split has no annotations. Items follow the images array;
// captions follow the annotations array.
func readCOCOFormat(path string, opt Options, nocaps bool) ([]Item, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f struct {
		Images *[]struct {
			ID       json.RawMessage `json:"id"`
			FileName string          `json:"file_name"`
			Domain   string          `json:"domain"`
			CocoURL  string          `json:"coco_url"`
		} `json:"images"`
		Annotations *[]struct {
			ImageID json.RawMessage `json:"image_id"`
			Caption *string         `json:"caption"`
		} `json:"annotations"`
	}
	if err := decodeJSON(path, data, &f); err != nil {
		return nil, err
	}
	if f.Images == nil {
		return nil, fmt.Errorf("%s: no \"images\" array (is this a COCO-format annotation file?)", path)
	}
	if f.Annotations == nil && !nocaps {
		return nil, fmt.Errorf("%s: no \"annotations\" array (use --dataset nocaps for image-info files without captions)", path)
	}
	split := opt.Split
	if split == "" && nocaps {
		split = "test" // nocaps_test_image_info.json has no captions
		if f.Annotations != nil {
			split = "val"
		}
	}
	root := imagesRoot(opt, path)
	items := make([]Item, 0, len(*f.Images))
	index := map[string]int{}
	for i, im := range *f.Images {
		where := fmt.Sprintf("%s: images[%d]", path, i)
		id, ok := idString(im.ID)
		if !ok {
			return nil, fmt.Errorf("%s: missing \"id\"", where)
		}
		if _, dup := index[id]; dup {
			return nil, fmt.Errorf("%s: image id %s appears twice", where, id)
		}
		if im.FileName == "" {
			return nil, fmt.Errorf("%s (id %s): missing \"file_name\"", where, id)
		}
		it := Item{ImageID: id, Path: resolve(root, im.FileName), Split: split}
		if nocaps {
			if !nocapsDomains[im.Domain] {
				return nil, fmt.Errorf("%s (id %s): domain %q is not in-domain, near-domain or out-domain", where, id, im.Domain)
			}
			it.Domain = im.Domain
			it.URL = im.CocoURL
		}
		index[id] = len(items)
		items = append(items, it)
	}
	if f.Annotations != nil {
		for i, a := range *f.Annotations {
			where := fmt.Sprintf("%s: annotations[%d]", path, i)
			id, ok := idString(a.ImageID)
			if !ok {
				return nil, fmt.Errorf("%s: missing \"image_id\"", where)
			}
			k, ok := index[id]
			if !ok {
				return nil, fmt.Errorf("%s: image_id %s is not in \"images\"", where, id)
			}
			if a.Caption == nil {
				return nil, fmt.Errorf("%s: missing \"caption\"", where)
			}
			items[k].Captions = append(items[k].Captions, *a.Caption)
		}
	}
	return items, nil
}
