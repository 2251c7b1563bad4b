package download

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// DefaultDriveEndpoint serves Google Drive's public downloads;
// CLIPCAP_DRIVE_ENDPOINT substitutes another (tests, proxies).
const DefaultDriveEndpoint = "https://drive.google.com"

// DriveURL is the download URL of a publicly shared Google Drive file.
func DriveURL(id string) string {
	return endpoint("CLIPCAP_DRIVE_ENDPOINT", DefaultDriveEndpoint) + "/uc?export=download&id=" + url.QueryEscape(id)
}

// ErrDriveQuota is wrapped by errors for Drive files whose download quota
// is used up ("Too many users have viewed or downloaded this file
// recently"). Retrying soon does not help; another source does.
var ErrDriveQuota = errors.New(`Google Drive refuses the download: "too many users have viewed or downloaded this file recently" (its daily quota is used up)`)

// driveMaxPage bounds how much of an HTML answer is read: Drive's pages
// are tens of kilobytes, and a file served as text/html must not be
// slurped into memory.
const driveMaxPage = 1 << 20

// followDrive turns Drive's interstitial pages into the file: for files
// too large for a virus scan Drive answers with a page asking to confirm,
// either (older) a link carrying a confirm token, also set as a
// download_warning cookie, or (drive.usercontent.google.com) a form whose
// hidden inputs id/export/confirm/uuid are sent back as a GET. The request
// is repeated, with its Range header, on the confirmed URL.
func followDrive(ctx context.Context, client *http.Client, req *http.Request, resp *http.Response) (*http.Response, error) {
	for hop := 0; ; hop++ {
		if !isHTML(resp) {
			return resp, nil
		}
		page, err := io.ReadAll(io.LimitReader(resp.Body, driveMaxPage))
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("reading Google Drive's page: %w", err)
		}
		if hop == 3 {
			return nil, permanentError{fmt.Errorf("Google Drive still answers with a web page after %d confirmations (%s)", hop, pageTitle(page))}
		}
		next, err := driveConfirmURL(resp.Request.URL, page, client.Jar)
		if err != nil {
			return nil, err
		}
		r2 := req.Clone(ctx)
		r2.URL, r2.Host = next, ""
		if resp, err = client.Do(r2); err != nil {
			return nil, err
		}
	}
}

func isHTML(resp *http.Response) bool {
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	return mt == "text/html" && resp.StatusCode < 300
}

var (
	formRe    = regexp.MustCompile(`(?is)<form\b([^>]*)>(.*?)</form>`)
	inputRe   = regexp.MustCompile(`(?is)<input\b([^>]*)>`)
	attrRe    = regexp.MustCompile(`(?is)([a-z-]+)\s*=\s*("[^"]*"|'[^']*')`)
	confirmRe = regexp.MustCompile(`(?i)href="([^"]*[?&](?:amp;)?confirm=[^"]*)"`)
	titleRe   = regexp.MustCompile(`(?is)<title>(.*?)</title>`)
)

// driveConfirmURL finds where a Drive interstitial page leads, or says why
// there is no way on.
func driveConfirmURL(page *url.URL, body []byte, jar http.CookieJar) (*url.URL, error) {
	low := bytes.ToLower(body)
	if bytes.Contains(low, []byte("too many users have viewed or downloaded")) || bytes.Contains(low, []byte("quota exceeded")) {
		return nil, permanentError{ErrDriveQuota}
	}
	// drive.usercontent.google.com: <form id="download-form" action=...>
	// with hidden inputs.
	for _, fm := range formRe.FindAllSubmatch(body, -1) {
		attrs := attributes(fm[1])
		q := url.Values{}
		for _, in := range inputRe.FindAllSubmatch(fm[2], -1) {
			a := attributes(in[1])
			if strings.EqualFold(a["type"], "hidden") && a["name"] != "" {
				q.Set(a["name"], a["value"])
			}
		}
		if q.Get("id") == "" {
			continue
		}
		action, err := page.Parse(attrs["action"])
		if err != nil {
			return nil, permanentError{fmt.Errorf("Google Drive's download form has a bad action %q: %w", attrs["action"], err)}
		}
		action.RawQuery = q.Encode()
		return action, nil
	}
	// drive.google.com/uc: a link with &confirm=TOKEN.
	if m := confirmRe.FindSubmatch(body); m != nil {
		u, err := page.Parse(html.UnescapeString(string(m[1])))
		if err == nil {
			return u, nil
		}
	}
	// ... or only the download_warning cookie carries the token.
	if jar != nil {
		for _, c := range jar.Cookies(page) {
			if strings.HasPrefix(c.Name, "download_warning") {
				u := *page
				q := u.Query()
				q.Set("confirm", c.Value)
				u.RawQuery = q.Encode()
				return &u, nil
			}
		}
	}
	return nil, permanentError{fmt.Errorf("Google Drive answered %s with a web page (%s), not the file: is it shared publicly?", page.Redacted(), pageTitle(body))}
}

func attributes(tag []byte) map[string]string {
	out := map[string]string{}
	for _, m := range attrRe.FindAllSubmatch(tag, -1) {
		v := string(m[2])
		out[strings.ToLower(string(m[1]))] = html.UnescapeString(v[1 : len(v)-1])
	}
	return out
}

func pageTitle(body []byte) string {
	if m := titleRe.FindSubmatch(body); m != nil {
		return fmt.Sprintf("title %q", strings.TrimSpace(html.UnescapeString(string(m[1]))))
	}
	return "untitled"
}
