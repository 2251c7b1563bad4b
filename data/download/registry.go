package download

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// File is one file to fetch: its name in the model directory, its URL and,
// when known up front, its sha256.
type File struct {
	Name   string
	URL    string
	SHA256 string // lowercase hex; "" when only the server can tell us
	// HubETag says the server is a Hugging Face hub, whose X-Linked-Etag
	// (LFS files: the sha256) or ETag (small files: the git blob sha1)
	// headers let us verify files whose hash we do not record.
	HubETag bool
	// Drive says the URL is a Google Drive download, whose confirmation
	// pages for large files are followed (see followDrive).
	Drive bool
}

// Model is a named set of files stored together under <cache>/models/<Dir>.
type Model struct {
	Name  string
	Dir   string
	Files []File
}

const (
	defaultHFEndpoint   = "https://huggingface.co"
	defaultCLIPEndpoint = "https://openaipublic.azureedge.net/clip/models"
)

// clipModels are openai/CLIP's released TorchScript archives (clip.py's
// _MODELS); the path segment before the file name is the file's sha256.
var clipModels = map[string]string{
	"RN50":           "afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762/RN50.pt",
	"RN101":          "8fa8567bab74a42d41c5915025a8e4538c3bdbe8804a470a72f30b0d94fab599/RN101.pt",
	"RN50x4":         "7e526bd135e493cef0776de27d5f42653e6b4c8bf9e0f653bb11773263205fdd/RN50x4.pt",
	"RN50x16":        "52378b407f34354e150460fe41077663dd5b39c54cd0bfd2b27167a4a06ec9aa/RN50x16.pt",
	"RN50x64":        "be1cfb55d75a9666199fb2206c106743da0f6468c9d327f3e0d0a543a9919d9c/RN50x64.pt",
	"ViT-B/32":       "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt",
	"ViT-B/16":       "5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f/ViT-B-16.pt",
	"ViT-L/14":       "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836/ViT-L-14.pt",
	"ViT-L/14@336px": "3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02/ViT-L-14-336px.pt",
}

// gpt2Models are Hugging Face hub repositories; gpt2Files are fetched from
// each. Hashes we could confirm are recorded (gpt2's model.safetensors, from
// the hub's LFS pointer); the rest are checked against the hub's ETags.
var gpt2Models = []string{"gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl"}

var gpt2Files = []string{"config.json", "vocab.json", "merges.txt", "model.safetensors"}

var gpt2SHA256 = map[string]string{
	"gpt2/model.safetensors": "248dfc3911869ec493c76e65bf2fcf7f615828b0254c12b473182f0f81d3a707",
}

// Names lists the registry's model names, sorted.
func Names() []string {
	names := append([]string(nil), gpt2Models...)
	for n := range clipModels {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Lookup returns a registry model with URLs built from the current
// endpoints: CLIPCAP_HF_ENDPOINT (default https://huggingface.co) and
// CLIPCAP_CLIP_ENDPOINT (default openai's CDN), so mirrors and tests can
// substitute their own servers.
func Lookup(name string) (Model, error) {
	if p, ok := clipModels[name]; ok {
		base := endpoint("CLIPCAP_CLIP_ENDPOINT", defaultCLIPEndpoint)
		url := base + "/" + p
		return Model{Name: name, Dir: DirName(name), Files: []File{{
			Name: path.Base(p), URL: url, SHA256: SHA256FromURL(url),
		}}}, nil
	}
	for _, g := range gpt2Models {
		if g != name {
			continue
		}
		base := HFEndpoint()
		m := Model{Name: name, Dir: DirName(name)}
		for _, f := range gpt2Files {
			m.Files = append(m.Files, File{
				Name:    f,
				URL:     base + "/" + name + "/resolve/main/" + f,
				SHA256:  gpt2SHA256[name+"/"+f],
				HubETag: true,
			})
		}
		return m, nil
	}
	return Model{}, fmt.Errorf("unknown model %q; known models: %s", name, strings.Join(Names(), ", "))
}

func endpoint(env, def string) string {
	if v := os.Getenv(env); v != "" {
		return strings.TrimRight(v, "/")
	}
	return def
}

// DirName turns a model name into a directory name: "ViT-B/32" becomes
// "ViT-B-32", as openai names the file.
func DirName(name string) string {
	return strings.NewReplacer("/", "-", "\\", "-", "..", "-").Replace(name)
}

var hex64 = regexp.MustCompile(`^[0-9a-f]{64}$`)

// SHA256FromURL returns the sha256 that URLs like openai's CLIP downloads
// carry as the path segment before the file name, or "" if there is none.
func SHA256FromURL(url string) string {
	parts := strings.Split(strings.SplitN(url, "?", 2)[0], "/")
	if len(parts) < 2 {
		return ""
	}
	seg := strings.ToLower(parts[len(parts)-2])
	if hex64.MatchString(seg) {
		return seg
	}
	return ""
}

// CacheDir returns $CLIPCAP_CACHE, else $XDG_CACHE_HOME/clipcap, else
// $HOME/.cache/clipcap.
func CacheDir() (string, error) {
	if d := os.Getenv("CLIPCAP_CACHE"); d != "" {
		return d, nil
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "clipcap"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("cache dir: set CLIPCAP_CACHE or HOME: %w", err)
	}
	return filepath.Join(home, ".cache", "clipcap"), nil
}

// ModelDir is where a model's files live: <cache>/models/<DirName(name)>.
func ModelDir(cache, name string) string {
	return filepath.Join(cache, "models", DirName(name))
}
