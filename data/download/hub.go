package download

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// HFEndpoint is the Hugging Face hub to download from: CLIPCAP_HF_ENDPOINT,
// else the standard HF_ENDPOINT (as huggingface_hub reads it, so a mirror
// set up for Python tools serves us too), else https://huggingface.co.
func HFEndpoint() string {
	if v := os.Getenv("CLIPCAP_HF_ENDPOINT"); v != "" {
		return strings.TrimRight(v, "/")
	}
	return endpoint("HF_ENDPOINT", defaultHFEndpoint)
}

// HFResolveURL is the download URL of a file in a hub model repository.
func HFResolveURL(repo, file string) string {
	return HFEndpoint() + "/" + repo + "/resolve/main/" + file
}

// Offline reports whether HF_HUB_OFFLINE (huggingface_hub's switch) asks
// for no network access at all: cached files only.
func Offline() bool {
	switch strings.ToLower(strings.TrimSpace(os.Getenv("HF_HUB_OFFLINE"))) {
	case "1", "true", "yes", "on":
		return true
	}
	return false
}

// HFCachedFile returns the path of repo's file in huggingface_hub's own
// cache ($HF_HUB_CACHE, else $HF_HOME/hub, else
// ${XDG_CACHE_HOME:-~/.cache}/huggingface/hub) when a snapshot holds it,
// so weights fetched by Python tools are not downloaded twice; else "".
func HFCachedFile(repo, file string) string {
	root := os.Getenv("HF_HUB_CACHE")
	if root == "" {
		if h := os.Getenv("HF_HOME"); h != "" {
			root = filepath.Join(h, "hub")
		} else if x := os.Getenv("XDG_CACHE_HOME"); x != "" {
			root = filepath.Join(x, "huggingface", "hub")
		} else if home, err := os.UserHomeDir(); err == nil {
			root = filepath.Join(home, ".cache", "huggingface", "hub")
		} else {
			return ""
		}
	}
	repoDir := filepath.Join(root, "models--"+strings.ReplaceAll(repo, "/", "--"))
	// refs/main names the snapshot the hub's "main" pointed at; any other
	// snapshot holding the file will do when it is missing.
	var snaps []string
	if ref, err := os.ReadFile(filepath.Join(repoDir, "refs", "main")); err == nil {
		snaps = append(snaps, strings.TrimSpace(string(ref)))
	}
	if entries, err := os.ReadDir(filepath.Join(repoDir, "snapshots")); err == nil {
		for _, e := range entries {
			snaps = append(snaps, e.Name())
		}
	}
	for _, s := range snaps {
		p := filepath.Join(repoDir, "snapshots", s, filepath.FromSlash(file))
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p
		}
	}
	return ""
}

// Reachable dials the host serving rawURL (or the proxy the environment
// names for it) within timeout. It is a cheap test for "offline" that
// fails at once when there is no route, no DNS or a refused port, where a
// download would first spend its retries.
func Reachable(ctx context.Context, rawURL string, timeout time.Duration) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return err
	}
	target := u
	if p, err := http.ProxyFromEnvironment(&http.Request{URL: u}); err == nil && p != nil {
		target = p
	}
	host := target.Host
	if target.Port() == "" {
		port := "443"
		if target.Scheme == "http" {
			port = "80"
		}
		host = net.JoinHostPort(target.Hostname(), port)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return fmt.Errorf("cannot reach %s: %w", target.Host, err)
	}
	return c.Close()
}

func newJar() http.CookieJar {
	j, _ := cookiejar.New(nil) // never fails without options
	return j
}
