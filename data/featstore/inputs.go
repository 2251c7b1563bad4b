package featstore

import (
	"fmt"
	"strings"
)

// Inputs fingerprints what an extraction read. A retried or rerun
// extraction resumes a store only when these agree: otherwise its shards
// would mix two datasets, with rows counted against the wrong inputs.
type Inputs struct {
	Input       string `json:"input"`                  // annotation file or folder, as given
	InputSHA256 string `json:"input_sha256,omitempty"` // of the annotation file ("" for a folder)
	Images      string `json:"images"`                 // images root, absolute
	Split       string `json:"split,omitempty"`
	Restval     bool   `json:"restval_as_train,omitempty"`
	Limit       int    `json:"limit,omitempty"`
	Items       int    `json:"items"`        // items of the whole (limited) dataset, before sharding
	ItemsSHA256 string `json:"items_sha256"` // of the item list: ids, image paths or URLs, captions, splits
}

// Diff names what differs between the inputs a store was made from (a)
// and b, or returns nil when they agree. The input path itself may move (a
// new mount) as long as its content does not.
func (a *Inputs) Diff(b *Inputs) []string {
	if a == nil || b == nil {
		return nil
	}
	var d []string
	add := func(what string, x, y any) { d = append(d, fmt.Sprintf("%s %v, now %v", what, x, y)) }
	if a.InputSHA256 != b.InputSHA256 {
		add("input "+b.Input+" sha256", short(a.InputSHA256), short(b.InputSHA256))
	}
	if a.Images != b.Images {
		add("images root", quote(a.Images), quote(b.Images))
	}
	if a.Split != b.Split {
		add("split", quote(a.Split), quote(b.Split))
	}
	if a.Restval != b.Restval {
		add("restval_as_train", a.Restval, b.Restval)
	}
	if a.Limit != b.Limit {
		add("limit", a.Limit, b.Limit)
	}
	if a.Items != b.Items {
		add("items", a.Items, b.Items)
	}
	if len(d) == 0 && a.ItemsSHA256 != b.ItemsSHA256 {
		add("item list (image files or captions changed) sha256", short(a.ItemsSHA256), short(b.ItemsSHA256))
	}
	return d
}

func short(h string) string {
	if h == "" {
		return "(none)"
	}
	return h[:min(12, len(h))]
}

func quote(s string) string { return fmt.Sprintf("%q", s) }

func diffError(dir string, d []string) error {
	return fmt.Errorf("feature store %s holds an interrupted extraction of other inputs (%s); remove it, or rerun with the inputs it was made from",
		dir, strings.Join(d, "; "))
}
