package metrics

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"unicode/utf8"
)

// ImageID is a COCO image_id. Files in the wild use JSON integers or
// strings; 123 and "123" name the same image (so results written with
// string ids score against integer annotations), and the original form is
// kept for output.
type ImageID struct {
	key string
	num bool
}

// IntID and StringID build ids.
func IntID(n int64) ImageID     { return ImageID{key: strconv.FormatInt(n, 10), num: true} }
func StringID(s string) ImageID { return ImageID{key: s} }

func (id ImageID) String() string { return id.key }

// MarshalJSON writes the id in the form it was read.
func (id ImageID) MarshalJSON() ([]byte, error) {
	if id.num {
		return []byte(id.key), nil
	}
	return json.Marshal(id.key)
}

// UnmarshalJSON accepts an integer or a string.
func (id *ImageID) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*id = StringID(s)
		return nil
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return fmt.Errorf("image_id %s is neither an integer nor a string", b)
	}
	*id = IntID(n)
	return nil
}

// Caption is one COCO caption record: a result or a reference annotation.
type Caption struct {
	ImageID ImageID `json:"image_id"`
	Caption string  `json:"caption"`
}

// rawCaption detects missing fields, which a plain struct would zero.
type rawCaption struct {
	ImageID *ImageID `json:"image_id"`
	Caption *string  `json:"caption"`
}

// Annotations is a COCO captions file: reference captions and the order of
// its images list.
type Annotations struct {
	Captions []Caption
	// Images lists "images"[].id in file order; empty when the file has none.
	Images []ImageID
}

// LoadResults reads a results file: [{"image_id": ..., "caption": ...}, ...].
func LoadResults(path string) ([]Caption, error) {
	b, err := readUTF8(path)
	if err != nil {
		return nil, err
	}
	var raw []rawCaption
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("%s: not a COCO results file (a JSON array of {image_id, caption}): %w", path, err)
	}
	return checkCaptions(path, "results", raw)
}

// LoadAnnotations reads a COCO captions annotation file:
// {"annotations": [{"image_id", "caption"}, ...], "images": [{"id"}, ...]}.
func LoadAnnotations(path string) (*Annotations, error) {
	b, err := readUTF8(path)
	if err != nil {
		return nil, err
	}
	var raw struct {
		Annotations *[]rawCaption `json:"annotations"`
		Images      []struct {
			ID *ImageID `json:"id"`
		} `json:"images"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("%s: not a COCO captions annotation file: %w", path, err)
	}
	if raw.Annotations == nil {
		return nil, fmt.Errorf("%s: no \"annotations\" array", path)
	}
	caps, err := checkCaptions(path, "annotations", *raw.Annotations)
	if err != nil {
		return nil, err
	}
	a := &Annotations{Captions: caps}
	for i, im := range raw.Images {
		if im.ID == nil {
			return nil, fmt.Errorf("%s: images[%d] has no id", path, i)
		}
		a.Images = append(a.Images, *im.ID)
	}
	return a, nil
}

func checkCaptions(path, what string, raw []rawCaption) ([]Caption, error) {
	out := make([]Caption, len(raw))
	for i, r := range raw {
		if r.ImageID == nil {
			return nil, fmt.Errorf("%s: %s[%d] has no image_id", path, what, i)
		}
		if r.Caption == nil {
			return nil, fmt.Errorf("%s: %s[%d] (image_id %s) has no caption", path, what, i, r.ImageID)
		}
		out[i] = Caption{ImageID: *r.ImageID, Caption: *r.Caption}
	}
	return out, nil
}

// readUTF8 reads a file and rejects invalid UTF-8, which encoding/json would
// otherwise turn silently into U+FFFD and so change the tokens scored.
func readUTF8(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if !utf8.Valid(b) {
		off := 0
		for off < len(b) {
			r, size := utf8.DecodeRune(b[off:])
			if r == utf8.RuneError && size == 1 {
				break
			}
			off += size
		}
		return nil, fmt.Errorf("%s: invalid UTF-8 at byte %d", path, off)
	}
	return b, nil
}
