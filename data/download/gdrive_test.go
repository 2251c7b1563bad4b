package download

import (
	"bytes"
	"context"
	"errors"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clipcap/clipcap/data/download/fakeserver"
)

func driveFixture(t *testing.T, flow string, size int) (*fakeserver.Drive, []byte) {
	t.Helper()
	data := make([]byte, size)
	rand.New(rand.NewSource(7)).Read(data)
	d := &fakeserver.Drive{Files: map[string][]byte{"FILEID": data}, Flow: flow}
	srv := httptest.NewServer(d)
	t.Cleanup(srv.Close)
	t.Setenv("CLIPCAP_DRIVE_ENDPOINT", srv.URL)
	return d, data
}

func driveFile() File { return File{Name: "w.pt", URL: DriveURL("FILEID"), Drive: true} }

func TestDriveConfirmationFlows(t *testing.T) {
	for _, flow := range []string{fakeserver.FlowCookie, fakeserver.FlowCookieOnly, fakeserver.FlowForm, fakeserver.FlowDirect} {
		t.Run(flow, func(t *testing.T) {
			d, data := driveFixture(t, flow, 50_000)
			dest := filepath.Join(t.TempDir(), "w.pt")
			if err := FetchFile(context.Background(), driveFile(), dest, quiet()); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(dest)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("downloaded %d bytes (err %v), want the %d-byte file, not a web page", len(got), err, len(data))
			}
			if d.ServedCount() != 1 {
				t.Errorf("file served %d times, want 1", d.ServedCount())
			}
		})
	}
}

func TestDriveQuotaPage(t *testing.T) {
	d, _ := driveFixture(t, fakeserver.FlowForm, 1000)
	d.Quota = true
	dir := t.TempDir()
	dest := filepath.Join(dir, "w.pt")
	err := FetchFile(context.Background(), driveFile(), dest, quiet())
	if !errors.Is(err, ErrDriveQuota) || !strings.Contains(err.Error(), "too many users have viewed or downloaded") {
		t.Fatalf("got %v, want the quota error", err)
	}
	if n := len(d.RangeHeaders()); n != 1 {
		t.Errorf("%d requests: a quota page is permanent, retrying soon cannot help", n)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("left %v behind", entries)
	}
}

func TestDrivePageWithoutWayOn(t *testing.T) {
	srv := httptest.NewServer(pageOnly{})
	defer srv.Close()
	f := File{Name: "w.pt", URL: srv.URL + "/uc?id=x", Drive: true}
	err := FetchFile(context.Background(), f, filepath.Join(t.TempDir(), "w.pt"), quiet())
	if err == nil || !strings.Contains(err.Error(), "shared publicly") || !strings.Contains(err.Error(), `"Sign-in"`) {
		t.Fatalf("got %v, want a web-page-not-file error naming the page", err)
	}
}

func TestDriveDownloadResumes(t *testing.T) {
	d, data := driveFixture(t, fakeserver.FlowForm, 200_000)
	d.DieAfter = 70_000
	dest := filepath.Join(t.TempDir(), "w.pt")
	opt := quiet()
	opt.Attempts = 1 // the first run is "killed" by the broken connection
	if err := FetchFile(context.Background(), driveFile(), dest, opt); err == nil {
		t.Fatal("a cut connection with one attempt must fail")
	}
	if st, err := os.Stat(dest + ".partial"); err != nil || st.Size() != 70_000 {
		t.Fatalf("partial file: %v, %v; want 70000 bytes kept", st, err)
	}
	if err := FetchFile(context.Background(), driveFile(), dest, quiet()); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, data) {
		t.Fatal("resumed file differs")
	}
	rg := d.RangeHeaders()
	if last := rg[len(rg)-1]; last != "bytes=70000-" {
		t.Errorf("the confirmed request carried Range %q, want bytes=70000-", last)
	}
}

type pageOnly struct{}

func (pageOnly) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html")
	w.Write([]byte("<html><head><title>Sign-in</title></head><body>log in</body></html>"))
}
