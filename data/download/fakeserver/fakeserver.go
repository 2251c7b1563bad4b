// Package fakeserver imitates, for tests, the servers the downloader
// talks to: the Hugging Face hub's resolve endpoint and Google Drive's
// download endpoints with both of their large-file confirmation flows and
// their quota page. Mount them on an httptest.Server.
package fakeserver

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Drive flows.
const (
	FlowCookie     = "cookie"      // drive.google.com/uc: confirm link + download_warning cookie
	FlowCookieOnly = "cookie-only" // the token only in the cookie
	FlowForm       = "form"        // redirect to a drive.usercontent.google.com-style form
	FlowDirect     = "direct"      // small files: the bytes at once
)

// Stats count what a fake served.
type Stats struct {
	mu       sync.Mutex
	Requests []string // path?query of every request
	Ranges   []string // their Range headers
	Served   int      // file bodies started
}

func (s *Stats) note(r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Requests = append(s.Requests, r.URL.RequestURI())
	s.Ranges = append(s.Ranges, r.Header.Get("Range"))
}

// serve counts a file body and sends it, cut after *dieAfter bytes when
// that is set (once: it is cleared).
func (s *Stats) serve(w http.ResponseWriter, r *http.Request, data []byte, dieAfter *int) {
	s.mu.Lock()
	s.Served++
	die := *dieAfter
	*dieAfter = 0
	s.mu.Unlock()
	serveBytes(w, r, data, die)
}

// ServedCount is how many file bodies were started.
func (s *Stats) ServedCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Served
}

// RangeHeaders returns the Range headers seen so far.
func (s *Stats) RangeHeaders() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.Ranges...)
}

// Drive serves Files (by id) under /uc and /download.
type Drive struct {
	Stats
	Files map[string][]byte
	Flow  string
	Quota bool // answer every file with the quota page
	// DieAfter, when > 0, cuts the next file body after that many bytes.
	DieAfter int
}

const token = "Xy-12_ab"
const uuid = "0b6c2c6e-1111-4a2b-9c3d-0123456789ab"

func (d *Drive) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d.note(r)
	q := r.URL.Query()
	id := q.Get("id")
	data, ok := d.Files[id]
	if !ok {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	if d.Quota {
		page(w, "Google Drive - Quota exceeded", `<p class="uc-error-subcaption">Too many users have viewed or downloaded this file recently. Please try accessing the file again later. If the file you are trying to access is particularly large or is shared with many people, it may take up to 24 hours to be able to view or download the file.</p>`)
		return
	}
	switch {
	case d.Flow == FlowDirect:
	case r.URL.Path == "/uc" && (d.Flow == FlowCookie || d.Flow == FlowCookieOnly):
		c, err := r.Cookie("download_warning_1234_" + id)
		if q.Get("confirm") == token && err == nil && c.Value == token {
			break
		}
		http.SetCookie(w, &http.Cookie{Name: "download_warning_1234_" + id, Value: token, Path: "/"})
		link := ""
		if d.Flow == FlowCookie {
			link = fmt.Sprintf(`<a id="uc-download-link" class="goog-inline-block jfk-button" href="/uc?export=download&amp;confirm=%s&amp;id=%s">Download anyway</a>`, token, id)
		}
		page(w, "Google Drive - Virus scan warning", `<p>Google Drive can't scan this file for viruses.</p>`+link)
		return
	case r.URL.Path == "/uc" && d.Flow == FlowForm:
		http.Redirect(w, r, "/download?id="+id+"&export=download", http.StatusSeeOther)
		return
	case r.URL.Path == "/download" && d.Flow == FlowForm:
		if q.Get("confirm") == "t" && q.Get("uuid") == uuid && q.Get("export") == "download" {
			break
		}
		page(w, "Google Drive - Virus scan warning", fmt.Sprintf(`<div class="uc-main"><p class="uc-warning-subcaption">Google Drive can't scan this file for viruses.</p>
<form id="download-form" action="http://%s/download" method="get"><input type="submit" id="uc-download-link" class="goog-inline-block jfk-button jfk-button-action" value="Download anyway"/><input type="hidden" name="id" value="%s"><input type="hidden" name="export" value="download"><input type="hidden" name="confirm" value="t"><input type="hidden" name="uuid" value="%s"></form></div>`, r.Host, id, uuid))
		return
	default:
		http.Error(w, "unexpected request", http.StatusBadRequest)
		return
	}
	d.serve(w, r, data, &d.DieAfter)
}

func page(w http.ResponseWriter, title, body string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, "<!DOCTYPE html><html><head><title>%s</title></head><body>%s</body></html>", title, body)
}

// Hub serves Files ("owner/repo/file" or "repo/file") under
// /<repo>/resolve/main/<file>, redirecting like the hub to /cdn/ with the
// sha256 in X-Linked-Etag.
type Hub struct {
	Stats
	Files    map[string][]byte
	DieAfter int
}

func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.note(r)
	if rest, ok := strings.CutPrefix(r.URL.Path, "/cdn/"); ok {
		data, ok := h.Files[rest]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h.serve(w, r, data, &h.DieAfter)
		return
	}
	repo, file, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/resolve/main/")
	data, found := h.Files[repo+"/"+file]
	if !ok || !found {
		http.Error(w, "Entry not found", http.StatusNotFound)
		return
	}
	sum := sha256.Sum256(data)
	w.Header().Set("X-Linked-Etag", `"`+hex.EncodeToString(sum[:])+`"`)
	w.Header().Set("X-Linked-Size", fmt.Sprint(len(data)))
	http.Redirect(w, r, "/cdn/"+repo+"/"+file, http.StatusFound)
}

// serveBytes serves data with Range support; with die > 0 it sends that
// many bytes and drops the connection.
func serveBytes(w http.ResponseWriter, r *http.Request, data []byte, die int) {
	w.Header().Set("Content-Type", "application/octet-stream")
	if die <= 0 {
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
		return
	}
	start := 0
	if rg := r.Header.Get("Range"); rg != "" {
		fmt.Sscanf(rg, "bytes=%d-", &start)
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(data)-1, len(data)))
		w.Header().Set("Content-Length", fmt.Sprint(len(data)-start))
		w.WriteHeader(http.StatusPartialContent)
	} else {
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
	}
	if start+die > len(data) {
		die = len(data) - start
	}
	w.Write(data[start : start+die])
	w.(http.Flusher).Flush()
	if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
		conn.Close()
	}
}
