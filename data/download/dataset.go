package download

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/clipcap/clipcap/data/datasets"
)

// DatasetFile is one file of a dataset.
type DatasetFile struct {
	Name    string // path under the dataset directory
	URL     string
	DriveID string // instead of URL
	Size    int64  // published size in bytes, 0 when unknown
	SHA256  string // published sha256, "" when none is
	Unzip   bool   // unpack into the dataset directory, then delete
}

// Dataset is a captioning dataset `clipcap download` can fetch.
type Dataset struct {
	Name, About, Size, Licence string
	Dir                        string // default directory
	Files                      []DatasetFile
	// Images names an annotation file (of Files) whose images are then
	// fetched by URL with the polite downloader into ImagesDir.
	Images, ImagesDir string
	// Manual says how to get the files by hand when a server refuses.
	Manual string
	// Next are the commands to run afterwards; {dir} is the directory.
	Next []string
}

// Published sizes of the COCO 2014 archives (the server's Content-Length;
// COCO publishes no checksums).
const (
	cocoTrainZipSize = 13510573713
	cocoValZipSize   = 6645013297
)

// datasetSizes are the published sizes by file name (a variable so tests
// can serve small stand-ins).
var datasetSizes = map[string]int64{"train2014.zip": cocoTrainZipSize, "val2014.zip": cocoValZipSize}

var datasetsList = []Dataset{
	{Name: "coco2014", About: "COCO 2014 train/val images + the original's Karpathy-split caption file",
		Size: "20.2 GB zips (13.5 + 6.6), ~20 GB unpacked", Dir: "data/coco",
		Licence: "annotations CC BY 4.0; images under Flickr's terms of use",
		Next: []string{
			"clipcap extract --dataset clipcap --input {dir}/annotations/train_caption.json --clip ViT-B/32 --out data/coco_vitb32",
			"clipcap extract --dataset clipcap --input {dir}/annotations/train_caption.json --clip RN50x4 --out data/coco_rn50x4   # for the transformer configs",
		}},
	{Name: "nocaps-val", About: "nocaps validation: 4,500 Open Images with 10 captions each",
		Size: "~3 MB + ~1 GB of images", Dir: "data/nocaps",
		Licence: "annotations CC BY 2.0; images CC BY 2.0 (Open Images, per image)",
		Images:  "nocaps_val_4500_captions.json", ImagesDir: "val",
		Next: []string{
			"clipcap extract --dataset nocaps --input {dir}/nocaps_val_4500_captions.json --images {dir}/val --clip ViT-B/32 --out data/nocaps_val_vitb32",
		}},
	{Name: "conceptual", About: "Conceptual Captions 3M: caption/URL TSVs (images via extract --download)",
		Size: "TSVs ~0.5 GB (+ 3.3M image URLs)", Dir: "data/conceptual",
		Licence: "free for any purpose with attribution (Google LLC); images belong to their owners",
		Manual: "Google serves the TSVs only after accepting its terms at https://ai.google.com/research/ConceptualCaptions/download:\n" +
			"download Train_GCC-training.tsv and Validation_GCC-1.1.0-Validation.tsv there, put them in {dir}/,\n" +
			"and run `clipcap download conceptual --data {dir}` again: it takes files already present.",
		Next: []string{
			"clipcap extract --dataset conceptual --input {dir}/Train_GCC-training.tsv --images {dir}/images --download --clip ViT-B/32 --out data/conceptual_vitb32",
		}},
}

// datasetFiles builds the file lists from the current endpoints
// (CLIPCAP_COCO_ENDPOINT, CLIPCAP_NOCAPS_ENDPOINT, CLIPCAP_GCC_ENDPOINT,
// CLIPCAP_DRIVE_ENDPOINT), so mirrors and tests can stand in.
func datasetFiles(name string) []DatasetFile {
	switch name {
	case "coco2014":
		coco := endpoint("CLIPCAP_COCO_ENDPOINT", "http://images.cocodataset.org")
		return []DatasetFile{
			{Name: "annotations/train_caption.json", DriveID: "1D3EzUK1d1lNhD2hAvRiKPThidiVbP2K_"},
			{Name: "val2014.zip", URL: coco + "/zips/val2014.zip", Size: datasetSizes["val2014.zip"], Unzip: true},
			{Name: "train2014.zip", URL: coco + "/zips/train2014.zip", Size: datasetSizes["train2014.zip"], Unzip: true},
		}
	case "nocaps-val":
		return []DatasetFile{{Name: "nocaps_val_4500_captions.json",
			URL: endpoint("CLIPCAP_NOCAPS_ENDPOINT", "https://s3.amazonaws.com/nocaps") + "/nocaps_val_4500_captions.json"}}
	case "conceptual":
		gcc := endpoint("CLIPCAP_GCC_ENDPOINT", "https://storage.googleapis.com/gcc-data")
		return []DatasetFile{
			{Name: "Validation_GCC-1.1.0-Validation.tsv", URL: gcc + "/Validation/GCC-1.1.0-Validation.tsv"},
			{Name: "Train_GCC-training.tsv", URL: gcc + "/Train/GCC-training.tsv"},
		}
	}
	return nil
}

// LookupDataset returns the named dataset with its current URLs.
func LookupDataset(name string) (Dataset, bool) {
	for _, d := range datasetsList {
		if d.Name == name {
			d.Files = datasetFiles(name)
			return d, true
		}
	}
	return Dataset{}, false
}

// DatasetNames lists the datasets.
func DatasetNames() []string {
	var out []string
	for _, d := range datasetsList {
		out = append(out, d.Name)
	}
	return out
}

// DatasetOptions tunes FetchDataset.
type DatasetOptions struct {
	Options         // transfers: client, retries, progress
	Dir      string // dataset directory (default: the dataset's Dir)
	KeepZips bool   // keep archives after unpacking
	Unzip    UnzipOptions
	Images   datasets.DownloadOptions // the image downloader (Dir is set here)
}

// markerDir holds one manifest per finished file: the dataset directory's
// record of what is complete.
const markerDir = ".clipcap-download"

func markerPath(dir, file string) string {
	return filepath.Join(dir, markerDir, strings.ReplaceAll(file, "/", "__")+".json")
}

// FetchDataset downloads (resuming), checks and unpacks the named dataset
// into its directory and returns the commands to run next, {dir}
// substituted. A file is marked complete only after it was verified and,
// for archives, fully unpacked; reruns skip marked files.
func FetchDataset(ctx context.Context, name string, opt DatasetOptions) ([]string, error) {
	d, ok := LookupDataset(name)
	if !ok {
		return nil, fmt.Errorf("unknown dataset %q; known: %s", name, strings.Join(DatasetNames(), ", "))
	}
	if opt.Dir == "" {
		opt.Dir = d.Dir
	}
	if err := opt.Options.defaults(); err != nil {
		return nil, err
	}
	if opt.Unzip.Logf == nil {
		opt.Unzip.Logf = opt.Logf
	}
	subst := func(s string) string { return strings.ReplaceAll(s, "{dir}", opt.Dir) }
	if err := os.MkdirAll(filepath.Join(opt.Dir, markerDir), 0o755); err != nil {
		return nil, err
	}
	for _, f := range d.Files {
		if err := fetchDatasetFile(ctx, f, &opt); err != nil {
			if d.Manual != "" && !errors.Is(err, context.Canceled) {
				return nil, fmt.Errorf("%s: %w\n%s", name, err, subst(d.Manual))
			}
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	if d.Images != "" {
		if err := fetchImages(ctx, d, &opt); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	var next []string
	for _, n := range d.Next {
		next = append(next, subst(n))
	}
	return next, nil
}

func fetchDatasetFile(ctx context.Context, f DatasetFile, opt *DatasetOptions) error {
	marker := markerPath(opt.Dir, f.Name)
	dest := filepath.Join(opt.Dir, filepath.FromSlash(f.Name))
	if m, err := ReadManifest(marker); err == nil {
		if f.Unzip || m.Verify(opt.Dir) == nil {
			return nil // unpacked archives are trusted once marked
		}
		opt.Logf("%s changed since it was downloaded; fetching it again", dest)
		os.Remove(marker)
		os.Remove(dest)
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return err
	}
	src := File{Name: f.Name, URL: f.URL, SHA256: f.SHA256}
	if f.DriveID != "" {
		src.URL, src.Drive = DriveURL(f.DriveID), true
	}
	if err := FetchFile(ctx, src, dest, opt.Options); err != nil {
		return err
	}
	rec, err := RecordFile(dest)
	if err != nil {
		return err
	}
	if f.Size > 0 && rec.Size != f.Size {
		os.Remove(dest)
		return fmt.Errorf("%s is %d bytes, the publisher's size is %d (removed; run again)", dest, rec.Size, f.Size)
	}
	m := Manifest{Name: f.Name, Source: src.URL, File: f.Name, Origin: &rec}
	if f.Unzip {
		if err := Unzip(ctx, dest, opt.Dir, opt.Unzip); err != nil {
			if !errors.Is(err, syscall.ENOSPC) && ctx.Err() == nil && !strings.Contains(err.Error(), "free some space") {
				// A damaged or hostile archive will not get better: make the
				// next run fetch it again.
				os.Remove(dest)
				return fmt.Errorf("%w (archive removed; run again to download it afresh)", err)
			}
			return err
		}
		if err := WriteManifest(marker, m); err != nil {
			return err
		}
		if !opt.KeepZips {
			os.Remove(dest)
		}
		return nil
	}
	m.Files = map[string]Record{f.Name: rec}
	return WriteManifest(marker, m)
}

// fetchImages downloads the images an annotation file names by URL.
func fetchImages(ctx context.Context, d Dataset, opt *DatasetOptions) error {
	marker := markerPath(opt.Dir, d.ImagesDir+"/")
	if _, err := ReadManifest(marker); err == nil {
		return nil
	}
	ann := filepath.Join(opt.Dir, d.Images)
	items, err := datasets.Read("nocaps", ann, datasets.Options{Images: filepath.Join(opt.Dir, d.ImagesDir)})
	if err != nil {
		return err
	}
	dl := opt.Images
	dl.Dir = opt.Dir
	if dl.Progress == nil {
		dl.Progress = func(s datasets.DownloadStats) {
			if n := s.Downloaded + s.Cached + s.Failed + s.Skipped; n%250 == 0 {
				opt.Logf("images: %d done (%d downloaded, %d already there, %d failed)", n, s.Downloaded, s.Cached, s.Failed)
			}
		}
	}
	st, err := datasets.Download(ctx, items, dl)
	if err != nil {
		return err
	}
	if st.Failed+st.Skipped > 0 {
		opt.Logf("%d of %d images could not be fetched (see %s); extract skips them, and a rerun with the same command retries none of them unless you delete that file",
			st.Failed+st.Skipped, st.Total, filepath.Join(opt.Dir, datasets.FailuresFile))
		return nil
	}
	// The marker ties the finished image set to the annotation file it
	// came from.
	rec, err := RecordFile(ann)
	if err != nil {
		return err
	}
	return WriteManifest(marker, Manifest{Name: d.ImagesDir, File: d.Images, Files: map[string]Record{d.Images: rec}})
}
