package download

import (
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
)

// Released is a ClipCap checkpoint published with the original paper:
// where it can be fetched. How it is imported (CLIP tower, prefix
// normalisation, decoding) is the importer's business.
type Released struct {
	Name    string
	About   string
	File    string // the checkpoint's file name
	HFRepo  string // a Hugging Face mirror holding File ("" if none)
	DriveID string // the original Google Drive file
	Size    string // approximate, for --list
	Licence string
}

// Sources lists where the checkpoint can come from, in the order to try:
// the Hugging Face mirror (fast, resumable, ETag-verified), then Drive.
func (r Released) Sources() []File {
	var out []File
	if r.HFRepo != "" {
		out = append(out, File{Name: r.File, URL: HFResolveURL(r.HFRepo, r.File), HubETag: true})
	}
	if r.DriveID != "" {
		out = append(out, File{Name: r.File, URL: DriveURL(r.DriveID), Drive: true})
	}
	return out
}

const clipcapLicence = "MIT (rmokady/CLIP_prefix_caption); GPT-2 weights: OpenAI's modified MIT"

var released = []Released{
	{
		Name: "clipcap-coco", About: "ClipCap COCO: MLP mapper + fine-tuned GPT-2, CLIP ViT-B/32",
		File: "coco_weights.pt", HFRepo: "akhaliq/CLIP-prefix-captioning-COCO-weights",
		DriveID: "1IdaBtMSvtyzF0ByVaBHtvM0JYSXRExRX", Size: "~0.6 GB (+ ViT-B/32 0.35 GB)", Licence: clipcapLicence,
	},
	{
		Name: "clipcap-conceptual", About: "ClipCap Conceptual Captions: MLP mapper + fine-tuned GPT-2, CLIP ViT-B/32",
		File: "conceptual_weights.pt", HFRepo: "akhaliq/CLIP-prefix-captioning-conceptual-weights",
		DriveID: "14pXWwB4Zm82rsDdvbGguLfx9F8aM7ovT", Size: "~0.6 GB (+ ViT-B/32 0.35 GB)", Licence: clipcapLicence,
	},
	{
		Name: "clipcap-coco-transformer", About: "ClipCap COCO: transformer mapper, frozen GPT-2, CLIP RN50x4",
		File: "transformer_weights.pt", DriveID: "1GYPToCqFREwi285wPLhuVExlz7DDUDfJ",
		Size: "~0.8 GB (+ RN50x4 0.4 GB)", Licence: clipcapLicence,
	},
}

// LookupReleased returns the released checkpoint of that name.
func LookupReleased(name string) (Released, bool) {
	for _, r := range released {
		if r.Name == name {
			return r, true
		}
	}
	return Released{}, false
}

// ReleasedNames lists the released checkpoints' names.
func ReleasedNames() []string {
	var out []string
	for _, r := range released {
		out = append(out, r.Name)
	}
	sort.Strings(out)
	return out
}

// Entry is one line of `clipcap download --list`.
type Entry struct {
	Name, Kind, Size, Licence, About string
}

// clipSizes are the OpenAI CLIP archives' sizes (approximate).
var clipSizes = map[string]string{
	"RN50": "244 MB", "RN101": "278 MB", "RN50x4": "402 MB", "RN50x16": "630 MB", "RN50x64": "1.3 GB",
	"ViT-B/32": "338 MB", "ViT-B/16": "335 MB", "ViT-L/14": "890 MB", "ViT-L/14@336px": "891 MB",
}

var gpt2Sizes = map[string]string{"gpt2": "548 MB", "gpt2-medium": "1.5 GB", "gpt2-large": "3.2 GB", "gpt2-xl": "6.4 GB"}

// Catalog lists everything `clipcap download` knows: released ClipCap
// models, datasets, then the weights they build on.
func Catalog() []Entry {
	var out []Entry
	for _, r := range released {
		out = append(out, Entry{r.Name, "model", r.Size, r.Licence, r.About})
	}
	for _, d := range datasetsList {
		out = append(out, Entry{d.Name, "dataset", d.Size, d.Licence, d.About})
	}
	for _, n := range Names() {
		if s, ok := clipSizes[n]; ok {
			out = append(out, Entry{n, "clip", s, "MIT (openai/CLIP)", "OpenAI CLIP " + n})
		} else {
			out = append(out, Entry{n, "gpt2", gpt2Sizes[n], "modified MIT (openai/gpt-2)", "GPT-2 weights from the Hugging Face hub"})
		}
	}
	return out
}

// WriteCatalog prints Catalog as a table (`clipcap download --list`).
func WriteCatalog(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tSIZE\tLICENCE\tWHAT")
	for _, e := range Catalog() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Name, e.Kind, e.Size, e.Licence, e.About)
	}
	return tw.Flush()
}

// DownloadCommand is the command that fetches a named model or dataset.
func DownloadCommand(name string) string {
	return fmt.Sprintf("clipcap download %s", name)
}
