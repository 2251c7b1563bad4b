package serve

import (
	"bufio"
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/clipcap/clipcap/caption"
)

// chromium finds a Chromium, installing Debian's when missing (root with
// apt-get only). It skips the test, saying why, when none can be had.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if _, err := exec.LookPath("apt-get"); err != nil || os.Geteuid() != 0 {
		t.Skip("no Chromium and no way to install it (needs root and apt-get): apt-get install -y chromium")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "apt-get", "install", "-y", "chromium").CombinedOutput()
	if p, lerr := exec.LookPath("chromium"); err == nil && lerr == nil {
		return p
	}
	t.Skipf("installing Chromium failed (%v): %.500s", err, out)
	return ""
}

// writeY4M writes a 2 s, 10 fps YUV 4:2:0 clip of one still picture for
// Chromium's fake camera.
func writeY4M(path string, w, h int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	bw := bufio.NewWriter(f)
	fmt.Fprintf(bw, "YUV4MPEG2 W%d H%d F10:1 Ip A1:1 C420jpeg\n", w, h)
	for n := 0; n < 20; n++ {
		bw.WriteString("FRAME\n")
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				bw.WriteByte(uint8(40 + (x*180)/w)) // luma ramp
			}
		}
		for p := 0; p < 2; p++ {
			for y := 0; y < h/2; y++ {
				for x := 0; x < w/2; x++ {
					bw.WriteByte(uint8(60 + p*120 + (y*60)/h))
				}
			}
		}
	}
	return bw.Flush()
}

// The page, in headless Chromium with a fake camera, streams frames and
// shows the caption the server sent for one of them.
func TestWebPageShowsServerCaption(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	bin := chromium(t)
	s, err := New(tiny(t), Config{MaxWait: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	sent := map[int]string{}
	s.observeStream = func(frame int, c caption.Caption) {
		mu.Lock()
		sent[frame] = jsonText(c.Text)
		mu.Unlock()
	}
	hs := httptest.NewServer(s.Handler())
	defer func() { hs.Close(); s.Close() }()

	dir := t.TempDir()
	y4m := filepath.Join(dir, "cam.y4m")
	if err := writeY4M(y4m, 320, 240); err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.UserDataDir(filepath.Join(dir, "profile")),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("use-file-for-fake-video-capture", y4m),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer acancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, tcancel := context.WithTimeout(ctx, 60*time.Second)
	defer tcancel()

	if _, err := chromedp.Run(ctx, chromedp.Navigate(hs.URL+"/")); err != nil {
		t.Fatalf("opening the page: %v", err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Click("#start")); err != nil {
		t.Fatalf("clicking Start: %v", err)
	}
	type shown struct {
		Text  string `json:"text"`
		Frame int    `json:"frame"`
	}
	got, err := chromedp.Run(ctx, chromedp.Poll[shown](`(() => {
		const c = document.getElementById("caption");
		return c.dataset.frame ? {text: c.textContent, frame: Number(c.dataset.frame)} : null;
	})()`, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(40*time.Second)))
	if err != nil {
		status, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("status").textContent`))
		t.Fatalf("waiting for a caption on the page (status %q): %v", status, err)
	}
	text, n := got.Text, got.Frame
	frame := fmt.Sprint(n)
	mu.Lock()
	want, ok := sent[n]
	mu.Unlock()
	if !ok || text != want || text == "" {
		t.Fatalf("page shows %q for frame %s; the server sent %q (%v)", text, frame, want, ok)
	}
	t.Logf("page shows frame %d's caption %q", n, text)
}
