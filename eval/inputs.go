package eval

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/clipcap/clipcap/data/featstore"
	"github.com/clipcap/clipcap/eval/metrics"
)

// item is one image to caption.
type item struct {
	ID     metrics.ImageID // as the references name it
	Row    int             // embedding row in the feature store; -1 with --images
	Path   string          // image file with --images
	Domain string          // nocaps domain, "" elsewhere
}

// inputs are the images of the split and their reference captions.
type inputs struct {
	items   []item
	refs    *metrics.Annotations // restricted to items, in reference order
	refFrom string               // where the references came from, for the report
	dataset string               // coco, conceptual or nocaps; "" unknown
	store   *featstore.Store     // with --features
}

// annImage is an annotation file's images[] entry.
type annImage struct {
	ID       *metrics.ImageID `json:"id"`
	FileName string           `json:"file_name"`
	Domain   string           `json:"domain"`
	Split    string           `json:"split"`
}

// readAnnImages reads the images list of a COCO captions file (the
// captions themselves go through metrics.LoadAnnotations).
func readAnnImages(path string) ([]annImage, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f struct {
		Images []annImage `json:"images"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%s: not a COCO captions annotation file: %w", path, err)
	}
	for i, im := range f.Images {
		if im.ID == nil {
			return nil, fmt.Errorf("%s: images[%d] has no id", path, i)
		}
	}
	return f.Images, nil
}

// storeID reads a store's string image id as the toolkit's files would
// hold it: an integer when it is one.
func storeID(s string) metrics.ImageID {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && strconv.FormatInt(n, 10) == s {
		return metrics.IntID(n)
	}
	return metrics.StringID(s)
}

// loadInputs gathers the split's images from the feature store or the
// annotation file, then their references.
func loadInputs(opt Options) (*inputs, error) {
	in := &inputs{}
	var annImgs []annImage
	var ann *metrics.Annotations
	if opt.Annotations != "" {
		var err error
		if ann, err = metrics.LoadAnnotations(opt.Annotations); err != nil {
			return nil, err
		}
		if annImgs, err = readAnnImages(opt.Annotations); err != nil {
			return nil, err
		}
	}
	switch {
	case opt.Features != "":
		if err := in.fromStore(opt); err != nil {
			return nil, err
		}
	case opt.Images != "":
		if ann == nil {
			return nil, fmt.Errorf("eval --images needs --annotations: it lists the images (images[].file_name) and their references")
		}
		if err := in.fromAnnotations(opt, annImgs); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("eval: give --features STORE or --images DIR")
	}
	if opt.Limit > 0 && len(in.items) > opt.Limit {
		in.items = in.items[:opt.Limit]
	}
	// Domains the annotation file knows override none: a store built from
	// nocaps has them already, and a COCO file has none.
	domain := map[string]string{}
	for _, im := range annImgs {
		if im.Domain != "" {
			domain[im.ID.String()] = im.Domain
		}
	}
	for i := range in.items {
		if d, ok := domain[in.items[i].ID.String()]; ok && in.items[i].Domain == "" {
			in.items[i].Domain = d
		}
	}
	for _, it := range in.items {
		if it.Domain != "" {
			in.dataset = "nocaps"
		}
	}
	if ann != nil {
		return in, in.restrictRefs(ann, opt.Annotations, "wrong --split or annotation file?")
	}
	return in, in.restrictRefs(in.refs, in.refFrom, "give --annotations")
}

// fromStore takes the images of the split from a feature store: one per
// image id, in order of first appearance, with references from the store's
// non-empty captions unless an annotation file gives them.
func (in *inputs) fromStore(opt Options) error {
	open := featstore.Open
	if opt.Verify {
		open = featstore.Verify
	}
	st, err := open(opt.Features)
	if err != nil {
		return err
	}
	in.store = st
	in.dataset = datasetName(st.Manifest.Dataset)
	caps := st.Split(opt.Split)
	if len(caps) == 0 {
		return fmt.Errorf("feature store %s has no images in split %q (its splits: %s)", opt.Features, opt.Split, storeSplits(st))
	}
	seen := map[string]bool{}
	refs := &metrics.Annotations{}
	for _, c := range caps {
		id := storeID(c.ImageID)
		if !seen[c.ImageID] {
			seen[c.ImageID] = true
			in.items = append(in.items, item{ID: id, Row: c.Embedding, Domain: c.Domain})
			refs.Images = append(refs.Images, id)
		}
		if c.Caption != "" {
			refs.Captions = append(refs.Captions, metrics.Caption{ImageID: id, Caption: c.Caption})
		}
	}
	in.refs = refs
	in.refFrom = fmt.Sprintf("feature store %s (split %q)", opt.Features, opt.Split)
	return nil
}

func storeSplits(st *featstore.Store) string {
	n := map[string]int{}
	for _, c := range st.Captions {
		n[c.Split]++
	}
	var out []string
	for s, k := range n {
		if s == "" {
			s = "(none)"
		}
		out = append(out, fmt.Sprintf("%s: %d captions", s, k))
	}
	sort.Strings(out)
	if len(out) == 0 {
		return "none, the store is empty"
	}
	return strings.Join(out, ", ")
}

// fromAnnotations lists the images of the annotation file under
// opt.Images. Files whose images carry a "split" keep those of opt.Split;
// plain COCO files have none, and all their images are the split.
func (in *inputs) fromAnnotations(opt Options, imgs []annImage) error {
	if len(imgs) == 0 {
		return fmt.Errorf("%s: no \"images\" list; --images needs images[].id and file_name", opt.Annotations)
	}
	anySplit := false
	for _, im := range imgs {
		anySplit = anySplit || im.Split != ""
	}
	for i, im := range imgs {
		if anySplit && im.Split != opt.Split {
			continue
		}
		if im.FileName == "" {
			return fmt.Errorf("%s: images[%d] (id %s) has no file_name", opt.Annotations, i, im.ID)
		}
		in.items = append(in.items, item{ID: *im.ID, Row: -1, Path: filepath.Join(opt.Images, im.FileName)})
	}
	if len(in.items) == 0 {
		return fmt.Errorf("%s: no images in split %q", opt.Annotations, opt.Split)
	}
	return nil
}

// restrictRefs keeps the references of the captioned images, in their
// source's order, and names every captioned image without any.
func (in *inputs) restrictRefs(ann *metrics.Annotations, from, hint string) error {
	want := map[string]int{}
	for i, it := range in.items {
		want[it.ID.String()] = i
	}
	refs := &metrics.Annotations{}
	has := make([]bool, len(in.items))
	for _, c := range ann.Captions {
		if i, ok := want[c.ImageID.String()]; ok {
			refs.Captions = append(refs.Captions, c)
			has[i] = true
			in.items[i].ID = c.ImageID // the annotation file's form of the id
		}
	}
	for _, id := range ann.Images {
		if _, ok := want[id.String()]; ok {
			refs.Images = append(refs.Images, id)
		}
	}
	var missing []string
	for i, ok := range has {
		if !ok {
			missing = append(missing, in.items[i].ID.String())
		}
	}
	if len(missing) > 0 {
		show := missing[:min(len(missing), 10)]
		return fmt.Errorf("%s: %d of the %d images to caption have no reference captions there (e.g. %s); %s",
			from, len(missing), len(in.items), strings.Join(show, ", "), hint)
	}
	in.refs = refs
	in.refFrom = from
	return nil
}

// datasetName maps a store's dataset label onto the paper's settings.
func datasetName(s string) string {
	s = strings.ToLower(s)
	switch {
	case strings.Contains(s, "nocaps"):
		return "nocaps"
	case strings.Contains(s, "conceptual") || s == "cc3m" || s == "cc":
		return "conceptual"
	case strings.Contains(s, "coco") || s == "clipcap" || s == "karpathy":
		return "coco"
	}
	return ""
}
